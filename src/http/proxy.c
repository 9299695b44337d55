/* proxy.c: /relay, /ping and /generate_204 passed to iroh-relay, as nginx
 * does (spec §9.2, §11.1). One outbound TCP connection per request on the
 * loop: the request line and headers go up (HTTP/1.1; Upgrade and
 * "Connection: Upgrade" kept for /relay, "Connection: close" otherwise),
 * then bytes are piped both ways unparsed: the upstream's response (a 101
 * and the websocket stream, or a plain answer) to the client, and for an
 * upgrade the client's bytes up. Either side closing ends both. Each
 * direction stops reading when the other side has LIM_HTTP_PROXY_BUF bytes
 * queued. An unreachable upstream gets a 502 with a plain-text reason.
 * Only the upgrades iroh-relay speaks (websocket, "iroh derp http") are
 * passed (others: 400); the client's X-Forwarded-For, Forwarded, X-Real-IP
 * and X-Forwarded-Proto/Host are dropped and our X-Forwarded-For (the peer
 * address) is sent instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "core/limits.h"
#include "core/log.h"
#include "http/http_int.h"

#define PROXY_CONNECT_MS (10 * 1000)

struct http_proxy {
    struct conn *c;        /* NULL once the client connection is gone */
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct buf early;      /* bytes for the upstream before it is connected */
    size_t inflight;       /* bytes in uv_write requests */
    bool connected, upgrade, got_response, up_paused, client_paused, tcp_closing, tcp_closed;
};

struct wreq {
    uv_write_t req;
    struct http_proxy *p;
    size_t len;
    char data[];
};

static void on_tcp_closed(uv_handle_t *h)
{
    struct http_proxy *p = h->data;
    p->tcp_closed = true;
    if (!p->c) {
        buf_free(&p->early);
        free(p);
    }
}

static void close_tcp(struct http_proxy *p)
{
    if (!p->tcp_closing) {
        p->tcp_closing = true;
        uv_close((uv_handle_t *)&p->tcp, on_tcp_closed);
    }
}

static void fail_502(struct http_proxy *p, const char *why)
{
    if (p->c && !p->got_response) {
        char body[200];
        int n = snprintf(body, sizeof body, "502 Bad Gateway: the iroh relay %s\n", why);
        conn_printf(p->c, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n"
                          "Content-Length: %d\r\nConnection: close\r\n\r\n%s", n, body);
        log_warn("http proxy: iroh relay %s", why);
    }
    if (p->c)
        conn_close(p->c);
    close_tcp(p);
}

static void on_written(uv_write_t *w, int status)
{
    struct wreq *r = (struct wreq *)w;
    struct http_proxy *p = r->p;
    p->inflight -= r->len;
    free(r);
    if (status < 0 || !p->c)
        return;
    if (p->client_paused && p->inflight < LIM_HTTP_PROXY_BUF / 2) {
        p->client_paused = false;
        conn_resume(p->c);
    }
}

static void send_up(struct http_proxy *p, const char *data, size_t n)
{
    if (n == 0 || p->tcp_closing)
        return;
    if (!p->connected) {
        if (buf_append(&p->early, data, n) < 0)
            fail_502(p, "request could not be buffered");
        return;
    }
    struct wreq *r = malloc(sizeof *r + n);
    if (!r) {
        fail_502(p, "request could not be buffered");
        return;
    }
    r->p = p;
    r->len = n;
    memcpy(r->data, data, n);
    uv_buf_t b = uv_buf_init(r->data, (unsigned)n);
    if (uv_write(&r->req, (uv_stream_t *)&p->tcp, &b, 1, on_written) < 0) {
        free(r);
        fail_502(p, "connection failed");
        return;
    }
    p->inflight += n;
    if (p->c && p->inflight > LIM_HTTP_PROXY_BUF && !p->client_paused) {
        p->client_paused = true;
        conn_pause(p->c);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char chunk[LIM_READ_CHUNK];
    (void)h;
    (void)hint;
    *b = uv_buf_init(chunk, sizeof chunk);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct http_proxy *p = s->data;
    if (n < 0) {
        if (!p->got_response)
            fail_502(p, "closed the connection without an answer");
        else {
            if (p->c)
                conn_close(p->c);
            close_tcp(p);
        }
        return;
    }
    if (n == 0 || !p->c)
        return;
    p->got_response = true;
    conn_write(p->c, b->base, (size_t)n);
    conn_set_timeout(p->c, LIM_HTTP_PROXY_IDLE_MS);
    if (conn_pending(p->c) > LIM_HTTP_PROXY_BUF) {
        uv_read_stop(s);
        p->up_paused = true;
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct http_proxy *p = req->data;
    if (p->tcp_closing)
        return;
    if (status < 0) {
        char why[120];
        snprintf(why, sizeof why, "is not reachable (%s)", uv_strerror(status));
        fail_502(p, why);
        return;
    }
    p->connected = true;
    if (p->c)
        conn_set_timeout(p->c, LIM_HTTP_PROXY_IDLE_MS);
    struct buf early = p->early;
    memset(&p->early, 0, sizeof p->early);
    send_up(p, early.data, early.len);
    buf_free(&early);
    uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
}

/* "http://host:port[/...]" with an IP literal or localhost. */
static int parse_upstream(const char *url, struct sockaddr_storage *sa)
{
    char host[64];
    long port = 80;
    if (strncasecmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7, *end;
    if (*h == '[') {
        end = strchr(h, ']');
        if (!end || (size_t)(end - h - 1) >= sizeof host)
            return -1;
        memcpy(host, h + 1, (size_t)(end - h - 1));
        host[end - h - 1] = '\0';
        end++;
    } else {
        size_t n = strcspn(h, ":/");
        if (n == 0 || n >= sizeof host)
            return -1;
        memcpy(host, h, n);
        host[n] = '\0';
        end = h + n;
    }
    if (*end == ':') {
        char *e;
        port = strtol(end + 1, &e, 10);
        if (e == end + 1 || port <= 0 || port > 65535 || (*e && *e != '/'))
            return -1;
    }
    if (strcasecmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa) == 0)
        return 0;
    return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)sa) == 0 ? 0 : -1;
}

/* Headers not passed up: hop-by-hop ones, and what says who the client
 * is (the client's own X-Forwarded-For / Forwarded / X-Real-IP would be
 * believed upstream; ours replaces them). */
static bool hop_by_hop(const char *name, size_t len)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "te",
                                        "trailer", "transfer-encoding", "content-length",
                                        "upgrade", "x-forwarded-for", "forwarded", "x-real-ip",
                                        "x-forwarded-proto", "x-forwarded-host"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
            return true;
    return false;
}

/* The upgrades iroh-relay speaks: its own protocol and websockets. */
static bool upgrade_allowed(const char *up)
{
    return up && (strcasecmp(up, "websocket") == 0 || strcasecmp(up, "iroh derp http") == 0);
}

static int request_head(const struct http_request *q, bool upgrade, const char *peer,
                        struct buf *out)
{
    int rc = buf_printf(out, "%s %s HTTP/1.1\r\n", llhttp_method_name((llhttp_method_t)q->method),
                        http_req_url(q));
    for (size_t i = 0; i < q->n_hdr; i++) {
        const struct http_header *h = &q->hdr[i];
        if (hop_by_hop(q->arena.data + h->name_off, h->name_len))
            continue;
        rc |= buf_printf(out, "%s: %s\r\n", q->arena.data + h->name_off,
                         q->arena.data + h->value_off);
    }
    if (peer && *peer)
        rc |= buf_printf(out, "X-Forwarded-For: %s\r\n", peer);
    const char *up = http_req_header(q, "Upgrade");
    if (upgrade && up)
        rc |= buf_printf(out, "Upgrade: %s\r\nConnection: Upgrade\r\n", up);
    else
        rc |= buf_append_str(out, "Connection: close\r\n");
    if (q->body.len || q->method == HTTP_POST || q->method == HTTP_PUT)
        rc |= buf_printf(out, "Content-Length: %zu\r\n", q->body.len);
    rc |= buf_append_str(out, "\r\n");
    rc |= buf_append(out, q->body.data, q->body.len);
    return rc ? -1 : 0;
}

struct http_proxy *proxy_start(struct http_ctx *x, const char *upstream)
{
    struct sockaddr_storage sa;
    if (!upstream || parse_upstream(upstream, &sa) < 0) {
        http_respond_text(x, 502, "502 Bad Gateway: iroh_relay_upstream is not an http://IP:PORT URL\n");
        x->close_after = true;
        return NULL;
    }
    if (x->req->upgrade && !upgrade_allowed(http_req_header(x->req, "Upgrade"))) {
        http_respond_text(x, 400, "400 Bad Request: unsupported Upgrade\n");
        x->close_after = true;
        return NULL;
    }
    struct http_proxy *p = calloc(1, sizeof *p);
    if (!p || request_head(x->req, x->req->upgrade, conn_peer_ip(x->conn), &p->early) < 0 ||
        uv_tcp_init(net_loop(), &p->tcp) < 0) {
        if (p)
            buf_free(&p->early);
        free(p);
        http_respond_text(x, 500, "500 Internal Server Error\n");
        x->close_after = true;
        return NULL;
    }
    p->c = x->conn;
    p->upgrade = x->req->upgrade;
    p->tcp.data = p;
    p->creq.data = p;
    x->responded = true;
    x->proxy = p;
    int rc = uv_tcp_connect(&p->creq, &p->tcp, (const struct sockaddr *)&sa, on_connect);
    if (rc < 0) {
        char why[120];
        snprintf(why, sizeof why, "is not reachable (%s)", uv_strerror(rc));
        fail_502(p, why);
        return p;
    }
    if (!p->upgrade)
        conn_pause(p->c); /* one request per connection; the rest waits */
    conn_set_timeout(p->c, PROXY_CONNECT_MS);
    return p;
}

void proxy_client_data(struct http_proxy *p, const char *data, size_t n)
{
    if (p->upgrade)
        send_up(p, data, n);
    if (p->c)
        conn_set_timeout(p->c, p->connected ? LIM_HTTP_PROXY_IDLE_MS : PROXY_CONNECT_MS);
}

void proxy_client_drained(struct http_proxy *p)
{
    if (p->up_paused && p->connected && !p->tcp_closing) {
        p->up_paused = false;
        uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
    }
}

void proxy_timeout(struct http_proxy *p)
{
    if (!p->connected)
        fail_502(p, "did not accept the connection in time");
    else {
        conn_close(p->c);
        close_tcp(p);
    }
}

void proxy_detach(struct http_proxy *p)
{
    p->c = NULL;
    if (p->tcp_closed) {
        buf_free(&p->early);
        free(p);
    } else {
        close_tcp(p);
    }
}
