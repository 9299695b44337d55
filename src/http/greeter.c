/* greeter.c: the HTTP front door until the web routes land: HTTP/1.1 on
 * llhttp with keep-alive, bounded URL and headers, `GET /` answered 200,
 * anything else 404; 400 for what llhttp cannot parse; 503 over the cap. */
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/limits.h"
#include "http/http.h"

struct greeter {
    struct conn *c;
    llhttp_t parser;
    size_t url_len;
    size_t header_bytes;
    char path[16]; /* the start of the URL: enough to recognise "/" */
    bool too_big;
};

static int on_message_begin(llhttp_t *p)
{
    struct greeter *g = p->data;
    g->url_len = 0;
    g->header_bytes = 0;
    g->path[0] = '\0';
    g->too_big = false;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct greeter *g = p->data;
    if (g->url_len + len > LIM_HTTP_URL) {
        g->too_big = true;
        return -1;
    }
    for (size_t i = 0; i < len && g->url_len + i < sizeof g->path - 1; i++) {
        g->path[g->url_len + i] = at[i];
        g->path[g->url_len + i + 1] = '\0';
    }
    g->url_len += len;
    return 0;
}

static int on_header_bytes(llhttp_t *p, const char *at, size_t len)
{
    struct greeter *g = p->data;
    (void)at;
    g->header_bytes += len;
    if (g->header_bytes > LIM_HTTP_HEADER_BYTES) {
        g->too_big = true;
        return -1;
    }
    return 0;
}

static void respond(struct greeter *g, int status, const char *reason, const char *body,
                    bool keep)
{
    conn_printf(g->c,
                "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s",
                status, reason, strlen(body), keep ? "keep-alive" : "close", body);
    if (!keep)
        conn_close(g->c);
}

static int on_message_complete(llhttp_t *p)
{
    struct greeter *g = p->data;
    bool keep = llhttp_should_keep_alive(p);
    bool get = p->method == HTTP_GET || p->method == HTTP_HEAD;
    size_t plen = strcspn(g->path, "?");
    bool root = plen == 1 && g->path[0] == '/';
    if (get && root) {
        char body[300];
        snprintf(body, sizeof body, "chatmaild-server %s\n", conn_config(g->c)->mail_domain);
        respond(g, 200, "OK", body, keep);
    } else {
        respond(g, 404, "Not Found", "not found\n", keep);
    }
    conn_set_timeout(g->c, LIM_HTTP_KEEPALIVE_MS);
    return 0;
}

static llhttp_settings_t settings;

static void *greeter_open(struct conn *c)
{
    struct greeter *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    if (!settings.on_message_complete) {
        llhttp_settings_init(&settings);
        settings.on_message_begin = on_message_begin;
        settings.on_url = on_url;
        settings.on_header_field = on_header_bytes;
        settings.on_header_value = on_header_bytes;
        settings.on_message_complete = on_message_complete;
    }
    g->c = c;
    llhttp_init(&g->parser, HTTP_REQUEST, &settings);
    g->parser.data = g;
    conn_set_timeout(c, LIM_HTTP_HEADER_MS);
    return g;
}

static void greeter_data(void *s, const char *p, size_t n)
{
    struct greeter *g = s;
    llhttp_errno_t e = llhttp_execute(&g->parser, p, n);
    if (e == HPE_OK)
        return;
    if (g->too_big)
        respond(g, 431, "Request Header Fields Too Large", "request too large\n", false);
    else
        respond(g, 400, "Bad Request", "bad request\n", false);
}

static void greeter_timeout(void *s)
{
    struct greeter *g = s;
    conn_close(g->c);
}

static void greeter_closed(void *s) { free(s); }

static void greeter_refuse(struct conn *c)
{
    static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
    conn_write(c, msg, sizeof msg - 1);
}

const struct session_ops http_session_ops = {
    .name = "http", .open = greeter_open, .data = greeter_data,
    .timeout = greeter_timeout, .shutdown = greeter_timeout,
    .closed = greeter_closed, .refuse = greeter_refuse,
};
