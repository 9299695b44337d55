/* accept_report.c: the pipeline's per-recipient failures reported to our
 * own sender (issue 17, federation facts §3 "failures reported to our own
 * users"). A submitted message to several recipients of which some have a
 * full mailbox (a permanent failure) while the others got their copies is
 * not taken back as a whole: the others keep it, the submission answers
 * 250, and a delivery status notification naming the failed recipients
 * goes straight into the sender's INBOX - the same report the queue runner
 * writes (outq_dsn_build), which Delta Chat shows as "failed" for them.
 * Temporary failures (I/O) still take everything back (451: the client
 * retries the whole message); a report that cannot be stored does too. */
#include "smtp/accept_int.h"
#include "smtp/outq.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/config.h"
#include "core/log.h"
#include "store/store.h"

#define REPORT_HEADERS_MAX 65536 /* bytes of the original's header in a report */

bool accept_report_wanted(const struct accept_job *j)
{
    if (!j->m.report_failed || !j->m.mail_from[0])
        return false;
    size_t ok = 0, failed = 0;
    for (size_t i = 0; i < j->res.n_rcpts; i++)
        switch (j->res.rcpts[i].status) {
        case ACCEPT_DELIVERED:
        case ACCEPT_QUEUED: ok++; break;
        case ACCEPT_OVERQUOTA: failed++; break;
        default: return false; /* a temporary failure: all or nothing */
        }
    return ok > 0 && failed > 0;
}

void accept_report_work(struct accept_job *j, struct quota_cache *quota)
{
    char msgid[256];
    struct outq_dsn_rcpt *r = calloc(j->res.n_rcpts, sizeof *r);
    char (*reply)[128] = calloc(j->res.n_rcpts, sizeof *reply);
    size_t n = 0;
    for (size_t i = 0; r && reply && i < j->res.n_rcpts; i++) {
        if (j->res.rcpts[i].status != ACCEPT_OVERQUOTA)
            continue;
        snprintf(reply[n], sizeof reply[n], "552 5.2.2 %s", QUOTA_REASON);
        r[n] = (struct outq_dsn_rcpt){j->res.rcpts[i].addr, reply[n]};
        n++;
    }
    size_t hl = outq_dsn_headers(j->m.data, j->m.len, REPORT_HEADERS_MAX, msgid, sizeof msgid);
    int64_t now = (int64_t)time(NULL);
    j->report_stored = n && outq_dsn_store(j->cfg, quota, j->m.mail_from, j->report_account,
                                           sizeof j->report_account, r, n, j->m.data, hl, now,
                                           now, false) == 0;
    if (!j->report_stored)
        log_error("accept: delivery report to %s not stored", j->m.mail_from);
    free(r);
    free(reply);
}
