/* submission.c: the I/O owner of SMTP sessions: submission (587 with
 * STARTTLS, 465 and the https port with ALPN "smtp") and MX (port 25:
 * SMTP_MODE_MX, STARTTLS mandatory before MAIL, no AUTH, only our domain
 * as recipients). It feeds the bytes net.c hands over into the sans-I/O
 * state machine (smtp_session.h) and performs the actions it asks for:
 *   STARTTLS     conn_starttls, then resume_tls on the handshake
 *   AUTH         store_login_async (create-on-login); cancelled on close
 *   CHECK_RCPT   local domain: user+tag -> user (store_addr_recipient),
 *                store_account_exists on a worker (a stat) -> LOCAL_OK /
 *                LOCAL_UNKNOWN (550 5.1.1); other domains -> REMOTE_OK on
 *                submission, RELAY_DENIED (554 5.7.1) on port 25
 *   DATA_CHUNK   spool_append (memory, spilling to <state_dir>/spool)
 *   DATA_ABORT   spool_reset
 *   MESSAGE_DONE submit_message.c -> the acceptance pipeline (accept.c)
 *   CLOSE        conn_close after the output
 * Reading is paused while an asynchronous action is pending, so a client
 * cannot make us buffer more than one read beyond what the machine holds.
 * Promises: a session is freed only when its connection is gone and no
 * worker or store callback still refers to it; no reply or log line names
 * the client's address. */
#include "smtp/submission_int.h"
#include "smtp/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/metrics.h"
#include "push/push.h"
#include "smtp/accept_int.h"
#include "smtp/smtp.h"
#include "smtp/smtp_ratelimit.h"

struct smtp_module smtp_mod;

static const char *domain(const struct sub *s) { return smtp_mod.cfg->mail_domain; }

/* ------------------------------------------------------------ lifetime */

static void sub_free(struct sub *s)
{
    if (s->msg)
        submit_message_free(s->msg);
    spool_reset(&s->spool);
    smtp_session_free(s->ss);
    free(s);
}

void sub_hold(struct sub *s) { s->busy++; }

bool sub_release(struct sub *s)
{
    s->busy--;
    if (s->gone && s->busy == 0) {
        sub_free(s);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ actions */

static bool flush_output(struct sub *s);

/* A failed AUTH, answered after the delay authfail_record asked for;
 * after LIM_AUTH_FAILS failures the connection is closed. */
static void auth_fail_answer(void *ud)
{
    struct sub *s = ud;
    s->authwait = NULL;
    s->acting = false;
    if (!sub_release(s))
        return;
    smtp_session_resume_auth(s->ss, SMTP_AUTH_FAIL, NULL);
    if (s->auth_fails >= LIM_AUTH_FAILS) {
        flush_output(s);
        conn_printf(s->c, "421 4.7.0 %s Error: too many authentication failures\r\n", domain(s));
        conn_close(s->c);
        s->closing = true;
        return;
    }
    sub_continue(s);
}

static void on_login(void *ud, int result, const char *err)
{
    struct sub *s = ud;
    (void)err; /* internal detail: the client gets the generic texts */
    s->login = NULL;
    if (result != STORE_LOGIN_OK && result != STORE_LOGIN_TRY_AGAIN && !s->gone) {
        s->auth_fails++;
        unsigned ms = authfail_record("smtp", conn_peer_ip(s->c), s->auth_user);
        s->authwait = authfail_wait_start(ms, auth_fail_answer, s);
        if (s->authwait)
            return; /* still acting, still held */
    }
    s->acting = false;
    if (!sub_release(s))
        return;
    if (result == STORE_LOGIN_OK)
        smtp_session_resume_auth(s->ss, SMTP_AUTH_OK, NULL);
    else if (result == STORE_LOGIN_TRY_AGAIN)
        smtp_session_resume_auth(s->ss, SMTP_AUTH_TEMPFAIL, "try again later");
    else
        smtp_session_resume_auth(s->ss, SMTP_AUTH_FAIL, NULL);
    sub_continue(s);
}

static void start_auth(struct sub *s, const struct smtp_action *a)
{
    const char *why;
    size_t ulen = strnlen(a->user, sizeof s->auth_user - 1);
    if (store_addr_normalize_n(smtp_mod.cfg, a->user, strlen(a->user), s->auth_user,
                               sizeof s->auth_user, &why) < 0) {
        memcpy(s->auth_user, a->user, ulen);
        s->auth_user[ulen] = '\0';
    }
    s->login = store_login_async(smtp_mod.loop, smtp_mod.cfg, a->user, a->password,
                                 conn_peer_ip(s->c), on_login, s);
    if (!s->login) {
        smtp_session_resume_auth(s->ss, SMTP_AUTH_TEMPFAIL, "try again later");
        return;
    }
    s->acting = true;
    sub_hold(s);
}

struct rcpt_work {
    uv_work_t req;
    struct sub *s;
    char addr[STORE_ADDR_MAX + 1];
    bool exists;
};

static void rcpt_work(uv_work_t *req)
{
    struct rcpt_work *w = req->data;
    w->exists = store_account_exists(smtp_mod.cfg, w->addr);
}

static void rcpt_done(uv_work_t *req, int status)
{
    struct rcpt_work *w = req->data;
    struct sub *s = w->s;
    bool exists = status == 0 && w->exists;
    free(w);
    s->acting = false;
    if (!sub_release(s))
        return;
    smtp_session_resume_rcpt(s->ss, exists ? SMTP_RCPT_LOCAL_OK : SMTP_RCPT_LOCAL_UNKNOWN);
    sub_continue(s);
}

/* True when addr's domain is ours (no domain at all counts as ours). */
static bool is_local(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return !at || strcasecmp(at + 1, smtp_mod.cfg->mail_domain) == 0;
}

static void start_rcpt(struct sub *s, const char *addr)
{
    const char *why;
    if (!is_local(addr)) {
        smtp_session_resume_rcpt(s->ss, s->mx ? SMTP_RCPT_RELAY_DENIED : SMTP_RCPT_REMOTE_OK);
        return;
    }
    struct rcpt_work *w = calloc(1, sizeof *w);
    if (!w) {
        smtp_session_resume_rcpt(s->ss, SMTP_RCPT_TEMPFAIL);
        return;
    }
    if (store_addr_recipient(smtp_mod.cfg, addr, w->addr, sizeof w->addr, &why) < 0) {
        free(w);
        smtp_session_resume_rcpt(s->ss, SMTP_RCPT_LOCAL_UNKNOWN);
        return;
    }
    w->s = s;
    w->req.data = w;
    if (uv_queue_work(smtp_mod.loop, &w->req, rcpt_work, rcpt_done) < 0) {
        free(w);
        smtp_session_resume_rcpt(s->ss, SMTP_RCPT_TEMPFAIL);
        return;
    }
    s->acting = true;
    sub_hold(s);
}

static void do_chunk(struct sub *s, const struct smtp_action *a)
{
    bool ok = spool_append(&s->spool, a->data, a->len) == 0;
    if (!ok)
        log_error("%s: spool write failed: %s", s->mx ? "smtp" : "submission", strerror(errno));
    smtp_session_resume_chunk(s->ss, ok);
}

/* Starts the pending action. Returns false when the session must wait
 * (asynchronous work, handshake, close). */
static bool perform(struct sub *s, const struct smtp_action *a)
{
    switch (a->kind) {
    case SMTP_ACT_DATA_CHUNK:
        do_chunk(s, a);
        return true;
    case SMTP_ACT_DATA_ABORT:
        spool_reset(&s->spool);
        smtp_session_resume(s->ss);
        return true;
    case SMTP_ACT_AUTH:
        start_auth(s, a);
        return !s->acting;
    case SMTP_ACT_CHECK_RCPT:
        start_rcpt(s, a->addr);
        return !s->acting;
    case SMTP_ACT_MESSAGE_DONE:
        s->acting = true;
        submit_message_start(s, a->env);
        return false;
    case SMTP_ACT_STARTTLS:
        s->acting = s->transport = true; /* net.c times the handshake */
        if (conn_starttls(s->c) < 0)
            conn_close(s->c);
        return false;
    default: /* SMTP_ACT_CLOSE */
        s->closing = true; /* net.c times the last write */
        conn_close(s->c);
        return false;
    }
}

/* Writes the session's replies; true if there were any. */
static bool flush_output(struct sub *s)
{
    struct buf *out = smtp_session_out(s->ss);
    if (!out->len)
        return false;
    conn_write(s->c, out->data, out->len);
    buf_consume(out, out->len);
    return true;
}

static uint64_t secs_ms(long secs) { return (uint64_t)(secs > 0 ? secs : 1) * 1000u; }

/* Arms the connection timer for the client's turn. Outside DATA/BDAT the
 * next complete command is due smtp_command_timeout after our last reply
 * (bytes of an unfinished line do not move it); in DATA/BDAT each read may
 * take LIM_SMTP_DATA_MS but the message's bytes end within
 * smtp_transaction_timeout of the DATA/BDAT start. */
static void arm_deadline(struct sub *s, bool replied)
{
    const struct config *cfg = smtp_mod.cfg;
    uint64_t now = uv_now(smtp_mod.loop), ms;
    enum smtp_state st = smtp_session_state(s->ss);
    if (st == SMTP_ST_DATA || st == SMTP_ST_BDAT || st == SMTP_ST_BDAT_SKIP) {
        if (!s->txn_deadline)
            s->txn_deadline = now + secs_ms(cfg->smtp_transaction_timeout);
        s->cmd_deadline = 0;
        ms = s->txn_deadline > now ? s->txn_deadline - now : 1;
        if (ms > LIM_SMTP_DATA_MS)
            ms = LIM_SMTP_DATA_MS;
    } else {
        s->txn_deadline = 0;
        if (replied || !s->cmd_deadline)
            s->cmd_deadline = now + secs_ms(cfg->smtp_command_timeout);
        ms = s->cmd_deadline > now ? s->cmd_deadline - now : 1;
    }
    conn_set_timeout(s->c, (unsigned)ms);
}

bool sub_continue(struct sub *s)
{
    if (s->gone || s->closing)
        return true;
    const struct smtp_action *a;
    bool replied = false;
    for (;;) {
        replied |= flush_output(s);
        if (s->acting || !(a = smtp_session_action(s->ss)) || !perform(s, a))
            break;
    }
    replied |= flush_output(s);
    if (s->transport || s->closing)
        return true;
    if (s->acting) {
        conn_set_timeout(s->c, 0); /* our turn, not the client's */
        conn_pause(s->c);
        return true;
    }
    if (s->shutdown) {
        conn_printf(s->c, "421 4.3.2 %s Service shutting down\r\n", domain(s));
        conn_close(s->c);
        s->closing = true;
        return true;
    }
    arm_deadline(s, replied);
    if (smtp_session_want_read(s->ss))
        conn_resume(s->c);
    else
        conn_pause(s->c);
    return true;
}

/* ------------------------------------------------------------ session ops */

static void *open_mode(struct conn *c, bool mx)
{
    struct sub *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    const struct config *cfg = conn_config(c);
    struct smtp_session_config sc = {
        .mode = mx ? SMTP_MODE_MX : SMTP_MODE_SUBMISSION,
        .mail_domain = cfg->mail_domain,
        .max_message_size = (uint64_t)cfg->max_message_size,
        .implicit_tls = conn_is_tls(c),
        .ratelimit = mx ? NULL : smtp_mod.ratelimit,
    };
    s->mx = mx;
    s->ss = smtp_session_new(&sc);
    if (!s->ss) {
        free(s);
        return NULL;
    }
    s->c = c;
    spool_init(&s->spool, smtp_mod.spool_dir);
    sub_continue(s);
    return s;
}

static void *sub_open(struct conn *c) { return open_mode(c, false); }
static void *mx_open(struct conn *c) { return open_mode(c, true); }

static void sub_data(void *p, const char *data, size_t n)
{
    struct sub *s = p;
    smtp_session_input(s->ss, data, n, uv_hrtime());
    sub_continue(s);
}

static void sub_starttls_done(void *p)
{
    struct sub *s = p;
    s->acting = s->transport = false;
    s->cmd_deadline = 0; /* the client's turn starts after the handshake */
    smtp_session_resume_tls(s->ss);
    sub_continue(s);
}

static void sub_timeout(void *p)
{
    struct sub *s = p;
    conn_printf(s->c, "421 4.4.2 %s Error: timeout exceeded\r\n", domain(s));
    conn_close(s->c);
    s->closing = true;
}

static void sub_shutdown(void *p)
{
    struct sub *s = p;
    if (s->msg) { /* answer the message in flight first */
        s->shutdown = true;
        return;
    }
    conn_printf(s->c, "421 4.3.2 %s Service shutting down\r\n", domain(s));
    conn_close(s->c);
    s->closing = true;
}

static void sub_closed(void *p)
{
    struct sub *s = p;
    s->gone = true;
    submit_message_cancel(s->msg);
    if (s->login) {
        store_login_cancel(s->login);
        s->login = NULL;
        s->busy--;
    }
    if (s->authwait) {
        authfail_wait_cancel(s->authwait);
        s->authwait = NULL;
        s->busy--;
    }
    if (s->busy == 0)
        sub_free(s);
}

static void sub_refuse(struct conn *c)
{
    conn_printf(c, "421 4.7.0 %s Error: too many connections\r\n", conn_config(c)->mail_domain);
}

const struct session_ops smtp_submission_ops = {
    .name = "submission", .open = sub_open, .data = sub_data,
    .starttls_done = sub_starttls_done, .timeout = sub_timeout,
    .shutdown = sub_shutdown, .closed = sub_closed, .refuse = sub_refuse,
};

/* Port 25: the same owner; the machine's MX mode and origin ACCEPT_MX. */
const struct session_ops smtp_mx_ops = {
    .name = "smtp", .open = mx_open, .data = sub_data,
    .starttls_done = sub_starttls_done, .timeout = sub_timeout,
    .shutdown = sub_shutdown, .closed = sub_closed, .refuse = sub_refuse,
};

/* ------------------------------------------------------------ module */

static char *subdir(const char *base, const char *name, char *err, size_t errlen)
{
    struct buf b = {0};
    if (buf_printf(&b, "%s/%s", base, name) < 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (mkdir(b.data, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", b.data, strerror(errno));
        buf_free(&b);
        return NULL;
    }
    return buf_steal_str(&b);
}

int smtp_init(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen)
{
    memset(&smtp_mod, 0, sizeof smtp_mod);
    smtp_mod.loop = loop;
    smtp_mod.cfg = cfg;
    smtp_mod.spool_dir = subdir(cfg->state_dir, "spool", err, errlen);
    smtp_mod.queue_dir = subdir(cfg->state_dir, "queue", err, errlen);
    if (!smtp_mod.spool_dir || !smtp_mod.queue_dir) {
        smtp_free();
        return -1;
    }
    smtp_mod.ratelimit = smtp_ratelimit_new(cfg->max_user_send_per_minute,
                                            cfg->max_user_send_burst_size, LIM_RATELIMIT_KEYS);
    if (!smtp_mod.ratelimit || accept_init(loop, cfg, smtp_mod.queue_dir) < 0) {
        snprintf(err, errlen, "out of memory");
        smtp_free();
        return -1;
    }
    if (accept_dkim_init(loop, cfg, err, errlen) < 0) {
        smtp_free();
        return -1;
    }
    if (outq_start(loop, cfg, smtp_mod.queue_dir, err, errlen) < 0) {
        accept_dkim_stop();
        smtp_free();
        return -1;
    }
    if (push_start(loop, cfg, err, errlen) < 0) {
        outq_stop();
        accept_dkim_stop();
        smtp_free();
        return -1;
    }
    return 0;
}

const char *smtp_spool_dir(void) { return smtp_mod.spool_dir; }

void smtp_stop(void)
{
    push_stop();
    outq_stop();
    accept_dkim_stop();
}

void smtp_free(void)
{
    push_free();
    outq_free();
    accept_dkim_free();
    accept_free();
    smtp_ratelimit_free(smtp_mod.ratelimit);
    free(smtp_mod.spool_dir);
    free(smtp_mod.queue_dir);
    memset(&smtp_mod, 0, sizeof smtp_mod);
}
