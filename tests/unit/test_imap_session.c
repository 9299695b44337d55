/* test_imap_session.c: the sans-I/O IMAP session machine driven directly
 * (actions performed synchronously: worker work inline, logins with
 * store_login_sync), plus sequence sets, BODYSTRUCTURE and ENVELOPE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "core/config.h"
#include "imap/imap_mime.h"
#include "imap/seqset.h"
#include "imap/session.h"
#include "store/accounts.h"
#include "store/mailbox.h"

static char root[64], mboxes[128], nocreate[128];
static struct config cfg;
static int wakes;

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/cm-imap-XXXXXX");
    if (!mkdtemp(root))
        abort();
    snprintf(mboxes, sizeof mboxes, "%s/mail", root);
    snprintf(nocreate, sizeof nocreate, "%s/nocreate", root);
    cfg.mail_domain = "example.org";
    cfg.mailboxes_dir = mboxes;
    cfg.nocreate_file = nocreate;
    cfg.username_min_length = 9;
    cfg.username_max_length = 9;
    cfg.password_min_length = 9;
    cfg.max_load_1m = 1000;
    cfg.max_mailbox_size_mb = 100;
    cfg.max_message_size = 1 << 20;
    cfg.iroh_relay = "https://example.org";
    cfg.privacy_mail = "privacy@example.org";
    cfg.turn_socket_path = "/nonexistent";
    store_pw_set_argon2_limits(1, 8192);
}

static void teardown(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", root);
}

static void run(struct imap_session *s)
{
    for (;;) {
        switch (imap_session_action(s)) {
        case IMAP_ACT_WORK:
            imap_session_resume_work(s, imap_session_work(s));
            break;
        case IMAP_ACT_LOGIN: {
            struct store_login_outcome o;
            store_login_sync(&cfg, imap_session_login_user(s), imap_session_login_password(s), &o);
            imap_session_resume_login(s, (int)o.result);
            break;
        }
        case IMAP_ACT_TURN: imap_session_resume_turn(s, "1700000000:c2VjcmV0\n"); break;
        default: return;
        }
    }
}

static char outbuf[1 << 16];

/* Feeds text, performs the actions, returns (and clears) the output. */
static const char *io(struct imap_session *s, const char *text)
{
    imap_session_input(s, text, strlen(text));
    run(s);
    struct buf *o = imap_session_out(s);
    size_t n = o->len < sizeof outbuf - 1 ? o->len : sizeof outbuf - 1;
    memcpy(outbuf, o->data ? o->data : "", n);
    outbuf[n] = '\0';
    buf_free(o);
    return outbuf;
}

static void wake(void *ud) { (void)ud; wakes++; }

static struct imap_session *logged_in(void)
{
    struct imap_session *s = imap_session_new(&cfg, true, wake, NULL);
    io(s, "");
    const char *r = io(s, "a LOGIN usera1234@example.org password123\r\n");
    CHECK(strstr(r, "a OK [CAPABILITY IMAP4rev1") != NULL);
    return s;
}

TEST(greeting_and_capabilities)
{
    struct imap_session *s = imap_session_new(&cfg, false, NULL, NULL);
    struct buf *o = imap_session_out(s);
    CHECK(o->len > 0 && strncmp(o->data, "* OK [CAPABILITY IMAP4rev1 ", 27) == 0);
    CHECK(memmem(o->data, o->len, "STARTTLS LOGINDISABLED", 22) != NULL);
    CHECK(memmem(o->data, o->len, "XDELTAPUSH XCHATMAIL] example.org ready.\r\n", 42) != NULL);
    buf_free(o);
    CHECK(strstr(io(s, "a LOGIN x y\r\n"), "a NO [PRIVACYREQUIRED]") != NULL);
    CHECK(strstr(io(s, "b SELECT INBOX\r\n"), "b NO Not logged in.") != NULL);
    CHECK_STR_EQ(io(s, "c FOO\r\n"), "c BAD Error in IMAP command FOO: Unknown command.\r\n");
    CHECK_STR_EQ(io(s, "d STARTTLS\r\nd2 NOOP\r\n"), "d OK Begin TLS negotiation now.\r\n");
    CHECK_INT_EQ(imap_session_action(s), IMAP_ACT_STARTTLS);
    imap_session_resume_starttls(s);
    const char *r = io(s, "e CAPABILITY\r\n");
    CHECK(strstr(r, "AUTH=PLAIN") != NULL && strstr(r, "STARTTLS") == NULL);
    CHECK(strstr(r, "d2") == NULL); /* injected command dropped */
    imap_session_free(s);
}

TEST(login_select_append_fetch)
{
    struct imap_session *s = logged_in();
    const char *r = io(s, "b APPEND INBOX (\\Seen) {14+}\r\nSubject: x\r\n\r\n\r\n");
    CHECK(strstr(r, "b OK [APPENDUID ") != NULL);
    r = io(s, "c SELECT INBOX\r\n");
    CHECK(strstr(r, "* 1 EXISTS\r\n") != NULL);
    CHECK(strstr(r, "c OK [READ-WRITE] Select completed.") != NULL);
    r = io(s, "d UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[HEADER])\r\n");
    CHECK_STR_EQ(r, "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) RFC822.SIZE 14 BODY[HEADER] {14}\r\n"
                    "Subject: x\r\n\r\n)\r\nd OK Fetch completed.\r\n");
    r = io(s, "e FETCH 1 (BODY[]<0.4>)\r\n");
    CHECK(strstr(r, "BODY[]<0> {4}\r\nSubj") != NULL);
    r = io(s, "f STORE 1 +FLAGS (\\Deleted)\r\ng EXPUNGE\r\n");
    CHECK(strstr(r, "* 1 FETCH (FLAGS (\\Seen \\Deleted \\Recent))") != NULL);
    CHECK(strstr(r, "* 1 EXPUNGE\r\ng OK Expunge completed.") != NULL);
    CHECK(strstr(io(s, "h LOGOUT\r\n"), "* BYE Logging out") != NULL);
    CHECK_INT_EQ(imap_session_action(s), IMAP_ACT_CLOSE);
    imap_session_free(s);
}

TEST(idle_reports_append_at_once)
{
    struct imap_session *a = logged_in(), *b = logged_in();
    io(a, "s SELECT INBOX\r\n");
    CHECK_STR_EQ(io(a, "i IDLE\r\n"), "+ idling\r\n");
    CHECK(imap_session_idling(a));
    wakes = 0;
    io(b, "x APPEND INBOX {3+}\r\nabc\r\n");
    /* written inside b's resume (the store notification), before we look */
    CHECK_INT_EQ(wakes, 1);
    CHECK_STR_EQ(io(a, ""), "* 1 EXISTS\r\n* 1 RECENT\r\n");
    CHECK_STR_EQ(io(a, "DONE\r\n"), "i OK Idle completed.\r\n");
    imap_session_timeout(a); /* not idle: BYE */
    CHECK(strstr(io(a, ""), "* BYE Disconnected for inactivity.") != NULL);
    imap_session_free(a);
    imap_session_free(b);
}

TEST(hibernated_idle_session_still_hears_at_once)
{
    struct imap_session *a = logged_in(), *b = logged_in();
    io(a, "s SELECT INBOX\r\n");
    CHECK(!imap_session_hibernate(a)); /* only a session in IDLE hibernates */
    CHECK_STR_EQ(io(a, "i IDLE\r\n"), "+ idling\r\n");
    CHECK(imap_session_hibernate(a)); /* index connection released */
    wakes = 0;
    io(b, "x APPEND INBOX {3+}\r\nabc\r\n");
    CHECK_INT_EQ(wakes, 1);
    const char *r = io(a, ""); /* one more message than before, at once */
    CHECK(r[0] == '*' && strstr(r, " EXISTS\r\n") != NULL);
    CHECK_STR_EQ(io(a, "DONE\r\n"), "i OK Idle completed.\r\n");
    CHECK(strstr(io(a, "f UID FETCH 1:* (UID)\r\n"), "f OK") != NULL);
    imap_session_free(a);
    imap_session_free(b);
}

TEST(metadata_tokens_and_turn)
{
    struct imap_session *s = logged_in();
    CHECK(strstr(io(s, "a SETMETADATA INBOX (/private/devicetoken 1111)\r\n"), "a OK") != NULL);
    CHECK(strstr(io(s, "b SETMETADATA INBOX (/private/devicetoken \"2222\")\r\n"), "b OK") != NULL);
    CHECK_STR_EQ(io(s, "c GETMETADATA INBOX /private/devicetoken\r\n"),
                 "* METADATA INBOX (/private/devicetoken \"1111 2222\")\r\nc OK Getmetadata completed.\r\n");
    io(s, "d SETMETADATA INBOX (/private/devicetoken NIL)\r\n");
    CHECK(strstr(io(s, "e GETMETADATA INBOX /private/devicetoken\r\n"), "devicetoken NIL") != NULL);
    const char *r = io(s, "f GETMETADATA \"\" (/shared/comment /shared/vendor/deltachat/turn "
                          "/shared/admin)\r\n");
    CHECK(strstr(r, "/shared/comment NIL") != NULL);
    CHECK(strstr(r, "/shared/admin \"mailto:privacy@example.org\"") != NULL);
    CHECK(strstr(r, "/shared/vendor/deltachat/turn \"example.org:3478:1700000000:c2VjcmV0\"") != NULL);
    r = io(s, "g GETMETADATA \"\" /shared/vendor/deltachat/appversions\r\n");
    CHECK(strstr(r, "appversions \"{\\\"clients\\\":[{\\\"clientId\\\":\\\"deltachat") != NULL);
    r = io(s, "h GETQUOTAROOT INBOX\r\n");
    CHECK(strstr(r, "* QUOTAROOT \"INBOX\" \"User quota\"\r\n* QUOTA \"User quota\" (STORAGE 0 102400)") != NULL);
    imap_session_free(s);
}

TEST(authenticate_plain_sasl_ir)
{
    struct imap_session *s = logged_in();
    imap_session_free(s); /* the account exists now */
    s = imap_session_new(&cfg, true, NULL, NULL);
    io(s, "");
    CHECK(strstr(io(s, "a AUTHENTICATE PLAIN AHVzZXJhMTIzNEBleGFtcGxlLm9yZwBwYXNzd29yZDEyMw==\r\n"), "a OK [CAPABILITY ") != NULL);
    imap_session_free(s);
    s = imap_session_new(&cfg, true, NULL, NULL);
    io(s, "");
    CHECK_STR_EQ(io(s, "b AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    CHECK_STR_EQ(io(s, "AHVzZXJhMTIzNEBleGFtcGxlLm9yZwB3cm9uZ3Bhc3N3b3Jk\r\n"),
                 "b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
    CHECK_STR_EQ(io(s, "c AUTHENTICATE PLAIN\r\n*\r\n"),
                 "+ \r\nc BAD Authentication aborted by client.\r\n");
    imap_session_free(s);
}

TEST(bad_input_never_aborts)
{
    struct imap_session *s = logged_in();
    CHECK_STR_EQ(io(s, "a FETCH\r\n"), "a BAD No mailbox selected.\r\n");
    CHECK(strstr(io(s, "b SELECT\r\n"), "b BAD") != NULL);
    CHECK(strstr(io(s, "c LIST \"\" (\r\n"), "c BAD") != NULL);
    CHECK(strstr(io(s, "* NOOP\r\n"), "* BAD") != NULL);
    imap_session_free(s);
}

/* LIST patterns: '%' stops at '.', '*' does not, INBOX in any case; and
 * many wildcards take no time (they took exponential time: minutes for
 * the 30 stars below). */
TEST(list_wildcards)
{
    struct imap_session *s = logged_in();
    CHECK(strstr(io(s, "a CREATE Work.Sub.Deep\r\n"), "a OK") != NULL);
    CHECK(strstr(io(s, "b CREATE Work\r\n"), "b OK") != NULL);
    const char *r = io(s, "c LIST \"\" inbox\r\n");
    CHECK(strstr(r, "\".\" INBOX\r\n") != NULL || strstr(r, "\".\" \"INBOX\"\r\n") != NULL);
    r = io(s, "d LIST \"\" %\r\n");
    CHECK(strstr(r, "INBOX") != NULL && strstr(r, "Work") != NULL && strstr(r, "Work.") == NULL);
    r = io(s, "e LIST \"\" Work.%\r\n");
    CHECK(strstr(r, "Work.Sub") != NULL && strstr(r, "Work.Sub.Deep") == NULL);
    r = io(s, "f LIST \"\" W%k*p\r\n");
    CHECK(strstr(r, "Work.Sub.Deep") != NULL && strstr(r, "INBOX") == NULL);
    r = io(s, "g LIST Work. %.Deep\r\n");
    CHECK(strstr(r, "Work.Sub.Deep") != NULL);
    CHECK(strstr(io(s, "h LIST \"\" W%p\r\n"), "* LIST") == NULL);
    time_t t0 = time(NULL);
    r = io(s, "i LIST \"\" \"******************************x\"\r\n");
    CHECK(strstr(r, "* LIST") == NULL && strstr(r, "i OK") != NULL);
    r = io(s, "j LIST \"\" \"%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%.%%%%%%%%%%%%%%%%%%%%x\"\r\n");
    CHECK(strstr(r, "* LIST") == NULL && strstr(r, "j OK") != NULL);
    r = io(s, "k LIST \"\" \"*o*r*k*.*S*u*b*.*D*e*e*p*o*r*k*.*S*u*b*.*D*e*e*\"\r\n");
    CHECK(strstr(r, "* LIST") == NULL && strstr(r, "k OK") != NULL);
    CHECK(time(NULL) - t0 <= 2);
    imap_session_free(s);
}

TEST(seqsets)
{
    struct seqset s;
    CHECK_INT_EQ(seqset_parse("1:3,7,5:*", 9, 10, &s), 0);
    CHECK(seqset_contains(&s, 1) && seqset_contains(&s, 3) && !seqset_contains(&s, 4));
    CHECK(seqset_contains(&s, 5) && seqset_contains(&s, 10) && !seqset_contains(&s, 11));
    CHECK_INT_EQ(s.n, 2); /* 1:3, 5:10 (7 merged) */
    seqset_free(&s);
    CHECK_INT_EQ(seqset_parse("0", 1, 10, &s), -1);
    CHECK_INT_EQ(seqset_parse("1,", 2, 10, &s), -1);
    CHECK_INT_EQ(seqset_parse("", 0, 10, &s), -1);
    CHECK_INT_EQ(seqset_parse("99999999999", 11, 10, &s), -1);
    struct buf b = {0};
    uint32_t v[] = {1, 2, 3, 7, 9, 10};
    seqset_write(&b, v, 6);
    CHECK(b.len == 10 && memcmp(b.data, "1:3,7,9:10", 10) == 0);
    buf_free(&b);
}

TEST(bodystructure_multipart)
{
    const char *msg = "From: \"Bob B\" <bob@x.org>\r\nSubject: s\r\n"
                      "Content-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n"
                      "--BB\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
                      "--BB\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
                      "--BB--\r\n";
    struct imap_part top;
    CHECK_INT_EQ(imap_mime_parse(msg, strlen(msg), &top), 0);
    struct buf b = {0};
    imap_write_bodystructure(&b, &top, false);
    buf_append(&b, "", 1);
    CHECK_STR_EQ(b.data, "((\"text\" \"plain\" (\"CHARSET\" \"utf-8\") NIL NIL \"7bit\" 5 1)"
                         "(\"application\" \"pgp-encrypted\" NIL NIL NIL \"7bit\" 10) \"mixed\")");
    buf_free(&b);
    const char *rest;
    const struct imap_part *p = imap_mime_find(&top, "2", &rest);
    CHECK(p && p->body.n == 10 && *rest == '\0');
    CHECK(imap_mime_find(&top, "3", &rest) == NULL);
    imap_write_envelope(&b, top.hdr);
    buf_append(&b, "", 1);
    CHECK_STR_EQ(b.data, "(NIL \"s\" ((\"Bob B\" NIL \"bob\" \"x.org\")) ((\"Bob B\" NIL \"bob\" "
                         "\"x.org\")) ((\"Bob B\" NIL \"bob\" \"x.org\")) NIL NIL NIL NIL NIL)");
    buf_free(&b);
    imap_mime_free(&top);
}

/* Before login a literal beyond a few KiB gets a tagged BAD and no "+"
 * (synchronising or not); after login an APPEND's big message streams into
 * the spool and is stored, other commands' literals stay bounded. */
TEST(literal_bounds_by_state)
{
    cfg.state_dir = root;
    struct imap_session *s = imap_session_new(&cfg, true, wake, NULL);
    io(s, "");
    CHECK_STR_EQ(io(s, "a LOGIN {25000000}\r\n"),
                 "a BAD Error in IMAP command: Literal too large.\r\n");
    CHECK_STR_EQ(io(s, "b LOGIN {25000000+}\r\nxxxx"),
                 "b BAD Error in IMAP command: Literal too large.\r\n");
    imap_session_free(s);
    s = imap_session_new(&cfg, true, wake, NULL);
    io(s, "");
    CHECK(strstr(io(s, "a LOGIN userb5678@example.org password123\r\n"), "a OK") != NULL);
    static char big[300000];
    memset(big, 'y', sizeof big);
    memcpy(big, "Subject: x\r\n\r\n", 14);
    CHECK(strncmp(io(s, "c APPEND INBOX {300000}\r\n"), "+ OK", 4) == 0);
    imap_session_input(s, big, sizeof big);
    const char *r = io(s, "\r\n");
    CHECK(strstr(r, "c OK [APPENDUID ") != NULL);
    CHECK(imap_session_footprint(s) < 200000); /* the message was never in memory whole */
    CHECK(strstr(io(s, "d SETMETADATA INBOX (/private/comment {70000}\r\n"),
                 "d BAD Error in IMAP command: Literal too large.") != NULL);
    imap_session_free(s);
    cfg.state_dir = NULL;
}

int main(void)
{
    setup();
    RUN(greeting_and_capabilities);
    RUN(login_select_append_fetch);
    RUN(idle_reports_append_at_once);
    RUN(hibernated_idle_session_still_hears_at_once);
    RUN(metadata_tokens_and_turn);
    RUN(authenticate_plain_sasl_ir);
    RUN(bad_input_never_aborts);
    RUN(list_wildcards);
    RUN(seqsets);
    RUN(bodystructure_multipart);
    RUN(literal_bounds_by_state);
    teardown();
    return check_report();
}
