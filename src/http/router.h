/* router.h: maps a request (host, path, method) to its handler. */
#ifndef CM_HTTP_ROUTER_H
#define CM_HTTP_ROUTER_H

#include "http/response.h"

/* Answers the request in x (always responds). */
void http_route(struct http_ctx *x);

#endif
