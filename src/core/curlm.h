/* curlm.h: HTTPS requests on the loop: one libcurl multi handle driven by
 * libuv (CURLMOPT_SOCKETFUNCTION -> one uv_poll per socket,
 * CURLMOPT_TIMERFUNCTION -> one uv_timer). Connections (and TLS sessions)
 * are reused across requests to the same host; HTTP/2 is used when the
 * peer offers it over ALPN. Callbacks run on the loop thread.
 *
 * Certificate checks: the system roots plus `ca_file` (added to the roots,
 * not replacing them) and the host name of the URL; `insecure` turns both
 * off (for `_`-domains and address literals, federation facts §3).
 * `pin_addr` makes the URL's host connect to that address (the caller's
 * own MX/A lookup decides; the certificate is still checked for the
 * host name). Loop thread only. */
#ifndef CM_CORE_CURLM_H
#define CM_CORE_CURLM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#define CURLM_BODY_KEEP 1024 /* bytes of the answer kept by default */
#define CURLM_BODY_MAX (1u << 20) /* the largest body_max */
#define CURLM_HDR_KEEP 1024 /* bytes kept of each captured response header */
#define CURLM_ERR_CANCELLED (-1) /* curl_code of a request curlm_stop ended */

struct curlm;
struct curlm_req;

struct curlm_post {
    const char *url;                /* https://host[:port]/path */
    const char *const *headers;     /* "Name: value" lines, without CRLF */
    size_t n_headers;
    const char *body;               /* must stay valid until the callback */
    size_t body_len;
    unsigned connect_timeout_ms;    /* 0 = 5000 */
    unsigned timeout_ms;            /* whole request; 0 = 60000 */
    const char *ca_file;            /* extra trusted roots (PEM), or NULL */
    bool insecure;                  /* no certificate or host name check */
    const struct sockaddr_storage *pin_addr; /* NULL = resolve the host */
    const char *method;             /* NULL or "POST" (the body is sent), "GET", "HEAD" */
    size_t body_max;                /* bytes of the answer kept; 0 = CURLM_BODY_KEEP,
                                       at most CURLM_BODY_MAX */
    bool keep_headers;              /* capture Location, Replay-Nonce, Link, Retry-After,
                                       Content-Type of the answer */
};

struct curlm_result {
    long status;        /* HTTP status, 0 when no answer came */
    int curl_code;      /* CURLE_OK (0), a CURLcode, or CURLM_ERR_CANCELLED */
    const char *error;  /* "" or why (curl's error text) */
    const char *body;   /* the first body_max bytes of the answer */
    size_t body_len;
    bool body_truncated; /* the answer was longer than body_max */
    /* with keep_headers (else ""): the last value of each header, cut at
     * CURLM_HDR_KEEP - 1 bytes; Link: every value joined with ", " */
    const char *location, *replay_nonce, *link, *content_type;
    long retry_after;   /* seconds (delta form only), -1 when absent */
};
typedef void (*curlm_cb)(void *ud, const struct curlm_result *r);

/* NULL with *why when libcurl cannot be set up. */
struct curlm *curlm_start(uv_loop_t *loop, const char **why);
/* Ends every request (their callbacks run with CURLM_ERR_CANCELLED), closes
 * the sockets and handles; the memory goes once libuv closed them. */
void curlm_stop(struct curlm *m);

/* Starts the request (a POST unless p->method says otherwise); cb runs
 * exactly once, later (never inside this call). Returns NULL (cb will not
 * run) on bad arguments or memory. */
struct curlm_req *curlm_post(struct curlm *m, const struct curlm_post *p, curlm_cb cb,
                             void *ud);
/* At most n connections per host (0 = no limit, the default); requests
 * beyond wait inside curl for a free one (HTTP/2 multiplexes them over
 * one connection anyway). Each new connection costs a TLS handshake; the
 * trust store for a ca_file (system roots + the file) is built once and
 * shared, and built again only when the file changes. */
void curlm_set_max_host_connections(struct curlm *m, long n);
/* Requests in flight. */
size_t curlm_pending(const struct curlm *m);

#endif
