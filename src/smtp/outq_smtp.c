/* outq_smtp.c: the `smtp` transport of the queue runner: the SMTP client
 * (smtpc.c) on port 25 of the MX host, after `mxdeliv` did not deliver
 * (federation facts §3).
 *
 *   - the host's addresses come from core/dns (A and AAAA; IPv6 skipped
 *     under disable_ipv6); an address literal is used as it is; on a
 *     refused or timed-out connect the next address is tried (at most
 *     OUTQ_SMTP_ADDRS);
 *   - TLS: verified STARTTLS; any certificate for `_`-domains and address
 *     literals; smtp_plaintext_domains may go without;
 *   - the per-recipient replies of the transaction become the attempt's
 *     rcpt[] replies; a session that ended before (refused greeting, EHLO
 *     or MAIL, TLS or I/O failure, timeout) becomes one session reply, 4xx
 *     unless the peer itself answered 5xx;
 *   - done() always runs on a later loop turn (a zero timer), as the
 *     runner expects, except while stopping. */
#include "smtp/outq.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/dns.h"
#include "core/log.h"
#include "smtp/smtpc.h"

#define OUTQ_SMTP_ADDRS 4

struct smtp_req {
    struct outq_smtp_ctx *c;
    struct outq_attempt *a;
    struct smtp_req *prev, *next;
    struct dns_req *dns;
    bool resolving, in_start, finished;
    struct sockaddr_storage addr[OUTQ_SMTP_ADDRS];
    size_t n_addr, cur;
    const char *domain;     /* of the recipients: for the plaintext list */
    uv_timer_t timer;       /* defers done() to the next turn */
};

static void req_unlink(struct smtp_req *q)
{
    struct outq_smtp_ctx *c = q->c;
    if (q->prev)
        q->prev->next = q->next;
    else
        c->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static void req_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_finish_timer(uv_timer_t *t)
{
    struct smtp_req *q = t->data;
    struct outq_attempt *a = q->a;
    req_unlink(q);
    uv_close((uv_handle_t *)&q->timer, req_closed);
    a->done(a);
}

/* The attempt's replies are filled: hand it back to the runner. */
static void finish(struct smtp_req *q)
{
    if (q->finished)
        return;
    q->finished = true;
    if (q->c->stopping) { /* the runner only counts it down */
        struct outq_attempt *a = q->a;
        req_unlink(q);
        uv_close((uv_handle_t *)&q->timer, req_closed);
        a->done(a);
        return;
    }
    uv_timer_start(&q->timer, on_finish_timer, 0, 0);
}

static void session_reply(struct outq_attempt *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void session_reply(struct outq_attempt *a, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    a->session.code = code;
    vsnprintf(a->session.text, sizeof a->session.text, fmt, ap);
    va_end(ap);
}

static void copy_reply(struct outq_reply *o, const struct smtpc_reply *r, const char *host)
{
    o->code = r->code;
    snprintf(o->text, sizeof o->text, "%d %.15s%s%.150s (%.50s)", r->code, r->enh, r->enh[0] ? " " : "",
             r->text, host);
}

static void try_addr(struct smtp_req *q);

static void on_smtpc(void *ud, const struct smtpc_result *r)
{
    struct smtp_req *q = ud;
    struct outq_attempt *a = q->a;
    switch (r->status) {
    case SMTPC_OK:
        a->connected = true;
        for (size_t i = 0; i < a->n_rcpts; i++) {
            if (r->rcpt[i].code)
                copy_reply(&a->rcpt[i], &r->rcpt[i], a->host);
            else
                session_reply(a, 451, "451 4.4.0 smtp %s: %s", a->host, "no reply");
        }
        break;
    case SMTPC_E_CONNECT:
        if (!q->c->stopping && q->cur + 1 < q->n_addr) {
            q->cur++;
            try_addr(q);
            return;
        }
        a->transport_error = true;
        session_reply(a, 451, "451 4.4.1 smtp %s: %s", a->host, r->why ? r->why : "connect failed");
        break;
    case SMTPC_E_REFUSED:
        a->connected = true;
        if (r->session.code >= 400) {
            copy_reply(&a->session, &r->session, a->host);
            break;
        }
        session_reply(a, 451, "451 4.4.0 smtp %s: %s", a->host, r->why ? r->why : "refused");
        break;
    case SMTPC_E_TLS:
        a->connected = true;
        a->transport_error = true;
        session_reply(a, 451, "451 4.7.5 smtp %s: TLS: %s", a->host, r->why ? r->why : "failed");
        break;
    default: /* io, timeout, proto */
        a->connected = r->status != SMTPC_E_TIMEOUT || r->session.code != 0;
        if (r->session.code >= 400 && r->session.code < 500) {
            copy_reply(&a->session, &r->session, a->host);
            break;
        }
        a->transport_error = true;
        session_reply(a, 451, "451 4.4.2 smtp %s: %s", a->host,
                      r->why ? r->why : smtpc_status_name(r->status));
        break;
    }
    finish(q);
}

static enum smtpc_tls tls_mode(const struct smtp_req *q)
{
    if (q->a->any_cert)
        return SMTPC_TLS_ANY_CERT;
    if (config_smtp_plaintext_ok(q->c->cfg, q->domain))
        return SMTPC_TLS_PLAIN_OK;
    return SMTPC_TLS_VERIFY;
}

/* outbound_smtp_timeout (seconds) for smtpc: at least 1 s (0 would mean
 * smtpc's default), at most what the field holds. */
static unsigned io_timeout_ms(long secs)
{
    if (secs < 1)
        secs = 1;
    if (secs > (long)(UINT_MAX / 1000))
        secs = (long)(UINT_MAX / 1000);
    return (unsigned)secs * 1000u;
}

static void try_addr(struct smtp_req *q)
{
    struct outq_attempt *a = q->a;
    struct smtpc_job job = {
        .host = a->host,
        .addr = q->addr[q->cur],
        .tls = tls_mode(q),
        .helo = a->helo,
        .mail_from = a->mail_from,
        .rcpts = a->rcpts,
        .n_rcpts = a->n_rcpts,
        .msg = a->msg,
        .len = a->len,
        .io_timeout_ms = io_timeout_ms(q->c->cfg->outbound_smtp_timeout),
    };
    int port = q->c->port;
    if (job.addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&job.addr)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&job.addr)->sin6_port = htons((uint16_t)port);
    if (q->c->stopping || smtpc_deliver(q->c->client, &job, on_smtpc, q) < 0) {
        session_reply(a, 451, "451 4.3.0 smtp %s: %s", a->host, "cannot start a delivery");
        finish(q);
    }
}

static void on_addr(void *arg, const struct dns_addr_result *r)
{
    struct smtp_req *q = arg;
    struct outq_attempt *a = q->a;
    q->dns = NULL;
    q->resolving = false;
    if (r->status == DNS_OK) {
        for (size_t i = 0; i < r->n && q->n_addr < OUTQ_SMTP_ADDRS; i++) {
            if (r->addr[i].ss_family == AF_INET6 && q->c->cfg->disable_ipv6)
                continue;
            q->addr[q->n_addr++] = r->addr[i];
        }
    }
    if (q->n_addr == 0) {
        const char *why = r->status == DNS_OK ? "no usable address"
                          : r->status == DNS_NXDOMAIN || r->status == DNS_NODATA
                              ? "host has no address"
                              : (r->why ? r->why : "lookup failed");
        session_reply(a, 451, "451 4.4.3 smtp %s: %s", a->host, why);
        finish(q);
        return;
    }
    if (q->in_start) /* answered inside dns_addr: outq_smtp_start goes on */
        return;
    try_addr(q);
}

/* The recipients' domain (all of one attempt share it). */
static const char *rcpt_domain(const struct outq_attempt *a)
{
    const char *at = a->n_rcpts ? strrchr(a->rcpts[0], '@') : NULL;
    return at ? at + 1 : "";
}

static void on_start_timer(uv_timer_t *t)
{
    try_addr(t->data);
}

int outq_smtp_start(void *ctx, struct outq_attempt *a)
{
    struct outq_smtp_ctx *c = ctx;
    if (c->stopping || !c->client)
        return -1;
    struct smtp_req *q = calloc(1, sizeof *q);
    if (!q)
        return -1;
    q->c = c;
    q->a = a;
    q->domain = rcpt_domain(a);
    uv_timer_init(c->loop, &q->timer);
    q->timer.data = q;
    q->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = q;
    c->reqs = q;
    if (a->addr.ss_family) { /* an address literal */
        q->addr[0] = a->addr;
        q->n_addr = 1;
        uv_timer_start(&q->timer, on_start_timer, 0, 0);
        return 0;
    }
    q->resolving = q->in_start = true;
    struct dns_req *d = dns_addr(c->dns, a->host, on_addr, q);
    q->in_start = false;
    if (q->resolving)
        q->dns = d;
    else if (!q->finished && q->n_addr) /* answered inside dns_addr */
        uv_timer_start(&q->timer, on_start_timer, 0, 0);
    return 0;
}

void outq_smtp_stop(struct outq_smtp_ctx *c)
{
    if (c->stopping)
        return;
    c->stopping = true;
    /* deliveries in flight report "stopping" at once (on_smtpc, finish) */
    if (c->client)
        smtpc_client_stop(c->client);
    /* the rest: lookups, starts and hand-backs waiting for their turn */
    for (struct smtp_req *q = c->reqs, *next; q; q = next) {
        next = q->next;
        if (q->dns)
            dns_cancel(q->dns);
        q->dns = NULL;
        q->resolving = false;
        uv_timer_stop(&q->timer);
        if (!q->finished)
            session_reply(q->a, 451, "451 4.3.0 smtp %s: %s", q->a->host, "stopping");
        q->finished = false;
        finish(q);
    }
}

void outq_smtp_free(struct outq_smtp_ctx *c)
{
    smtpc_client_free(c->client);
    c->client = NULL;
}
