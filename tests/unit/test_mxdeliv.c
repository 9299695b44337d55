/* test_mxdeliv.c: the sans-I/O part of POST /mxdeliv: the envelope from
 * X-MAIL-FROM / X-MAIL-TO (texts, limits, user+tag, address literals) and
 * the body decoder (CRLF framing across pieces, size limit, final CRLF),
 * and the reader's per-path header limits and body sink. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/limits.h"
#include "http/mxdeliv.h"
#include "http/request.h"

static struct config cfg;

static void on_target(void *ud, struct http_reader *r)
{
    if (mxdeliv_path(&r->req)) {
        r->max_headers = LIM_HTTP_MXDELIV_HEADERS;
        r->max_header_bytes = LIM_HTTP_MXDELIV_HEADER_BYTES;
    }
}

/* Reads one request (headers only matter) and its envelope. */
static int envelope(const char *headers, struct mxdeliv_env *e)
{
    struct http_reader r;
    struct buf in = {0};
    buf_printf(&in, "POST /mxdeliv HTTP/1.1\r\n%sContent-Length: 0\r\n\r\n", headers);
    http_reader_init(&r, 0);
    r.on_target = on_target;
    size_t used;
    CHECK_INT_EQ(http_reader_feed(&r, in.data, in.len, &used), HTTP_READ_DONE);
    int status = mxdeliv_envelope(&r.req, &cfg, e);
    http_reader_free(&r);
    buf_free(&in);
    return status;
}

TEST(envelope_good)
{
    struct mxdeliv_env e;
    CHECK_INT_EQ(envelope("X-MAIL-FROM: <a@remote.example>\r\nX-MAIL-TO: bob@relay.example\r\n"
                          "x-mail-to:  <Carol+News@RELAY.example> \r\n",
                          &e),
                 0);
    CHECK_STR_EQ(e.mail_from, "a@remote.example");
    CHECK_INT_EQ(e.n_rcpts, 2);
    CHECK_STR_EQ(e.rcpt[1], "Carol+News@RELAY.example");
    CHECK_STR_EQ(e.account[1], "carol@relay.example");
    mxdeliv_env_free(&e);
    CHECK_INT_EQ(envelope("X-MAIL-TO: bob@relay.example\r\n", &e), 0); /* null sender */
    CHECK_STR_EQ(e.mail_from, "");
    mxdeliv_env_free(&e);
    CHECK_INT_EQ(envelope("X-MAIL-FROM: <>\r\nX-MAIL-TO: bob@relay.example\r\n", &e), 0);
    CHECK_STR_EQ(e.mail_from, "");
    mxdeliv_env_free(&e);
}

TEST(envelope_refused)
{
    static const struct {
        const char *headers, *reply;
    } cases[] = {
        {"", "554 5.5.1 Error: no valid recipients (no X-MAIL-TO header)"},
        {"X-MAIL-TO: bob\r\n", "501 5.1.3 Bad recipient address syntax"},
        {"X-MAIL-TO: @relay.example\r\n", "501 5.1.3 Bad recipient address syntax"},
        {"X-MAIL-TO: b<o>b@relay.example\r\n", "501 5.1.3 Bad recipient address syntax"},
        {"X-MAIL-TO: bob@other.example\r\n", "554 5.7.1 <bob@other.example>: Relay access denied"},
        {"X-MAIL-TO: bob@relay.example.evil\r\n",
         "554 5.7.1 <bob@relay.example.evil>: Relay access denied"},
        {"X-MAIL-TO: a..b@relay.example\r\n",
         "550 5.1.1 <a..b@relay.example>: Recipient address rejected: User unknown in virtual "
         "mailbox table"},
        {"X-MAIL-FROM: a b@x.example\r\nX-MAIL-TO: bob@relay.example\r\n",
         "501 5.1.7 Bad sender address syntax"},
        {"X-MAIL-FROM: a@x.example\r\nX-MAIL-FROM: b@x.example\r\nX-MAIL-TO: bob@relay.example\r\n",
         "503 5.5.1 Error: more than one X-MAIL-FROM header"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mxdeliv_env e;
        CHECK_INT_EQ(envelope(cases[i].headers, &e), 400);
        CHECK_STR_EQ(e.reply, cases[i].reply);
        mxdeliv_env_free(&e);
    }
}

TEST(envelope_recipient_limit)
{
    struct buf h = {0};
    for (int i = 0; i < LIM_SMTP_RCPT; i++)
        buf_printf(&h, "X-MAIL-TO: user%d@relay.example\r\n", i);
    struct mxdeliv_env e;
    CHECK_INT_EQ(envelope(h.data, &e), 0);
    CHECK_INT_EQ(e.n_rcpts, LIM_SMTP_RCPT);
    mxdeliv_env_free(&e);
    buf_printf(&h, "X-MAIL-TO: one.more@relay.example\r\n");
    CHECK_INT_EQ(envelope(h.data, &e), 400);
    CHECK_STR_EQ(e.reply, "452 4.5.3 Error: too many recipients");
    mxdeliv_env_free(&e);
    buf_free(&h);
}

static int collect(void *ctx, const char *p, size_t n) { return buf_append(ctx, p, n); }

/* Feeds s in pieces of `step` bytes; returns the status, body in out. */
static int body(const char *s, size_t step, uint64_t max, struct buf *out, char *reply)
{
    struct mxdeliv_body b;
    mxdeliv_body_init(&b, max, collect, out);
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i += step)
        mxdeliv_body_feed(&b, s + i, n - i < step ? n - i : step);
    return mxdeliv_body_finish(&b, reply, FILTER_REPLY_MAX);
}

TEST(body_framing)
{
    char reply[FILTER_REPLY_MAX];
    for (size_t step = 1; step <= 7; step++) {
        struct buf out = {0};
        CHECK_INT_EQ(body("Subject: x\r\n\r\nhi\r\nno end", step, 1000, &out, reply), 0);
        CHECK(out.len == 26 && memcmp(out.data, "Subject: x\r\n\r\nhi\r\nno end\r\n", 26) == 0);
        buf_free(&out);
        CHECK_INT_EQ(body("a\r\nb\nc\r\n", step, 1000, &out, reply), 400);
        CHECK_STR_EQ(reply, "550 5.5.2 Error: bare <LF> received");
        buf_free(&out);
        CHECK_INT_EQ(body("a\r\rb\r\n", step, 1000, &out, reply), 400);
        CHECK_STR_EQ(reply, "550 5.5.2 Error: bare <CR> received");
        buf_free(&out);
        CHECK_INT_EQ(body("a\r\nb\r", step, 1000, &out, reply), 400);
        CHECK_STR_EQ(reply, "550 5.5.2 Error: bare <CR> received");
        buf_free(&out);
        CHECK_INT_EQ(body("0123456789\r\n", step, 11, &out, reply), 413);
        CHECK_STR_EQ(reply, "552 5.3.4 Message exceeds maximum size");
        buf_free(&out);
    }
    struct buf line = {0}, out = {0};
    for (int i = 0; i <= LIM_SMTP_DATA_LINE; i++)
        buf_append(&line, "x", 1);
    CHECK_INT_EQ(body(line.data, 4096, 1 << 20, &out, reply), 400);
    CHECK_STR_EQ(reply, "500 5.5.0 Error: line too long");
    buf_free(&line);
    buf_free(&out);
}

static int sink(void *ctx, const char *p, size_t n) { return buf_append(ctx, p, n); }

TEST(reader_limits_and_sink)
{
    struct http_reader r;
    struct buf in = {0}, got = {0};
    buf_printf(&in, "POST /mxdeliv/ HTTP/1.1\r\n");
    for (int i = 0; i < 200; i++)
        buf_printf(&in, "X-MAIL-TO: user%d@relay.example\r\n", i);
    buf_printf(&in, "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    /* default limits: 431 */
    http_reader_init(&r, 10);
    size_t used;
    CHECK_INT_EQ(http_reader_feed(&r, in.data, in.len, &used), HTTP_READ_ERROR);
    CHECK_INT_EQ(r.error_status, 431);
    http_reader_free(&r);
    /* raised for the path, body to the sink past body_limit 0 */
    http_reader_init(&r, 0);
    r.on_target = on_target;
    CHECK_INT_EQ(http_reader_feed(&r, in.data, 40, &used), HTTP_READ_MORE);
    CHECK_INT_EQ(r.max_headers, LIM_HTTP_MXDELIV_HEADERS);
    r.body_limit = 100;
    r.body_sink = sink;
    r.sink_ud = &got;
    CHECK_INT_EQ(http_reader_feed(&r, in.data + 40, in.len - 40, &used), HTTP_READ_DONE);
    CHECK_INT_EQ(r.req.n_hdr, 201);
    CHECK_STR_EQ(http_req_header_nth(&r.req, "x-mail-to", 199), "user199@relay.example");
    CHECK(got.len == 5 && memcmp(got.data, "abcde", 5) == 0 && r.req.body.len == 0);
    /* the next request is back to the defaults */
    http_reader_next(&r);
    CHECK_INT_EQ(r.max_headers, HTTP_MAX_KEPT_HEADERS);
    CHECK(r.body_sink == NULL && r.body_limit == 0);
    http_reader_free(&r);
    buf_free(&in);
    buf_free(&got);
}

int main(void)
{
    struct config_errors errs = {0};
    if (config_parse_string("[params]\nmail_domain = relay.example\n", &cfg, &errs, false) < 0) {
        fprintf(stderr, "config\n");
        return 1;
    }
    RUN(envelope_good);
    RUN(envelope_refused);
    RUN(envelope_recipient_limit);
    RUN(body_framing);
    RUN(reader_limits_and_sink);
    return check_report();
}
