/* accept_int.h: private to src/smtp: the acceptance pipeline's job and
 * its start and stop (accept.c, accept_checks.c); the public part is in
 * smtp/smtp.h. */
#ifndef CM_SMTP_ACCEPT_INT_H
#define CM_SMTP_ACCEPT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "dkim/dkim.h"
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
    /* DKIM stage (accept_dkim.c), MX and /mxdeliv only */
    struct dkim_verifier *dkim;  /* worker: fed, waiting for its keys */
    char from_domain[FILTER_ADDR_MAX]; /* worker: of the From address */
    int dkim_kind;               /* worker: enum dkim_verdict_kind, -1 = not run */
    void (*dkim_done)(struct accept_job *j); /* loop: the keys are in */
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
    /* accept_report.c: the report of per-recipient failures */
    bool report_stored;          /* worker: in the sender's INBOX */
    char report_account[STORE_ADDR_MAX + 1];
};

/* accept_report.c (report_failed): true when some recipients failed
 * permanently (a full mailbox) and the others were stored; loop thread. */
bool accept_report_wanted(const struct accept_job *j);
/* Worker: builds the delivery status notification for the failed
 * recipients and stores it in the sender's INBOX (sets report_stored). */
struct quota_cache;
void accept_report_work(struct accept_job *j, struct quota_cache *quota);

/* Stage 1 (accept_checks.c), on a worker: the origin's filter rules; then,
 * unless the DKIM stage needs the loop for key lookups (j->dkim set), the
 * registered checks and the copies. */
void accept_prep_work(uv_work_t *req);
/* Stage 1b, on a worker after the key lookups: the DKIM verdict, then the
 * registered checks and the copies when it passed. */
void accept_finish_work(uv_work_t *req);
/* Stage 2, on the loop: log lines and counters of the decision. */
void accept_count_decision(const struct accept_job *j);

/* Creates the store's delivery engine for the pipeline (workers on the
 * loop's pool, the process-wide quota cache). queue_dir must outlive the
 * pipeline. 0, or -1 (out of memory). */
int accept_init(uv_loop_t *loop, const struct config *cfg, const char *queue_dir);
/* After the loop has finished (nothing in flight). */
void accept_free(void);

/* The DKIM stage (accept_dkim.c) for ACCEPT_MX and ACCEPT_MXDELIV, after
 * the incoming filter accepted (upstream's order):
 *   worker  accept_dkim_prepare: a verifier fed from the message in memory
 *   loop    accept_dkim_fetch: the key records, from the cache or c-ares
 *   worker  accept_dkim_decide: signatures checked, the verdict for the
 *           From domain -> check_code / check_reply (554 5.7.1 or 451 4.7.5)
 *   loop    accept_dkim_conclude: cache upkeep, counters, verifier freed
 * One resolver (core/dns + dkim_resolver with its key cache) for the
 * process, made by accept_dkim_init. Without it (unit tests of the
 * pipeline) the stage is skipped. */
int accept_dkim_init(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen);
/* Stops DNS (pending lookups end as temporary failures: 451); later
 * messages get 451 without a lookup. Loop thread, before the loop ends. */
void accept_dkim_stop(void);
/* After the loop has finished. */
void accept_dkim_free(void);
/* Worker: does this job need DKIM (origin, stage present, the From domain
 * not an address literal)? When so, feeds a verifier into j->dkim.
 * 0, or -1 when memory ran out. */
int accept_dkim_prepare(struct accept_job *j);
/* Loop: starts the key lookups of j->dkim. Returns 0 when everything was
 * answered at once (done is not called), 1 when done(j) will run later on
 * the loop, once. */
int accept_dkim_fetch(struct accept_job *j, void (*done)(struct accept_job *j));
/* Worker: the verdict (sets check_code / check_reply unless it passed). */
void accept_dkim_decide(struct accept_job *j);
/* Loop: after decide: drops the keys that failed from the cache, counts
 * the result, frees the verifier. Safe when the stage did not run. */
void accept_dkim_conclude(struct accept_job *j);

#endif
