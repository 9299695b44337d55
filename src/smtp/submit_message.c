/* submit_message.c: a message after the final dot (submission, or port 25
 * with origin ACCEPT_MX), up to its one reply line. The session only hands the spooled message and the
 * envelope to the acceptance pipeline (accept.c: filter, cleanup, durable
 * delivery and queueing, watchers) and turns the per-recipient result into
 * the reply:
 *   - a refusal of the whole message (filter 500 / 523, 451) as written;
 *   - every recipient delivered or queued: "250 2.0.0 Ok: queued as <id>";
 *   - submission, some recipients with a full mailbox and the others
 *     stored: 250 too, and the full ones are reported to the sender by a
 *     delivery status notification in its INBOX (accept_report.c, as
 *     Postfix's bounce of Dovecot's LMTP refusal did);
 *   - otherwise (all_or_nothing, so a message is acknowledged entirely or
 *     not at all): any temporary failure -> "451 4.3.0 Error: queue file
 *     write error", else the first full mailbox -> "552 5.2.2 <rcpt>: Quota
 *     exceeded (mailbox for user is full)" (Dovecot's LMTP text; when no
 *     recipient could take it the direct 5xx is the honest answer).
 * Port 25 uses all_or_nothing too: after DATA an SMTP server has one reply
 * for all recipients, and without bounces of our own the only answers that
 * never lose nor duplicate mail are "all stored" (250) or "none stored"
 * (451: the peer retries the whole message; 552: it bounces to the
 * sender). */
#include "smtp/submission_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/store.h"

#define REPLY_IOERR "451 4.3.0 Error: queue file write error"
#define REPLY_NOMEM "451 4.3.0 Error: insufficient system resources"

void submit_message_free(struct submit_msg *m)
{
    if (!m)
        return;
    free(m->rcpts);
    free(m->local);
    free(m);
}

/* The final reply: resumes the session and forgets the message. */
static void finish(struct sub *s, struct submit_msg *m, const char *reply)
{
    spool_reset(&s->spool);
    s->msg = NULL;
    s->acting = false;
    if (!s->gone)
        smtp_session_resume_message(s->ss, reply);
    submit_message_free(m);
    sub_continue(s);
}

static void result_reply(const struct accept_result *res, char *out, size_t cap)
{
    const char *quota_rcpt = NULL;
    bool ioerr = false;
    for (size_t i = 0; i < res->n_rcpts; i++) {
        if (res->rcpts[i].status == ACCEPT_TEMPFAIL)
            ioerr = true;
        else if (res->rcpts[i].status == ACCEPT_OVERQUOTA && !quota_rcpt)
            quota_rcpt = res->rcpts[i].addr;
    }
    if (ioerr)
        snprintf(out, cap, "%s", REPLY_IOERR);
    else if (quota_rcpt && !res->reported)
        snprintf(out, cap, "552 5.2.2 <%s>: %s", quota_rcpt, QUOTA_REASON);
    else if (res->queued)
        snprintf(out, cap, "250 2.0.0 Ok: queued as %s", res->queue_id);
    else
        snprintf(out, cap, "250 2.0.0 Ok: queued as %llX%05llX", (unsigned long long)time(NULL),
                 (unsigned long long)++smtp_mod.msg_counter);
}

static void on_accepted(void *ud, const struct accept_result *res)
{
    struct sub *s = ud;
    struct submit_msg *m = s->msg;
    if (res->cancelled) { /* the connection is gone: nothing was stored */
        s->msg = NULL;
        submit_message_free(m);
        sub_release(s);
        return;
    }
    char reply[FILTER_REPLY_MAX];
    if (res->code != 0)
        snprintf(reply, sizeof reply, "%s", res->reply);
    else
        result_reply(res, reply, sizeof reply);
    finish(s, m, reply);
    sub_release(s);
}

void submit_message_start(struct sub *s, const struct smtp_envelope *env)
{
    struct submit_msg *m = calloc(1, sizeof *m);
    size_t n = env->n_rcpts ? env->n_rcpts : 1;
    struct accept_msg am = {.origin = s->mx ? ACCEPT_MX : ACCEPT_SUBMISSION,
                            .mail_from = env->mail_from,
                            .n_rcpts = env->n_rcpts, .all_or_nothing = true,
                            .report_failed = !s->mx};
    s->msg = m;
    if (!m || !(m->rcpts = calloc(n, sizeof *m->rcpts)) || !(m->local = calloc(n, sizeof *m->local))) {
        finish(s, m, REPLY_NOMEM);
        return;
    }
    for (size_t i = 0; i < env->n_rcpts; i++) {
        m->rcpts[i] = env->rcpts[i].addr;
        m->local[i] = env->rcpts[i].local;
    }
    am.rcpts = m->rcpts;
    am.local = m->local;
    if (spool_view(&s->spool, &am.data, &am.len) < 0) {
        log_error("%s: cannot read the spool: %s", s->mx ? "smtp" : "submission",
                  strerror(errno));
        finish(s, m, REPLY_IOERR);
        return;
    }
    if (!(m->job = accept_message(&am, on_accepted, s))) {
        finish(s, m, REPLY_NOMEM);
        return;
    }
    sub_hold(s);
}

void submit_message_cancel(struct submit_msg *m)
{
    if (m && m->job)
        accept_cancel(m->job);
}
