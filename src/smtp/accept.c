/* accept.c: the acceptance pipeline (see smtp/smtp.h): one message, from
 * the spool to one result per recipient, for every origin (submission,
 * MX, /mxdeliv). No session state lives here: the caller hands in the
 * spooled bytes and the envelope and gets a callback.
 *
 *  1. Worker: the origin's filter rules (outgoing / incoming), the checks
 *     registered for the origin, the privacy cleanup (accept_checks.c).
 *     MX and /mxdeliv: between the filter and the checks, the DKIM stage
 *     (accept_dkim.c): hashing on the worker, key lookups on the loop, the
 *     verdict on a worker again.
 *  2. Loop: the spec's log lines and counters of the decision (idem).
 *  3. Local recipients (deduplicated by account): store_deliver_async, one
 *     durable copy each with the quota. Remote recipients (deduplicated):
 *     queue_write_async (fsynced). Both run at once.
 *  4. Per recipient: delivered, queued, over quota, temporary failure.
 *     With all_or_nothing, any failure takes the other copies back on a
 *     worker (store_undeliver, queue_remove): a crash in between can leave
 *     a stored copy of an unacknowledged message, never the reverse.
 *     Otherwise the watchers of each delivered account (IMAP IDLE, push)
 *     are told in this loop turn - store_notify_append(addr, "INBOX", uid
 *     0, ...): "a file arrived in new/, sync to give it its UID" - and
 *     push (src/push: one notification per device token unless the
 *     recipient is the From address), then the callback runs. */
#include "smtp/accept_int.h"
#include "smtp/outq.h"
#include "smtp/queue.h"
#include "smtp/smtp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "push/push.h"
#include "store/store.h"

#define ACCEPT_STORE_WORKERS 2 /* delivery batches running at once */
_Static_assert(ACCEPT_QUEUE_ID_LEN == QUEUE_ID_LEN, "queue ids fit the result");

#define REPLY_NOMEM "451 4.3.0 Error: insufficient system resources"

static struct {
    uv_loop_t *loop;
    const struct config *cfg;
    const char *queue_dir;
    struct quota_cache *quota;
    struct store_async *store;
} A;

int accept_init(uv_loop_t *loop, const struct config *cfg, const char *queue_dir)
{
    A.loop = loop;
    A.cfg = cfg;
    A.queue_dir = queue_dir;
    long queued = queue_count(queue_dir); /* then moved by queue_write/remove */
    metrics_gauge_set(G_QUEUE_LENGTH, queued > 0 ? queued : 0);
    A.quota = quota_cache_shared(); /* shared with IMAP and expiry */
    struct store_opts o = {.quota = A.quota,
                           .max_mailbox_size_mb = cfg->max_mailbox_size_mb,
                           .compress = cfg->store_compress};
    A.store = A.quota ? store_async_new(loop, &o, ACCEPT_STORE_WORKERS) : NULL;
    return A.store ? 0 : -1;
}

void accept_free(void)
{
    store_async_free(A.store);
    memset(&A, 0, sizeof A);
}

static void job_free(struct accept_job *j)
{
    accept_dkim_conclude(j); /* frees a verifier left by a refusal */
    buf_free(&j->clean);
    buf_free(&j->local);
    buf_free(&j->prepend);
    free(j->lmap);
    free(j->rmap);
    free(j->lr);
    free(j->laddr);
    free(j->ldir);
    free(j->remote);
    free(j->res.rcpts);
    free(j);
}

/* The callback, then the job is gone. */
static void complete(struct accept_job *j)
{
    j->cb(j->ud, &j->res);
    job_free(j);
}

static void refuse(struct accept_job *j, int code, const char *reply)
{
    j->res.code = code;
    snprintf(j->res.reply, sizeof j->res.reply, "%s", reply);
    complete(j);
}

/* ------------------------------------------------------------ recipients */

static long find_local(const struct accept_job *j, const char *addr)
{
    for (size_t i = 0; i < j->n_local; i++)
        if (strcmp(j->laddr[i], addr) == 0)
            return (long)i;
    return -1;
}

static long find_remote(const struct accept_job *j, const char *addr)
{
    for (size_t i = 0; i < j->n_remote; i++)
        if (strcasecmp(j->remote[i], addr) == 0)
            return (long)i;
    return -1;
}

static long add_local(struct accept_job *j, const char *addr)
{
    char norm[STORE_ADDR_MAX + 1];
    const char *why;
    if (store_addr_recipient(A.cfg, addr, norm, sizeof norm, &why) < 0) /* user+tag -> user */
        return -1;
    long k = find_local(j, norm);
    if (k >= 0)
        return k;
    size_t i = j->n_local;
    if (store_account_dir(A.cfg, norm, j->ldir[i], sizeof j->ldir[i]) < 0)
        return -1;
    memcpy(j->laddr[i], norm, sizeof norm);
    j->lr[i] = (struct store_rcpt){.dir = j->ldir[i]};
    j->n_local++;
    return (long)i;
}

static int split_rcpts(struct accept_job *j)
{
    size_t n = j->m.n_rcpts, c = n ? n : 1;
    j->lmap = calloc(c, sizeof *j->lmap);
    j->rmap = calloc(c, sizeof *j->rmap);
    j->lr = calloc(c, sizeof *j->lr);
    j->laddr = calloc(c, sizeof *j->laddr);
    j->ldir = calloc(c, sizeof *j->ldir);
    j->remote = calloc(c, sizeof *j->remote);
    j->res.rcpts = calloc(c, sizeof *j->res.rcpts);
    if (!j->lmap || !j->rmap || !j->lr || !j->laddr || !j->ldir || !j->remote || !j->res.rcpts)
        return -1;
    j->res.n_rcpts = n;
    for (size_t i = 0; i < n; i++) {
        const char *a = j->m.rcpts[i];
        j->res.rcpts[i].addr = a;
        j->lmap[i] = j->rmap[i] = -1;
        if (j->m.local[i]) {
            if ((j->lmap[i] = add_local(j, a)) < 0)
                return -1;
        } else if ((j->rmap[i] = find_remote(j, a)) < 0) {
            j->rmap[i] = (long)j->n_remote;
            j->remote[j->n_remote++] = a;
        }
    }
    return 0;
}

static void start_delivery(struct accept_job *j);

/* ------------------------------------------------------------ 2: decision */

/* The decision is made (filter, DKIM, checks): count it, then refuse or
 * deliver. */
static void decide(struct accept_job *j)
{
    accept_count_decision(j);
    if (j->fr.code != 0)
        refuse(j, j->fr.code, j->fr.reply);
    else if (j->check_code != 0)
        refuse(j, j->check_code, j->check_reply);
    else
        start_delivery(j);
}

/* After a worker step: false when the job ended here (cancelled, or the
 * worker failed). */
static bool worker_ok(struct accept_job *j, int status)
{
    if (j->cancelled) { /* nobody to answer: store nothing */
        j->res.cancelled = true;
        complete(j);
        return false;
    }
    if (status < 0 || j->prep_rc < 0) {
        refuse(j, 451, j->prep_rc < 0 && j->fr.code == 451 ? j->fr.reply : REPLY_NOMEM);
        return false;
    }
    return true;
}

static void finish_done(uv_work_t *req, int status)
{
    struct accept_job *j = req->data;
    accept_dkim_conclude(j);
    if (worker_ok(j, status))
        decide(j);
}

/* The DKIM keys are in (or failed): back to a worker for the verdict. */
static void keys_done(struct accept_job *j)
{
    if (j->cancelled) {
        j->res.cancelled = true;
        complete(j);
    } else if (uv_queue_work(A.loop, &j->work, accept_finish_work, finish_done) < 0) {
        refuse(j, 451, REPLY_NOMEM);
    }
}

static void prep_done(uv_work_t *req, int status)
{
    struct accept_job *j = req->data;
    if (!worker_ok(j, status))
        return;
    if (j->fr.code == 0 && j->dkim) { /* the DKIM stage needs its keys */
        if (accept_dkim_fetch(j, keys_done) == 0)
            keys_done(j);
        return;
    }
    decide(j);
}

struct accept_job *accept_message(const struct accept_msg *m, accept_cb cb, void *ud)
{
    struct accept_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->m = *m;
    if (!j->m.data)
        j->m.data = "";
    j->cfg = A.cfg;
    j->cb = cb;
    j->ud = ud;
    j->t0_ns = uv_hrtime();
    j->work.data = j;
    if (!A.store || split_rcpts(j) < 0 ||
        uv_queue_work(A.loop, &j->work, accept_prep_work, prep_done) < 0) {
        job_free(j);
        return NULL;
    }
    return j;
}

void accept_cancel(struct accept_job *j)
{
    j->cancelled = true;
}

/* ------------------------------------------------------------ 3: store */

static void conclude(struct accept_job *j);

static void part_done(struct accept_job *j)
{
    if (--j->waiting == 0)
        conclude(j);
}

static void on_stored(void *ud, struct store_rcpt *r, size_t n)
{
    (void)r;
    (void)n;
    part_done(ud);
}

static void on_queued(void *ud, int status, const char *id)
{
    struct accept_job *j = ud;
    j->queue_status = status;
    if (status == 0) {
        j->res.queued = true;
        snprintf(j->res.queue_id, sizeof j->res.queue_id, "%s", id);
    }
    part_done(j);
}

static void start_delivery(struct accept_job *j)
{
    j->waiting = 1; /* held until both parts are started */
    const char *from = j->fr.null_sender ? "" : j->m.mail_from;
    if (j->n_local) {
        if (store_deliver_async(A.store, j->local.data, j->local.len, j->lr, j->n_local,
                                on_stored, j) == 0)
            j->waiting++;
        else
            for (size_t i = 0; i < j->n_local; i++)
                j->lr[i] = (struct store_rcpt){.dir = j->ldir[i], .status = STORE_EIO,
                                               .err = EAGAIN};
    }
    if (j->n_remote) {
        if (queue_write_async(A.loop, A.queue_dir, from, j->remote, j->n_remote,
                              j->clean.data, j->clean.len, on_queued, j) == 0)
            j->waiting++;
        else
            j->queue_status = -EAGAIN;
    }
    part_done(j);
}

/* ------------------------------------------------------------ 4: results */

/* Fills the per-recipient results; true when every one succeeded. */
static bool collect_results(struct accept_job *j)
{
    bool all_ok = true;
    for (size_t i = 0; i < j->res.n_rcpts; i++) {
        struct accept_rcpt_result *r = &j->res.rcpts[i];
        if (j->lmap[i] >= 0) {
            const struct store_rcpt *s = &j->lr[j->lmap[i]];
            r->status = s->status == STORE_OK       ? ACCEPT_DELIVERED
                        : s->status == STORE_EQUOTA ? ACCEPT_OVERQUOTA
                                                    : ACCEPT_TEMPFAIL;
            r->err = s->status == STORE_EIO ? s->err : 0;
        } else {
            r->status = j->queue_status == 0 ? ACCEPT_QUEUED : ACCEPT_TEMPFAIL;
            r->err = -j->queue_status;
        }
        all_ok &= r->status == ACCEPT_DELIVERED || r->status == ACCEPT_QUEUED;
    }
    for (size_t i = 0; i < j->n_local; i++) { /* once per account */
        if (j->lr[i].status == STORE_EQUOTA) {
            metrics_inc(M_QUOTA_EXCEEDED);
            log_info("delivery to %s refused: %s", j->laddr[i], QUOTA_REASON);
        } else if (j->lr[i].status == STORE_EIO) {
            log_error("delivery to %s failed: %s", j->laddr[i], strerror(j->lr[i].err));
        }
    }
    if (j->n_remote && j->queue_status != 0)
        log_error("accept: queue write failed: %s", strerror(-j->queue_status));
    return all_ok;
}

/* Push (federation facts §5): not for a message whose From is the
 * recipient itself (the envelope sender when there is no From). */
static bool self_sent(const struct accept_job *j, const char *addr)
{
    const char *from = j->fr.from_addr[0] ? j->fr.from_addr : j->m.mail_from;
    return from && strcasecmp(from, addr) == 0;
}

static void tell_watchers(struct accept_job *j)
{
    bool any = false;
    for (size_t i = 0; i < j->n_local; i++) {
        if (j->lr[i].status != STORE_OK)
            continue;
        any = true;
        metrics_inc(M_DELIVERED_MAIL);
        store_notify_append(j->laddr[i], "INBOX", 0, 0, 0, NULL);
        if (!self_sent(j, j->laddr[i]))
            push_delivered(j->laddr[i]);
    }
    if (any)
        metrics_observe_delivery_us((uv_hrtime() - j->t0_ns) / 1000);
}

/* all_or_nothing: what was stored for the others is taken back. */
static void undo_work(uv_work_t *req)
{
    struct accept_job *j = req->data;
    struct store_opts o = {.quota = A.quota};
    store_undeliver(j->lr, j->n_local, &o);
    if (j->res.queued && queue_remove(A.queue_dir, j->res.queue_id) < 0)
        log_error("accept: cannot remove queue file %s: %s", j->res.queue_id, strerror(errno));
}

static void undo_done(uv_work_t *req, int status)
{
    struct accept_job *j = req->data;
    (void)status;
    for (size_t i = 0; i < j->res.n_rcpts; i++)
        if (j->res.rcpts[i].status == ACCEPT_DELIVERED || j->res.rcpts[i].status == ACCEPT_QUEUED)
            j->res.rcpts[i].status = ACCEPT_WITHDRAWN;
    j->res.queued = false;
    complete(j);
}

static void stored(struct accept_job *j)
{
    tell_watchers(j);
    if (j->res.queued) /* final: the runner takes it */
        outq_notify(j->res.queue_id);
    complete(j);
}

static void take_back(struct accept_job *j)
{
    if (uv_queue_work(A.loop, &j->work, undo_work, undo_done) < 0) {
        undo_work(&j->work); /* the pool refused: take back here */
        undo_done(&j->work, 0);
    }
}

static void report_work(uv_work_t *req) { accept_report_work(req->data, A.quota); }

static void report_done(uv_work_t *req, int status)
{
    struct accept_job *j = req->data;
    (void)status;
    if (!j->report_stored) {
        take_back(j);
        return;
    }
    store_notify_append(j->report_account, "INBOX", 0, 0, 0, NULL);
    push_delivered(j->report_account); /* a report from mailer-daemon, never self-sent */
    j->res.reported = true;
    stored(j);
}

static void conclude(struct accept_job *j)
{
    bool all_ok = collect_results(j);
    if (all_ok || !j->m.all_or_nothing) {
        stored(j);
        return;
    }
    if (accept_report_wanted(j)) {
        if (uv_queue_work(A.loop, &j->work, report_work, report_done) < 0) {
            report_work(&j->work);
            report_done(&j->work, 0);
        }
        return;
    }
    take_back(j);
}
