/* router.c: the HTTP routes (spec §9.1-9.6).
 *
 * https port:  www.<d> -> 301 https://<d><uri>; /new and
 *   /cgi-bin/newemail.py; autoconfig; mta-sts.txt; /metrics; /qr.svg;
 *   /relay, /ping, /generate_204 (iroh-relay proxy); /mxdeliv and
 *   /mxdeliv/ (405 here; a POST is mxdeliv.c's, started by the session);
 *   the site's pages.
 * http port:   /.well-known/acme-challenge/ (the ACME hook), /metrics,
 *   everything else 301 to https. */
#include "http/router.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "core/config.h"
#include "core/gcra.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/http.h"
#include "http/http_int.h"
#include "http/mxdeliv.h"

#define NEW_RATE_PER_S 2 /* nginx limit_req for /new in self-signed mode */
#define NEW_BURST      5

static http_acme_hook acme_hook;
static struct gcra *new_limiter;

void http_set_acme_hook(http_acme_hook hook) { acme_hook = hook; }

static const struct config *cfg_of(struct http_ctx *x) { return x->cfg; }

static bool is_get(const struct http_ctx *x)
{
    return x->req->method == HTTP_GET || x->req->method == HTTP_HEAD;
}

static void respond_buf(struct http_ctx *x, int status, const char *type, struct buf *b)
{
    if (!b->data && b->len == 0)
        http_respond(x, status, type, "", "", 0);
    else
        http_respond(x, status, type, "", b->data, b->len);
    buf_free(b);
}

/* https://<host>[:port]<uri>, host being ours or mail_domain. */
static void redirect_https(struct http_ctx *x, const char *host)
{
    const struct config *c = cfg_of(x);
    struct buf loc = {0};
    buf_printf(&loc, "https://%s", host);
    if (c->https_port != 443)
        buf_printf(&loc, ":%d", c->https_port);
    const char *url = http_req_url(x->req);
    buf_append_str(&loc, url[0] == '/' ? url : "/");
    http_redirect(x, 301, loc.data ? loc.data : "/");
    buf_free(&loc);
}

static bool host_is(const char *host, const char *prefix, const char *domain)
{
    size_t pl = strlen(prefix);
    return strncmp(host, prefix, pl) == 0 && strcasecmp(host + pl, domain) == 0;
}

static bool allowed_new(struct http_ctx *x)
{
    if (!new_limiter)
        new_limiter = gcra_new(1000000000ull / NEW_RATE_PER_S, NEW_BURST, LIM_HTTP_NEW_KEYS);
    const char *ip = x->peer_ip ? x->peer_ip : "";
    return new_limiter && gcra_allow(new_limiter, ip, strlen(ip), uv_hrtime(), NULL);
}

static void route_new(struct http_ctx *x)
{
    const struct config *c = cfg_of(x);
    bool self = c->tls_mode == TLS_MODE_SELF;
    int m = x->req->method;
    if (m != HTTP_POST && !is_get(x)) {
        http_respond(x, 405, "text/plain; charset=utf-8", "Allow: GET, POST\r\n",
                     "405 Method Not Allowed\n", 23);
        return;
    }
    if (!self && m != HTTP_POST) {
        struct buf loc = {0};
        buf_printf(&loc, "dcaccount:https://%s/new", c->mail_domain_bare);
        http_redirect(x, 301, loc.data ? loc.data : "/");
        buf_free(&loc);
        return;
    }
    if (self && !allowed_new(x)) {
        http_respond_text(x, 503, "503 Service Unavailable: too many requests, try again later\n");
        return;
    }
    struct buf b = {0};
    if (newacct_json(c, &b) < 0) {
        buf_free(&b);
        http_respond_text(x, 500, "500 Internal Server Error\n");
        return;
    }
    buf_append_str(&b, "\n");
    respond_buf(x, 200, "application/json", &b);
}

static void route_doc(struct http_ctx *x, int (*make)(const struct config *, struct buf *),
                      const char *type)
{
    struct buf b = {0};
    if (!is_get(x)) {
        http_respond(x, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
                     "405 Method Not Allowed\n", 23);
    } else if (make(cfg_of(x), &b) < 0) {
        http_respond_text(x, 500, "500 Internal Server Error\n");
    } else {
        respond_buf(x, 200, type, &b);
        return;
    }
    buf_free(&b);
}

static void route_metrics(struct http_ctx *x)
{
    if (!ip_allowed(x->peer_ip, cfg_of(x)->metrics_allow)) {
        http_respond_text(x, 403, "403 Forbidden\n");
        return;
    }
    metrics_gauge_set(G_CONN_SMTP, net_sessions(PROTO_SMTP_MX));
    metrics_gauge_set(G_CONN_SUBMISSION, net_sessions(PROTO_SUBMISSION));
    metrics_gauge_set(G_CONN_IMAP, net_sessions(PROTO_IMAP));
    metrics_gauge_set(G_CONN_HTTP, net_sessions(PROTO_HTTP));
    struct buf b = {0};
    if (metrics_render(&b) < 0) {
        buf_free(&b);
        http_respond_text(x, 500, "500 Internal Server Error\n");
        return;
    }
    respond_buf(x, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

/* /qr.svg?data=<percent-encoded text>: the self-signed index page shows
 * the dclogin: link it fetched from /new as a QR code (no scripts from
 * elsewhere). Bounded input; nothing is stored or logged. */
static void route_qr(struct http_ctx *x)
{
    size_t len = 0;
    const char *raw = url_query_param(http_req_url(x->req), "data", &len);
    struct buf data = {0}, svg = {0};
    if (!raw || url_decode(raw, len, true, LIM_HTTP_QR_DATA, &data) < 0 || !data.data ||
        qr_svg(data.data, data.len, &svg) < 0) {
        http_respond_text(x, 400, "400 Bad Request: /qr.svg?data= needs 1 to 1024 bytes of text\n");
    } else {
        respond_buf(x, 200, "image/svg+xml", &svg);
    }
    buf_free(&data);
    buf_free(&svg);
}

/* The session hands every POST to mxdeliv.c before routing; one that
 * gets here found no memory for it. */
static void route_mxdeliv(struct http_ctx *x)
{
    int status = x->req->method != HTTP_POST ? 405 : 503;
    if (status == 405)
        http_respond(x, 405, "text/plain; charset=utf-8", "Allow: POST\r\n",
                     "Method Not Allowed", 18);
    else
        http_respond_text(x, 503, "451 4.3.0 Error: insufficient system resources");
    mxdeliv_count(status);
}

static void route_acme(struct http_ctx *x)
{
    const char *token = x->path + strlen("/.well-known/acme-challenge/");
    struct buf b = {0};
    if (is_get(x) && acme_hook && *token && !strchr(token, '/') && acme_hook(token, &b))
        respond_buf(x, 200, "application/octet-stream", &b);
    else {
        buf_free(&b);
        http_respond_text(x, 404, "404 Not Found\n");
    }
}

static void route_plain(struct http_ctx *x)
{
    const struct config *c = cfg_of(x);
    if (strncmp(x->path, "/.well-known/acme-challenge/", 28) == 0) {
        route_acme(x);
        return;
    }
    if (strcmp(x->path, "/metrics") == 0) {
        route_metrics(x);
        return;
    }
    const char *d = c->mail_domain_bare;
    bool ours = strcasecmp(x->host, d) == 0 || host_is(x->host, "www.", d) ||
                host_is(x->host, "mta-sts.", d);
    redirect_https(x, ours ? x->host : d);
}

struct route {
    const char *path;
    void (*fn)(struct http_ctx *x);
};

static void route_autoconfig(struct http_ctx *x)
{
    route_doc(x, autoconfig_xml, "application/xml; charset=utf-8");
}

static void route_mta_sts(struct http_ctx *x) { route_doc(x, mta_sts_txt, "text/plain; charset=utf-8"); }

static void route_iroh(struct http_ctx *x)
{
    if (x->conn)
        proxy_start(x, cfg_of(x)->iroh_relay_upstream);
    else
        http_respond_text(x, 502, "502 Bad Gateway: no connection to proxy\n");
}

static const struct route routes[] = {
    {"/new", route_new},
    {"/cgi-bin/newemail.py", route_new},
    {"/.well-known/autoconfig/mail/config-v1.1.xml", route_autoconfig},
    {"/.well-known/mta-sts.txt", route_mta_sts},
    {"/metrics", route_metrics},
    {"/qr.svg", route_qr},
    {"/mxdeliv", route_mxdeliv},
    {"/mxdeliv/", route_mxdeliv},
    {"/relay", route_iroh},
    {"/ping", route_iroh},
    {"/generate_204", route_iroh},
};

void http_route(struct http_ctx *x)
{
    if (!x->tls) {
        route_plain(x);
        return;
    }
    const struct config *c = cfg_of(x);
    if (host_is(x->host, "www.", c->mail_domain_bare)) {
        redirect_https(x, c->mail_domain_bare);
        return;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(x->path, routes[i].path) == 0) {
            routes[i].fn(x);
            return;
        }
    }
    if (!is_get(x))
        http_respond(x, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
                     "405 Method Not Allowed\n", 23);
    else if (!site_serve(x))
        http_respond_text(x, 404, "404 Not Found\n");
}
