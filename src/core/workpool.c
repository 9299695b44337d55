/* workpool.c: the separate slow-work thread pool (see workpool.h). */
#include "core/workpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

struct workpool {
    uv_loop_t *loop;
    uv_async_t async;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct workpool_job *head, *tail; /* waiting */
    struct workpool_job *done;        /* finished, for the loop */
    unsigned pending;                 /* loop side: submitted, not yet done */
};

static struct workpool *the_pool; /* one loop per process */

static void *worker(void *arg)
{
    struct workpool *p = arg;
    /* below the loop and libuv's workers: on a busy machine a burst of
     * slow work takes the CPU that is left over (Linux: per thread) */
    setpriority(PRIO_PROCESS, (id_t)gettid(), WORKPOOL_NICE);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head)
            pthread_cond_wait(&p->cv, &p->mu);
        struct workpool_job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        j->work(j);
        pthread_mutex_lock(&p->mu);
        j->next = p->done;
        p->done = j;
        pthread_mutex_unlock(&p->mu);
        uv_async_send(&p->async);
    }
    return NULL;
}

static void on_async(uv_async_t *a)
{
    struct workpool *p = a->data;
    pthread_mutex_lock(&p->mu);
    struct workpool_job *list = p->done, *rev = NULL;
    p->done = NULL;
    pthread_mutex_unlock(&p->mu);
    while (list) { /* oldest first */
        struct workpool_job *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        struct workpool_job *n = rev->next;
        p->pending--;
        rev->done(rev);
        rev = n;
    }
}

struct workpool *workpool_get(uv_loop_t *loop, unsigned threads)
{
    if (the_pool)
        return the_pool->loop == loop ? the_pool : NULL;
    struct workpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->loop = loop;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (uv_async_init(loop, &p->async, on_async) < 0) {
        free(p);
        return NULL;
    }
    p->async.data = p;
    uv_unref((uv_handle_t *)&p->async);
    unsigned started = 0;
    for (unsigned i = 0; i < (threads ? threads : 1); i++) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, worker, p) == 0)
            started++;
        pthread_attr_destroy(&at);
    }
    if (started == 0) {
        uv_close((uv_handle_t *)&p->async, NULL); /* p leaks with the handle: rare */
        return NULL;
    }
    the_pool = p;
    return p;
}

int workpool_submit(struct workpool *p, struct workpool_job *j)
{
    if (!p || !j->work || !j->done)
        return -1;
    j->next = NULL;
    p->pending++;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

unsigned workpool_pending(const struct workpool *p) { return p ? p->pending : 0; }
