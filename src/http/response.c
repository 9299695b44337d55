/* response.c: writing whole HTTP/1.1 responses (status line, headers,
 * body) with keep-alive or close as the request and the handler decide. */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "http/response.h"

const char *http_status_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 101: return "Switching Protocols";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 429: return "Too Many Requests";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
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
    if (x->out)
        buf_append(x->out, b.data, b.len);
    else
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

