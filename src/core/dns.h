/* dns.h: asynchronous DNS on the loop: c-ares driven by libuv (one uv_poll
 * per resolver socket, one uv_timer for c-ares timeouts). No cache here.
 * Servers: the `dns_servers` config list (IP, IP:PORT, [IPv6]:PORT, bare
 * IPv6) when given, else the system's /etc/resolv.conf.
 *
 * Results are values: DNS_OK, DNS_NXDOMAIN (the name does not exist),
 * DNS_NODATA (it exists, no record of that type), DNS_TEMPFAIL (timeout,
 * SERVFAIL, REFUSED, unreachable: try again later), DNS_CANCELLED (the
 * resolver stopped), DNS_BADNAME. A result is valid during the callback
 * only. A callback may run before dns_txt/dns_mx/dns_addr returns (c-ares
 * answers some errors and numeric names at once); they then return NULL. */
#ifndef CM_CORE_DNS_H
#define CM_CORE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

enum dns_status { DNS_OK = 0, DNS_NXDOMAIN, DNS_NODATA, DNS_TEMPFAIL, DNS_CANCELLED, DNS_BADNAME };

struct dns_options {
    const char *const *servers; /* NULL or n_servers strings as in dns_servers */
    size_t n_servers;
    int timeout_ms;             /* first try; c-ares doubles it per round (0 = 2000) */
    int tries;                  /* rounds over all servers (0 = 3) */
};

struct dns_txt_result {
    enum dns_status status;
    const char *why; /* static text for logs */
    size_t n;        /* records; the strings of one record are joined */
    char **txt;
    size_t *len;
};

struct dns_mx {
    unsigned short pref;
    char *host; /* "" for the root (null MX, RFC 7505) */
};
struct dns_mx_result {
    enum dns_status status;
    const char *why;
    size_t n;
    struct dns_mx *mx; /* in preference order (equal ones in answer order) */
    bool null_mx;      /* exactly one MX, with host "." */
};

struct dns_addr_result {
    enum dns_status status;
    const char *why;
    size_t n;
    struct sockaddr_storage *addr; /* port 0; AF_INET and AF_INET6 */
};

/* Records of any type (dns_rr.h types) as presentation text. */
struct dns_rr_result {
    enum dns_status status;
    const char *why;
    size_t n;
    char *const *text;
};

typedef void (*dns_txt_cb)(void *arg, const struct dns_txt_result *r);
typedef void (*dns_rr_cb)(void *arg, const struct dns_rr_result *r);
typedef void (*dns_mx_cb)(void *arg, const struct dns_mx_result *r);
typedef void (*dns_addr_cb)(void *arg, const struct dns_addr_result *r);

struct dns;
struct dns_req;

/* One parsed server address. */
struct dns_server {
    int family;               /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int port;                 /* 53 when not given */
};
/* Parses "1.2.3.4", "1.2.3.4:5353", "2001:db8::1", "[2001:db8::1]",
 * "[2001:db8::1]:5353". 0 or -1. */
int dns_parse_server(const char *s, struct dns_server *out);

/* Starts a resolver on loop. NULL with *why on failure (bad server, no
 * resolv.conf servers, memory). */
struct dns *dns_start(uv_loop_t *loop, const struct dns_options *o, const char **why);
/* Cancels every pending request (their callbacks run with DNS_CANCELLED
 * unless dns_cancel'led), closes sockets and handles; the memory goes once
 * libuv has closed the handles. Safe to call from a DNS callback. */
void dns_stop(struct dns *d);

/* Lookups of `name` (absolute; no search list). A handle, or NULL when the
 * callback already ran. */
struct dns_req *dns_txt(struct dns *d, const char *name, dns_txt_cb cb, void *arg);
struct dns_req *dns_mx(struct dns *d, const char *name, dns_mx_cb cb, void *arg);
struct dns_req *dns_addr(struct dns *d, const char *name, dns_addr_cb cb, void *arg);
/* type: DNS_T_* of dns_rr.h (NS, CNAME, MX, TXT, SRV, CAA). */
struct dns_req *dns_rr(struct dns *d, const char *name, int type, dns_rr_cb cb, void *arg);
/* The callback of r will not run (r is freed when c-ares lets go of it). */
void dns_cancel(struct dns_req *r);
/* Requests in flight (for tests and shutdown). */
size_t dns_pending(const struct dns *d);

#endif
