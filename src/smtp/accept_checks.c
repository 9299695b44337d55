/* accept_checks.c: stage 1 and 2 of the acceptance pipeline (see
 * smtp/smtp.h). On a worker: the origin's filter rules (outgoing for
 * submission; incoming for MX and /mxdeliv, with each recipient's
 * enforceE2EEincoming), then every check registered for the origin
 * (accept_add_check: DKIM signing plugs in here), then the privacy cleanup
 * into the copies for the queue and the Maildir. For MX and /mxdeliv the
 * DKIM stage (accept_dkim.c) sits between the filter and the registered
 * checks and splits this in two worker steps (accept_prep_work, then
 * accept_finish_work after the key lookups on the loop). On the loop: the
 * spec's log lines and counters of the decision. */
#include "smtp/accept_int.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"

static struct {
    unsigned origins;
    accept_check_fn fn;
    void *ud;
} checks[ACCEPT_MAX_CHECKS];
static size_t n_checks;

int accept_add_check(unsigned origins, accept_check_fn fn, void *ud)
{
    if (n_checks == ACCEPT_MAX_CHECKS)
        return -1;
    checks[n_checks].origins = origins;
    checks[n_checks].fn = fn;
    checks[n_checks].ud = ud;
    n_checks++;
    return 0;
}

static bool rcpt_enforced(void *ud, const char *rcpt)
{
    const struct accept_job *j = ud;
    return store_account_enforces_e2ee(j->cfg, rcpt);
}

/* The registered checks for this origin; false when one refused. */
static bool run_checks(struct accept_job *j)
{
    for (size_t i = 0; i < n_checks; i++) {
        if (!(checks[i].origins & ACCEPT_ORIGIN_BIT(j->m.origin)))
            continue;
        struct accept_check c = {.origin = j->m.origin, .data = j->m.data, .len = j->m.len,
                                 .mail_from = j->m.mail_from, .rcpts = j->m.rcpts,
                                 .n_rcpts = j->m.n_rcpts, .filter = &j->fr,
                                 .prepend = &j->prepend};
        if (checks[i].fn(checks[i].ud, &c) < 0) {
            j->prep_rc = -1;
            return false;
        }
        if (c.code != 0) {
            j->check_code = c.code;
            memcpy(j->check_reply, c.reply, sizeof c.reply);
            j->check_reply[sizeof j->check_reply - 1] = '\0';
            return false;
        }
    }
    return true;
}

/* The copies: for remote recipients (submission: authclean) with the
 * checks' header lines in front, and for the Maildir (delivery cleanup). */
static int make_copies(struct accept_job *j)
{
    const char *d = j->m.data;
    size_t n = j->m.len;
    if (j->m.origin == ACCEPT_SUBMISSION) {
        if (filter_clean_submission(d, n, &j->clean) < 0)
            return -1;
        d = j->clean.data ? j->clean.data : "";
        n = j->clean.len;
    } else if (j->n_remote && buf_append(&j->clean, d, n) < 0) {
        return -1;
    }
    if (j->n_local && filter_clean_delivery(d, n, &j->local) < 0)
        return -1;
    if (j->prepend.len && j->n_remote) {
        struct buf both = {0};
        if (buf_append(&both, j->prepend.data, j->prepend.len) < 0 ||
            buf_append(&both, j->clean.data, j->clean.len) < 0) {
            buf_free(&both);
            return -1;
        }
        buf_free(&j->clean);
        j->clean = both;
    }
    return 0;
}

/* After the origin's rules (and DKIM) accepted: the registered checks,
 * then the copies. */
static void checks_and_copies(struct accept_job *j)
{
    if (!run_checks(j))
        return;
    if (make_copies(j) < 0)
        j->prep_rc = -1;
}

void accept_prep_work(uv_work_t *req)
{
    struct accept_job *j = req->data;
    struct filter_envelope fe = {.mail_from = j->m.mail_from, .rcpts = j->m.rcpts,
                                 .n_rcpts = j->m.n_rcpts};
    if (j->m.origin == ACCEPT_SUBMISSION)
        j->prep_rc = filter_outgoing(j->m.data, j->m.len, &fe, &j->fr);
    else
        j->prep_rc = filter_incoming(j->m.data, j->m.len, &fe, rcpt_enforced, j, &j->fr);
    if (j->prep_rc < 0 || j->fr.code != 0)
        return;
    if (accept_dkim_prepare(j) < 0) {
        j->prep_rc = -1;
        return;
    }
    if (!j->dkim) /* no DKIM stage for this message: finish here */
        checks_and_copies(j);
}

void accept_finish_work(uv_work_t *req)
{
    struct accept_job *j = req->data;
    accept_dkim_decide(j);
    if (j->check_code == 0)
        checks_and_copies(j);
}

void accept_count_decision(const struct accept_job *j)
{
    enum filter_direction dir = j->m.origin == ACCEPT_SUBMISSION ? FILTER_OUTGOING
                                                                 : FILTER_INCOMING;
    const struct filter_result *fr = &j->fr;
    char lines[2][FILTER_REPLY_MAX];
    int n = filter_log_lines(dir, fr, lines);
    for (int i = 0; i < n; i++)
        log_info("%s", lines[i]);
    if (j->dkim_kind > 0) /* verified and not passed (0 = pass, -1 = not run) */
        log_info("DKIM: refused mail from %s: %s", fr->from_addr, j->check_reply);
    bool enc = fr->kind == FILTER_KIND_ENCRYPTED || fr->kind == FILTER_KIND_SECUREJOIN;
    if (dir == FILTER_OUTGOING && enc)
        metrics_inc(M_OUTGOING_ENCRYPTED);
    else if (dir == FILTER_OUTGOING && fr->kind != FILTER_KIND_INVALID)
        metrics_inc(M_OUTGOING_UNENCRYPTED);
    else if (enc)
        metrics_inc(M_INCOMING_ENCRYPTED);
    else if (fr->kind != FILTER_KIND_INVALID)
        metrics_inc(M_INCOMING_UNENCRYPTED);
    if (dir == FILTER_INCOMING && fr->kind == FILTER_KIND_MAILER_DAEMON)
        metrics_inc(M_INCOMING_MAILER_DAEMON);
    if (fr->kind == FILTER_KIND_REJECTED)
        metrics_inc(M_REJECTED_UNENCRYPTED);
    if (dir == FILTER_INCOMING)
        metrics_inc(fr->code == 500   ? M_INCOMING_REFUSED_INVALID
                    : fr->code != 0   ? M_INCOMING_REFUSED_UNENCRYPTED
                    : j->check_code == 451 ? M_INCOMING_REFUSED_TEMPFAIL
                    : j->check_code != 0   ? M_INCOMING_REFUSED_DKIM
                                           : M_INCOMING_ACCEPTED);
}
