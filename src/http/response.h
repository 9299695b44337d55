/* response.h: what a route handler gets (struct http_ctx) and how it
 * answers. Responses are written whole (status line, headers, body) and
 * say keep-alive or close as the request and the server decide. */
#ifndef CM_HTTP_RESPONSE_H
#define CM_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/net.h"
#include "http/request.h"

struct http_proxy;

struct http_ctx {
    struct conn *conn;     /* NULL in tests and the fuzzer: see out */
    const struct config *cfg;
    const char *peer_ip;   /* the client's address, for limits only */
    struct buf *out;       /* when set, responses are appended here instead
                              of written to conn */
    const struct http_request *req;
    const char *path;      /* URL path, NUL-terminated copy */
    const char *host;      /* Host without port, lower-cased ("" if none) */
    bool tls;              /* came over the https port */
    bool responded;
    bool close_after;      /* set by the handler: close after the response */
    struct http_proxy *proxy; /* set by a proxied route: the connection now
                                 belongs to the proxy */
};

/* Writes a complete response. extra_headers is "" or lines ending in CRLF. */
void http_respond(struct http_ctx *x, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len);
void http_respond_text(struct http_ctx *x, int status, const char *text);
void http_redirect(struct http_ctx *x, int status, const char *location);
const char *http_status_reason(int status);

#endif
