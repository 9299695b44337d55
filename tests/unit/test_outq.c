/* test_outq.c: the queue runner's pure parts: the state file (parse,
 * format, refusals of torn or malformed files) and the delivery status
 * notification (header extraction, the report's fields). */
#include "check.h"

#include "smtp/outq.h"

#include <stdlib.h>
#include <string.h>

TEST(state_roundtrip)
{
    const char *text = "CHATMAILD-QSTATE 1\n"
                       "R P 2 1796491216 carol@peer.test 451 4.4.0 mx.peer.test: HTTP 503\n"
                       "R D 1 0 bob@relay2.test 250 2.0.0 ok\n"
                       "R F 3 0 x@nx.test\n";
    struct outq_state st;
    CHECK_INT_EQ(outq_state_parse(text, strlen(text), &st), 0);
    CHECK_INT_EQ(st.n, 3);
    CHECK_STR_EQ(st.r[0].addr, "carol@peer.test");
    CHECK_INT_EQ(st.r[0].status, OUTQ_PENDING);
    CHECK_INT_EQ(st.r[0].attempts, 2);
    CHECK_INT_EQ(st.r[0].next_try, 1796491216);
    CHECK_STR_EQ(st.r[0].last, "451 4.4.0 mx.peer.test: HTTP 503");
    CHECK_INT_EQ(st.r[1].status, OUTQ_DELIVERED);
    CHECK_INT_EQ(st.r[2].status, OUTQ_FAILED);
    CHECK_STR_EQ(st.r[2].last, "");
    struct buf b = {0};
    CHECK_INT_EQ(outq_state_format(&st, &b), 0);
    CHECK(b.len == strlen(text) + 1); /* "x@nx.test " gets its separator */
    struct outq_state again;
    CHECK_INT_EQ(outq_state_parse(b.data, b.len, &again), 0);
    CHECK_INT_EQ(again.n, 3);
    CHECK_STR_EQ(again.r[0].last, st.r[0].last);
    outq_state_free(&again);
    /* CRLF lines too; control characters in a reply are masked */
    strcpy(st.r[1].last, "250 a\rb");
    buf_reset(&b);
    CHECK_INT_EQ(outq_state_format(&st, &b), 0);
    CHECK(memmem(b.data, b.len, "250 a?b\n", 8) != NULL);
    outq_state_free(&st);
    buf_free(&b);
    const char *crlf = "CHATMAILD-QSTATE 1\r\nR P 0 0 a@b.example \r\n";
    CHECK_INT_EQ(outq_state_parse(crlf, strlen(crlf), &st), 0);
    CHECK_INT_EQ(st.n, 1);
    CHECK_STR_EQ(st.r[0].addr, "a@b.example");
    outq_state_free(&st);
}

TEST(state_refusals)
{
    static const char *const bad[] = {
        "",
        "CHATMAILD-QSTATE 2\n",
        "CHATMAILD-QSTATE 1\nR P 1 0 a@b",          /* torn: no final newline */
        "CHATMAILD-QSTATE 1\nR X 1 0 a@b x\n",      /* status */
        "CHATMAILD-QSTATE 1\nR P -1 0 a@b x\n",     /* attempts */
        "CHATMAILD-QSTATE 1\nR P 1 0  x\n",         /* empty address */
        "CHATMAILD-QSTATE 1\nR P 1 99999999999999999999 a@b\n",
        "CHATMAILD-QSTATE 1\nQ P 1 0 a@b\n",
        "R P 1 0 a@b\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct outq_state st;
        int rc = outq_state_parse(bad[i], strlen(bad[i]), &st);
        if (rc != -1)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK_INT_EQ(rc, -1);
        CHECK(st.n == 0 && st.r == NULL);
    }
}

TEST(dsn_headers)
{
    const char *m = "From: <a@relay1.test>\r\nMessage-ID:\r\n <Mr.x1@relay1.test>\r\n"
                    "Subject: hi\r\n\r\nbody\r\n";
    char id[64];
    size_t n = outq_dsn_headers(m, strlen(m), 4096, id, sizeof id);
    CHECK_INT_EQ(n, strstr(m, "\r\n\r\n") + 2 - m);
    CHECK_STR_EQ(id, "<Mr.x1@relay1.test>");
    /* bounded: whole lines only */
    n = outq_dsn_headers(m, strlen(m), 30, id, sizeof id);
    CHECK_INT_EQ(n, strlen("From: <a@relay1.test>\r\n"));
    CHECK_STR_EQ(id, "");
    /* no body, no final newline */
    n = outq_dsn_headers("Subject: x", 10, 100, id, sizeof id);
    CHECK_INT_EQ(n, 10);
}

TEST(dsn_build)
{
    const char *h = "From: <a@relay1.test>\r\nMessage-ID: <Mr.x1@relay1.test>\r\n";
    struct outq_dsn_rcpt r[2] = {{"x@nx.test", "550 5.1.2 nx.test: domain not found"},
                                 {"y@nullmx.test", "556 5.1.10 nullmx.test: null MX"}};
    struct buf b = {0};
    CHECK_INT_EQ(outq_dsn_build(&b, "relay1.test", "a@relay1.test", r, 2, h, strlen(h),
                                1700000000, 1700000100, false), 0);
    CHECK(buf_append(&b, "", 1) == 0);
    const char *t = b.data;
    CHECK(strstr(t, "From: Mail Delivery System <mailer-daemon@relay1.test>\r\n") == t);
    CHECK(strstr(t, "\r\nAuto-Submitted: auto-replied\r\n") != NULL);
    CHECK(strstr(t, "\r\nX-Failed-Recipients: x@nx.test,\r\n y@nullmx.test\r\n") != NULL);
    CHECK(strstr(t, "multipart/report; report-type=delivery-status;") != NULL);
    CHECK(strstr(t, "Content-Type: message/delivery-status\r\n") != NULL);
    CHECK(strstr(t, "Final-Recipient: rfc822; x@nx.test\r\n") != NULL);
    CHECK(strstr(t, "Status: 5.1.2\r\n") != NULL);
    CHECK(strstr(t, "Status: 5.1.10\r\n") != NULL);
    CHECK(strstr(t, "Diagnostic-Code: smtp; 556 5.1.10 nullmx.test: null MX\r\n") != NULL);
    CHECK(strstr(t, "Content-Type: text/rfc822-headers\r\n") != NULL);
    CHECK(strstr(t, "Message-ID: <Mr.x1@relay1.test>\r\n") != NULL);
    for (const char *p = t; (p = strchr(p, '\n')) != NULL; p++)
        CHECK(p > t && p[-1] == '\r');
    buf_free(&b);
    /* the lifetime ended on a temporary failure */
    struct outq_dsn_rcpt e = {"z@peer.test", "451 4.4.1 mx.peer.test: connection refused"};
    CHECK_INT_EQ(outq_dsn_build(&b, "relay1.test", "a@relay1.test", &e, 1, h, strlen(h), 0, 0,
                                true), 0);
    CHECK(buf_append(&b, "", 1) == 0);
    CHECK(strstr(b.data, "within the time allowed") != NULL);
    CHECK(strstr(b.data, "Status: 4.4.1\r\n") != NULL);
    buf_free(&b);
}

int main(void)
{
    RUN(state_roundtrip);
    RUN(state_refusals);
    RUN(dsn_headers);
    RUN(dsn_build);
    return check_report();
}
