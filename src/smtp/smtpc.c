/* smtpc.c: the outbound SMTP client on the loop: core/outconn carries the
 * bytes, smtpc_proto decides what to send (see smtpc.h). */
#include "smtp/smtpc.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/outconn.h"
#include "core/tls.h"

struct smtpc_tx;

struct smtpc_client {
    uv_loop_t *loop;
    struct tls_client *tls;
    struct smtpc_tx *head;
    unsigned in_flight;
    bool stopped, freeing;
};

struct smtpc_tx {
    struct smtpc_client *cl;
    struct smtpc_tx *prev, *next;
    struct smtpc_job job;
    smtpc_cb cb;
    void *ud;
    struct outconn *oc;
    uv_timer_t later;           /* reports a connect that failed at once */
    struct smtpc_proto p;
    struct smtpc_reply *rcpt;
    bool *final;
    bool reported, timer_open, tls, tls_resumed;
};

const char *smtpc_status_name(int status)
{
    static const char *const names[] = {"ok", "connect", "tls", "io", "timeout", "proto",
                                        "refused"};
    return status >= 0 && (size_t)status < sizeof names / sizeof names[0] ? names[status] : "?";
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
    *out = c;
    return 0;
}

static void client_really_free(struct smtpc_client *c)
{
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
    if (c->freeing && !c->head)
        client_really_free(c);
}

static void maybe_free(struct smtpc_tx *t)
{
    if (t->reported && !t->oc && !t->timer_open)
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
    };
    if (r.status == SMTPC_OK)
        log_debug("smtpc %s: transaction done, %zu recipient(s)", t->job.host, t->job.n_rcpts);
    else
        log_info("smtpc %s: %s: %s%s%d", t->job.host, smtpc_status_name(r.status), r.why,
                 r.session.code ? " reply " : "", r.session.code);
    t->cb(t->ud, &r);
}

static void flush(struct smtpc_tx *t)
{
    struct buf *o = smtpc_proto_output(&t->p);
    if (o->len && t->oc)
        outconn_write(t->oc, o->data, o->len);
    buf_reset(o);
}

/* Body pieces of this size go out while the socket keeps up. */
#define BODY_PIECE (64 * 1024)
#define BODY_QUEUE_MAX (256 * 1024)

static void pull_body(struct smtpc_tx *t)
{
    while (t->oc && smtpc_proto_body_pending(&t->p) && outconn_pending(t->oc) < BODY_QUEUE_MAX) {
        smtpc_proto_body(&t->p, BODY_PIECE);
        flush(t);
    }
}

static void handle(struct smtpc_tx *t, enum smtpc_event ev)
{
    flush(t);
    pull_body(t);
    if (!t->oc)
        return;
    if (ev == SMTPC_EV_STARTTLS) {
        outconn_starttls(t->oc); /* a failure comes back through on_error */
    } else if (ev == SMTPC_EV_DONE) {
        report(t);
        if (t->oc)
            outconn_close(t->oc);
    }
}

static void on_data(void *ud, const char *p, size_t n)
{
    struct smtpc_tx *t = ud;
    if (t->reported)
        return;
    handle(t, smtpc_proto_input(&t->p, p, n));
}

static void on_tls_done(void *ud)
{
    struct smtpc_tx *t = ud;
    t->tls = true;
    t->tls_resumed = outconn_tls_resumed(t->oc);
    if (!t->reported)
        handle(t, smtpc_proto_tls_ready(&t->p));
}

static void on_drained(void *ud)
{
    struct smtpc_tx *t = ud;
    if (!t->reported)
        pull_body(t);
}

static void on_error(void *ud, enum outconn_err kind, const char *why)
{
    struct smtpc_tx *t = ud;
    static const enum smtpc_status map[] = {
        [OUTCONN_E_CONNECT] = SMTPC_E_CONNECT, [OUTCONN_E_TLS] = SMTPC_E_TLS,
        [OUTCONN_E_IO] = SMTPC_E_IO, [OUTCONN_E_TIMEOUT] = SMTPC_E_TIMEOUT,
        [OUTCONN_E_EOF] = SMTPC_E_IO,
    };
    smtpc_proto_fail(&t->p, map[kind], why);
    report(t);
}

static void on_closed(void *ud)
{
    struct smtpc_tx *t = ud;
    t->oc = NULL;
    if (!t->reported) { /* closed without an error: cannot happen, but be sure */
        smtpc_proto_fail(&t->p, SMTPC_E_IO, "connection closed");
        report(t);
    }
    maybe_free(t);
}

static const struct outconn_ops tx_ops = {
    .data = on_data, .tls_done = on_tls_done, .error = on_error, .drained = on_drained,
    .closed = on_closed,
};

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
    struct smtpc_proto_job pj = {
        .helo = job->helo, .mail_from = job->mail_from, .rcpts = job->rcpts,
        .n_rcpts = job->n_rcpts, .msg = job->msg ? job->msg : "", .len = job->len,
        .tls = job->tls == SMTPC_TLS_PLAIN_OK ? SMTPC_TLS_NEED_OPTIONAL : SMTPC_TLS_NEED_REQUIRED,
    };
    smtpc_proto_init(&t->p, &pj, t->rcpt, t->final);
    uv_timer_init(c->loop, &t->later);
    t->later.data = t;
    t->timer_open = true;
    t->next = c->head;
    if (c->head)
        c->head->prev = t;
    c->head = t;
    c->in_flight++;
    struct outconn_opts o = {
        .addr = (const struct sockaddr *)&t->job.addr,
        .connect_timeout_ms = job->connect_timeout_ms,
        .io_timeout_ms = job->io_timeout_ms,
        .tls = c->tls,
        .host = job->host,
        .verify = job->tls == SMTPC_TLS_VERIFY,
    };
    if (outconn_open(&t->oc, c->loop, &o, &tx_ops, t) < 0) {
        t->oc = NULL;
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
        report(t);
        if (t->oc)
            outconn_close(t->oc);
    }
}

unsigned smtpc_in_flight(const struct smtpc_client *c) { return c->in_flight; }

void smtpc_client_free(struct smtpc_client *c)
{
    if (!c)
        return;
    smtpc_client_stop(c);
    c->freeing = true;
    if (!c->head)
        client_really_free(c);
}
