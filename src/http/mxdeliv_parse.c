/* mxdeliv_parse.c: the sans-I/O part of POST /mxdeliv (see mxdeliv.h):
 * the envelope from the X-MAIL-FROM / X-MAIL-TO headers and the body's
 * framing. No socket, no file, no clock: the fuzzer calls these directly.
 * Reply texts are Postfix's for the same refusal on port 25. */
#include "http/mxdeliv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/limits.h"
#include "store/accounts.h"

bool mxdeliv_path(const struct http_request *q)
{
    const char *path;
    size_t n = http_req_path(q, &path);
    return (n == 8 || (n == 9 && path[8] == '/')) && strncmp(path, "/mxdeliv", 8) == 0;
}

__attribute__((format(printf, 2, 3))) static int refuse(struct mxdeliv_env *e, const char *fmt,
                                                         ...)
{
    va_list ap;
    va_start(ap, fmt);
    e->status = 400;
    vsnprintf(e->reply, sizeof e->reply, fmt, ap);
    va_end(ap);
    return e->status;
}

/* The header value without surrounding blanks and one pair of <>, into
 * out (NUL-terminated). -1 when it does not fit. */
static int header_addr(const char *v, char *out, size_t cap)
{
    size_t n = strlen(v);
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= 2 && v[0] == '<' && v[n - 1] == '>')
        v++, n -= 2;
    if (n >= cap)
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* local@domain: printable, no blanks or specials; brackets and colons
 * only in the domain (address literals); bytes >= 0x80 (SMTPUTF8) pass. */
static bool addr_ok(const char *a)
{
    const char *at = strrchr(a, '@');
    if (!at || at == a || at[1] == '\0')
        return false;
    for (const char *p = a; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f || strchr("<>()\\,;\"", c))
            return false;
        if (p < at && strchr("[]:@", c))
            return false;
    }
    return true;
}

static int read_from(const struct http_request *q, struct mxdeliv_env *e)
{
    const char *v = http_req_header(q, "X-MAIL-FROM");
    if (!v)
        return 0; /* null sender */
    if (http_req_header_nth(q, "X-MAIL-FROM", 1))
        return refuse(e, "503 5.5.1 Error: more than one X-MAIL-FROM header");
    if (header_addr(v, e->mail_from, sizeof e->mail_from) < 0 ||
        (e->mail_from[0] && !addr_ok(e->mail_from)))
        return refuse(e, "501 5.1.7 Bad sender address syntax");
    return 0;
}

static int read_rcpt(const struct config *cfg, const char *v, struct mxdeliv_env *e)
{
    char *a = e->rcpt[e->n_rcpts];
    const char *why;
    if (header_addr(v, a, sizeof e->rcpt[0]) < 0 || !addr_ok(a))
        return refuse(e, "501 5.1.3 Bad recipient address syntax");
    if (strcasecmp(strrchr(a, '@') + 1, cfg->mail_domain) != 0)
        return refuse(e, "554 5.7.1 <%s>: Relay access denied", a);
    if (store_addr_recipient(cfg, a, e->account[e->n_rcpts], sizeof e->account[0], &why) < 0)
        return refuse(e,
                      "550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual "
                      "mailbox table",
                      a);
    e->n_rcpts++;
    return 0;
}

int mxdeliv_envelope(const struct http_request *q, const struct config *cfg,
                     struct mxdeliv_env *e)
{
    memset(e, 0, sizeof *e);
    if (read_from(q, e))
        return e->status;
    size_t n = 0;
    while (http_req_header_nth(q, "X-MAIL-TO", n))
        n++;
    if (n == 0)
        return refuse(e, "554 5.5.1 Error: no valid recipients (no X-MAIL-TO header)");
    if (n > LIM_SMTP_RCPT)
        return refuse(e, "452 4.5.3 Error: too many recipients");
    e->rcpt = calloc(n, sizeof *e->rcpt);
    e->account = calloc(n, sizeof *e->account);
    if (!e->rcpt || !e->account) {
        e->status = 503;
        snprintf(e->reply, sizeof e->reply, "451 4.3.0 Error: insufficient system resources");
        return e->status;
    }
    for (size_t i = 0; i < n; i++)
        if (read_rcpt(cfg, http_req_header_nth(q, "X-MAIL-TO", i), e))
            return e->status;
    return 0;
}

void mxdeliv_env_free(struct mxdeliv_env *e)
{
    free(e->rcpt);
    free(e->account);
    e->rcpt = NULL;
    e->account = NULL;
    e->n_rcpts = 0;
}

/* ------------------------------------------------------------ body */

void mxdeliv_body_init(struct mxdeliv_body *b, uint64_t max,
                       int (*sink)(void *ctx, const char *p, size_t n), void *ctx)
{
    memset(b, 0, sizeof *b);
    b->max = max;
    b->sink = sink;
    b->ctx = ctx;
}

static bool body_failed(const struct mxdeliv_body *b)
{
    return b->too_big || b->bare_lf || b->bare_cr || b->line_too_long || b->sink_failed;
}

static void sink(struct mxdeliv_body *b, const char *p, size_t n)
{
    if (b->sink && b->sink(b->ctx, p, n) < 0)
        b->sink_failed = true;
}

void mxdeliv_body_feed(struct mxdeliv_body *b, const char *p, size_t n)
{
    b->size += n;
    if (b->size > b->max)
        b->too_big = true;
    if (body_failed(b) || n == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (b->cr) {
            if (c != '\n') {
                b->bare_cr = true;
                return;
            }
            b->cr = false;
            b->line_len = 0;
        } else if (c == '\r') {
            b->cr = true;
        } else if (c == '\n') {
            b->bare_lf = true;
            return;
        } else if (++b->line_len > LIM_SMTP_DATA_LINE) {
            b->line_too_long = true;
            return;
        }
    }
    sink(b, p, n);
}

int mxdeliv_body_finish(struct mxdeliv_body *b, char *reply, size_t cap)
{
    if (b->cr && !body_failed(b))
        b->bare_cr = true;
    if (!body_failed(b) && b->line_len > 0) {
        sink(b, "\r\n", 2);
        b->line_len = 0;
    }
    int status = 0;
    const char *text = "";
    if (b->too_big)
        status = 413, text = "552 5.3.4 Message exceeds maximum size";
    else if (b->sink_failed)
        status = 503, text = "451 4.3.0 Error: queue file write error";
    else if (b->bare_lf)
        status = 400, text = "550 5.5.2 Error: bare <LF> received";
    else if (b->bare_cr)
        status = 400, text = "550 5.5.2 Error: bare <CR> received";
    else if (b->line_too_long)
        status = 400, text = "500 5.5.0 Error: line too long";
    snprintf(reply, cap, "%s", text);
    return status;
}
