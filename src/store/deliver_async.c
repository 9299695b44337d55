/* deliver_async.c: store_deliver on libuv's worker pool, for the loop.
 *
 * Jobs wait in a FIFO on the loop thread. At most max_workers batches run
 * at once; a batch takes every waiting job (up to STORE_ASYNC_MAX_BATCH),
 * so deliveries that arrive while the disk is busy are written together
 * and share the fsync of each new/ directory. Completion callbacks run on
 * the loop thread, in submission order within a batch. The queue is
 * bounded: past STORE_ASYNC_MAX_PENDING a submission fails (answer 4xx). */
#include "store/maildir.h"

#include <stdlib.h>
#include <uv.h>

struct async_job {
    struct async_job *next;
    struct store_job job;
    store_deliver_cb cb;
    void *ud;
};

struct store_batch {
    uv_work_t req;
    struct store_async *a;
    struct async_job *head;
};

struct store_async {
    uv_loop_t *loop;
    struct store_opts o;
    unsigned max_workers, running, max_batch;
    struct async_job *qhead, **qtail;
    size_t inflight; /* queued + running */
    bool closing;
};

struct store_async *store_async_new(uv_loop_t *loop, const struct store_opts *o,
                                    unsigned max_workers)
{
    struct store_async *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->loop = loop;
    a->o = *o;
    a->max_workers = max_workers ? max_workers : 1;
    a->max_batch = STORE_ASYNC_MAX_BATCH;
    a->qtail = &a->qhead;
    return a;
}

static void batch_work(uv_work_t *req)
{
    struct store_batch *b = req->data;
    size_t n = 0;
    for (struct async_job *j = b->head; j; j = j->next)
        n++;
    struct store_job *jobs = malloc(n * sizeof(*jobs));
    if (!jobs) { /* deliver one by one */
        for (struct async_job *j = b->head; j; j = j->next)
            store_deliver_batch(&j->job, 1, &b->a->o);
        return;
    }
    n = 0;
    for (struct async_job *j = b->head; j; j = j->next)
        jobs[n++] = j->job;
    store_deliver_batch(jobs, n, &b->a->o);
    free(jobs);
}

static void kick(struct store_async *a);

static void batch_done(uv_work_t *req, int status)
{
    struct store_batch *b = req->data;
    struct store_async *a = b->a;
    (void)status; /* uv_cancel is never called: work always ran */
    for (struct async_job *j = b->head, *nx; j; j = nx) {
        nx = j->next;
        a->inflight--;
        j->cb(j->ud, j->job.r, j->job.n);
        free(j);
    }
    free(b);
    a->running--;
    if (a->closing && a->inflight == 0) {
        free(a);
        return;
    }
    kick(a);
}

/* Starts batches while workers are free and jobs wait. */
static void kick(struct store_async *a)
{
    while (a->qhead && a->running < a->max_workers) {
        struct store_batch *b = calloc(1, sizeof(*b));
        if (!b)
            return; /* retried when a running batch completes */
        b->a = a;
        b->req.data = b;
        struct async_job **tail = &b->head;
        for (size_t k = 0; a->qhead && k < a->max_batch; k++) {
            *tail = a->qhead;
            a->qhead = a->qhead->next;
            tail = &(*tail)->next;
        }
        *tail = NULL;
        if (!a->qhead)
            a->qtail = &a->qhead;
        a->running++;
        uv_queue_work(a->loop, &b->req, batch_work, batch_done);
    }
}

int store_deliver_async(struct store_async *a, const void *msg, size_t len,
                        struct store_rcpt *r, size_t n, store_deliver_cb cb, void *ud)
{
    if (a->closing || a->inflight >= STORE_ASYNC_MAX_PENDING)
        return -1;
    struct async_job *j = calloc(1, sizeof(*j));
    if (!j)
        return -1;
    j->job = (struct store_job){.msg = msg, .len = len, .r = r, .n = n};
    j->cb = cb;
    j->ud = ud;
    *a->qtail = j;
    a->qtail = &j->next;
    a->inflight++;
    kick(a);
    return 0;
}

void store_async_set_max_batch(struct store_async *a, unsigned n)
{
    a->max_batch = n < 1 ? 1 : n > STORE_ASYNC_MAX_BATCH ? STORE_ASYNC_MAX_BATCH : n;
}

size_t store_async_inflight(const struct store_async *a)
{
    return a->inflight;
}

void store_async_free(struct store_async *a)
{
    if (!a)
        return;
    a->closing = true;
    if (a->inflight == 0)
        free(a);
}
