/* test_smtpc_proto.c: the outbound SMTP transaction state machine, driven
 * with scripted replies (no sockets). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "smtp/smtpc_proto.h"

struct run {
    struct smtpc_proto p;
    struct smtpc_reply rcpt[4];
    bool final[4];
    char sent[8192];
};

static void start(struct run *r, const char *const *rcpts, size_t n, const char *msg,
                  enum smtpc_tls_need tls)
{
    struct smtpc_proto_job j = {
        .helo = "relay.example", .mail_from = "a@relay.example", .rcpts = rcpts,
        .n_rcpts = n, .msg = msg, .len = strlen(msg), .tls = tls,
    };
    smtpc_proto_free(&r->p);
    memset(r, 0, sizeof *r);
    smtpc_proto_init(&r->p, &j, r->rcpt, r->final);
}

/* Feeds one server chunk; returns the event; r->sent = what was written. */
static enum smtpc_event srv(struct run *r, const char *reply)
{
    enum smtpc_event ev = smtpc_proto_input(&r->p, reply, strlen(reply));
    while (smtpc_proto_body(&r->p, 3)) /* small pieces: stuffing across pieces */
        ;
    struct buf *o = smtpc_proto_output(&r->p);
    size_t n = o->len < sizeof r->sent - 1 ? o->len : sizeof r->sent - 1;
    memcpy(r->sent, o->data ? o->data : "", n);
    r->sent[n] = 0;
    buf_reset(o);
    return ev;
}

static const char *const two[] = {"x@b.example", "y@b.example"};
static const char *const three[] = {"x@b.example", "y@b.example", "z@b.example"};

TEST(pipelined_with_starttls)
{
    struct run r = {0};
    start(&r, two, 2, "Subject: t\r\n\r\nhi\r\n", SMTPC_TLS_NEED_REQUIRED);
    CHECK_INT_EQ(srv(&r, "220 mx ESMTP\r\n"), SMTPC_EV_NONE);
    CHECK_STR_EQ(r.sent, "EHLO relay.example\r\n");
    CHECK_INT_EQ(srv(&r, "250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n"), SMTPC_EV_NONE);
    CHECK_STR_EQ(r.sent, "STARTTLS\r\n");
    CHECK_INT_EQ(srv(&r, "220 2.0.0 go ahead\r\n"), SMTPC_EV_STARTTLS);
    CHECK_STR_EQ(r.sent, "");
    CHECK_INT_EQ(smtpc_proto_tls_ready(&r.p), SMTPC_EV_NONE);
    CHECK_INT_EQ(srv(&r, ""), SMTPC_EV_NONE);
    CHECK_STR_EQ(r.sent, "EHLO relay.example\r\n");
    CHECK_INT_EQ(srv(&r, "250-mx\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"),
                 SMTPC_EV_NONE);
    CHECK_STR_EQ(r.sent, "MAIL FROM:<a@relay.example> SIZE=18 BODY=8BITMIME\r\n"
                         "RCPT TO:<x@b.example>\r\nRCPT TO:<y@b.example>\r\nDATA\r\n");
    CHECK_INT_EQ(srv(&r, "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n"),
                 SMTPC_EV_NONE);
    CHECK_STR_EQ(r.sent, "Subject: t\r\n\r\nhi\r\n.\r\n");
    CHECK_INT_EQ(srv(&r, "250 2.0.0 queued as X\r\n"), SMTPC_EV_DONE);
    CHECK_STR_EQ(r.sent, "QUIT\r\n");
    CHECK_INT_EQ(r.p.status, SMTPC_OK);
    CHECK_INT_EQ(r.rcpt[0].code, 250);
    CHECK_STR_EQ(r.rcpt[0].text, "queued as X");
    CHECK_INT_EQ(r.rcpt[1].code, 550);
    CHECK_STR_EQ(r.rcpt[1].enh, "5.1.1");
    smtpc_proto_free(&r.p);
}

TEST(lockstep_and_dot_stuffing)
{
    struct run r = {0};
    start(&r, three, 3, ".x\r\nline\r\n..y\r\nend", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    CHECK_INT_EQ(srv(&r, "250 mx\r\n"), SMTPC_EV_NONE); /* no STARTTLS, optional */
    CHECK_STR_EQ(r.sent, "MAIL FROM:<a@relay.example>\r\n");
    srv(&r, "250 ok\r\n");
    CHECK_STR_EQ(r.sent, "RCPT TO:<x@b.example>\r\n");
    srv(&r, "450 4.2.0 later\r\n");
    CHECK_STR_EQ(r.sent, "RCPT TO:<y@b.example>\r\n");
    srv(&r, "250 ok\r\n");
    CHECK_STR_EQ(r.sent, "RCPT TO:<z@b.example>\r\n");
    srv(&r, "550 no\r\n");
    CHECK_STR_EQ(r.sent, "DATA\r\n");
    srv(&r, "354 go\r\n");
    CHECK_STR_EQ(r.sent, "..x\r\nline\r\n...y\r\nend\r\n.\r\n");
    CHECK_INT_EQ(srv(&r, "250 done\r\n"), SMTPC_EV_DONE);
    CHECK_INT_EQ(r.p.status, SMTPC_OK);
    CHECK_INT_EQ(r.rcpt[0].code, 450);
    CHECK_INT_EQ(r.rcpt[1].code, 250);
    CHECK_STR_EQ(r.rcpt[1].text, "done");
    CHECK_INT_EQ(r.rcpt[2].code, 550);
    smtpc_proto_free(&r.p);
}

TEST(starttls_missing_required)
{
    struct run r = {0};
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_REQUIRED);
    srv(&r, "220 mx\r\n");
    CHECK_INT_EQ(srv(&r, "250-mx\r\n250 PIPELINING\r\n"), SMTPC_EV_DONE);
    CHECK_STR_EQ(r.sent, "QUIT\r\n");
    CHECK_INT_EQ(r.p.status, SMTPC_E_TLS);
    /* refused STARTTLS */
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_REQUIRED);
    srv(&r, "220 mx\r\n");
    srv(&r, "250-mx\r\n250 STARTTLS\r\n");
    CHECK_INT_EQ(srv(&r, "454 4.7.0 TLS not available\r\n"), SMTPC_EV_DONE);
    CHECK_INT_EQ(r.p.status, SMTPC_E_TLS);
    CHECK_INT_EQ(r.p.session.code, 454);
    /* optional: refused STARTTLS goes on in plaintext */
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    srv(&r, "250-mx\r\n250 STARTTLS\r\n");
    CHECK_INT_EQ(srv(&r, "454 no\r\n"), SMTPC_EV_NONE);
    CHECK_STR_EQ(r.sent, "MAIL FROM:<a@relay.example>\r\n");
    smtpc_proto_free(&r.p);
}

TEST(starttls_injection)
{
    struct run r = {0};
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_REQUIRED);
    srv(&r, "220 mx\r\n");
    srv(&r, "250-mx\r\n250 STARTTLS\r\n");
    CHECK_INT_EQ(srv(&r, "220 go\r\n250 injected\r\n"), SMTPC_EV_DONE);
    CHECK_INT_EQ(r.p.status, SMTPC_E_PROTO);
    smtpc_proto_free(&r.p);
}

TEST(greeting_refused_and_421)
{
    struct run r = {0};
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    CHECK_INT_EQ(srv(&r, "554 5.3.2 go away\r\n"), SMTPC_EV_DONE);
    CHECK_STR_EQ(r.sent, "QUIT\r\n");
    CHECK_INT_EQ(r.p.status, SMTPC_E_REFUSED);
    CHECK_INT_EQ(r.p.session.code, 554);
    CHECK_STR_EQ(r.p.session.enh, "5.3.2");
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    CHECK_INT_EQ(srv(&r, "421 4.3.2 busy\r\n"), SMTPC_EV_DONE);
    CHECK_INT_EQ(r.p.status, SMTPC_E_REFUSED);
    CHECK_INT_EQ(r.p.session.code, 421);
    /* 421 among RCPT replies: what has no final answer gets the 421 */
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    srv(&r, "250-mx\r\n250 PIPELINING\r\n");
    CHECK_INT_EQ(srv(&r, "250 ok\r\n550 no\r\n421 bye\r\n"), SMTPC_EV_DONE);
    CHECK_INT_EQ(r.p.status, SMTPC_OK);
    CHECK_INT_EQ(r.rcpt[0].code, 550);
    CHECK_INT_EQ(r.rcpt[1].code, 421);
    /* EHLO and MAIL refused */
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    CHECK_INT_EQ(srv(&r, "502 no ehlo\r\n"), SMTPC_EV_DONE);
    CHECK_INT_EQ(r.p.status, SMTPC_E_REFUSED);
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    srv(&r, "250 mx\r\n");
    CHECK_INT_EQ(srv(&r, "553 5.7.1 sender\r\n"), SMTPC_EV_DONE);
    CHECK_INT_EQ(r.p.status, SMTPC_E_REFUSED);
    CHECK_INT_EQ(r.p.session.code, 553);
    smtpc_proto_free(&r.p);
}

TEST(data_refused_after_rcpts)
{
    struct run r = {0};
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    srv(&r, "250-mx\r\n250 PIPELINING\r\n");
    CHECK_INT_EQ(srv(&r, "250 ok\r\n250 ok\r\n550 no\r\n554 5.5.1 no data today\r\n"), SMTPC_EV_DONE);
    CHECK_STR_EQ(r.sent, "QUIT\r\n");
    CHECK_INT_EQ(r.p.status, SMTPC_OK);
    CHECK_INT_EQ(r.rcpt[0].code, 554);
    CHECK_INT_EQ(r.rcpt[1].code, 550);
    smtpc_proto_free(&r.p);
}

TEST(no_recipient_accepted)
{
    struct run r = {0};
    /* lock-step: no DATA at all */
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    srv(&r, "250 mx\r\n");
    srv(&r, "250 ok\r\n");
    srv(&r, "550 a\r\n");
    CHECK_INT_EQ(srv(&r, "450 b\r\n"), SMTPC_EV_DONE);
    CHECK_STR_EQ(r.sent, "QUIT\r\n");
    CHECK_INT_EQ(r.p.status, SMTPC_OK);
    CHECK_INT_EQ(r.rcpt[0].code, 550);
    CHECK_INT_EQ(r.rcpt[1].code, 450);
    /* pipelined: DATA refused (554) as RFC 2920 says */
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    srv(&r, "250-mx\r\n250 PIPELINING\r\n");
    CHECK_INT_EQ(srv(&r, "250 ok\r\n550 a\r\n550 b\r\n554 no valid recipients\r\n"),
                 SMTPC_EV_DONE);
    CHECK_INT_EQ(r.rcpt[0].code, 550);
    /* a broken server saying 354 anyway gets an empty data section */
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    srv(&r, "250-mx\r\n250 PIPELINING\r\n");
    CHECK_INT_EQ(srv(&r, "250 ok\r\n550 a\r\n550 b\r\n354 go\r\n"), SMTPC_EV_NONE);
    CHECK_STR_EQ(r.sent, ".\r\n");
    CHECK_INT_EQ(srv(&r, "554 nothing\r\n"), SMTPC_EV_DONE);
    CHECK_INT_EQ(r.rcpt[0].code, 550);
    CHECK_INT_EQ(r.rcpt[1].code, 550);
    smtpc_proto_free(&r.p);
}

/* keep: a clean end sends no QUIT; the next transaction on the session
 * starts with MAIL, or with RSET after one that did not complete. */
TEST(keep_and_reuse)
{
    struct run r = {0};
    struct smtpc_proto_job j = {
        .helo = "relay.example", .mail_from = "a@relay.example", .rcpts = two,
        .n_rcpts = 2, .msg = "m\r\n", .len = 3, .tls = SMTPC_TLS_NEED_OPTIONAL, .keep = true,
    };
    smtpc_proto_init(&r.p, &j, r.rcpt, r.final);
    srv(&r, "220 mx\r\n");
    srv(&r, "250-mx\r\n250 PIPELINING\r\n");
    srv(&r, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    CHECK_STR_EQ(r.sent, "m\r\n.\r\n");
    CHECK_INT_EQ(srv(&r, "250 queued\r\n"), SMTPC_EV_DONE);
    CHECK_STR_EQ(r.sent, ""); /* no QUIT */
    CHECK(r.p.reusable && !r.p.need_rset && r.p.mail_answered);
    struct smtpc_caps caps = r.p.caps;
    CHECK(caps.pipelining);
    /* completed: MAIL FROM at once, pipelined with the rest */
    smtpc_proto_free(&r.p);
    smtpc_proto_init_reuse(&r.p, &j, r.rcpt, r.final, &caps, false);
    srv(&r, "");
    CHECK_STR_EQ(r.sent, "MAIL FROM:<a@relay.example>\r\nRCPT TO:<x@b.example>\r\n"
                         "RCPT TO:<y@b.example>\r\nDATA\r\n");
    CHECK(!r.p.mail_answered);
    /* every recipient refused: DATA refused, no QUIT, RSET next time */
    CHECK_INT_EQ(srv(&r, "250 ok\r\n550 a\r\n550 b\r\n554 no valid recipients\r\n"),
                 SMTPC_EV_DONE);
    CHECK_STR_EQ(r.sent, "");
    CHECK(r.p.reusable && r.p.need_rset);
    smtpc_proto_free(&r.p);
    smtpc_proto_init_reuse(&r.p, &j, r.rcpt, r.final, &caps, true);
    srv(&r, "");
    CHECK_STR_EQ(r.sent, "RSET\r\n");
    CHECK_INT_EQ(srv(&r, "250 2.0.0 Ok\r\n"), SMTPC_EV_NONE);
    CHECK(strncmp(r.sent, "MAIL FROM:<a@relay.example>\r\n", 29) == 0);
    /* 421 before MAIL is answered: refused, MAIL unanswered (the owner
     * may try a new connection), no QUIT */
    CHECK_INT_EQ(srv(&r, "421 4.4.2 idle too long\r\n"), SMTPC_EV_DONE);
    CHECK_INT_EQ(r.p.status, SMTPC_E_REFUSED);
    CHECK(!r.p.mail_answered && !r.p.reusable);
    CHECK_STR_EQ(r.sent, "");
    /* 421 as the end-of-data reply: over, and not reusable */
    smtpc_proto_free(&r.p);
    smtpc_proto_init_reuse(&r.p, &j, r.rcpt, r.final, &caps, false);
    srv(&r, "");
    srv(&r, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    CHECK_INT_EQ(srv(&r, "421 4.3.0 shutting down\r\n"), SMTPC_EV_DONE);
    CHECK_STR_EQ(r.sent, "QUIT\r\n");
    CHECK(!r.p.reusable && r.p.mail_answered);
    /* without keep nothing changes: QUIT after a clean end */
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    srv(&r, "250-mx\r\n250 PIPELINING\r\n");
    srv(&r, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    CHECK_INT_EQ(srv(&r, "250 queued\r\n"), SMTPC_EV_DONE);
    CHECK_STR_EQ(r.sent, "QUIT\r\n");
    CHECK(!r.p.reusable);
    smtpc_proto_free(&r.p);
}

TEST(garbled_and_io)
{
    struct run r = {0};
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    CHECK_INT_EQ(srv(&r, "HTTP/1.1 400 Bad\r\n"), SMTPC_EV_DONE);
    CHECK_INT_EQ(r.p.status, SMTPC_E_PROTO);
    start(&r, two, 2, "m\r\n", SMTPC_TLS_NEED_OPTIONAL);
    srv(&r, "220 mx\r\n");
    smtpc_proto_fail(&r.p, SMTPC_E_TIMEOUT, "timeout");
    CHECK_INT_EQ(r.p.status, SMTPC_E_TIMEOUT);
    CHECK(smtpc_proto_done(&r.p));
    smtpc_proto_fail(&r.p, SMTPC_E_IO, "late"); /* the first end wins */
    CHECK_INT_EQ(r.p.status, SMTPC_E_TIMEOUT);
    smtpc_proto_free(&r.p);
}

TEST(split_replies)
{
    /* the same transaction fed one byte at a time */
    struct run r = {0};
    start(&r, two, 2, "a\r\n", SMTPC_TLS_NEED_NONE);
    const char *script = "220 mx\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"
                         "250 fine\r\n";
    enum smtpc_event ev = SMTPC_EV_NONE;
    for (size_t i = 0; script[i] && ev != SMTPC_EV_DONE; i++) {
        ev = smtpc_proto_input(&r.p, script + i, 1);
        while (smtpc_proto_body(&r.p, 1))
            ;
    }
    CHECK_INT_EQ(ev, SMTPC_EV_DONE);
    CHECK_INT_EQ(r.p.status, SMTPC_OK);
    CHECK_INT_EQ(r.rcpt[0].code, 250);
    CHECK_STR_EQ(r.rcpt[1].text, "fine");
    struct buf *o = smtpc_proto_output(&r.p);
    CHECK(o->len > 0 && memmem(o->data, o->len, "a\r\n.\r\nQUIT\r\n", 11) != NULL);
    smtpc_proto_free(&r.p);
}

TEST(dot_stuff)
{
    struct buf b = {0};
    CHECK_INT_EQ(smtpc_dot_stuff(&b, "", 0), 0);
    CHECK(b.len == 3 && memcmp(b.data, ".\r\n", 3) == 0);
    buf_reset(&b);
    const char *m = ".\r\n.a\r\nb.\r\n.";
    CHECK_INT_EQ(smtpc_dot_stuff(&b, m, strlen(m)), 0);
    const char *want = "..\r\n..a\r\nb.\r\n..\r\n.\r\n";
    CHECK(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
    buf_free(&b);
}

TEST(body_in_pieces)
{
    static const char *const one[] = {"x@b.example"};
    const char *m = ".a\r\n..\r\nb.c\r\n.\r\n\r\n.end";
    struct buf whole = {0};
    CHECK_INT_EQ(smtpc_dot_stuff(&whole, m, strlen(m)), 0);
    for (size_t max = 1; max <= strlen(m) + 1; max++) {
        struct run r = {0};
        start(&r, one, 1, m, SMTPC_TLS_NEED_NONE);
        const char *script = "220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n";
        smtpc_proto_input(&r.p, script, strlen(script));
        struct buf *o = smtpc_proto_output(&r.p);
        buf_reset(o);
        CHECK(smtpc_proto_body_pending(&r.p));
        while (smtpc_proto_body(&r.p, max))
            ;
        CHECK(!smtpc_proto_body_pending(&r.p));
        CHECK(o->len == whole.len && memcmp(o->data, whole.data, whole.len) == 0);
        smtpc_proto_free(&r.p);
    }
    buf_free(&whole);
}

int main(void)
{
    RUN(pipelined_with_starttls);
    RUN(lockstep_and_dot_stuffing);
    RUN(starttls_missing_required);
    RUN(starttls_injection);
    RUN(greeting_refused_and_421);
    RUN(data_refused_after_rcpts);
    RUN(no_recipient_accepted);
    RUN(keep_and_reuse);
    RUN(garbled_and_io);
    RUN(split_replies);
    RUN(dot_stuff);
    RUN(body_in_pieces);
    return check_report();
}
