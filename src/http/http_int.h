/* http_int.h: private to src/http: the site store, templates, QR codes,
 * /new credentials, well-known documents, address lists, the iroh-relay
 * proxy and small URL helpers. Nothing outside src/http includes it. */
#ifndef CM_HTTP_INTERNAL_H
#define CM_HTTP_INTERNAL_H

#include "core/limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/response.h"

struct config;


/* --- templates (tpl.c) --- */
struct tpl_var {
    const char *name;
    const char *value;
    bool raw;          /* inserted as is (HTML); else HTML-escaped */
};
/* Replaces every {{name}} in tpl with its variable. An unknown name or an
 * unclosed {{ is an error: returns -1 and names it in err. */
int tpl_render(const char *tpl, size_t len, const struct tpl_var *vars, size_t n_vars,
               struct buf *out, char *err, size_t errlen);
int html_escape(struct buf *out, const char *s, size_t len);

/* --- QR codes (qr.c) --- */
/* An SVG of data as a QR code (error correction H, 4-module quiet zone). */
int qr_svg(const char *data, size_t len, struct buf *out);

/* --- the site (site.c, www_embed.c) --- */
struct www_file {
    const char *name;
    const char *data;
    size_t len;
};
/* A file of www/ built into the binary (NUL-terminated), or NULL. */
const struct www_file *www_builtin_find(const char *name);
/* Serves a page of the site for path (GET/HEAD); false when there is none. */
bool site_serve(struct http_ctx *x);
const char *content_type_for(const char *name);

/* --- /new (newacct.c) --- */
/* Fills out with the JSON answer of /new for cfg (fresh random credentials). */
int newacct_json(const struct config *cfg, struct buf *out);
/* The dclogin: URL of §9.3 for email and password. */
int newacct_dclogin(const struct config *cfg, const char *email, const char *password,
                    struct buf *out);
/* Random credentials: user (username_max_length of a-z0-9) and password
 * (password_min_length + 3 printable ASCII, no space). */
int newacct_credentials(const struct config *cfg, struct buf *email, struct buf *password);

/* --- well-known documents (wellknown.c) --- */
int autoconfig_xml(const struct config *cfg, struct buf *out);
int mta_sts_txt(const struct config *cfg, struct buf *out);

/* --- helpers (util.c) --- */
/* Percent-decodes src into out; -1 on a bad escape, a NUL byte or when it
 * would exceed max bytes. plus_space: '+' means ' ' (query strings). */
int url_decode(const char *src, size_t len, bool plus_space, size_t max, struct buf *out);
/* The raw value of query parameter name in url (after '?'), or NULL. */
const char *url_query_param(const char *url, const char *name, size_t *len);
/* Appends s percent-encoded; bytes in `keep` and RFC 3986 unreserved ones stay. */
int url_encode(struct buf *out, const char *s, const char *keep);
/* True when ip (text) is loopback or matches an entry of list, a comma- or
 * space-separated list of IPs and CIDRs ("10.0.0.0/8, ::1"). */
bool ip_allowed(const char *ip, const char *list);

/* --- iroh-relay proxy (proxy.c) --- */
struct http_proxy;
/* Starts proxying the request in x to upstream ("http://host:port"). The
 * request line and headers are forwarded at once; after that every byte
 * from the client goes to proxy_client_data(). Answers 502 itself when the
 * upstream cannot be reached. Returns the proxy, or NULL after answering
 * an error. */
struct http_proxy *proxy_start(struct http_ctx *x, const char *upstream);
void proxy_client_data(struct http_proxy *p, const char *data, size_t n);
/* The client's output queue drained (resume reading the upstream). */
void proxy_client_drained(struct http_proxy *p);
/* The connection's timer fired: 502 while connecting, else close. */
void proxy_timeout(struct http_proxy *p);
/* The client connection is gone: close the upstream; p is freed. */
void proxy_detach(struct http_proxy *p);

/* --- the site's state (site.c) --- */
bool site_ready(void);

#endif
