/* mxdeliv.c: one POST /mxdeliv request from its complete headers to its
 * answer (see mxdeliv.h). The body streams into a spool (memory, spilling
 * to <state_dir>/spool) while a worker checks that every recipient has an
 * account; at the end of the body the message goes through the acceptance
 * pipeline with origin ACCEPT_MXDELIV (incoming encryption rules, DKIM,
 * delivery, IDLE watchers) unless something refused it already:
 *   envelope   400 + the SMTP line (syntax, relay, too many recipients)
 *   body       413 "552 5.3.4 ..." too big, 400 framing
 *   accounts   400 "550 5.1.1 <rcpt>: ..." for the first unknown one: the
 *              whole request fails and nothing is delivered
 *   pipeline   400 + a 5xx refusal, 503 + a 4xx one (temporary)
 *   results    all_or_nothing: 200 "250 OK" only when every recipient got
 *              its copy; else 503 (I/O) or 400 (a full mailbox).
 * Loop thread only, except check_work (reads the envelope, writes the
 * check's result). The object outlives its session while a worker or the
 * pipeline still refers to it. */
#include "http/mxdeliv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/net.h"
#include "core/spool.h"
#include "smtp/smtp.h"
#include "store/accounts.h"
#include "store/maildir.h"

#define TEXT_NOMEM  "451 4.3.0 Error: insufficient system resources"
#define TEXT_IOERR  "451 4.3.0 Error: queue file write error"

struct mxdeliv {
    const struct config *cfg;
    struct mxdeliv_env env;
    struct mxdeliv_body body;
    struct spool spool;
    const char **rcpts; /* into env.rcpt, for the pipeline */
    bool *local;
    uv_work_t work;
    bool checking;      /* the account check is on a worker */
    bool check_failed;  /* it could not run */
    long unknown;       /* first recipient without an account, or -1 */
    struct accept_job *job;
    mxdeliv_done_fn done;
    void *ud;
    bool released;
};

static void mx_free(struct mxdeliv *m)
{
    spool_reset(&m->spool);
    mxdeliv_env_free(&m->env);
    free(m->rcpts);
    free(m->local);
    free(m);
}

static void maybe_free(struct mxdeliv *m)
{
    if (m->released && !m->checking && !m->job)
        mx_free(m);
}

/* The one answer. m may be freed inside done (mxdeliv_release): callers
 * touch nothing after this. */
static void answer(struct mxdeliv *m, int status, const char *text)
{
    mxdeliv_done_fn done = m->done;
    m->done = NULL;
    if (done)
        done(m->ud, status, text);
}

/* ------------------------------------------------------------ start */

static int spool_sink(void *ctx, const char *p, size_t n)
{
    struct mxdeliv *m = ctx;
    if (spool_append(&m->spool, p, n) < 0) {
        log_error("mxdeliv: spool write failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void check_work(uv_work_t *req)
{
    struct mxdeliv *m = req->data;
    for (size_t i = 0; i < m->env.n_rcpts; i++) {
        if (!store_account_exists(m->cfg, m->env.account[i])) {
            m->unknown = (long)i;
            return;
        }
    }
}

static void decide(struct mxdeliv *m);

static void check_done(uv_work_t *req, int status)
{
    struct mxdeliv *m = req->data;
    m->checking = false;
    m->check_failed = status < 0;
    if (m->released) {
        maybe_free(m);
        return;
    }
    if (m->done) /* the body is complete already */
        decide(m);
}

struct mxdeliv *mxdeliv_start(const struct config *cfg, const struct http_request *q)
{
    struct mxdeliv *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cfg = cfg;
    m->unknown = -1;
    spool_init(&m->spool, smtp_spool_dir());
    if (mxdeliv_envelope(q, cfg, &m->env) == 0 && !smtp_spool_dir()) {
        m->env.status = 503; /* no spool: the SMTP module did not start */
        snprintf(m->env.reply, sizeof m->env.reply, "%s", TEXT_IOERR);
    }
    bool ok = m->env.status == 0;
    mxdeliv_body_init(&m->body, (uint64_t)cfg->max_message_size, ok ? spool_sink : NULL, m);
    if (!ok)
        return m; /* the body is read and dropped; the refusal comes at its end */
    m->work.data = m;
    if (uv_queue_work(net_loop(), &m->work, check_work, check_done) < 0)
        m->check_failed = true;
    else
        m->checking = true;
    return m;
}

int mxdeliv_sink(void *ctx, const char *p, size_t n)
{
    struct mxdeliv *m = ctx;
    mxdeliv_body_feed(&m->body, p, n);
    return 0;
}

bool mxdeliv_want_continue(const struct mxdeliv *m, const struct http_request *q)
{
    const char *expect = http_req_header(q, "Expect");
    const char *cl = http_req_header(q, "Content-Length");
    if (!expect || strcasecmp(expect, "100-continue") != 0 || m->env.status != 0)
        return false;
    return !cl || strtoull(cl, NULL, 10) <= (unsigned long long)m->cfg->max_message_size;
}

/* ------------------------------------------------------------ the end */

static void result_answer(struct mxdeliv *m, const struct accept_result *res)
{
    char text[FILTER_REPLY_MAX];
    if (res->code != 0) {
        answer(m, res->code >= 400 && res->code < 500 ? 503 : 400, res->reply);
        return;
    }
    const char *quota_rcpt = NULL;
    for (size_t i = 0; i < res->n_rcpts; i++) {
        if (res->rcpts[i].status == ACCEPT_TEMPFAIL) {
            answer(m, 503, TEXT_IOERR);
            return;
        }
        if (res->rcpts[i].status == ACCEPT_OVERQUOTA && !quota_rcpt)
            quota_rcpt = res->rcpts[i].addr;
    }
    if (quota_rcpt) {
        snprintf(text, sizeof text, "552 5.2.2 <%s>: %s", quota_rcpt, QUOTA_REASON);
        answer(m, 400, text);
        return;
    }
    answer(m, 200, "250 OK");
}

static void on_accepted(void *ud, const struct accept_result *res)
{
    struct mxdeliv *m = ud;
    m->job = NULL;
    if (res->cancelled || m->released) {
        maybe_free(m);
        return;
    }
    result_answer(m, res);
}

static void start_pipeline(struct mxdeliv *m)
{
    size_t n = m->env.n_rcpts;
    struct accept_msg am = {.origin = ACCEPT_MXDELIV, .mail_from = m->env.mail_from,
                            .n_rcpts = n, .all_or_nothing = true};
    m->rcpts = calloc(n, sizeof *m->rcpts);
    m->local = calloc(n, sizeof *m->local);
    if (!m->rcpts || !m->local) {
        answer(m, 503, TEXT_NOMEM);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        m->rcpts[i] = m->env.rcpt[i];
        m->local[i] = true; /* every recipient is an account of ours */
    }
    am.rcpts = m->rcpts;
    am.local = m->local;
    if (spool_view(&m->spool, &am.data, &am.len) < 0) {
        log_error("mxdeliv: cannot read the spool: %s", strerror(errno));
        answer(m, 503, TEXT_IOERR);
        return;
    }
    if (!(m->job = accept_message(&am, on_accepted, m)))
        answer(m, 503, TEXT_NOMEM);
}

static void decide(struct mxdeliv *m)
{
    char text[FILTER_REPLY_MAX];
    int status;
    if (m->env.status != 0) {
        answer(m, m->env.status, m->env.reply);
    } else if ((status = mxdeliv_body_finish(&m->body, text, sizeof text)) != 0) {
        answer(m, status, text);
    } else if (m->check_failed) {
        snprintf(text, sizeof text, "451 4.3.0 <%s>: Temporary lookup failure", m->env.rcpt[0]);
        answer(m, 503, text);
    } else if (m->unknown >= 0) {
        snprintf(text, sizeof text,
                 "550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox "
                 "table",
                 m->env.rcpt[m->unknown]);
        answer(m, 400, text);
    } else {
        start_pipeline(m);
    }
}

void mxdeliv_finish(struct mxdeliv *m, mxdeliv_done_fn done, void *ud)
{
    m->done = done;
    m->ud = ud;
    if (!m->checking)
        decide(m);
}

void mxdeliv_release(struct mxdeliv *m)
{
    if (!m)
        return;
    m->released = true;
    m->done = NULL;
    if (m->job)
        accept_cancel(m->job);
    maybe_free(m);
}

void mxdeliv_count(int status)
{
    enum metric_counter c = status == 200   ? M_MXDELIV_200
                            : status == 400 ? M_MXDELIV_400
                            : status == 405 ? M_MXDELIV_405
                            : status == 413 ? M_MXDELIV_413
                            : status == 503 ? M_MXDELIV_503
                                            : M_MXDELIV_OTHER;
    metrics_inc(c);
}
