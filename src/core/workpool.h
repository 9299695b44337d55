/* workpool.h: a small, separate pool of worker threads for slow work whose
 * cost a client controls (IMAP SEARCH over message bodies), so that libuv's
 * own pool (UV_THREADPOOL_SIZE workers) always has threads free for logins
 * (argon2), SMTP authentication, deliveries and fsyncs.
 *
 * Design: N pthreads take jobs from one FIFO; a finished job goes onto a
 * done list and a uv_async wakes the loop, which calls each job's done
 * callback on the loop thread (as uv_queue_work's after_work). The pool is
 * smaller than libuv's: a burst of slow jobs queues here and delays only
 * other slow jobs. A job whose owner went away is not skipped by the pool;
 * the owner sets its own cancel flag, which the work checks between steps.
 * Created lazily per loop, never freed (process lifetime); its async handle
 * is unref'd so it never keeps the loop alive. Its threads run at nice
 * WORKPOOL_NICE, so they also yield the CPU to the loop and to logins. */
#ifndef CM_CORE_WORKPOOL_H
#define CM_CORE_WORKPOOL_H

#include <uv.h>

#define WORKPOOL_NICE 10

struct workpool_job {
    struct workpool_job *next;
    void (*work)(struct workpool_job *j); /* worker thread */
    void (*done)(struct workpool_job *j); /* loop thread, after work */
    void *data;
};

/* The loop's slow pool with `threads` workers (created on first use; later
 * calls return the same pool). NULL when threads cannot be started. */
struct workpool *workpool_get(uv_loop_t *loop, unsigned threads);
/* Queues j (its work and done set). Returns 0, or -1 when the pool is gone. */
int workpool_submit(struct workpool *p, struct workpool_job *j);
/* Jobs queued or running (loop thread; for tests and metrics). */
unsigned workpool_pending(const struct workpool *p);

#endif
