/* http.h: the HTTP module's public face: session handlers for the https
 * port (default of the ALPN dispatch) and the plain http port, the site
 * built at startup, and the hook the ACME module sets for
 * /.well-known/acme-challenge/ on the http port. */
#ifndef CM_HTTP_HTTP_H
#define CM_HTTP_HTTP_H

#include <stdbool.h>

#include "core/net.h"

struct buf;
struct config;

extern const struct session_ops http_session_ops;

/* Renders the built-in pages (or loads www_folder) from the configuration.
 * Called once before serving; the first HTTP session calls it if nobody
 * did. Returns 0, or -1 with a reason (the site then answers 404). */
int http_init(const struct config *cfg, char *err, size_t errlen);
/* Frees what http_init built. */
void http_cleanup(void);

/* ACME http-01: given the token from /.well-known/acme-challenge/<token>,
 * append the key authorization to out and return true, or return false
 * (404). Until a hook is set every challenge gets 404. */
typedef bool (*http_acme_hook)(const char *token, struct buf *out);
void http_set_acme_hook(http_acme_hook hook);

#endif
