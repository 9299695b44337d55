/* submit_message.c: what happens to a submitted message after the final
 * dot, up to its one reply line.
 *
 *  1. Worker: filter_outgoing (From == MAIL FROM, encryption rules of spec
 *     §3.5), then filter_clean_submission (authclean: Received,
 *     X-Originating-IP, X-Mailer, User-Agent go, Subject becomes [...]) and,
 *     for the Maildir copy, filter_clean_delivery on top (Received,
 *     DKIM-Signature, Authentication-Results). We add no Received header.
 *  2. Loop: the spec's log lines and counters; a refusal is answered as the
 *     filter wrote it (500 / 523).
 *  3. Local recipients (deduplicated): store_deliver_async, one durable
 *     copy each (file and new/ fsynced) with the Dovecot quota. Remote
 *     recipients (deduplicated): queue_write_async into <state_dir>/queue
 *     (fsynced). Both run at once.
 *  4. When every part is durable: watchers of each local account (IMAP IDLE
 *     sessions, push) are told in this loop turn with
 *     store_notify_append(addr, "INBOX", uid 0, ...): uid 0 means "a file
 *     arrived in new/; sync the folder to give it its UID" (the index is
 *     the watcher's business: we do not open mailboxes here). Then
 *     "250 2.0.0 Ok: queued as <id>".
 *     When any part failed, the parts that did succeed are taken back
 *     (store_undeliver and the queue file, on a worker) before answering, so a message is acknowledged entirely
 *     or not at all: quota -> "552 5.2.2 <rcpt>: Quota exceeded (mailbox for
 *     user is full)" (Dovecot's LMTP text; for submission the direct 5xx is
 *     the honest answer, as there is no bounce to send yet), anything else
 *     -> "451 4.3.0 Error: queue file write error". A crash in between can
 *     leave a stored copy of an unacknowledged message, never the reverse.
 *  5. The §5.2 quota trim is store's business: store_deliver runs it
 *     after each local delivery (only does work above 75 % of the quota). */
#include "smtp/submission_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/mailbox.h"

#define REPLY_IOERR "451 4.3.0 Error: queue file write error"
#define REPLY_NOMEM "451 4.3.0 Error: insufficient system resources"

void submit_message_free(struct submit_msg *m)
{
    if (!m)
        return;
    buf_free(&m->clean);
    buf_free(&m->local);
    free(m->all_rcpts);
    free(m->lr);
    free(m->laddr);
    free(m->ldir);
    free(m->remote);
    free(m);
}

/* The final reply: resumes the session and forgets the message. */
static void finish(struct submit_msg *m, const char *reply)
{
    struct sub *s = m->s;
    spool_reset(&s->spool);
    s->msg = NULL;
    s->acting = false;
    if (!s->gone)
        smtp_session_resume_message(s->ss, reply);
    submit_message_free(m);
    sub_continue(s);
}

/* ------------------------------------------------------------ recipients */

static bool seen_local(const struct submit_msg *m, const char *addr)
{
    for (size_t i = 0; i < m->n_local; i++)
        if (strcmp(m->laddr[i], addr) == 0)
            return true;
    return false;
}

static bool seen_remote(const struct submit_msg *m, const char *addr)
{
    for (size_t i = 0; i < m->n_remote; i++)
        if (strcasecmp(m->remote[i], addr) == 0)
            return true;
    return false;
}

/* Local recipients were found to exist at RCPT time (rcpt->local). */
static int add_local(struct submit_msg *m, const char *addr)
{
    const char *why;
    char norm[STORE_ADDR_MAX + 1];
    if (store_addr_normalize(smtp_mod.cfg, addr, norm, sizeof norm, &why) < 0)
        return -1;
    if (seen_local(m, norm))
        return 0;
    size_t i = m->n_local;
    if (store_account_dir(smtp_mod.cfg, norm, m->ldir[i], sizeof m->ldir[i]) < 0)
        return -1;
    memcpy(m->laddr[i], norm, sizeof norm);
    m->lr[i] = (struct store_rcpt){.dir = m->ldir[i]};
    m->n_local++;
    return 0;
}

static int split_rcpts(struct submit_msg *m, const struct smtp_envelope *env)
{
    size_t n = env->n_rcpts;
    m->all_rcpts = calloc(n ? n : 1, sizeof *m->all_rcpts);
    m->remote = calloc(n ? n : 1, sizeof *m->remote);
    m->lr = calloc(n ? n : 1, sizeof *m->lr);
    m->laddr = calloc(n ? n : 1, sizeof *m->laddr);
    m->ldir = calloc(n ? n : 1, sizeof *m->ldir);
    if (!m->all_rcpts || !m->remote || !m->lr || !m->laddr || !m->ldir)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct smtp_rcpt *r = &env->rcpts[i];
        m->all_rcpts[i] = r->addr;
        if (r->local) {
            if (add_local(m, r->addr) < 0)
                return -1;
        } else if (!seen_remote(m, r->addr)) {
            m->remote[m->n_remote++] = r->addr;
        }
    }
    m->n_all = n;
    return 0;
}

/* ------------------------------------------------------------ 1-2: filter */

static void prep_work(uv_work_t *req)
{
    struct submit_msg *m = req->data;
    struct filter_envelope fe = {.mail_from = m->mail_from, .rcpts = m->all_rcpts,
                                 .n_rcpts = m->n_all};
    m->prep_rc = filter_outgoing(m->data, m->len, &fe, &m->fr);
    if (m->prep_rc < 0 || m->fr.code != 0)
        return;
    if (filter_clean_submission(m->data, m->len, &m->clean) < 0 ||
        (m->n_local && filter_clean_delivery(m->clean.data, m->clean.len, &m->local) < 0))
        m->prep_rc = -1;
}

static void count_decision(const struct filter_result *fr)
{
    char lines[2][FILTER_REPLY_MAX];
    int n = filter_log_lines(FILTER_OUTGOING, fr, lines);
    for (int i = 0; i < n; i++)
        log_info("%s", lines[i]);
    if (fr->kind == FILTER_KIND_ENCRYPTED || fr->kind == FILTER_KIND_SECUREJOIN)
        metrics_inc(M_OUTGOING_ENCRYPTED);
    else if (fr->kind != FILTER_KIND_INVALID)
        metrics_inc(M_OUTGOING_UNENCRYPTED);
    if (fr->kind == FILTER_KIND_REJECTED)
        metrics_inc(M_REJECTED_UNENCRYPTED);
}

static void start_delivery(struct submit_msg *m);

static void prep_done(uv_work_t *req, int status)
{
    struct submit_msg *m = req->data;
    struct sub *s = m->s;
    if (s->gone) { /* nobody to answer: store nothing */
        sub_release(s);
        return;
    }
    if (status < 0 || m->prep_rc < 0) {
        finish(m, m->prep_rc < 0 && m->fr.code == 451 ? m->fr.reply : REPLY_NOMEM);
    } else {
        count_decision(&m->fr);
        if (m->fr.code != 0)
            finish(m, m->fr.reply);
        else
            start_delivery(m);
    }
    sub_release(s);
}

void submit_message_start(struct sub *s, const struct smtp_envelope *env)
{
    struct submit_msg *m = calloc(1, sizeof *m);
    if (!m) {
        s->acting = false;
        spool_reset(&s->spool);
        smtp_session_resume_message(s->ss, REPLY_NOMEM);
        return;
    }
    s->msg = m;
    m->s = s;
    m->t0_ns = uv_hrtime();
    m->mail_from = env->mail_from;
    m->work.data = m;
    if (spool_view(&s->spool, &m->data, &m->len) < 0) {
        log_error("submission: cannot read the spool: %s", strerror(errno));
        finish(m, REPLY_IOERR);
        return;
    }
    if (!m->data)
        m->data = "";
    if (split_rcpts(m, env) < 0 ||
        uv_queue_work(smtp_mod.loop, &m->work, prep_work, prep_done) < 0) {
        finish(m, REPLY_NOMEM);
        return;
    }
    sub_hold(s);
}

/* ------------------------------------------------------------ 3: store */

static void conclude(struct submit_msg *m);

static void part_done(struct submit_msg *m)
{
    struct sub *s = m->s;
    if (--m->waiting == 0)
        conclude(m);
    sub_release(s);
}

static void on_stored(void *ud, struct store_rcpt *r, size_t n)
{
    (void)r;
    (void)n;
    part_done(ud);
}

static void on_queued(void *ud, int status, const char *id)
{
    struct submit_msg *m = ud;
    m->queue_status = status;
    if (status == 0) {
        m->queued = true;
        snprintf(m->queue_id, sizeof m->queue_id, "%s", id);
    }
    part_done(m);
}

static void start_delivery(struct submit_msg *m)
{
    m->waiting = 1; /* held until both parts are started */
    if (m->n_local) {
        if (store_deliver_async(smtp_mod.store, m->local.data, m->local.len, m->lr, m->n_local,
                                on_stored, m) == 0) {
            m->waiting++;
            sub_hold(m->s);
        } else {
            for (size_t i = 0; i < m->n_local; i++)
                m->lr[i].status = STORE_EIO;
        }
    }
    if (m->n_remote) {
        if (queue_write_async(smtp_mod.loop, smtp_mod.queue_dir, m->mail_from, m->remote,
                              m->n_remote, m->clean.data, m->clean.len, on_queued, m) == 0) {
            m->waiting++;
            sub_hold(m->s);
        } else {
            m->queue_status = -EAGAIN;
        }
    }
    if (--m->waiting == 0)
        conclude(m);
}

/* ------------------------------------------------------------ 4: answer */

static void succeed(struct submit_msg *m)
{
    for (size_t i = 0; i < m->n_local; i++) {
        metrics_inc(M_DELIVERED_MAIL);
        store_notify_append(m->laddr[i], "INBOX", 0, 0, 0, NULL);
    }
    if (m->n_local) {
        metrics_observe_delivery_us((uv_hrtime() - m->t0_ns) / 1000);
    }
    char reply[FILTER_REPLY_MAX];
    if (m->queued)
        snprintf(reply, sizeof reply, "250 2.0.0 Ok: queued as %s", m->queue_id);
    else
        snprintf(reply, sizeof reply, "250 2.0.0 Ok: queued as %llX%05llX",
                 (unsigned long long)time(NULL), (unsigned long long)++smtp_mod.msg_counter);
    finish(m, reply);
}

struct undo_job {
    uv_work_t req;
    struct submit_msg *m;
};

/* Takes back what was stored of a message that will not be acknowledged:
 * the local copies through store (files and quota), the queue file. */
static void undo_work(uv_work_t *req)
{
    struct submit_msg *m = ((struct undo_job *)req->data)->m;
    struct store_opts o = {.quota = smtp_mod.quota};
    store_undeliver(m->lr, m->n_local, &o);
    if (m->queued) {
        char path[4096 + QUEUE_ID_LEN + 2];
        snprintf(path, sizeof path, "%s/%s", smtp_mod.queue_dir, m->queue_id);
        if (unlink(path) < 0 && errno != ENOENT)
            log_error("submission: cannot remove %s: %s", path, strerror(errno));
    }
}

static void undo_done(uv_work_t *req, int status)
{
    struct undo_job *u = req->data;
    struct submit_msg *m = u->m;
    struct sub *s = m->s;
    (void)status;
    free(u);
    finish(m, m->reply);
    sub_release(s);
}

/* The reply for a failed message; counts and logs quota refusals. */
static bool failure_reply(struct submit_msg *m)
{
    const char *quota_rcpt = NULL;
    bool ioerr = m->n_remote && m->queue_status != 0;
    for (size_t i = 0; i < m->n_local; i++) {
        if (m->lr[i].status == STORE_EQUOTA) {
            metrics_inc(M_QUOTA_EXCEEDED);
            log_info("delivery to %s refused: %s", m->laddr[i], QUOTA_REASON);
            if (!quota_rcpt)
                quota_rcpt = m->laddr[i];
        } else if (m->lr[i].status == STORE_EIO) {
            log_error("delivery to %s failed: %s", m->laddr[i], strerror(m->lr[i].err));
            ioerr = true;
        }
    }
    if (ioerr)
        snprintf(m->reply, sizeof m->reply, "%s", REPLY_IOERR);
    else if (quota_rcpt)
        snprintf(m->reply, sizeof m->reply, "552 5.2.2 <%s>: %s", quota_rcpt, QUOTA_REASON);
    if (m->n_remote && m->queue_status != 0)
        log_error("submission: queue write failed: %s", strerror(-m->queue_status));
    return ioerr || quota_rcpt;
}

static void conclude(struct submit_msg *m)
{
    if (!failure_reply(m)) {
        succeed(m);
        return;
    }
    struct undo_job *u = calloc(1, sizeof *u);
    if (!u) {
        finish(m, m->reply);
        return;
    }
    u->m = m;
    u->req.data = u;
    if (uv_queue_work(smtp_mod.loop, &u->req, undo_work, undo_done) < 0) {
        free(u);
        finish(m, m->reply);
        return;
    }
    sub_hold(m->s);
}
