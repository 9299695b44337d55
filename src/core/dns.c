/* dns.c: c-ares on the libuv loop (see dns.h). c-ares tells us through
 * sock_state_cb which sockets to watch; each gets a uv_poll. One uv_timer
 * follows ares_timeout() so retries and timeouts fire without a busy loop.
 * Stopping from inside a c-ares callback is deferred until c-ares has
 * returned to us, because a channel must not be destroyed under itself. */
#include "core/dns.h"
#include "core/dns_rr.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_EDNS_SIZE 1232 /* the DNS flag day 2020 UDP size */
#define DNS_MAX_RECORDS 64 /* records kept of one answer */

struct pollent {
    uv_poll_t poll;
    ares_socket_t fd;
    struct dns *d;
    struct pollent *next;
};

struct dns {
    uv_loop_t *loop;
    ares_channel ch;
    uv_timer_t timer;
    struct pollent *polls;
    size_t open_handles; /* timer + polls not yet closed */
    size_t pending;
    int in_process;      /* depth of calls into c-ares */
    bool stop_requested, stopped;
};

enum req_kind { REQ_TXT, REQ_MX, REQ_ADDR, REQ_RR };

struct dns_req {
    struct dns *d;
    enum req_kind kind;
    union {
        dns_txt_cb txt;
        dns_mx_cb mx;
        dns_addr_cb addr;
        dns_rr_cb rr;
    } cb;
    int type;                  /* REQ_RR */
    void *arg;
    bool cancelled, starting, finished;
};

static int lib_refs;

int dns_parse_server(const char *s, struct dns_server *out)
{
    char host[64];
    const char *port = NULL;
    memset(out, 0, sizeof *out);
    out->family = AF_INET;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || (size_t)(close - s - 1) >= sizeof host)
            return -1;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        out->family = AF_INET6;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return -1;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {
            out->family = AF_INET6; /* a bare IPv6 address, no port */
            colon = NULL;
        }
        size_t hl = colon ? (size_t)(colon - s) : strlen(s);
        if (hl >= sizeof host)
            return -1;
        memcpy(host, s, hl);
        host[hl] = '\0';
        port = colon ? colon + 1 : NULL;
    }
    if (inet_pton(out->family, host, out->addr) != 1)
        return -1;
    out->port = 53;
    if (port) {
        long p = 0;
        if (!*port || strlen(port) > 5)
            return -1;
        for (const char *c = port; *c; c++) {
            if (*c < '0' || *c > '9')
                return -1;
            p = p * 10 + (*c - '0');
        }
        if (p < 1 || p > 65535)
            return -1;
        out->port = (int)p;
    }
    return 0;
}

static void maybe_free(struct dns *d)
{
    if (d->stopped && d->open_handles == 0) {
        free(d);
        if (--lib_refs == 0)
            ares_library_cleanup();
    }
}

static void handle_closed(uv_handle_t *h)
{
    struct dns *d;
    if (h->type == UV_POLL) {
        struct pollent *pe = h->data;
        d = pe->d;
        free(pe);
    } else {
        d = h->data;
    }
    d->open_handles--;
    maybe_free(d);
}

static void on_timer(uv_timer_t *t);

static void update_timer(struct dns *d)
{
    struct timeval tv;
    if (d->stopped)
        return;
    if (ares_timeout(d->ch, NULL, &tv)) {
        uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
        uv_timer_start(&d->timer, on_timer, ms, 0);
    } else {
        uv_timer_stop(&d->timer);
    }
}

static void do_stop(struct dns *d)
{
    d->stopped = true;
    d->in_process++;
    ares_cancel(d->ch);
    ares_destroy(d->ch); /* closes its sockets through sock_state_cb */
    d->in_process--;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, handle_closed);
}

static void after_process(struct dns *d)
{
    if (d->stop_requested && !d->stopped && d->in_process == 0)
        do_stop(d);
    else
        update_timer(d);
}

static void on_timer(uv_timer_t *t)
{
    struct dns *d = t->data;
    d->in_process++;
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    d->in_process--;
    after_process(d);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pollent *pe = h->data;
    struct dns *d = pe->d;
    ares_socket_t fd = pe->fd;
    d->in_process++;
    if (status < 0)
        ares_process_fd(d->ch, fd, fd);
    else
        ares_process_fd(d->ch, (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
                        (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
    d->in_process--;
    after_process(d);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    struct pollent **pp = &d->polls;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    struct pollent *pe = *pp;
    if (readable || writable) {
        if (!pe) {
            pe = calloc(1, sizeof *pe);
            if (!pe || uv_poll_init_socket(d->loop, &pe->poll, fd) != 0) {
                free(pe); /* c-ares will time the query out */
                return;
            }
            pe->fd = fd;
            pe->d = d;
            pe->poll.data = pe;
            pe->next = d->polls;
            d->polls = pe;
            d->open_handles++;
        }
        uv_poll_start(&pe->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                      on_poll);
    } else if (pe) {
        *pp = pe->next;
        uv_poll_stop(&pe->poll);
        uv_close((uv_handle_t *)&pe->poll, handle_closed);
    }
}

static int set_servers(struct dns *d, const struct dns_options *o, const char **why)
{
    struct ares_addr_port_node *nodes = calloc(o->n_servers, sizeof *nodes);
    if (!nodes) {
        *why = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < o->n_servers; i++) {
        struct dns_server s;
        if (dns_parse_server(o->servers[i], &s) < 0) {
            free(nodes);
            *why = "bad dns_servers entry";
            return -1;
        }
        nodes[i].family = s.family;
        if (s.family == AF_INET)
            memcpy(&nodes[i].addr.addr4, s.addr, 4);
        else
            memcpy(&nodes[i].addr.addr6, s.addr, 16);
        nodes[i].udp_port = nodes[i].tcp_port = s.port;
        nodes[i].next = i + 1 < o->n_servers ? &nodes[i + 1] : NULL;
    }
    int rc = ares_set_servers_ports(d->ch, nodes);
    free(nodes);
    if (rc != ARES_SUCCESS) {
        *why = "c-ares refused the server list";
        return -1;
    }
    return 0;
}

struct dns *dns_start(uv_loop_t *loop, const struct dns_options *o, const char **why)
{
    if (lib_refs == 0 && ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        *why = "c-ares library init failed";
        return NULL;
    }
    lib_refs++;
    struct dns *d = calloc(1, sizeof *d);
    if (!d) {
        *why = "out of memory";
        goto fail;
    }
    d->loop = loop;
    struct ares_options opts;
    memset(&opts, 0, sizeof opts);
    opts.sock_state_cb = sock_state;
    opts.sock_state_cb_data = d;
    opts.timeout = o && o->timeout_ms > 0 ? o->timeout_ms : 2000;
    opts.tries = o && o->tries > 0 ? o->tries : 3;
    opts.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH;
    opts.ednspsz = DNS_EDNS_SIZE;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
               ARES_OPT_EDNSPSZ;
    if (ares_init_options(&d->ch, &opts, mask) != ARES_SUCCESS) {
        *why = "c-ares channel init failed (resolv.conf?)";
        free(d);
        goto fail;
    }
    if (o && o->n_servers && set_servers(d, o, why) < 0) {
        ares_destroy(d->ch);
        free(d);
        goto fail;
    }
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    d->open_handles = 1;
    return d;
fail:
    if (--lib_refs == 0)
        ares_library_cleanup();
    return NULL;
}

void dns_stop(struct dns *d)
{
    if (!d || d->stop_requested)
        return;
    d->stop_requested = true;
    if (d->in_process == 0)
        do_stop(d);
}

size_t dns_pending(const struct dns *d)
{
    return d->pending;
}

void dns_cancel(struct dns_req *r)
{
    if (r)
        r->cancelled = true;
}

static enum dns_status map_status(int st, const char **why)
{
    switch (st) {
    case ARES_SUCCESS: *why = "ok"; return DNS_OK;
    case ARES_ENOTFOUND: *why = "no such domain (NXDOMAIN)"; return DNS_NXDOMAIN;
    case ARES_ENODATA: *why = "no record of that type"; return DNS_NODATA;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: *why = "resolver stopped"; return DNS_CANCELLED;
    case ARES_EBADNAME: *why = "bad name"; return DNS_BADNAME;
    case ARES_ETIMEOUT: *why = "timeout"; return DNS_TEMPFAIL;
    case ARES_ESERVFAIL: *why = "server failure (SERVFAIL)"; return DNS_TEMPFAIL;
    case ARES_EREFUSED: *why = "query refused"; return DNS_TEMPFAIL;
    case ARES_ECONNREFUSED: *why = "connection refused"; return DNS_TEMPFAIL;
    default: *why = ares_strerror(st); return DNS_TEMPFAIL;
    }
}

/* After the user callback: the request goes, unless its starter is still
 * inside the ares call (it frees it and returns NULL). */
static void req_done(struct dns_req *r)
{
    r->d->pending--;
    if (r->starting)
        r->finished = true;
    else
        free(r);
}

static void txt_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_req *r = arg;
    struct dns_txt_result res = {.status = DNS_OK};
    struct ares_txt_ext *txt = NULL;
    char *store[DNS_MAX_RECORDS];
    size_t lens[DNS_MAX_RECORDS];
    (void)timeouts;
    if (status == ARES_SUCCESS)
        status = ares_parse_txt_reply_ext(abuf, alen, &txt);
    res.status = map_status(status, &res.why);
    if (res.status == DNS_OK) {
        for (struct ares_txt_ext *t = txt; t; t = t->next) {
            if (t->record_start) {
                if (res.n == DNS_MAX_RECORDS)
                    break;
                store[res.n] = NULL;
                lens[res.n++] = 0;
            } else if (res.n == 0) {
                continue;
            }
            size_t i = res.n - 1;
            char *grown = realloc(store[i], lens[i] + t->length + 1);
            if (!grown) {
                res.status = DNS_TEMPFAIL;
                res.why = "out of memory";
                break;
            }
            memcpy(grown + lens[i], t->txt, t->length);
            lens[i] += t->length;
            grown[lens[i]] = '\0';
            store[i] = grown;
        }
        res.txt = store;
        res.len = lens;
        if (res.status != DNS_OK)
            res.n = 0;
    }
    if (!r->cancelled)
        r->cb.txt(r->arg, &res);
    for (size_t i = 0; i < res.n; i++)
        free(store[i]);
    if (txt)
        ares_free_data(txt);
    req_done(r);
}

static void mx_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_req *r = arg;
    struct dns_mx_result res = {.status = DNS_OK};
    struct ares_mx_reply *mx = NULL;
    struct dns_mx list[DNS_MAX_RECORDS];
    (void)timeouts;
    if (status == ARES_SUCCESS)
        status = ares_parse_mx_reply(abuf, alen, &mx);
    res.status = map_status(status, &res.why);
    if (res.status == DNS_OK) {
        for (struct ares_mx_reply *m = mx; m && res.n < DNS_MAX_RECORDS; m = m->next) {
            struct dns_mx e = {.pref = m->priority, .host = m->host};
            if (strcmp(e.host, ".") == 0)
                e.host[0] = '\0';
            size_t k = res.n++; /* insertion sort, stable */
            while (k > 0 && list[k - 1].pref > e.pref) {
                list[k] = list[k - 1];
                k--;
            }
            list[k] = e;
        }
        res.mx = list;
        res.null_mx = res.n == 1 && list[0].host[0] == '\0';
        if (res.n == 0) {
            res.status = DNS_NODATA;
            res.why = "no record of that type";
        }
    }
    if (!r->cancelled)
        r->cb.mx(r->arg, &res);
    if (mx)
        ares_free_data(mx);
    req_done(r);
}

static void addr_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    struct dns_req *r = arg;
    struct dns_addr_result res = {.status = DNS_OK};
    struct sockaddr_storage list[DNS_MAX_RECORDS];
    (void)timeouts;
    res.status = map_status(status, &res.why);
    if (res.status == DNS_OK && ai) {
        for (struct ares_addrinfo_node *n = ai->nodes; n && res.n < DNS_MAX_RECORDS; n = n->ai_next) {
            if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
                (size_t)n->ai_addrlen > sizeof list[0])
                continue;
            memset(&list[res.n], 0, sizeof list[0]);
            memcpy(&list[res.n], n->ai_addr, (size_t)n->ai_addrlen);
            if (n->ai_family == AF_INET)
                ((struct sockaddr_in *)&list[res.n])->sin_port = 0;
            else
                ((struct sockaddr_in6 *)&list[res.n])->sin6_port = 0;
            res.n++;
        }
        res.addr = list;
        if (res.n == 0) {
            res.status = DNS_NODATA;
            res.why = "no record of that type";
        }
    }
    if (!r->cancelled)
        r->cb.addr(r->arg, &res);
    if (ai)
        ares_freeaddrinfo(ai);
    req_done(r);
}

static struct dns_req *new_req(struct dns *d, enum req_kind kind, void *arg)
{
    struct dns_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->d = d;
    r->kind = kind;
    r->arg = arg;
    r->starting = true;
    d->pending++;
    return r;
}

/* Common tail of the three lookups: drops a request already answered. */
static struct dns_req *started(struct dns *d, struct dns_req *r)
{
    r->starting = false;
    d->in_process--;
    if (r->finished) {
        free(r);
        r = NULL;
    }
    after_process(d);
    return r;
}

static bool refuse_now(struct dns *d, const char *name, enum dns_status *st, const char **why)
{
    if (d->stop_requested) {
        *st = DNS_CANCELLED;
        *why = "resolver stopped";
        return true;
    }
    if (!name || !*name || strlen(name) > 253) {
        *st = DNS_BADNAME;
        *why = "bad name";
        return true;
    }
    return false;
}

struct dns_req *dns_txt(struct dns *d, const char *name, dns_txt_cb cb, void *arg)
{
    struct dns_txt_result res = {0};
    struct dns_req *r;
    if (refuse_now(d, name, &res.status, &res.why) || !(r = new_req(d, REQ_TXT, arg))) {
        if (!res.why)
            res.status = DNS_TEMPFAIL, res.why = "out of memory";
        cb(arg, &res);
        return NULL;
    }
    r->cb.txt = cb;
    d->in_process++;
    ares_query(d->ch, name, 1 /* C_IN */, 16 /* T_TXT */, txt_done, r);
    return started(d, r);
}

struct dns_req *dns_mx(struct dns *d, const char *name, dns_mx_cb cb, void *arg)
{
    struct dns_mx_result res = {0};
    struct dns_req *r;
    if (refuse_now(d, name, &res.status, &res.why) || !(r = new_req(d, REQ_MX, arg))) {
        if (!res.why)
            res.status = DNS_TEMPFAIL, res.why = "out of memory";
        cb(arg, &res);
        return NULL;
    }
    r->cb.mx = cb;
    d->in_process++;
    ares_query(d->ch, name, 1 /* C_IN */, 15 /* T_MX */, mx_done, r);
    return started(d, r);
}

struct dns_req *dns_addr(struct dns *d, const char *name, dns_addr_cb cb, void *arg)
{
    struct dns_addr_result res = {0};
    struct dns_req *r;
    if (refuse_now(d, name, &res.status, &res.why) || !(r = new_req(d, REQ_ADDR, arg))) {
        if (!res.why)
            res.status = DNS_TEMPFAIL, res.why = "out of memory";
        cb(arg, &res);
        return NULL;
    }
    r->cb.addr = cb;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    d->in_process++;
    ares_getaddrinfo(d->ch, name, NULL, &hints, addr_done, r);
    return started(d, r);
}

static void rr_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_req *r = arg;
    struct dns_rr_result res = {.status = DNS_OK};
    struct dns_rr_set set = {0};
    (void)timeouts;
    res.status = map_status(status, &res.why);
    if (res.status == DNS_OK) {
        if (dns_rr_parse(abuf, (size_t)(alen > 0 ? alen : 0), r->type, &set) < 0) {
            res.status = DNS_TEMPFAIL;
            res.why = "malformed answer";
        } else if (set.n == 0) {
            res.status = DNS_NODATA;
            res.why = "no record of that type";
        }
        res.n = set.n;
        res.text = set.text;
    }
    if (!r->cancelled)
        r->cb.rr(r->arg, &res);
    dns_rr_set_free(&set);
    req_done(r);
}

struct dns_req *dns_rr(struct dns *d, const char *name, int type, dns_rr_cb cb, void *arg)
{
    struct dns_rr_result res = {0};
    struct dns_req *r;
    if (refuse_now(d, name, &res.status, &res.why) || !(r = new_req(d, REQ_RR, arg))) {
        if (!res.why)
            res.status = DNS_TEMPFAIL, res.why = "out of memory";
        cb(arg, &res);
        return NULL;
    }
    r->cb.rr = cb;
    r->type = type;
    d->in_process++;
    ares_query(d->ch, name, 1 /* C_IN */, type, rr_done, r);
    return started(d, r);
}
