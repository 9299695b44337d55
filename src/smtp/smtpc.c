/* smtpc.c: the outbound SMTP client on the loop: core/outconn carries the
 * bytes, smtpc_proto decides what to send (see smtpc.h).
 *
 * Connection reuse: a transaction that ends healthy (smtpc_proto's
 * `reusable`) leaves its connection idle in the client's pool instead of
 * sending QUIT; the next delivery to the same MX host, port and TLS mode
 * takes it (MAIL FROM at once, or RSET first after a transaction that did
 * not complete). Bounded: SMTPC_IDLE_PER_HOST idle connections per host,
 * SMTPC_IDLE_MAX in all, SMTPC_REUSE_MAX transactions per connection, and
 * an idle one is closed with QUIT after SMTPC_IDLE_MS (and at stop). A
 * reused connection that fails before MAIL FROM is answered (the peer
 * closed it, 421) is given up and the delivery starts once more on a new
 * connection; the caller sees one delivery. At most SMTPC_PER_HOST_MAX
 * connections to one host are open at once (a receiving Postfix or
 * chatmaild-server refuses a client's 51st with 421): a delivery beyond
 * that waits (FIFO) for the next connection that becomes free or closes. */
#include "smtp/smtpc.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/outconn.h"
#include "core/tls.h"

#define SMTPC_IDLE_MS 5000
#define SMTPC_IDLE_SWEEP_MS 500
#define SMTPC_IDLE_PER_HOST 8
#define SMTPC_IDLE_MAX 100
#define SMTPC_REUSE_MAX 100
#define SMTPC_PER_HOST_MAX 20 /* connections at once (Postfix's destination
                                 concurrency); more deliveries wait for one */

struct smtpc_tx;

struct smtpc_conn {
    struct smtpc_client *cl;
    struct smtpc_conn *prev, *next;
    struct outconn *oc;
    struct smtpc_tx *tx;        /* the transaction on it; NULL while idle */
    char *host;
    uint16_t port;
    enum smtpc_tls tls;
    struct smtpc_caps caps;     /* of the last EHLO */
    bool idle, need_rset, tls_on, tls_resumed, closing;
    unsigned uses;
    uint64_t idle_since;        /* uv_now */
};

struct smtpc_client {
    uv_loop_t *loop;
    struct tls_client *tls;
    struct smtpc_tx *head;
    struct smtpc_conn *conns;
    unsigned in_flight, n_idle;
    uv_timer_t sweep;           /* closes idle connections */
    bool stopped, freeing, sweep_open, sweeping;
};

struct smtpc_tx {
    struct smtpc_client *cl;
    struct smtpc_tx *prev, *next;
    struct smtpc_job job;
    smtpc_cb cb;
    void *ud;
    struct smtpc_conn *conn;
    uv_timer_t later;           /* reports a connect that failed at once */
    struct smtpc_proto p;
    struct smtpc_reply *rcpt;
    bool *final;
    bool reported, timer_open, tls, tls_resumed, reused, retried, waiting;
};

const char *smtpc_status_name(int status)
{
    static const char *const names[] = {"ok", "connect", "tls", "io", "timeout", "proto",
                                        "refused"};
    return status >= 0 && (size_t)status < sizeof names / sizeof names[0] ? names[status] : "?";
}

static void maybe_really_free(struct smtpc_client *c);
static void run_on(struct smtpc_tx *t, struct smtpc_conn *k);
static struct smtpc_tx *take_waiting(struct smtpc_client *c, const char *host, uint16_t port,
                                     enum smtpc_tls tls);
static void tx_end(struct smtpc_tx *t);

static void on_sweep_closed(uv_handle_t *h)
{
    struct smtpc_client *c = h->data;
    c->sweep_open = false;
    maybe_really_free(c);
}

int smtpc_client_new(struct smtpc_client **out, uv_loop_t *loop, const char *ca_file, char *err,
                     size_t errlen)
{
    *out = NULL;
    struct smtpc_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (tls_client_new(&c->tls, ca_file, err, errlen) < 0) {
        free(c);
        return -1;
    }
    c->loop = loop;
    uv_timer_init(loop, &c->sweep);
    c->sweep.data = c;
    c->sweep_open = true;
    *out = c;
    return 0;
}

static void maybe_really_free(struct smtpc_client *c)
{
    if (!c->freeing || c->head || c->conns || c->sweep_open)
        return;
    tls_client_free(c->tls);
    free(c);
}

static void tx_free(struct smtpc_tx *t)
{
    struct smtpc_client *c = t->cl;
    if (t->prev)
        t->prev->next = t->next;
    else
        c->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    smtpc_proto_free(&t->p);
    free(t->rcpt);
    free(t->final);
    free(t);
    maybe_really_free(c);
}

static void maybe_free(struct smtpc_tx *t)
{
    if (t->reported && !t->conn && !t->timer_open)
        tx_free(t);
}

static void report(struct smtpc_tx *t)
{
    if (t->reported)
        return;
    t->reported = true;
    t->cl->in_flight--;
    struct smtpc_result r = {
        .status = (int)t->p.status,
        .why = t->p.why ? t->p.why : "",
        .session = t->p.session,
        .rcpt = t->p.status == SMTPC_OK ? t->rcpt : NULL,
        .tls = t->tls,
        .tls_resumed = t->tls_resumed,
        .reused = t->reused,
    };
    if (r.status == SMTPC_OK)
        log_debug("smtpc %s: transaction done, %zu recipient(s)%s", t->job.host, t->job.n_rcpts,
                  t->reused ? " (connection reused)" : "");
    else if (r.session.code)
        log_info("smtpc %s: %s: %s reply %d", t->job.host, smtpc_status_name(r.status), r.why,
                 r.session.code);
    else /* no reply came (connect, TLS, I/O): no code to show */
        log_info("smtpc %s: %s: %s", t->job.host, smtpc_status_name(r.status), r.why);
    t->cb(t->ud, &r);
}

/* ---------------------------------------------------------------- connections */

static void conn_unidle(struct smtpc_conn *k)
{
    if (k->idle) {
        k->idle = false;
        k->cl->n_idle--;
    }
}

/* QUIT (when the session is in a state to take it) and close. */
static void conn_close(struct smtpc_conn *k, bool quit)
{
    if (k->closing)
        return;
    k->closing = true;
    conn_unidle(k);
    if (k->oc) {
        if (quit)
            outconn_write(k->oc, "QUIT\r\n", 6);
        outconn_close(k->oc);
    }
}

static uint16_t addr_port(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)a)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
}

static bool conn_matches(const struct smtpc_conn *k, const struct smtpc_job *j)
{
    return k->port == addr_port(&j->addr) && k->tls == j->tls && !strcasecmp(k->host, j->host);
}

/* An idle connection for j, most recently parked first. */
static struct smtpc_conn *pool_take(struct smtpc_client *c, const struct smtpc_job *j)
{
    struct smtpc_conn *best = NULL;
    for (struct smtpc_conn *k = c->conns; k; k = k->next)
        if (k->idle && !k->closing && k->oc && conn_matches(k, j) &&
            (!best || k->idle_since > best->idle_since))
            best = k;
    if (best)
        conn_unidle(best);
    return best;
}

static void on_sweep(uv_timer_t *h)
{
    struct smtpc_client *c = h->data;
    uint64_t now = uv_now(c->loop);
    for (struct smtpc_conn *k = c->conns, *next; k; k = next) {
        next = k->next;
        if (k->idle && now - k->idle_since >= SMTPC_IDLE_MS) {
            log_debug("smtpc %s: idle connection closed", k->host);
            conn_close(k, true);
        }
    }
    if (c->n_idle == 0) {
        uv_timer_stop(&c->sweep);
        c->sweeping = false;
    }
}

/* After a transaction that ended reusable: park the connection or QUIT. */
static void conn_park(struct smtpc_conn *k, bool need_rset)
{
    struct smtpc_client *c = k->cl;
    if (!c->stopped && k->oc && !k->closing && k->uses < SMTPC_REUSE_MAX) {
        struct smtpc_tx *w = take_waiting(c, k->host, k->port, k->tls);
        if (w) {
            k->need_rset = need_rset;
            run_on(w, k);
            return;
        }
    }
    unsigned same = 0;
    for (struct smtpc_conn *o = c->conns; o; o = o->next)
        if (o->idle && o->port == k->port && o->tls == k->tls && !strcasecmp(o->host, k->host))
            same++;
    if (c->stopped || !k->oc || k->closing || k->uses >= SMTPC_REUSE_MAX ||
        same >= SMTPC_IDLE_PER_HOST || c->n_idle >= SMTPC_IDLE_MAX) {
        conn_close(k, true);
        return;
    }
    k->idle = true;
    k->need_rset = need_rset;
    k->idle_since = uv_now(c->loop);
    c->n_idle++;
    if (!c->sweeping && c->sweep_open) {
        c->sweeping = true;
        uv_timer_start(&c->sweep, on_sweep, SMTPC_IDLE_SWEEP_MS, SMTPC_IDLE_SWEEP_MS);
    }
}

static void conn_detach(struct smtpc_conn *k)
{
    struct smtpc_tx *t = k->tx;
    k->tx = NULL;
    if (t)
        t->conn = NULL;
}

/* ---------------------------------------------------------------- transactions */

static void flush(struct smtpc_tx *t)
{
    struct buf *o = smtpc_proto_output(&t->p);
    if (o->len && t->conn && t->conn->oc)
        outconn_write(t->conn->oc, o->data, o->len);
    buf_reset(o);
}

/* Body pieces of this size go out while the socket keeps up. */
#define BODY_PIECE (64 * 1024)
#define BODY_QUEUE_MAX (256 * 1024)

static void pull_body(struct smtpc_tx *t)
{
    while (t->conn && t->conn->oc && smtpc_proto_body_pending(&t->p) &&
           outconn_pending(t->conn->oc) < BODY_QUEUE_MAX) {
        smtpc_proto_body(&t->p, BODY_PIECE);
        flush(t);
    }
}

static int conn_new(struct smtpc_tx *t);

static void proto_job(const struct smtpc_tx *t, struct smtpc_proto_job *pj)
{
    const struct smtpc_job *job = &t->job;
    *pj = (struct smtpc_proto_job){
        .helo = job->helo, .mail_from = job->mail_from, .rcpts = job->rcpts,
        .n_rcpts = job->n_rcpts, .msg = job->msg ? job->msg : "", .len = job->len,
        .tls = job->tls == SMTPC_TLS_PLAIN_OK ? SMTPC_TLS_NEED_OPTIONAL : SMTPC_TLS_NEED_REQUIRED,
        .keep = true,
    };
}

/* The transaction on t->conn is over (p.stage is ST_DONE): park or close
 * the connection, then report -- or, for a reused connection that failed
 * before MAIL was answered, start again on a new one. */
static void tx_end(struct smtpc_tx *t)
{
    struct smtpc_conn *k = t->conn;
    if (k) {
        conn_detach(k);
        if (t->p.reusable && t->p.status == SMTPC_OK) {
            flush(t); /* nothing is left, but be sure */
            k->caps = t->p.caps;
            conn_park(k, t->p.need_rset);
        } else {
            conn_close(k, false); /* proto already put QUIT where it belongs */
        }
    }
    if (t->p.status != SMTPC_OK && t->reused && !t->retried && !t->p.mail_answered &&
        !t->cl->stopped) {
        log_info("smtpc %s: reused connection failed before MAIL (%s): new connection",
                 t->job.host, t->p.why ? t->p.why : "?");
        t->retried = true;
        t->reused = false;
        smtpc_proto_free(&t->p);
        struct smtpc_proto_job pj;
        proto_job(t, &pj);
        smtpc_proto_init(&t->p, &pj, t->rcpt, t->final);
        t->tls = t->tls_resumed = false;
        if (conn_new(t) == 0)
            return;
        smtpc_proto_fail(&t->p, SMTPC_E_CONNECT, "cannot connect");
    }
    report(t);
    maybe_free(t);
}

static void handle(struct smtpc_tx *t, enum smtpc_event ev)
{
    struct smtpc_conn *k = t->conn;
    if (!k)
        return;
    if (ev == SMTPC_EV_DONE) {
        /* QUIT (when proto put it) goes before the close */
        flush(t);
        tx_end(t);
        return;
    }
    flush(t);
    pull_body(t);
    if (!k->oc)
        return;
    if (ev == SMTPC_EV_STARTTLS)
        outconn_starttls(k->oc); /* a failure comes back through on_error */
}

static void on_data(void *ud, const char *p, size_t n)
{
    struct smtpc_conn *k = ud;
    struct smtpc_tx *t = k->tx;
    if (!t) { /* idle: a 421 or anything else means the session is over */
        if (!k->closing)
            log_debug("smtpc %s: the peer spoke on an idle connection: closed", k->host);
        conn_close(k, false);
        return;
    }
    if (t->reported)
        return;
    handle(t, smtpc_proto_input(&t->p, p, n));
}

static void on_tls_done(void *ud)
{
    struct smtpc_conn *k = ud;
    k->tls_on = true;
    k->tls_resumed = outconn_tls_resumed(k->oc);
    struct smtpc_tx *t = k->tx;
    if (!t || t->reported)
        return;
    t->tls = true;
    t->tls_resumed = k->tls_resumed;
    handle(t, smtpc_proto_tls_ready(&t->p));
}

static void on_drained(void *ud)
{
    struct smtpc_conn *k = ud;
    if (k->tx && !k->tx->reported)
        pull_body(k->tx);
}

static void on_error(void *ud, enum outconn_err kind, const char *why)
{
    struct smtpc_conn *k = ud;
    static const enum smtpc_status map[] = {
        [OUTCONN_E_CONNECT] = SMTPC_E_CONNECT, [OUTCONN_E_TLS] = SMTPC_E_TLS,
        [OUTCONN_E_IO] = SMTPC_E_IO, [OUTCONN_E_TIMEOUT] = SMTPC_E_TIMEOUT,
        [OUTCONN_E_EOF] = SMTPC_E_IO,
    };
    conn_unidle(k);
    k->closing = true; /* the outconn closes itself */
    struct smtpc_tx *t = k->tx;
    if (!t)
        return;
    smtpc_proto_fail(&t->p, map[kind], why);
    tx_end(t);
}

static void on_closed(void *ud)
{
    struct smtpc_conn *k = ud;
    struct smtpc_client *c = k->cl;
    k->oc = NULL;
    k->closing = true;
    conn_unidle(k);
    struct smtpc_tx *t = k->tx;
    conn_detach(k);
    if (k->prev)
        k->prev->next = k->next;
    else
        c->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    /* a slot for this host is free: the oldest waiting delivery takes it */
    struct smtpc_tx *w = c->stopped ? NULL : take_waiting(c, k->host, k->port, k->tls);
    free(k->host);
    free(k);
    if (w && conn_new(w) < 0) {
        smtpc_proto_fail(&w->p, SMTPC_E_CONNECT, "cannot connect");
        tx_end(w);
    }
    if (t && !t->reported) { /* closed without an error: cannot happen, but be sure */
        smtpc_proto_fail(&t->p, SMTPC_E_IO, "connection closed");
        tx_end(t);
    } else if (t) {
        maybe_free(t);
    }
    maybe_really_free(c);
}

static const struct outconn_ops conn_ops = {
    .data = on_data, .tls_done = on_tls_done, .error = on_error, .drained = on_drained,
    .closed = on_closed,
};

/* A new connection for t. 0, or -1 (nothing opened). */
static int conn_new(struct smtpc_tx *t)
{
    struct smtpc_client *c = t->cl;
    struct smtpc_conn *k = calloc(1, sizeof *k);
    if (!k || !(k->host = strdup(t->job.host))) {
        free(k);
        return -1;
    }
    k->cl = c;
    k->port = addr_port(&t->job.addr);
    k->tls = t->job.tls;
    struct outconn_opts o = {
        .addr = (const struct sockaddr *)&t->job.addr,
        .connect_timeout_ms = t->job.connect_timeout_ms,
        .io_timeout_ms = t->job.io_timeout_ms,
        .tls = c->tls,
        .host = t->job.host,
        .verify = t->job.tls == SMTPC_TLS_VERIFY,
    };
    if (outconn_open(&k->oc, c->loop, &o, &conn_ops, k) < 0) {
        free(k->host);
        free(k);
        return -1;
    }
    k->next = c->conns;
    if (c->conns)
        c->conns->prev = k;
    c->conns = k;
    k->tx = t;
    k->uses = 1;
    t->conn = k;
    metrics_inc(M_SMTPC_CONN_NEW);
    return 0;
}

/* Runs t on k, a connection whose last transaction ended reusable. */
static void run_on(struct smtpc_tx *t, struct smtpc_conn *k)
{
    k->tx = t;
    k->uses++;
    t->conn = k;
    t->reused = true;
    t->tls = k->tls_on;
    t->tls_resumed = k->tls_resumed;
    metrics_inc(M_SMTPC_CONN_REUSED);
    struct smtpc_proto_job pj;
    proto_job(t, &pj);
    smtpc_proto_free(&t->p);
    smtpc_proto_init_reuse(&t->p, &pj, t->rcpt, t->final, &k->caps, k->need_rset);
    flush(t); /* MAIL (RSET): the replies come through on_data */
}

static unsigned host_conns(const struct smtpc_client *c, const struct smtpc_job *j)
{
    unsigned n = 0;
    for (const struct smtpc_conn *k = c->conns; k; k = k->next)
        if (!k->closing && k->oc && conn_matches(k, j))
            n++;
    return n;
}

/* The oldest delivery waiting for a connection like k's (host, port, TLS). */
static struct smtpc_tx *take_waiting(struct smtpc_client *c, const char *host, uint16_t port,
                                     enum smtpc_tls tls)
{
    struct smtpc_tx *found = NULL; /* the list is newest first */
    for (struct smtpc_tx *t = c->head; t; t = t->next)
        if (t->waiting && !t->reported && addr_port(&t->job.addr) == port && t->job.tls == tls &&
            !strcasecmp(t->job.host, host))
            found = t;
    if (found)
        found->waiting = false;
    return found;
}

/* Runs t on an idle connection or a new one, or queues it when the host
 * has SMTPC_PER_HOST_MAX connections. 0, or -1 (no connection). */
static int tx_start(struct smtpc_tx *t)
{
    struct smtpc_conn *k = pool_take(t->cl, &t->job);
    if (k) {
        run_on(t, k);
        return 0;
    }
    if (host_conns(t->cl, &t->job) >= SMTPC_PER_HOST_MAX) {
        t->waiting = true;
        return 0;
    }
    return conn_new(t);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct smtpc_tx *t = h->data;
    t->timer_open = false;
    maybe_free(t);
}

static void on_later(uv_timer_t *h)
{
    struct smtpc_tx *t = h->data;
    report(t);
    uv_close((uv_handle_t *)&t->later, on_timer_closed);
}

/* An address as it goes between the angle brackets. */
static bool word_ok(const char *s, bool empty_ok)
{
    if (!s || (!*s && !empty_ok) || strlen(s) > 1000)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= ' ' || ch == 0x7f || ch == '<' || ch == '>')
            return false;
    }
    return true;
}

static bool job_ok(const struct smtpc_job *j)
{
    if (!j->host || !word_ok(j->helo, false) || !word_ok(j->mail_from, true) ||
        j->n_rcpts == 0 || !j->rcpts || (!j->msg && j->len))
        return false;
    if (j->addr.ss_family != AF_INET && j->addr.ss_family != AF_INET6)
        return false;
    for (size_t i = 0; i < j->n_rcpts; i++)
        if (!word_ok(j->rcpts[i], false))
            return false;
    return true;
}

int smtpc_deliver(struct smtpc_client *c, const struct smtpc_job *job, smtpc_cb cb, void *ud)
{
    if (c->stopped || !cb || !job_ok(job))
        return -1;
    struct smtpc_tx *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->rcpt = calloc(job->n_rcpts, sizeof *t->rcpt);
    t->final = calloc(job->n_rcpts, sizeof *t->final);
    if (!t->rcpt || !t->final) {
        free(t->rcpt);
        free(t->final);
        free(t);
        return -1;
    }
    t->cl = c;
    t->job = *job;
    t->cb = cb;
    t->ud = ud;
    struct smtpc_proto_job pj;
    proto_job(t, &pj);
    smtpc_proto_init(&t->p, &pj, t->rcpt, t->final);
    uv_timer_init(c->loop, &t->later);
    t->later.data = t;
    t->timer_open = true;
    t->next = c->head;
    if (c->head)
        c->head->prev = t;
    c->head = t;
    c->in_flight++;
    if (tx_start(t) < 0) {
        smtpc_proto_fail(&t->p, SMTPC_E_CONNECT, "cannot connect");
        uv_timer_start(&t->later, on_later, 0, 0); /* the cb never runs inside */
        return 0;
    }
    uv_close((uv_handle_t *)&t->later, on_timer_closed);
    return 0;
}

void smtpc_client_stop(struct smtpc_client *c)
{
    c->stopped = true;
    for (struct smtpc_tx *t = c->head, *next; t; t = next) {
        next = t->next;
        if (t->reported)
            continue;
        smtpc_proto_fail(&t->p, SMTPC_E_IO, "stopping");
        struct smtpc_conn *k = t->conn;
        if (k) {
            conn_detach(k);
            conn_close(k, false);
        }
        report(t);
        maybe_free(t);
    }
    /* idle connections say QUIT */
    for (struct smtpc_conn *k = c->conns, *next; k; k = next) {
        next = k->next;
        conn_close(k, !k->tx);
    }
    if (c->sweep_open && !uv_is_closing((uv_handle_t *)&c->sweep)) {
        uv_timer_stop(&c->sweep);
        c->sweeping = false;
        uv_close((uv_handle_t *)&c->sweep, on_sweep_closed);
    }
}

unsigned smtpc_in_flight(const struct smtpc_client *c) { return c->in_flight; }

unsigned smtpc_idle_count(const struct smtpc_client *c) { return c->n_idle; }

void smtpc_client_free(struct smtpc_client *c)
{
    if (!c)
        return;
    smtpc_client_stop(c);
    c->freeing = true;
    maybe_really_free(c);
}
