/* session.c: one HTTP/1.1 connection: reads requests with the sans-I/O
 * reader, routes each, writes the response, keeps the connection alive as
 * the client asks, and cuts slow clients by state (headers, body, idle). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/limits.h"
#include "http/http.h"
#include "http/request.h"
#include "http/response.h"
#include "http/router.h"

struct http_session {
    struct conn *c;
    struct http_reader rd;
    bool closing;
};

static void *session_open(struct conn *c)
{
    struct http_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->c = c;
    http_reader_init(&s->rd, LIM_HTTP_BODY);
    conn_set_timeout(c, LIM_HTTP_HEADER_MS);
    return s;
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

void http_respond(struct http_ctx *x, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len)
{
    bool keep = x->req && x->req->keep_alive && !x->close_after;
    bool head = x->req && x->req->method == HTTP_HEAD;
    struct buf b = {0};
    buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, http_status_reason(status));
    if (content_type)
        buf_printf(&b, "Content-Type: %s\r\n", content_type);
    buf_printf(&b, "Content-Length: %zu\r\n%s%s\r\n", len, extra_headers ? extra_headers : "",
               keep ? "" : "Connection: close\r\n");
    if (!head)
        buf_append(&b, body, len);
    conn_write(x->conn, b.data, b.len);
    buf_free(&b);
    x->responded = true;
    if (!keep)
        x->close_after = true;
}

void http_respond_text(struct http_ctx *x, int status, const char *text)
{
    http_respond(x, status, "text/plain; charset=utf-8", "", text, strlen(text));
}

void http_redirect(struct http_ctx *x, int status, const char *location)
{
    char hdr[2300];
    snprintf(hdr, sizeof hdr, "Location: %s\r\n", location);
    http_respond(x, status, "text/plain; charset=utf-8", hdr, "", 0);
}

static void error_response(struct http_session *s, int status)
{
    struct http_ctx x = {.conn = s->c, .req = NULL, .path = "", .host = ""};
    char text[64];
    snprintf(text, sizeof text, "%d %s\n", status, http_status_reason(status));
    http_respond(&x, status, "text/plain; charset=utf-8", "", text, strlen(text));
    s->closing = true;
    conn_close(s->c);
}

static void serve_request(struct http_session *s)
{
    const char *path;
    size_t pl = http_req_path(&s->rd.req, &path);
    char pathbuf[LIM_HTTP_URL + 1], host[256];
    memcpy(pathbuf, path, pl);
    pathbuf[pl] = '\0';
    http_req_host(&s->rd.req, host, sizeof host);
    struct http_ctx x = {
        .conn = s->c, .req = &s->rd.req, .path = pathbuf, .host = host,
        .tls = conn_listener(s->c) == LK_HTTPS,
    };
    http_route(&x);
    if (!x.responded)
        http_respond_text(&x, 500, "500 Internal Server Error\n");
    if (x.close_after) {
        s->closing = true;
        conn_close(s->c);
    }
}

static void session_data(void *sp, const char *p, size_t n)
{
    struct http_session *s = sp;
    while (n > 0 && !s->closing) {
        size_t used = 0;
        enum http_read_result r = http_reader_feed(&s->rd, p, n, &used);
        if (r == HTTP_READ_ERROR) {
            error_response(s, s->rd.error_status);
            return;
        }
        p += used;
        n -= used;
        if (r == HTTP_READ_MORE) {
            conn_set_timeout(s->c, s->rd.started ? LIM_HTTP_BODY_MS : LIM_HTTP_HEADER_MS);
            if (used == 0)
                return;
            continue;
        }
        serve_request(s);
        http_reader_next(&s->rd);
        conn_set_timeout(s->c, LIM_HTTP_KEEPALIVE_MS);
    }
}

static void session_timeout(void *sp)
{
    struct http_session *s = sp;
    if (s->rd.started)
        error_response(s, 408);
    else
        conn_close(s->c);
}

static void session_closed(void *sp)
{
    struct http_session *s = sp;
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
    .timeout = session_timeout, .shutdown = session_timeout,
    .closed = session_closed, .refuse = session_refuse,
};
