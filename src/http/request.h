/* request.h: a sans-I/O HTTP/1.1 request reader on llhttp. Bytes go in;
 * out come complete requests (method, target, the headers we keep, the
 * body) one at a time, or an HTTP error status for what cannot be served
 * (400 malformed, 414 URL too long, 431 headers too large, 413 body too
 * large). Pipelined bytes after a request stay with the caller. */
#ifndef CM_HTTP_REQUEST_H
#define CM_HTTP_REQUEST_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define HTTP_MAX_KEPT_HEADERS 32 /* unless the owner raises max_headers (/mxdeliv) */

struct http_header {
    size_t name_off, name_len, value_off, value_len; /* into http_request.arena */
};

struct http_request {
    int method;                 /* llhttp_method_t */
    struct buf arena;           /* header names/values and the URL, NUL-separated */
    size_t url_off, url_len;
    struct http_header *hdr;    /* grown up to the reader's max_headers */
    size_t n_hdr, hdr_cap;
    struct buf body;
    bool keep_alive;
    bool upgrade;               /* Connection: upgrade + Upgrade: ... */
    unsigned http_minor;
};

enum http_read_result { HTTP_READ_MORE, HTTP_READ_DONE, HTTP_READ_ERROR };

struct http_reader {
    llhttp_t parser;
    struct http_request req;
    size_t header_bytes;
    size_t body_bytes;          /* of this request so far */
    size_t default_body_limit;  /* body_limit of every new request */
    size_t body_limit;          /* set by the owner; may change per path in on_headers */
    size_t max_headers;         /* HTTP_MAX_KEPT_HEADERS unless raised in on_target */
    size_t max_header_bytes;    /* LIM_HTTP_HEADER_BYTES unless raised in on_target */
    int error_status;           /* with HTTP_READ_ERROR */
    bool in_field;              /* last header callback was a field */
    bool started;               /* a request has begun (for timeouts) */
    bool headers_done;          /* its headers are complete (body phase) */
    bool done;
    /* Called when the headers are complete, before any body byte: the owner
     * may set body_limit from the path (e.g. /mxdeliv). Optional. */
    void (*on_headers)(void *ud, struct http_reader *r);
    /* Called when the request target is complete, before any header: the
     * owner may raise max_headers and max_header_bytes for the path (the
     * method is r->parser.method). Optional. */
    void (*on_target)(void *ud, struct http_reader *r);
    /* When set (in on_headers), body bytes go here instead of req.body and
     * body_limit still applies; -1 fails the request with 500. */
    int (*body_sink)(void *sink_ud, const char *p, size_t n);
    void *sink_ud;
    void *ud;
};

void http_reader_init(struct http_reader *r, size_t body_limit);
void http_reader_free(struct http_reader *r);
/* Consumes bytes. *used is how many were taken; on HTTP_READ_DONE the
 * request is in r->req until http_reader_next() prepares for the next one
 * (limits and the body sink back to their defaults). */
enum http_read_result http_reader_feed(struct http_reader *r, const char *p, size_t n, size_t *used);
void http_reader_next(struct http_reader *r);

/* Accessors on a complete request. */
const char *http_req_url(const struct http_request *q);
/* The URL path without the query ("" if the URL is not origin-form). */
size_t http_req_path(const struct http_request *q, const char **path);
/* First header with that name (case-insensitive), or NULL. */
const char *http_req_header(const struct http_request *q, const char *name);
/* The n-th header with that name (for repeatable headers such as X-MAIL-TO). */
const char *http_req_header_nth(const struct http_request *q, const char *name, size_t nth);
/* Host header without port, lower-cased into out; "" when none. */
void http_req_host(const struct http_request *q, char *out, size_t outlen);

#endif
