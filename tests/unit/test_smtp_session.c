/* test_smtp_session.c: the SMTP session machine driven by scripts of client
 * bytes against expected reply transcripts (each script is fed at once and
 * byte by byte), with a fake owner that resumes every action; plus the
 * GCRA rate limiter on its own. */
#include "check.h"

#include <stdlib.h>

#include "core/buf.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_ratelimit.h"
#include "smtp/smtp_session.h"

#define DOMAIN "example.org"
#define USER "alice@example.org"
#define PASS "secretpw1"

struct owner {
    struct smtp_session *s;
    struct buf transcript, spool, queued;
    int aborts, messages, closed, tls_starts, tls_pending;
    uint64_t now;
};

static void handle(struct owner *o, const struct smtp_action *a)
{
    switch (a->kind) {
    case SMTP_ACT_STARTTLS:
        o->tls_starts++;
        o->tls_pending = 1; /* the handshake completes after this write */
        break;
    case SMTP_ACT_AUTH:
        if (strcmp(a->password, "tempfail") == 0)
            smtp_session_resume_auth(o->s, SMTP_AUTH_TEMPFAIL, "try later");
        else
            smtp_session_resume_auth(o->s, strcmp(a->password, PASS) ? SMTP_AUTH_FAIL : SMTP_AUTH_OK,
                                     NULL);
        break;
    case SMTP_ACT_CHECK_RCPT:
        if (strncmp(a->addr, "nobody@", 7) == 0)
            smtp_session_resume_rcpt(o->s, SMTP_RCPT_LOCAL_UNKNOWN);
        else if (strstr(a->addr, "@" DOMAIN))
            smtp_session_resume_rcpt(o->s, SMTP_RCPT_LOCAL_OK);
        else if (strstr(a->addr, "@denied."))
            smtp_session_resume_rcpt(o->s, SMTP_RCPT_RELAY_DENIED);
        else
            smtp_session_resume_rcpt(o->s, SMTP_RCPT_REMOTE_OK);
        break;
    case SMTP_ACT_DATA_CHUNK:
        buf_append(&o->spool, a->data, a->len);
        smtp_session_resume_chunk(o->s, true);
        break;
    case SMTP_ACT_DATA_ABORT:
        o->aborts++;
        buf_reset(&o->spool);
        smtp_session_resume(o->s);
        break;
    case SMTP_ACT_MESSAGE_DONE:
        o->messages++;
        CHECK_INT_EQ(a->env->size, o->spool.len);
        buf_append(&o->queued, o->spool.data ? o->spool.data : "", o->spool.len);
        buf_reset(&o->spool);
        smtp_session_resume_message(o->s, "250 2.0.0 Ok: queued as TEST");
        break;
    default:
        o->closed = 1;
        break;
    }
}

static void drain(struct owner *o)
{
    const struct smtp_action *a;
    for (;;) {
        struct buf *out = smtp_session_out(o->s);
        buf_append(&o->transcript, out->data, out->len);
        buf_consume(out, out->len);
        a = smtp_session_action(o->s);
        if (!a || o->closed || o->tls_pending || a->kind == SMTP_ACT_CLOSE) {
            if (a && a->kind == SMTP_ACT_CLOSE)
                o->closed = 1;
            return;
        }
        handle(o, a);
    }
}

static void owner_init(struct owner *o, const struct smtp_session_config *cfg)
{
    memset(o, 0, sizeof *o);
    o->s = smtp_session_new(cfg);
    drain(o);
}

static void owner_free(struct owner *o)
{
    smtp_session_free(o->s);
    buf_free(&o->transcript);
    buf_free(&o->spool);
    buf_free(&o->queued);
}

static void feed(struct owner *o, const char *in, size_t len, bool bytewise)
{
    size_t step = bytewise ? 1 : len;
    for (size_t off = 0; off < len && !o->closed; off += step) {
        size_t n = len - off < step ? len - off : step;
        smtp_session_input(o->s, in + off, n, o->now);
        drain(o);
    }
    if (o->tls_pending) {
        o->tls_pending = 0;
        smtp_session_resume_tls(o->s);
        drain(o);
    }
}

static const char *tx(struct owner *o) { return o->transcript.data ? o->transcript.data : ""; }

static struct smtp_session_config sub_cfg(bool tls)
{
    return (struct smtp_session_config){.mode = SMTP_MODE_SUBMISSION,
                                        .mail_domain = DOMAIN,
                                        .max_message_size = 1000,
                                        .implicit_tls = tls};
}

/* AUTH PLAIN initial response for USER/PASS */
#define PLAIN_IR "AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldHB3MQ=="
#define LOGIN_SEQ "EHLO c.example\r\nAUTH PLAIN " PLAIN_IR "\r\n"
#define LOGIN_REPLIES                                                                          \
    "220 example.org ESMTP chatmaild\r\n"                                                      \
    "250-example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH PLAIN LOGIN\r\n"           \
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n" \
    "235 2.7.0 Authentication successful\r\n"

struct script {
    const char *name;
    bool tls;
    const char *in;
    const char *want;
    const char *queued; /* expected spooled message(s), or NULL */
    bool closed;
};

static const struct script scripts[] = {
    {"ehlo_plain_then_starttls", false,
     "EHLO c.example\r\nAUTH PLAIN " PLAIN_IR "\r\nMAIL FROM:<" USER ">\r\nVRFY x\r\n"
     "STARTTLS\r\nMAIL FROM:<injected@x.y>\r\n",
     "220 example.org ESMTP chatmaild\r\n"
     "250-example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-STARTTLS\r\n"
     "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
     "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
     "530 5.7.0 Must issue a STARTTLS command first\r\n"
     "530 5.7.0 Must issue a STARTTLS command first\r\n"
     "220 2.0.0 Ready to start TLS\r\n",
     NULL, false},
    {"full_pipelined_transaction", true,
     LOGIN_SEQ "MAIL FROM:<Alice@Example.org> BODY=8BITMIME\r\nRCPT TO:<bob@example.org>\r\n"
               "RCPT TO:<nobody@example.org>\r\nRCPT TO:<carol@remote.test> NOTIFY=NEVER\r\n"
               "DATA\r\nFrom: alice@example.org\r\n\r\n..stuffed\r\n.\r\nQUIT\r\n",
     LOGIN_REPLIES "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                   "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in "
                   "virtual mailbox table\r\n"
                   "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                   "250 2.0.0 Ok: queued as TEST\r\n221 2.0.0 Bye\r\n",
     "From: alice@example.org\r\n\r\n.stuffed\r\n", true},
    {"auth_plain_continuation_and_login", true,
     "EHLO c\r\nAUTH PLAIN\r\n" PLAIN_IR "\r\nRSET\r\n",
     "220 example.org ESMTP chatmaild\r\n"
     "250-example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH PLAIN LOGIN\r\n"
     "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
     "334 \r\n235 2.7.0 Authentication successful\r\n250 2.0.0 Ok\r\n",
     NULL, false},
    {"auth_login", true,
     "HELO c\r\nAUTH LOGIN\r\nYWxpY2VAZXhhbXBsZS5vcmc=\r\nc2VjcmV0cHcx\r\nAUTH LOGIN\r\n",
     "220 example.org ESMTP chatmaild\r\n250 example.org\r\n334 VXNlcm5hbWU6\r\n"
     "334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n"
     "503 5.5.1 Error: already authenticated\r\n",
     NULL, false},
    {"auth_failures", true,
     "AUTH PLAIN " PLAIN_IR "\r\nEHLO c\r\nAUTH LOGIN YWxpY2VAZXhhbXBsZS5vcmc=\r\nd3Jvbmc=\r\n"
     "AUTH PLAIN\r\n*\r\nAUTH CRAM-MD5\r\nAUTH PLAIN !!!!\r\nAUTH LOGIN\r\ndGVtcGZhaWw=\r\n"
     "dGVtcGZhaWw=\r\nMAIL FROM:<" USER ">\r\n",
     "220 example.org ESMTP chatmaild\r\n503 5.5.1 Error: send HELO/EHLO first\r\n"
     "250-example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH PLAIN LOGIN\r\n"
     "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
     "334 UGFzc3dvcmQ6\r\n535 5.7.8 Error: authentication failed: authentication failure\r\n"
     "334 \r\n501 5.7.0 Authentication aborted\r\n"
     "535 5.7.8 Error: authentication failed: Invalid authentication mechanism\r\n"
     "501 5.5.2 Cannot decode response\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"
     "454 4.7.0 Temporary authentication failure: try later\r\n"
     "530 5.7.0 Authentication required\r\n",
     NULL, false},
    {"sender_must_be_login", true,
     LOGIN_SEQ "MAIL FROM:<bob@example.org>\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.org>\r\n"
               "MAIL FROM:<alice@example.org> SIZE=1001\r\nMAIL FROM:<alice@example.org>\r\n"
               "MAIL FROM:<alice@example.org>\r\nDATA\r\n",
     LOGIN_REPLIES "553 5.7.1 <bob@example.org>: Sender address rejected: not owned by user "
                   "alice@example.org\r\n"
                   "553 5.7.1 <>: Sender address rejected: not owned by user alice@example.org\r\n"
                   "503 5.5.1 Error: need MAIL command\r\n"
                   "552 5.3.4 Message size exceeds fixed limit\r\n250 2.1.0 Ok\r\n"
                   "503 5.5.1 Error: nested MAIL command\r\n"
                   "554 5.5.1 Error: no valid recipients\r\n",
     NULL, false},
    {"smtputf8", true,
     LOGIN_SEQ "MAIL FROM:<" USER ">\r\nRCPT TO:<j\xc3\xb6rg@example.org>\r\nRSET\r\n"
               "MAIL FROM:<" USER "> SMTPUTF8\r\nRCPT TO:<j\xc3\xb6rg@example.org>\r\n",
     LOGIN_REPLIES "250 2.1.0 Ok\r\n553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n"
                   "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n",
     NULL, false},
    {"misc_verbs", true,
     "EHLO c\r\nVRFY alice@example.org\r\nVRFY nobody\r\nVRFY\r\nNOOP\r\nNOOP x\r\nHELP\r\n"
     "ETRN x\r\nSTARTTLS\r\nRSET x\r\nDATA\r\nBDAT 3\r\nabcQUIT x\r\n",
     "220 example.org ESMTP chatmaild\r\n"
     "250-example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH PLAIN LOGIN\r\n"
     "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
     "252 2.0.0 Send some mail, I'll try my best\r\n252 2.0.0 Send some mail, I'll try my "
     "best\r\n501 5.5.4 Syntax: VRFY address\r\n250 2.0.0 Ok\r\n501 5.5.4 Syntax: NOOP\r\n"
     "214 2.0.0 See RFC 5321\r\n502 5.5.2 Error: command not recognized\r\n"
     "554 5.5.1 Error: TLS already active\r\n501 5.5.4 Syntax: RSET\r\n"
     "503 5.5.1 Error: need RCPT command\r\n503 5.5.1 Error: need RCPT command\r\n"
     "221 2.0.0 Bye\r\n",
     NULL, true},
    {"bare_lf_in_command", true, "EHLO c\nMAIL FROM:<a@b.c>\r\n",
     "220 example.org ESMTP chatmaild\r\n550 5.5.2 example.org Error: bare <LF> received\r\n",
     NULL, true},
    {"bare_cr_in_command", true, "NOOP\rx\r\n",
     "220 example.org ESMTP chatmaild\r\n550 5.5.2 example.org Error: bare <CR> received\r\n",
     NULL, true},
    {"smuggling_in_data", true,
     LOGIN_SEQ "MAIL FROM:<" USER ">\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nhi\n.\n"
               "MAIL FROM:<" USER ">\r\n",
     LOGIN_REPLIES "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                   "550 5.5.2 example.org Error: bare <LF> received\r\n",
     NULL, true},
    {"smuggling_cr_dot_cr", true,
     LOGIN_SEQ "MAIL FROM:<" USER ">\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nhi\r.\r\n",
     LOGIN_REPLIES "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                   "550 5.5.2 example.org Error: bare <CR> received\r\n",
     NULL, true},
    {"bdat", true,
     LOGIN_SEQ "MAIL FROM:<" USER ">\r\nRCPT TO:<bob@example.org>\r\nBDAT 9\r\nSubject: "
               "BDAT 4 LAST\r\nx\r\n.NOOP\r\n",
     LOGIN_REPLIES "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 9 bytes\r\n"
                   "250 2.0.0 Ok: queued as TEST\r\n250 2.0.0 Ok\r\n",
     "Subject: x\r\n.\r\n", false},
    {"bdat_errors", true,
     LOGIN_SEQ "BDAT 5\r\nhelloMAIL FROM:<" USER ">\r\nRCPT TO:<bob@example.org>\r\nBDAT 2\r\n"
               "abDATA\r\nRCPT TO:<x@example.org>\r\nMAIL FROM:<" USER ">\r\n"
               "BDAT 3 LAST\r\nc\r\nBDAT 2 LAST\r\nx\n",
     LOGIN_REPLIES "503 5.5.1 Error: need RCPT command\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                   "250 2.0.0 Ok: 2 bytes\r\n503 5.5.1 Error: DATA after BDAT\r\n"
                   "503 5.5.1 Error: RCPT after BDAT\r\n503 5.5.1 Error: MAIL after BDAT\r\n"
                   "250 2.0.0 Ok: queued as TEST\r\n"
                   "503 5.5.1 Error: need RCPT command\r\n",
     "abc\r\n", false},
    {"bdat_bad_syntax_closes", true, "EHLO c\r\nBDAT x\r\n",
     "220 example.org ESMTP chatmaild\r\n"
     "250-example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH PLAIN LOGIN\r\n"
     "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
     "521 5.5.4 Syntax: BDAT count [LAST]\r\n",
     NULL, true},
    {"bdat_bare_lf", true,
     LOGIN_SEQ "MAIL FROM:<" USER ">\r\nRCPT TO:<bob@example.org>\r\nBDAT 4 LAST\r\na\n.\n",
     LOGIN_REPLIES "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                   "550 5.5.2 example.org Error: bare <LF> received\r\n",
     NULL, true},
    {"relay_denied_and_tempfail_replies", true,
     LOGIN_SEQ "MAIL FROM:<" USER ">\r\nRCPT TO:<x@denied.test>\r\nRCPT TO:<>\r\n"
               "RCPT TO:<a@b.c> FOO=1\r\n",
     LOGIN_REPLIES "250 2.1.0 Ok\r\n554 5.7.1 <x@denied.test>: Relay access denied\r\n"
                   "501 5.1.3 Bad recipient address syntax\r\n"
                   "555 5.5.4 Unsupported option: FOO=1\r\n",
     NULL, false},
};

static void run_script(const struct script *sc, bool bytewise)
{
    struct smtp_session_config cfg = sub_cfg(sc->tls);
    struct owner o;
    owner_init(&o, &cfg);
    feed(&o, sc->in, strlen(sc->in), bytewise);
    if (strcmp(tx(&o), sc->want) != 0)
        fprintf(stderr, "script %s (%s):\n--- got\n%s--- want\n%s", sc->name,
                bytewise ? "bytewise" : "whole", tx(&o), sc->want);
    CHECK_STR_EQ(tx(&o), sc->want);
    if (sc->queued)
        CHECK_STR_EQ(o.queued.data, sc->queued);
    else
        CHECK_INT_EQ(o.messages, 0);
    CHECK_INT_EQ(o.closed, sc->closed);
    owner_free(&o);
}

TEST(scripts)
{
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        run_script(&scripts[i], false);
        run_script(&scripts[i], true);
    }
}

static void send_str(struct owner *o, const char *s) { feed(o, s, strlen(s), false); }

TEST(starttls_then_auth)
{
    struct smtp_session_config cfg = sub_cfg(false);
    struct owner o;
    owner_init(&o, &cfg);
    send_str(&o, "EHLO c\r\nSTARTTLS\r\nRSET\r\n");
    CHECK_INT_EQ(o.tls_starts, 1);
    buf_reset(&o.transcript);
    send_str(&o, "MAIL FROM:<" USER ">\r\nEHLO c\r\nAUTH PLAIN " PLAIN_IR "\r\n");
    CHECK_STR_EQ(tx(&o), "503 5.5.1 Error: send HELO/EHLO first\r\n"
                         "250-example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
                         "250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                         "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
                         "235 2.7.0 Authentication successful\r\n");
    owner_free(&o);
}

TEST(size_limit_while_streaming)
{
    struct smtp_session_config cfg = sub_cfg(true);
    struct owner o;
    owner_init(&o, &cfg);
    send_str(&o, LOGIN_SEQ "MAIL FROM:<" USER ">\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    buf_reset(&o.transcript);
    for (int i = 0; i < 200; i++)
        send_str(&o, "0123456789012345678901234567890123456789\r\n");
    CHECK_STR_EQ(tx(&o), ""); /* no reply before the end of data */
    send_str(&o, ".\r\nRSET\r\n");
    CHECK_STR_EQ(tx(&o), "552 5.3.4 Message size exceeds fixed limit\r\n250 2.0.0 Ok\r\n");
    CHECK_INT_EQ(o.messages, 0);
    CHECK_INT_EQ(o.aborts, 1);
    CHECK(o.spool.len <= 1000);
    owner_free(&o);
}

TEST(recipient_limit)
{
    struct smtp_session_config cfg = sub_cfg(true);
    struct owner o;
    owner_init(&o, &cfg);
    send_str(&o, LOGIN_SEQ "MAIL FROM:<" USER ">\r\n");
    buf_reset(&o.transcript);
    char line[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(line, sizeof line, "RCPT TO:<r%d@example.org>\r\n", i);
        send_str(&o, line);
    }
    CHECK_INT_EQ(o.transcript.len, 1000 * strlen("250 2.1.5 Ok\r\n"));
    buf_reset(&o.transcript);
    send_str(&o, "RCPT TO:<r1000@example.org>\r\n");
    CHECK_STR_EQ(tx(&o), "452 4.5.3 Error: too many recipients\r\n");
    owner_free(&o);
}

TEST(too_many_errors)
{
    struct smtp_session_config cfg = sub_cfg(true);
    struct owner o;
    owner_init(&o, &cfg);
    for (int i = 0; i < 20; i++)
        send_str(&o, "BOGUS\r\n");
    CHECK(!o.closed);
    buf_reset(&o.transcript);
    send_str(&o, "NOOP\r\n");
    CHECK_STR_EQ(tx(&o), "421 4.7.0 example.org Error: too many errors\r\n");
    CHECK(o.closed);
    owner_free(&o);
}

TEST(long_line)
{
    struct smtp_session_config cfg = sub_cfg(true);
    struct owner o;
    owner_init(&o, &cfg);
    buf_reset(&o.transcript);
    char big[5000];
    memset(big, 'x', sizeof big);
    feed(&o, big, sizeof big, false);
    CHECK_STR_EQ(tx(&o), "");
    send_str(&o, "\r\nNOOP\r\n");
    CHECK_STR_EQ(tx(&o), "500 5.5.0 Error: line too long\r\n250 2.0.0 Ok\r\n");
    owner_free(&o);
}

TEST(pending_action_buffers_input)
{
    struct smtp_session_config cfg = sub_cfg(true);
    struct smtp_session *s = smtp_session_new(&cfg);
    const char *in = "EHLO c\r\nAUTH PLAIN " PLAIN_IR "\r\nNOOP\r\n";
    CHECK_INT_EQ(smtp_session_input(s, in, strlen(in), 0), 0);
    const struct smtp_action *a = smtp_session_action(s);
    CHECK(a && a->kind == SMTP_ACT_AUTH);
    CHECK_STR_EQ(a->user, USER);
    CHECK_STR_EQ(a->password, PASS);
    CHECK(strstr(smtp_session_out(s)->data, "250 2.0.0 Ok") == NULL);
    CHECK(smtp_session_want_read(s));
    smtp_session_resume_rcpt(s, SMTP_RCPT_LOCAL_OK); /* wrong resume: ignored */
    CHECK(smtp_session_action(s) != NULL);
    smtp_session_resume_auth(s, SMTP_AUTH_OK, NULL);
    CHECK(smtp_session_action(s) == NULL);
    CHECK(strstr(smtp_session_out(s)->data, "235 2.7.0 Authentication successful\r\n"
                                            "250 2.0.0 Ok\r\n") != NULL);
    smtp_session_free(s);
}

TEST(mx_mode)
{
    struct smtp_session_config cfg = sub_cfg(false);
    cfg.mode = SMTP_MODE_MX;
    struct owner o;
    owner_init(&o, &cfg);
    send_str(&o, "EHLO mx.remote\r\nMAIL FROM:<x@remote.test>\r\nSTARTTLS\r\n");
    CHECK(strstr(tx(&o), "530 5.7.0 Must issue a STARTTLS command first\r\n") != NULL);
    buf_reset(&o.transcript);
    send_str(&o, "EHLO mx.remote\r\nAUTH PLAIN " PLAIN_IR "\r\nMAIL FROM:<x@remote.test>\r\n"
                 "RCPT TO:<bob@example.org>\r\nDATA\r\nhi\r\n.\r\n");
    CHECK_STR_EQ(tx(&o), "250-example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
                         "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
                         "250 CHUNKING\r\n503 5.5.1 Error: authentication not enabled\r\n"
                         "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                         "250 2.0.0 Ok: queued as TEST\r\n");
    CHECK_STR_EQ(o.queued.data, "hi\r\n");
    owner_free(&o);
}

TEST(ratelimit_in_session)
{
    struct smtp_session_config cfg = sub_cfg(true);
    cfg.ratelimit = smtp_ratelimit_new(60, 2, 100);
    struct owner o;
    owner_init(&o, &cfg);
    o.now = 5000000000ull;
    send_str(&o, LOGIN_SEQ "MAIL FROM:<" USER ">\r\nRSET\r\nMAIL FROM:<" USER ">\r\nRSET\r\n");
    buf_reset(&o.transcript);
    send_str(&o, "MAIL FROM:<ALICE@example.org>\r\n");
    CHECK_STR_EQ(tx(&o), "450 4.7.1: Too much mail from ALICE@example.org, rate-limited until "
                         "6.000s\r\n");
    buf_reset(&o.transcript);
    o.now += 1000000000ull;
    send_str(&o, "MAIL FROM:<" USER ">\r\n");
    CHECK_STR_EQ(tx(&o), "250 2.1.0 Ok\r\n");
    owner_free(&o);
    smtp_ratelimit_free(cfg.ratelimit);
}

TEST(gcra)
{
    const uint64_t sec = 1000000000ull;
    struct smtp_ratelimit *rl = smtp_ratelimit_new(60, 10, 4);
    uint64_t until = 0, t = 100 * sec;
    for (int i = 0; i < 10; i++)
        CHECK_INT_EQ(smtp_ratelimit_check(rl, "a@x.org", t, &until), 0);
    CHECK_INT_EQ(smtp_ratelimit_check(rl, "A@X.org", t, &until), 1);
    CHECK_INT_EQ(until, t + sec);
    CHECK_INT_EQ(smtp_ratelimit_check(rl, "a@x.org", t + sec - 1, &until), 1);
    CHECK_INT_EQ(smtp_ratelimit_check(rl, "a@x.org", t + sec, &until), 0);
    CHECK_INT_EQ(smtp_ratelimit_check(rl, "a@x.org", t + sec, &until), 1);
    /* after a long pause the full burst is back */
    t += 20 * sec;
    for (int i = 0; i < 10; i++)
        CHECK_INT_EQ(smtp_ratelimit_check(rl, "a@x.org", t, &until), 0);
    CHECK_INT_EQ(smtp_ratelimit_check(rl, "a@x.org", t, &until), 1);
    /* the table stays bounded; idle keys are collected */
    for (int i = 0; i < 50; i++) {
        char k[32];
        snprintf(k, sizeof k, "u%d@x.org", i);
        CHECK_INT_EQ(smtp_ratelimit_check(rl, k, t, &until), 0);
        CHECK(smtp_ratelimit_keys(rl) <= 4);
    }
    t += 100 * sec;
    for (int i = 0; i < 8; i++)
        smtp_ratelimit_check(rl, "z@x.org", t + (uint64_t)i * 10 * sec, &until);
    CHECK(smtp_ratelimit_keys(rl) <= 2);
    smtp_ratelimit_free(rl);
}

int main(void)
{
    RUN(scripts);
    RUN(starttls_then_auth);
    RUN(size_limit_while_streaming);
    RUN(recipient_limit);
    RUN(too_many_errors);
    RUN(long_line);
    RUN(pending_action_buffers_input);
    RUN(mx_mode);
    RUN(ratelimit_in_session);
    RUN(gcra);
    return check_report();
}
