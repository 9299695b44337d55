/* request.c: HTTP/1.1 request reading on llhttp, bounded in every part
 * (see request.h and the LIM_HTTP_* limits). */
#include "http/request.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/limits.h"

static struct http_reader *reader(llhttp_t *p) { return p->data; }

static int fail(struct http_reader *r, int status)
{
    if (!r->error_status)
        r->error_status = status;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_reader *r = reader(p);
    r->started = true;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_reader *r = reader(p);
    struct http_request *q = &r->req;
    if (q->url_len + len > LIM_HTTP_URL)
        return fail(r, 414);
    if (q->url_len == 0)
        q->url_off = q->arena.len;
    if (buf_append(&q->arena, at, len) < 0)
        return fail(r, 500);
    q->url_len += len;
    return 0;
}

static int on_url_complete(llhttp_t *p)
{
    struct http_reader *r = reader(p);
    if (buf_append(&r->req.arena, "", 1) < 0)
        return fail(r, 500);
    if (r->on_target)
        r->on_target(r->ud, r);
    return 0;
}

static int header_bytes(struct http_reader *r, size_t len)
{
    r->header_bytes += len;
    return r->header_bytes > r->max_header_bytes ? fail(r, 431) : 0;
}

static int grow_headers(struct http_request *q, size_t max)
{
    size_t cap = q->hdr_cap ? q->hdr_cap * 2 : 16;
    if (cap > max)
        cap = max;
    struct http_header *h = realloc(q->hdr, cap * sizeof *h);
    if (!h)
        return -1;
    q->hdr = h;
    q->hdr_cap = cap;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_reader *r = reader(p);
    struct http_request *q = &r->req;
    if (header_bytes(r, len) < 0)
        return -1;
    if (!r->in_field) { /* a new header begins */
        if (q->n_hdr >= r->max_headers)
            return fail(r, 431);
        if (q->n_hdr == q->hdr_cap && grow_headers(q, r->max_headers) < 0)
            return fail(r, 500);
        q->hdr[q->n_hdr].name_off = q->arena.len;
        q->hdr[q->n_hdr].name_len = 0;
        q->hdr[q->n_hdr].value_len = 0;
        q->n_hdr++;
        r->in_field = true;
    }
    if (buf_append(&q->arena, at, len) < 0)
        return fail(r, 500);
    q->hdr[q->n_hdr - 1].name_len += len;
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct http_reader *r = reader(p);
    if (buf_append(&r->req.arena, "", 1) < 0)
        return fail(r, 500);
    /* Until a value byte arrives, the value is the empty string at the
     * name's terminator (llhttp may report no value callback for it). */
    r->req.hdr[r->req.n_hdr - 1].value_off = r->req.arena.len - 1;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_reader *r = reader(p);
    struct http_request *q = &r->req;
    if (header_bytes(r, len) < 0)
        return -1;
    r->in_field = false;
    if (q->n_hdr == 0)
        return fail(r, 400);
    if (q->hdr[q->n_hdr - 1].value_len == 0)
        q->hdr[q->n_hdr - 1].value_off = q->arena.len;
    if (buf_append(&q->arena, at, len) < 0)
        return fail(r, 500);
    q->hdr[q->n_hdr - 1].value_len += len;
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct http_reader *r = reader(p);
    r->in_field = false;
    if (r->req.n_hdr == 0 || r->req.hdr[r->req.n_hdr - 1].value_len == 0)
        return 0;
    return buf_append(&r->req.arena, "", 1) < 0 ? fail(r, 500) : 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_reader *r = reader(p);
    struct http_request *q = &r->req;
    q->method = p->method;
    q->http_minor = p->http_minor;
    q->keep_alive = llhttp_should_keep_alive(p);
    q->upgrade = p->upgrade;
    r->headers_done = true;
    if (r->on_headers)
        r->on_headers(r->ud, r);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > r->body_limit)
        return fail(r, 413);
    /* An upgrade request: no body; the bytes after the headers belong to
     * the upgraded protocol (llhttp pauses with HPE_PAUSED_UPGRADE). */
    return q->upgrade ? 2 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_reader *r = reader(p);
    if (r->body_bytes + len > r->body_limit)
        return fail(r, 413);
    r->body_bytes += len;
    if (r->body_sink)
        return r->body_sink(r->sink_ud, at, len) < 0 ? fail(r, 500) : 0;
    return buf_append(&r->req.body, at, len) < 0 ? fail(r, 500) : 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_reader *r = reader(p);
    r->done = true;
    return HPE_PAUSED; /* one request at a time */
}

static const llhttp_settings_t *settings(void)
{
    static llhttp_settings_t s;
    static bool init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_url_complete = on_url_complete;
        s.on_header_field = on_header_field;
        s.on_header_field_complete = on_header_field_complete;
        s.on_header_value = on_header_value;
        s.on_header_value_complete = on_header_value_complete;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        init = true;
    }
    return &s;
}

void http_reader_init(struct http_reader *r, size_t body_limit)
{
    memset(r, 0, sizeof *r);
    llhttp_init(&r->parser, HTTP_REQUEST, settings());
    r->parser.data = r;
    r->body_limit = r->default_body_limit = body_limit;
    r->max_headers = HTTP_MAX_KEPT_HEADERS;
    r->max_header_bytes = LIM_HTTP_HEADER_BYTES;
}

void http_reader_free(struct http_reader *r)
{
    buf_free(&r->req.arena);
    buf_free(&r->req.body);
    free(r->req.hdr);
    r->req.hdr = NULL;
    r->req.hdr_cap = 0;
}

void http_reader_next(struct http_reader *r)
{
    http_reader_free(r);
    memset(&r->req, 0, sizeof r->req);
    r->body_limit = r->default_body_limit;
    r->max_headers = HTTP_MAX_KEPT_HEADERS;
    r->max_header_bytes = LIM_HTTP_HEADER_BYTES;
    r->body_sink = NULL;
    r->sink_ud = NULL;
    r->body_bytes = 0;
    r->header_bytes = 0;
    r->in_field = false;
    r->started = false;
    r->headers_done = false;
    r->done = false;
    llhttp_resume(&r->parser);
}

enum http_read_result http_reader_feed(struct http_reader *r, const char *p, size_t n, size_t *used)
{
    *used = 0;
    if (r->error_status)
        return HTTP_READ_ERROR;
    llhttp_errno_t e = llhttp_execute(&r->parser, p, n);
    if (e == HPE_OK) {
        *used = n;
        return HTTP_READ_MORE;
    }
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        const char *pos = llhttp_get_error_pos(&r->parser);
        *used = pos && pos >= p && pos <= p + n ? (size_t)(pos - p) : n;
        if (e == HPE_PAUSED_UPGRADE)
            r->done = true;
        return r->done ? HTTP_READ_DONE : HTTP_READ_MORE;
    }
    if (!r->error_status)
        r->error_status = 400;
    return HTTP_READ_ERROR;
}

const char *http_req_url(const struct http_request *q)
{
    return q->url_len ? q->arena.data + q->url_off : "";
}

size_t http_req_path(const struct http_request *q, const char **path)
{
    const char *u = http_req_url(q);
    /* absolute-form (RFC 9112 §3.2.2), which servers must accept: some
     * clients (Delta Chat's) send "POST https://host/new HTTP/1.1" */
    size_t scheme = strncasecmp(u, "https://", 8) == 0 ? 8 : strncasecmp(u, "http://", 7) == 0 ? 7 : 0;
    if (scheme) {
        const char *slash = strchr(u + scheme, '/');
        u = slash ? slash : "/";
    }
    *path = u;
    if (u[0] != '/')
        return 0;
    return strcspn(u, "?#");
}

const char *http_req_header_nth(const struct http_request *q, const char *name, size_t nth)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < q->n_hdr; i++) {
        const struct http_header *h = &q->hdr[i];
        if (h->name_len == nl && strncasecmp(q->arena.data + h->name_off, name, nl) == 0 &&
            nth-- == 0)
            return q->arena.data + h->value_off;
    }
    return NULL;
}

const char *http_req_header(const struct http_request *q, const char *name)
{
    return http_req_header_nth(q, name, 0);
}

void http_req_host(const struct http_request *q, char *out, size_t outlen)
{
    const char *h = http_req_header(q, "Host");
    size_t i = 0;
    out[0] = '\0';
    if (!h || outlen == 0)
        return;
    if (h[0] == '[') { /* IPv6 literal: keep the brackets */
        const char *end = strchr(h, ']');
        size_t len = end ? (size_t)(end - h) + 1 : strlen(h);
        for (; i < len && i + 1 < outlen; i++)
            out[i] = (char)tolower((unsigned char)h[i]);
    } else {
        for (; h[i] && h[i] != ':' && i + 1 < outlen; i++)
            out[i] = (char)tolower((unsigned char)h[i]);
    }
    out[i] = '\0';
}
