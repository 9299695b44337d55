/* accept_int.h: private to src/smtp: the acceptance pipeline's job and
 * its start and stop (accept.c, accept_checks.c); the public part is in
 * smtp/smtp.h. */
#ifndef CM_SMTP_ACCEPT_INT_H
#define CM_SMTP_ACCEPT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "filter/filter.h"
#include "smtp/smtp.h"
#include "store/store.h"

struct config;

/* One message in the pipeline (accept.c owns it; accept_checks.c runs
 * stage 1 on a worker, writing only the fields marked "worker"). */
struct accept_job {
    const struct config *cfg;
    uv_work_t work;
    struct accept_msg m;
    accept_cb cb;
    void *ud;
    bool cancelled;
    uint64_t t0_ns;
    /* worker outputs (stage 1) */
    int prep_rc;                 /* 0, or -1 out of memory */
    struct filter_result fr;
    int check_code;
    char check_reply[FILTER_REPLY_MAX];
    struct buf clean;            /* the copy for remote recipients */
    struct buf local;            /* the Maildir copy */
    struct buf prepend;          /* header lines from the checks */
    /* recipients: envelope index -> local or remote slot */
    long *lmap, *rmap;
    struct store_rcpt *lr;
    char (*laddr)[STORE_ADDR_MAX + 1];
    char (*ldir)[4096];
    size_t n_local;
    const char **remote;
    size_t n_remote;
    unsigned waiting;            /* delivery parts outstanding */
    int queue_status;            /* 0 or -errno */
    struct accept_result res;
};

/* Stage 1 (accept_checks.c), on a worker: the origin's filter rules, the
 * registered checks, the copies. */
void accept_prep_work(uv_work_t *req);
/* Stage 2, on the loop: log lines and counters of the decision. */
void accept_count_decision(const struct accept_job *j);

/* Creates the store's delivery engine for the pipeline (workers on the
 * loop's pool, the process-wide quota cache). queue_dir must outlive the
 * pipeline. 0, or -1 (out of memory). */
int accept_init(uv_loop_t *loop, const struct config *cfg, const char *queue_dir);
/* After the loop has finished (nothing in flight). */
void accept_free(void);

#endif
