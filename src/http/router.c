/* router.c: the HTTP routes. The https port serves the site; the plain
 * http port redirects to https. */
#include "http/router.h"

#include <stdio.h>
#include <string.h>

#include "core/config.h"

static void route_index(struct http_ctx *x)
{
    char body[300];
    snprintf(body, sizeof body, "chatmaild-server %s\n", conn_config(x->conn)->mail_domain);
    http_respond(x, 200, "text/plain; charset=utf-8", "", body, strlen(body));
}

void http_route(struct http_ctx *x)
{
    int m = x->req->method;
    if ((m == HTTP_GET || m == HTTP_HEAD) && strcmp(x->path, "/") == 0) {
        route_index(x);
        return;
    }
    http_respond_text(x, 404, "Not Found\n");
}
