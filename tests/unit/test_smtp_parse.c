/* test_smtp_parse.c: command lines, MAIL/RCPT paths and ESMTP parameters
 * with Postfix's reply texts, EHLO, AUTH, BDAT, base64 and AUTH decoders. */
#include "check.h"
#include "core/base64.h"

#include "smtp/smtp_parse.h"

static char err[SMTP_ERR_MAX];

static int mail(const char *arg, struct smtp_mail_args *m)
{
    err[0] = '\0';
    return smtp_parse_mail(arg, strlen(arg), m, err);
}

static int rcpt(const char *arg, struct smtp_rcpt_args *r)
{
    err[0] = '\0';
    return smtp_parse_rcpt(arg, strlen(arg), r, err);
}

TEST(line_split)
{
    struct smtp_cmd c;
    const char *l = "mail FROM:<a@b.c>  ";
    CHECK_INT_EQ(smtp_parse_line(l, strlen(l), &c, err), 0);
    CHECK_INT_EQ(c.verb, SMTP_V_MAIL);
    CHECK_INT_EQ(c.arg_len, strlen("FROM:<a@b.c>"));
    CHECK_INT_EQ(smtp_parse_line("StartTLS", 8, &c, err), 0);
    CHECK_INT_EQ(c.verb, SMTP_V_STARTTLS);
    CHECK_INT_EQ(c.arg_len, 0);
    CHECK_INT_EQ(smtp_parse_line("XYZZY 1", 7, &c, err), 0);
    CHECK_INT_EQ(c.verb, SMTP_V_UNKNOWN);
    CHECK_INT_EQ(smtp_parse_line("", 0, &c, err), 0);
    CHECK_INT_EQ(c.verb, SMTP_V_UNKNOWN);
    CHECK_INT_EQ(smtp_parse_line("NOOP\0x", 6, &c, err), -1);
    CHECK_STR_EQ(err, "500 5.5.2 Error: bad syntax");
    CHECK_INT_EQ(smtp_parse_line("NOOP \xc3\x28", 7, &c, err), -1);
    CHECK_STR_EQ(err, "500 5.5.2 Error: bad UTF-8 syntax");
    CHECK_INT_EQ(smtp_parse_line("NOOP \xed\xa0\x80", 8, &c, err), -1); /* surrogate */
    CHECK_INT_EQ(smtp_parse_line("NOOP \xc3\xa4", 7, &c, err), 0);
}

TEST(mail_paths)
{
    struct smtp_mail_args m;
    CHECK_INT_EQ(mail("FROM:<user@example.org>", &m), 0);
    CHECK_STR_EQ(m.addr, "user@example.org");
    CHECK_INT_EQ(m.size, -1);
    CHECK_INT_EQ(mail("from: <User@Example.org>", &m), 0); /* Postfix leniency */
    CHECK_STR_EQ(m.addr, "User@Example.org");
    CHECK_INT_EQ(mail("FROM:<>", &m), 0);
    CHECK_STR_EQ(m.addr, "");
    CHECK_INT_EQ(mail("FROM:user@example.org SIZE=10", &m), 0);
    CHECK_STR_EQ(m.addr, "user@example.org");
    CHECK_INT_EQ(m.size, 10);
    CHECK_INT_EQ(mail("FROM:<@relay.a,@relay.b:u@example.org>", &m), 0);
    CHECK_STR_EQ(m.addr, "u@example.org");
    CHECK_INT_EQ(mail("FROM:<\"john doe\\\"x\"@example.org>", &m), 0);
    CHECK_STR_EQ(m.addr, "\"john doe\\\"x\"@example.org");
    CHECK_INT_EQ(mail("FROM:<j\xc3\xb6rg@b\xc3\xbc\x63her.de> SMTPUTF8", &m), 0);
    CHECK(m.addr_utf8);
    CHECK(m.smtputf8);
    CHECK_INT_EQ(mail("FROM:<u@[192.0.2.1]>", &m), 0);
    CHECK_INT_EQ(mail("FROM:<u@[IPv6:2001:db8::1]>", &m), 0);
}

TEST(mail_errors)
{
    struct smtp_mail_args m;
    CHECK_INT_EQ(mail("TO:<a@b.c>", &m), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Syntax: MAIL FROM:<address>");
    CHECK_INT_EQ(mail("", &m), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Syntax: MAIL FROM:<address>");
    CHECK_INT_EQ(mail("FROM:", &m), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Syntax: MAIL FROM:<address>");
    static const char *bad[] = {
        "FROM:<a@b.c",  "FROM:<a..b@c.d>", "FROM:<.a@c.d>", "FROM:<a@-c.d>", "FROM:<a@c..d>",
        "FROM:<a@>",    "FROM:<@c.d>",     "FROM:<a b@c.d>", "FROM:<a@c.d>x", "FROM:<a>",
        "FROM:<a@c.d.>", "FROM:<a@[1.2.3.4>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT_EQ(mail(bad[i], &m), -1);
        CHECK_STR_EQ(err, "501 5.1.7 Bad sender address syntax");
    }
}

TEST(mail_params)
{
    struct smtp_mail_args m;
    CHECK_INT_EQ(mail("FROM:<a@b.c> SIZE=123 BODY=8BITMIME RET=HDRS ENVID=x+2By AUTH=<>", &m), 0);
    CHECK_INT_EQ(m.size, 123);
    CHECK_INT_EQ(m.body, SMTP_BODY_8BITMIME);
    CHECK_INT_EQ(m.ret, SMTP_RET_HDRS);
    CHECK_STR_EQ(m.envid, "x+2By");
    CHECK(m.has_auth);
    CHECK_INT_EQ(mail("FROM:<a@b.c> body=7bit", &m), 0);
    CHECK_INT_EQ(m.body, SMTP_BODY_7BIT);
    CHECK_INT_EQ(mail("FROM:<a@b.c> BODY=BINARYMIME", &m), 0);
    CHECK_INT_EQ(m.body, SMTP_BODY_BINARYMIME);
    CHECK_INT_EQ(mail("FROM:<a@b.c> SIZE=1x", &m), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Bad message size syntax");
    CHECK_INT_EQ(mail("FROM:<a@b.c> SIZE=99999999999999999999", &m), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Bad message size syntax");
    CHECK_INT_EQ(mail("FROM:<a@b.c> BODY=9BIT", &m), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Unsupported BODY parameter");
    CHECK_INT_EQ(mail("FROM:<a@b.c> RET=ALL", &m), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Bad RET parameter syntax");
    CHECK_INT_EQ(mail("FROM:<a@b.c> ENVID=a+zz", &m), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Bad ENVID parameter syntax");
    CHECK_INT_EQ(mail("FROM:<a@b.c> AUTH=<> AUTH=<>", &m), -1);
    CHECK_STR_EQ(err, "503 5.5.4 Error: multiple AUTH= options");
    CHECK_INT_EQ(mail("FROM:<a@b.c> FOO=bar", &m), -1);
    CHECK_STR_EQ(err, "555 5.5.4 Unsupported option: FOO=bar");
    CHECK_INT_EQ(mail("FROM:<a@b.c> SMTPUTF8=yes", &m), -1);
    CHECK_STR_EQ(err, "555 5.5.4 Unsupported option: SMTPUTF8=yes");
}

TEST(rcpt_paths_and_params)
{
    struct smtp_rcpt_args r;
    CHECK_INT_EQ(rcpt("TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.org", &r),
                 0);
    CHECK_STR_EQ(r.addr, "bob@example.org");
    CHECK_INT_EQ(r.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
    CHECK_STR_EQ(r.orcpt, "rfc822;bob@example.org");
    CHECK_INT_EQ(rcpt("to: <bob@example.org> notify=never", &r), 0);
    CHECK_INT_EQ(r.notify, SMTP_NOTIFY_NEVER);
    CHECK_INT_EQ(rcpt("TO:<>", &r), -1);
    CHECK_STR_EQ(err, "501 5.1.3 Bad recipient address syntax");
    CHECK_INT_EQ(rcpt("TO:<bob>", &r), -1);
    CHECK_STR_EQ(err, "501 5.1.3 Bad recipient address syntax");
    CHECK_INT_EQ(rcpt("FROM:<bob@x.y>", &r), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Syntax: RCPT TO:<address>");
    CHECK_INT_EQ(rcpt("TO:<b@x.y> NOTIFY=SOMETIMES", &r), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Error: Bad NOTIFY parameter syntax");
    CHECK_INT_EQ(rcpt("TO:<b@x.y> NOTIFY=SUCCESS,", &r), -1);
    CHECK_INT_EQ(rcpt("TO:<b@x.y> ORCPT=bob", &r), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Error: Bad ORCPT parameter syntax");
    CHECK_INT_EQ(rcpt("TO:<b@x.y> SIZE=1", &r), -1);
    CHECK_STR_EQ(err, "555 5.5.4 Unsupported option: SIZE=1");
}

TEST(helo_auth_bdat)
{
    CHECK_INT_EQ(smtp_parse_helo("client.example", 14, true, err), 0);
    CHECK_INT_EQ(smtp_parse_helo("[192.0.2.1]", 11, true, err), 0);
    CHECK_INT_EQ(smtp_parse_helo("localhost", 9, true, err), 0);
    CHECK_INT_EQ(smtp_parse_helo("", 0, true, err), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Syntax: EHLO hostname");
    CHECK_INT_EQ(smtp_parse_helo("bad..name", 9, true, err), -1);
    CHECK_STR_EQ(err, "501 5.5.2 Helo command rejected: Invalid name");

    struct smtp_auth_args a;
    CHECK_INT_EQ(smtp_parse_auth("plain dGVzdA==", 14, &a, err), 0);
    CHECK_INT_EQ(a.mech, SMTP_AUTH_MECH_PLAIN);
    CHECK_INT_EQ(a.initial_len, 8);
    CHECK_INT_EQ(smtp_parse_auth("LOGIN", 5, &a, err), 0);
    CHECK_INT_EQ(a.mech, SMTP_AUTH_MECH_LOGIN);
    CHECK(a.initial == NULL);
    CHECK_INT_EQ(smtp_parse_auth("CRAM-MD5", 8, &a, err), 0);
    CHECK_INT_EQ(a.mech, SMTP_AUTH_MECH_OTHER);
    CHECK_INT_EQ(smtp_parse_auth("", 0, &a, err), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Syntax: AUTH mechanism");

    uint64_t size;
    bool last;
    CHECK_INT_EQ(smtp_parse_bdat("100 LAST", 8, &size, &last, err), 0);
    CHECK_INT_EQ(size, 100);
    CHECK(last);
    CHECK_INT_EQ(smtp_parse_bdat("0", 1, &size, &last, err), 0);
    CHECK(!last);
    CHECK_INT_EQ(smtp_parse_bdat("12x", 3, &size, &last, err), -1);
    CHECK_STR_EQ(err, "501 5.5.4 Syntax: BDAT count [LAST]");
    CHECK_INT_EQ(smtp_parse_bdat("1 FIRST", 7, &size, &last, err), -1);
    CHECK_INT_EQ(smtp_parse_bdat("1234567890123456789", 19, &size, &last, err), -1);
}

TEST(base64_and_auth_decoders)
{
    unsigned char raw[64];
    char b64[64];
    CHECK_INT_EQ(base64_decode("aGVsbG8=", 8, raw, sizeof raw), 5);
    CHECK(memcmp(raw, "hello", 5) == 0);
    CHECK_INT_EQ(base64_decode("aGVsbG8", 7, raw, sizeof raw), -1);
    CHECK_INT_EQ(base64_decode("aGV=bG8=", 8, raw, sizeof raw), -1);
    CHECK_INT_EQ(base64_decode("aGVs bG8", 8, raw, sizeof raw), -1);
    CHECK_INT_EQ(base64_decode("aGVsbG8=", 8, raw, 4), -1);
    CHECK_INT_EQ(base64_encode((const unsigned char *)"hello", 5, b64, sizeof b64), 8);
    CHECK_STR_EQ(b64, "aGVsbG8=");

    struct smtp_auth_creds c;
    base64_encode((const unsigned char *)"\0u@x.org\0pw123456789", 20, b64, sizeof b64);
    CHECK_INT_EQ(smtp_auth_plain_decode(b64, strlen(b64), &c), 0);
    CHECK_STR_EQ(c.user, "u@x.org");
    CHECK_STR_EQ(c.pass, "pw123456789");
    base64_encode((const unsigned char *)"U@x.org\0u@x.org\0pw", 18, b64, sizeof b64);
    CHECK_INT_EQ(smtp_auth_plain_decode(b64, strlen(b64), &c), 0);
    base64_encode((const unsigned char *)"admin\0u@x.org\0pw", 16, b64, sizeof b64);
    CHECK_INT_EQ(smtp_auth_plain_decode(b64, strlen(b64), &c), -2);
    base64_encode((const unsigned char *)"\0u@x.org\0", 9, b64, sizeof b64);
    CHECK_INT_EQ(smtp_auth_plain_decode(b64, strlen(b64), &c), -2);
    base64_encode((const unsigned char *)"\0u\0p\0q", 6, b64, sizeof b64);
    CHECK_INT_EQ(smtp_auth_plain_decode(b64, strlen(b64), &c), -2);
    CHECK_INT_EQ(smtp_auth_plain_decode("!!!!", 4, &c), -1);

    char v[16];
    CHECK_INT_EQ(smtp_auth_login_decode("dXNlcg==", 8, v, sizeof v), 0);
    CHECK_STR_EQ(v, "user");
    CHECK_INT_EQ(smtp_auth_login_decode("dQB4", 4, v, sizeof v), -2); /* "u\0x" */
    CHECK_INT_EQ(smtp_auth_login_decode("dXNlcg", 6, v, sizeof v), -1);
    CHECK_INT_EQ(smtp_auth_login_decode("YWFhYWFhYWFhYWFhYWFhYWFhYWFh", 28, v, sizeof v), -2);
}

int main(void)
{
    RUN(line_split);
    RUN(mail_paths);
    RUN(mail_errors);
    RUN(mail_params);
    RUN(rcpt_paths_and_params);
    RUN(helo_auth_bdat);
    RUN(base64_and_auth_decoders);
    return check_report();
}
