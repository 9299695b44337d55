/* session.c: one HTTP/1.1 connection: reads requests with the sans-I/O
 * reader, routes each, writes the response, keeps the connection alive as
 * the client asks, and cuts slow clients by state (headers, body, idle).
 * A proxied request (iroh relay) hands the connection to proxy.c: from
 * then on every byte from the client goes there. POST /mxdeliv on the
 * https port (any Host) is mxdeliv.c's from its complete headers on: the
 * body streams into its spool, and while its answer is worked out
 * (workers, the acceptance pipeline) reading pauses; bytes of a pipelined
 * next request wait in `held`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/limits.h"
#include "core/log.h"
#include "http/http.h"
#include "http/http_int.h"
#include "http/mxdeliv.h"
#include "http/request.h"
#include "http/response.h"
#include "http/router.h"

struct http_session {
    struct conn *c;
    struct http_reader rd;
    struct http_proxy *proxy;
    struct mxdeliv *mx; /* the POST /mxdeliv being read or answered */
    bool waiting;       /* its answer is being worked out: reading paused */
    bool in_serve;      /* inside serve_request (the answer may come at once) */
    bool shutdown;      /* close after that answer */
    struct buf held;    /* bytes read after it (a pipelined request) */
    int phase;      /* 0 between requests, 1 reading headers, 2 reading a body */
    bool closing;
};

static void session_data(void *sp, const char *p, size_t n);

/* Per-state deadlines that progress does not extend: a client gets
 * LIM_HTTP_HEADER_MS for a request's headers from its first byte and
 * LIM_HTTP_BODY_MS for the body, however slowly it trickles. */
static void set_phase_timer(struct http_session *s)
{
    int phase = !s->rd.started ? 0 : !s->rd.headers_done ? 1 : 2;
    if (phase == s->phase)
        return;
    s->phase = phase;
    /* a message for /mxdeliv (up to max_message_size) gets SMTP's DATA time */
    unsigned body_ms = s->mx ? LIM_SMTP_DATA_MS : LIM_HTTP_BODY_MS;
    conn_set_timeout(s->c, phase == 2 ? body_ms : LIM_HTTP_HEADER_MS);
}

static bool mxdeliv_request(const struct http_session *s, const struct http_reader *r)
{
    return conn_listener(s->c) == LK_HTTPS && r->parser.method == HTTP_POST &&
           mxdeliv_path(&r->req);
}

/* Room for LIM_SMTP_RCPT X-MAIL-TO headers. */
static void on_target(void *ud, struct http_reader *r)
{
    struct http_session *s = ud;
    if (mxdeliv_request(s, r)) {
        r->max_headers = LIM_HTTP_MXDELIV_HEADERS;
        r->max_header_bytes = LIM_HTTP_MXDELIV_HEADER_BYTES;
    }
}

/* The body of POST /mxdeliv goes to mxdeliv.c, up to max_message_size
 * (beyond it is read and dropped: the answer is 413 at its end). */
static void on_headers(void *ud, struct http_reader *r)
{
    struct http_session *s = ud;
    if (!mxdeliv_request(s, r) || !(s->mx = mxdeliv_start(conn_config(s->c), &r->req)))
        return;
    r->body_limit = SIZE_MAX;
    r->body_sink = mxdeliv_sink;
    r->sink_ud = s->mx;
    if (mxdeliv_want_continue(s->mx, &r->req))
        conn_printf(s->c, "HTTP/1.%u 100 Continue\r\n\r\n", r->req.http_minor);
}

static void *session_open(struct conn *c)
{
    if (!site_ready()) {
        char err[300] = "";
        if (http_init(conn_config(c), err, sizeof err) < 0 && err[0])
            log_error("web site: %s", err);
    }
    struct http_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->c = c;
    http_reader_init(&s->rd, LIM_HTTP_BODY);
    s->rd.on_target = on_target;
    s->rd.on_headers = on_headers;
    s->rd.ud = s;
    conn_set_timeout(c, LIM_HTTP_HEADER_MS);
    return s;
}

static void error_response(struct http_session *s, int status)
{
    struct http_ctx x = {.conn = s->c, .cfg = conn_config(s->c), .req = NULL, .path = "",
                         .host = ""};
    char text[64];
    snprintf(text, sizeof text, "%d %s\n", status, http_status_reason(status));
    if (s->mx) { /* a broken /mxdeliv body (chunk framing, timeout) */
        mxdeliv_count(status);
        mxdeliv_release(s->mx);
        s->mx = NULL;
    }
    http_respond(&x, status, "text/plain; charset=utf-8", "", text, strlen(text));
    s->closing = true;
    conn_close(s->c);
}

static void next_request(struct http_session *s)
{
    http_reader_next(&s->rd);
    s->phase = 0;
    conn_set_timeout(s->c, LIM_HTTP_KEEPALIVE_MS);
}

/* mxdeliv.c's answer: now (inside serve_request) or later. */
static void mx_done(void *ud, int status, const char *text)
{
    struct http_session *s = ud;
    struct http_ctx x = {.conn = s->c, .cfg = conn_config(s->c), .req = &s->rd.req};
    mxdeliv_count(status);
    log_debug("http POST /mxdeliv: %d", status);
    http_respond(&x, status, "text/plain; charset=utf-8", "", text, strlen(text));
    mxdeliv_release(s->mx);
    s->mx = NULL;
    s->waiting = false;
    if (x.close_after || s->shutdown || s->rd.req.upgrade) {
        s->closing = true;
        conn_close(s->c);
        return;
    }
    if (s->in_serve)
        return; /* session_data goes on with the next request */
    next_request(s);
    conn_resume(s->c);
    struct buf held = s->held;
    s->held = (struct buf){0};
    if (held.len)
        session_data(s, held.data, held.len);
    buf_free(&held);
}

static void serve_mxdeliv(struct http_session *s)
{
    s->waiting = s->in_serve = true;
    mxdeliv_finish(s->mx, mx_done, s);
    s->in_serve = false;
    if (s->waiting) {
        conn_set_timeout(s->c, 0); /* our turn, not the client's */
        conn_pause(s->c);
    }
}

static void serve_request(struct http_session *s)
{
    if (s->mx) {
        serve_mxdeliv(s);
        return;
    }
    const char *path;
    size_t pl = http_req_path(&s->rd.req, &path);
    char pathbuf[LIM_HTTP_URL + 1], host[256];
    memcpy(pathbuf, path, pl);
    pathbuf[pl] = '\0';
    http_req_host(&s->rd.req, host, sizeof host);
    struct http_ctx x = {
        .conn = s->c, .cfg = conn_config(s->c), .peer_ip = conn_peer_ip(s->c),
        .req = &s->rd.req, .path = pathbuf, .host = host,
        .tls = conn_listener(s->c) == LK_HTTPS,
    };
    log_debug("http %s %s", llhttp_method_name((llhttp_method_t)s->rd.req.method), pathbuf);
    http_route(&x);
    if (x.proxy) {
        s->proxy = x.proxy;
        return;
    }
    if (!x.responded)
        http_respond_text(&x, 500, "500 Internal Server Error\n");
    if (x.close_after || s->rd.req.upgrade) {
        s->closing = true;
        conn_close(s->c);
    }
}

static void session_data(void *sp, const char *p, size_t n)
{
    struct http_session *s = sp;
    if (s->waiting && n > 0 && !s->closing) { /* paused, but a read was under way */
        if (s->held.len + n > LIM_READ_CHUNK * 4 || buf_append(&s->held, p, n) < 0) {
            s->closing = true;
            conn_close(s->c);
        }
        return;
    }
    while (n > 0 && !s->closing) {
        if (s->proxy) {
            proxy_client_data(s->proxy, p, n);
            return;
        }
        size_t used = 0;
        enum http_read_result r = http_reader_feed(&s->rd, p, n, &used);
        if (r == HTTP_READ_ERROR) {
            error_response(s, s->rd.error_status);
            return;
        }
        p += used;
        n -= used;
        if (r == HTTP_READ_MORE) {
            set_phase_timer(s);
            if (used == 0)
                return;
            continue;
        }
        serve_request(s);
        if (s->proxy)
            continue; /* the rest belongs to the proxied stream */
        if (s->waiting) { /* keep the rest for after the answer */
            session_data(s, p, n);
            return;
        }
        if (!s->closing)
            next_request(s);
    }
}

static void session_timeout(void *sp)
{
    struct http_session *s = sp;
    if (s->waiting) /* no timer runs then; only shutdown gets here */
        s->shutdown = true;
    else if (s->proxy)
        proxy_timeout(s->proxy);
    else if (s->rd.started)
        error_response(s, 408);
    else
        conn_close(s->c);
}

static void session_drained(void *sp)
{
    struct http_session *s = sp;
    if (s->proxy)
        proxy_client_drained(s->proxy);
}

static void session_closed(void *sp)
{
    struct http_session *s = sp;
    if (s->proxy)
        proxy_detach(s->proxy);
    mxdeliv_release(s->mx); /* cancels a message still in the pipeline */
    buf_free(&s->held);
    http_reader_free(&s->rd);
    free(s);
}

static void session_refuse(struct conn *c)
{
    static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
    conn_write(c, msg, sizeof msg - 1);
}

const struct session_ops http_session_ops = {
    .name = "http", .open = session_open, .data = session_data,
    .timeout = session_timeout, .shutdown = session_timeout, .drained = session_drained,
    .closed = session_closed, .refuse = session_refuse,
};
