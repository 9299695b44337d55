/* fuzz_mxdeliv.c: arbitrary bytes through the POST /mxdeliv request path
 * without the loop: the llhttp reader with the session's per-path limits
 * (1000+ headers), the envelope from X-MAIL-FROM / X-MAIL-TO
 * (mxdeliv_envelope) and the body decoder (size limit, CRLF framing) fed
 * in input-chosen pieces. Checks what the rest of the server relies on:
 * an accepted envelope has 1..LIM_SMTP_RCPT recipients, all @mail_domain,
 * with their account address; an accepted body has only CRLF line ends,
 * ends in CRLF and stays within the limit. The first byte picks the
 * relay's domain, the body limit and where the input is split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/limits.h"
#include "http/mxdeliv.h"
#include "http/request.h"

static struct config cfgs[2];
static bool ready;

struct run {
    const struct config *cfg;
    uint64_t max;
    bool active;
    struct mxdeliv_env env;
    struct mxdeliv_body body;
    struct buf got;
};

static void setup(void)
{
    static const char *const ini[2] = {
        "[params]\nmail_domain = chat.example\n",
        "[params]\nmail_domain = 192.0.2.7\n",
    };
    for (int i = 0; i < 2; i++) {
        struct config_errors errs = {0};
        config_parse_string(ini[i], &cfgs[i], &errs, false);
    }
    ready = true;
}

static int collect(void *ctx, const char *p, size_t n)
{
    struct run *r = ctx;
    return buf_append(&r->got, p, n);
}

static int sink(void *ctx, const char *p, size_t n)
{
    mxdeliv_body_feed(&((struct run *)ctx)->body, p, n);
    return 0;
}

static void on_target(void *ud, struct http_reader *r)
{
    if (r->parser.method == HTTP_POST && mxdeliv_path(&r->req)) {
        r->max_headers = LIM_HTTP_MXDELIV_HEADERS;
        r->max_header_bytes = LIM_HTTP_MXDELIV_HEADER_BYTES;
    }
}

static void on_headers(void *ud, struct http_reader *r)
{
    struct run *x = ud;
    if (r->parser.method != HTTP_POST || !mxdeliv_path(&r->req))
        return;
    x->active = true;
    mxdeliv_envelope(&r->req, x->cfg, &x->env);
    mxdeliv_body_init(&x->body, x->max, collect, x);
    r->body_limit = SIZE_MAX;
    r->body_sink = sink;
    r->sink_ud = x;
}

static void check_env(const struct run *x)
{
    const struct mxdeliv_env *e = &x->env;
    if (e->status != 0) {
        if (e->reply[0] < '4' || e->reply[0] > '5')
            abort();
        return;
    }
    if (e->n_rcpts < 1 || e->n_rcpts > LIM_SMTP_RCPT)
        abort();
    for (size_t i = 0; i < e->n_rcpts; i++) {
        const char *at = strrchr(e->rcpt[i], '@');
        if (!at || strcasecmp(at + 1, x->cfg->mail_domain) != 0 || !e->account[i][0])
            abort();
    }
}

static void check_body(struct run *x)
{
    char reply[FILTER_REPLY_MAX];
    int status = mxdeliv_body_finish(&x->body, reply, sizeof reply);
    if (status != 0 || x->got.len == 0)
        return;
    const char *d = x->got.data;
    size_t n = x->got.len;
    if (n < 2 || d[n - 2] != '\r' || d[n - 1] != '\n' || x->body.size > x->max)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((d[i] == '\n' && (i == 0 || d[i - 1] != '\r')) ||
            (d[i] == '\r' && (i + 1 == n || d[i + 1] != '\n')))
            abort();
}

static void end_request(struct run *x)
{
    if (x->active) {
        check_env(x);
        check_body(x);
    }
    mxdeliv_env_free(&x->env);
    buf_free(&x->got);
    x->active = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    if (size < 1)
        return 0;
    struct run x = {.cfg = &cfgs[data[0] & 1], .max = (data[0] & 2) ? 64 : 4096};
    size_t split = data[0] >> 2;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    struct http_reader r;
    http_reader_init(&r, LIM_HTTP_BODY);
    r.on_target = on_target;
    r.on_headers = on_headers;
    r.ud = &x;
    while (n > 0) {
        size_t piece = split && split < n ? split : n, used = 0;
        enum http_read_result res = http_reader_feed(&r, p, piece, &used);
        if (res == HTTP_READ_ERROR)
            break;
        if (res == HTTP_READ_DONE) {
            end_request(&x);
            if (r.req.upgrade)
                break;
            http_reader_next(&r);
        } else if (used == 0) {
            break;
        }
        p += used;
        n -= used;
    }
    mxdeliv_env_free(&x.env);
    buf_free(&x.got);
    http_reader_free(&r);
    return 0;
}
