/* test_smtp_data.c: DATA dot-unstuffing, end detection across every split
 * point, all SMTP-smuggling forms, size and line limits, BDAT framing. */
#include "check.h"

#include <stdlib.h>

#include "core/buf.h"
#include "core/limits.h"
#include "smtp/smtp_data.h"

static int sink_buf(void *ctx, const char *p, size_t n) { return buf_append(ctx, p, n); }

struct run {
    enum smtp_data_status st;
    size_t consumed; /* total bytes consumed when END */
    struct smtp_data d;
    struct buf out;
};

/* Feeds in pieces of `step` bytes (0 = all at once). */
static void feed(struct run *r, const char *in, size_t len, size_t step, uint64_t max)
{
    memset(r, 0, sizeof *r);
    smtp_data_init(&r->d, max, sink_buf, &r->out);
    size_t off = 0;
    r->st = SMTP_DATA_MORE;
    while (off < len) {
        size_t n = step && len - off > step ? step : len - off;
        size_t used = 0;
        r->st = smtp_data_feed(&r->d, in + off, n, &used);
        if (r->st != SMTP_DATA_MORE) {
            r->consumed = off + used;
            return;
        }
        off += n;
    }
}

static const char *out_str(struct run *r) { return r->out.data ? r->out.data : ""; }

TEST(unstuffing_and_end)
{
    const char *in = "Subject: x\r\n\r\n..dot\r\n.x\r\nend\r\n.\r\nQUIT\r\n";
    size_t len = strlen(in);
    for (size_t step = 0; step <= len; step++) {
        struct run r;
        feed(&r, in, len, step, 1000);
        CHECK_INT_EQ(r.st, SMTP_DATA_END);
        CHECK_INT_EQ(r.consumed, len - strlen("QUIT\r\n"));
        CHECK_STR_EQ(out_str(&r), "Subject: x\r\n\r\n.dot\r\nx\r\nend\r\n");
        CHECK(smtp_data_ok(&r.d));
        buf_free(&r.out);
    }
}

TEST(empty_message)
{
    struct run r;
    feed(&r, ".\r\n", 3, 0, 10);
    CHECK_INT_EQ(r.st, SMTP_DATA_END);
    CHECK_INT_EQ(r.consumed, 3);
    CHECK_INT_EQ(r.out.len, 0);
    buf_free(&r.out);
}

TEST(smuggling_forms_rejected)
{
    static const struct {
        const char *in;
        enum smtp_data_status want;
    } cases[] = {
        {"a\n.\nb\r\n.\r\n", SMTP_DATA_BARE_LF},
        {"a\n.\r\nb\r\n.\r\n", SMTP_DATA_BARE_LF},
        {"a\r.\r\nb\r\n.\r\n", SMTP_DATA_BARE_CR},
        {"a\r\n.\nb\r\n.\r\n", SMTP_DATA_BARE_LF},
        {"a\r\n.\rb\r\n.\r\n", SMTP_DATA_BARE_CR},
        {"a\r\n.\r\r\n", SMTP_DATA_BARE_CR},
        {"a\r.\rb\r\n.\r\n", SMTP_DATA_BARE_CR},
        {"a\n\r\n.\r\n", SMTP_DATA_BARE_LF},
        {"\n.\r\n", SMTP_DATA_BARE_LF},
        {"a\rb\r\n.\r\n", SMTP_DATA_BARE_CR},
        {"a\r\r\n.\r\n", SMTP_DATA_BARE_CR},
        {"a\r\n\r.\r\n", SMTP_DATA_BARE_CR},
        {"a\r\n..\n", SMTP_DATA_BARE_LF},
        {".\n", SMTP_DATA_BARE_LF},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].in);
        for (size_t step = 0; step <= len; step++) {
            struct run r;
            feed(&r, cases[i].in, len, step, 1000);
            if (r.st != cases[i].want)
                fprintf(stderr, "case %zu step %zu: got %d\n", i, step, (int)r.st);
            CHECK_INT_EQ(r.st, cases[i].want);
            buf_free(&r.out);
        }
    }
}

TEST(size_limit_keeps_consuming)
{
    struct buf in = {0};
    for (int i = 0; i < 50; i++)
        buf_append_str(&in, "0123456789\r\n");
    buf_append_str(&in, ".\r\nNOOP\r\n");
    for (size_t step = 0; step <= 37; step += 37) {
        struct run r;
        feed(&r, in.data, in.len, step, 100);
        CHECK_INT_EQ(r.st, SMTP_DATA_END);
        CHECK_INT_EQ(r.consumed, in.len - 6);
        CHECK(r.d.too_big);
        CHECK(!smtp_data_ok(&r.d));
        CHECK(r.out.len <= 100);
        buf_free(&r.out);
    }
    /* exactly at the limit is fine */
    struct run r;
    feed(&r, "12345678\r\n.\r\n", 13, 0, 10);
    CHECK_INT_EQ(r.st, SMTP_DATA_END);
    CHECK(smtp_data_ok(&r.d));
    CHECK_INT_EQ(r.d.size, 10);
    buf_free(&r.out);
    buf_free(&in);
}

TEST(line_limit)
{
    size_t n = LIM_SMTP_DATA_LINE + 10;
    char *line = malloc(n + 5);
    memset(line, 'a', n);
    memcpy(line + n, "\r\n.\r\n", 5);
    struct run r;
    feed(&r, line, n + 5, 4096, (uint64_t)1 << 40);
    CHECK_INT_EQ(r.st, SMTP_DATA_END);
    CHECK(r.d.line_too_long);
    buf_free(&r.out);
    /* a line of exactly the limit passes */
    memcpy(line + LIM_SMTP_DATA_LINE, "\r\n.\r\n", 5);
    feed(&r, line, LIM_SMTP_DATA_LINE + 5, 0, (uint64_t)1 << 40);
    CHECK_INT_EQ(r.st, SMTP_DATA_END);
    CHECK(smtp_data_ok(&r.d));
    buf_free(&r.out);
    free(line);
}

static int failing_sink(void *ctx, const char *p, size_t n) { return -1; }

TEST(sink_failure)
{
    struct smtp_data d;
    smtp_data_init(&d, 1000, failing_sink, NULL);
    size_t used;
    CHECK_INT_EQ(smtp_data_feed(&d, "a\r\n.\r\n", 6, &used), SMTP_DATA_END);
    CHECK(d.spool_failed);
    CHECK(!smtp_data_ok(&d));
}

TEST(bdat_chunks)
{
    struct buf out = {0};
    struct smtp_data d;
    smtp_data_init(&d, 1000, sink_buf, &out);
    CHECK_INT_EQ(smtp_bdat_feed(&d, "a\r", 2), SMTP_DATA_MORE);
    CHECK_INT_EQ(smtp_bdat_feed(&d, "\n.\r\n", 4), SMTP_DATA_MORE);
    CHECK_INT_EQ(smtp_bdat_feed(&d, "last", 4), SMTP_DATA_MORE);
    CHECK_INT_EQ(smtp_bdat_finish(&d), SMTP_DATA_END);
    CHECK_STR_EQ(out.data, "a\r\n.\r\nlast\r\n"); /* no unstuffing; CRLF added */
    buf_free(&out);

    smtp_data_init(&d, 1000, sink_buf, &out);
    CHECK_INT_EQ(smtp_bdat_feed(&d, "a\r\n", 3), SMTP_DATA_MORE);
    CHECK_INT_EQ(smtp_bdat_finish(&d), SMTP_DATA_END);
    CHECK_STR_EQ(out.data, "a\r\n");
    buf_free(&out);

    smtp_data_init(&d, 1000, sink_buf, &out);
    CHECK_INT_EQ(smtp_bdat_feed(&d, "a\n.\n", 4), SMTP_DATA_BARE_LF);
    smtp_data_init(&d, 1000, sink_buf, &out);
    CHECK_INT_EQ(smtp_bdat_feed(&d, "a\r", 2), SMTP_DATA_MORE);
    CHECK_INT_EQ(smtp_bdat_feed(&d, "b", 1), SMTP_DATA_BARE_CR);
    smtp_data_init(&d, 1000, sink_buf, &out);
    CHECK_INT_EQ(smtp_bdat_feed(&d, "a\r", 2), SMTP_DATA_MORE);
    CHECK_INT_EQ(smtp_bdat_finish(&d), SMTP_DATA_BARE_CR);
    buf_free(&out);

    smtp_data_init(&d, 5, sink_buf, &out);
    CHECK_INT_EQ(smtp_bdat_feed(&d, "abc\r\n", 5), SMTP_DATA_MORE);
    CHECK(smtp_data_ok(&d));
    CHECK_INT_EQ(smtp_bdat_feed(&d, "d", 1), SMTP_DATA_MORE);
    CHECK(d.too_big);
    buf_free(&out);
}

int main(void)
{
    RUN(unstuffing_and_end);
    RUN(empty_message);
    RUN(smuggling_forms_rejected);
    RUN(size_limit_keeps_consuming);
    RUN(line_limit);
    RUN(sink_failure);
    RUN(bdat_chunks);
    return check_report();
}
