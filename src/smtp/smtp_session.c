/* smtp_session.c: the SMTP server state machine (see smtp_session.h). Each
 * verb has a check step (state, TLS, syntax, policy) that replies with the
 * first failure, and a proceed step that changes state or asks the owner
 * for an action. Input is taken line by line from one buffer; DATA and
 * BDAT bytes go through smtp_data and leave as SMTP_ACT_DATA_CHUNK. */
#include "smtp/smtp_session.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/limits.h"
#include "smtp/smtp_data.h"

#define REPLY_TEXT_MAX 200 /* owner-supplied reply/reason text */

struct smtp_session {
    struct smtp_session_config cfg;
    char *domain;
    enum smtp_state st;
    struct buf out, in;
    size_t in_off; /* processed bytes at the front of in */
    size_t scan;   /* bytes after in_off already searched for LF */
    bool skipping; /* discarding an over-long line */
    bool skip_cr;  /* ... whose last byte was CR */
    bool tls, helo, esmtp;
    char *login;
    unsigned errors;
    uint64_t now;
    struct smtp_action act;
    /* transaction */
    struct smtp_mail_args mail;
    struct smtp_rcpt *rcpts;
    size_t n_rcpts, cap_rcpts;
    struct smtp_rcpt_args pending_rcpt;
    struct smtp_envelope env;
    uint64_t spooled; /* bytes handed out in DATA_CHUNK actions */
    bool spool_open;  /* a DATA_CHUNK went out in this transaction */
    /* DATA / BDAT */
    struct smtp_data dec;
    struct buf chunk;
    bool pending_finish;
    uint64_t bdat_left, bdat_size;
    bool bdat_last;
    enum smtp_state after_skip;
    char skip_reply[SMTP_ERR_MAX];
    /* AUTH */
    struct smtp_auth_creds creds;
};

static void run(struct smtp_session *s);

/* Addressed through the session so that GCC's object-size tracking does not
 * confuse the struct with its first member. */
static void wipe_creds(struct smtp_session *s)
{
    explicit_bzero((char *)s + offsetof(struct smtp_session, creds), sizeof s->creds);
}

/* --- output --- */

static void close_session(struct smtp_session *s)
{
    s->st = SMTP_ST_CLOSED;
    s->act = (struct smtp_action){.kind = SMTP_ACT_CLOSE};
}

__attribute__((format(printf, 3, 0))) static void vreply(struct smtp_session *s, bool count,
                                                        const char *fmt, va_list ap)
{
    size_t start = s->out.len;
    if (buf_vprintf(&s->out, fmt, ap) < 0 || buf_append(&s->out, "\r\n", 2) < 0) {
        s->out.len = start;
        close_session(s);
        return;
    }
    char c = s->out.data[start];
    if (count && (c == '4' || c == '5'))
        s->errors++;
}

__attribute__((format(printf, 2, 3))) static void reply(struct smtp_session *s, const char *fmt,
                                                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply(s, true, fmt, ap);
    va_end(ap);
}

/* Owner-supplied text: printable ASCII only, bounded. */
static void sanitize(char *out, const char *in, const char *dflt)
{
    size_t o = 0;
    if (!in || !*in)
        in = dflt;
    for (; *in && o < REPLY_TEXT_MAX; in++)
        out[o++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    out[o] = '\0';
}

static void bare_newline(struct smtp_session *s, const char *what)
{
    reply(s, "550 5.5.2 %s Error: bare <%s> received", s->domain, what);
    close_session(s);
}

static void set_action(struct smtp_session *s, enum smtp_action_kind kind)
{
    s->act = (struct smtp_action){.kind = kind};
}

/* --- transaction --- */

static void free_rcpts(struct smtp_session *s)
{
    for (size_t i = 0; i < s->n_rcpts; i++) {
        free(s->rcpts[i].addr);
        free(s->rcpts[i].orcpt);
    }
    free(s->rcpts);
    s->rcpts = NULL;
    s->n_rcpts = s->cap_rcpts = 0;
}

/* Ends the transaction; with abort, a spool the owner holds is dropped. */
static void txn_reset(struct smtp_session *s, bool abort)
{
    free_rcpts(s);
    memset(&s->mail, 0, sizeof s->mail);
    buf_free(&s->chunk);
    s->spooled = 0;
    s->pending_finish = false;
    if (s->spool_open && abort)
        set_action(s, SMTP_ACT_DATA_ABORT);
    s->spool_open = false;
    s->st = s->helo ? SMTP_ST_READY : SMTP_ST_GREETING;
}

static int add_rcpt(struct smtp_session *s, const struct smtp_rcpt_args *a, bool local)
{
    if (s->n_rcpts == s->cap_rcpts) {
        size_t cap = s->cap_rcpts ? s->cap_rcpts * 2 : 8;
        struct smtp_rcpt *r = realloc(s->rcpts, cap * sizeof *r);
        if (!r)
            return -1;
        s->rcpts = r;
        s->cap_rcpts = cap;
    }
    struct smtp_rcpt *r = &s->rcpts[s->n_rcpts];
    r->addr = strdup(a->addr);
    r->orcpt = a->orcpt[0] ? strdup(a->orcpt) : NULL;
    r->notify = a->notify;
    r->local = local;
    if (!r->addr || (a->orcpt[0] && !r->orcpt)) {
        free(r->addr);
        free(r->orcpt);
        return -1;
    }
    s->n_rcpts++;
    return 0;
}

/* --- EHLO / HELO / simple verbs --- */

static void cmd_helo(struct smtp_session *s, const struct smtp_cmd *c, bool ehlo)
{
    char err[SMTP_ERR_MAX];
    if (smtp_parse_helo(c->arg, c->arg_len, ehlo, err) < 0) {
        reply(s, "%s", err);
        return;
    }
    s->helo = true;
    s->esmtp = ehlo;
    txn_reset(s, true);
    if (!ehlo) {
        reply(s, "250 %s", s->domain);
        return;
    }
    reply(s, "250-%s", s->domain);
    reply(s, "250-PIPELINING");
    reply(s, "250-SIZE %llu", (unsigned long long)s->cfg.max_message_size);
    if (!s->tls)
        reply(s, "250-STARTTLS");
    if (s->tls && s->cfg.mode == SMTP_MODE_SUBMISSION)
        reply(s, "250-AUTH PLAIN LOGIN");
    reply(s, "250-ENHANCEDSTATUSCODES");
    reply(s, "250-8BITMIME");
    reply(s, "250-DSN");
    reply(s, "250-SMTPUTF8");
    reply(s, "250 CHUNKING");
}

static void cmd_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (c->arg_len) {
        reply(s, "501 5.5.4 Syntax: STARTTLS");
    } else if (s->tls) {
        reply(s, "554 5.5.1 Error: TLS already active");
    } else {
        reply(s, "220 2.0.0 Ready to start TLS");
        s->in_off = s->in.len; /* plaintext pipelined after STARTTLS is dropped */
        s->scan = 0;
        s->st = SMTP_ST_STARTTLS;
        set_action(s, SMTP_ACT_STARTTLS);
    }
}

static void cmd_simple(struct smtp_session *s, const struct smtp_cmd *c)
{
    switch (c->verb) {
    case SMTP_V_RSET:
        if (c->arg_len) {
            reply(s, "501 5.5.4 Syntax: RSET");
            return;
        }
        txn_reset(s, true);
        reply(s, "250 2.0.0 Ok");
        return;
    case SMTP_V_NOOP:
        if (c->arg_len) {
            reply(s, "501 5.5.4 Syntax: NOOP");
            return;
        }
        reply(s, "250 2.0.0 Ok");
        return;
    case SMTP_V_VRFY:
        if (!c->arg_len) {
            reply(s, "501 5.5.4 Syntax: VRFY address");
            return;
        }
        reply(s, "252 2.0.0 Send some mail, I'll try my best");
        return;
    case SMTP_V_HELP:
        reply(s, "214 2.0.0 See RFC 5321");
        return;
    case SMTP_V_QUIT:
        reply(s, "221 2.0.0 Bye");
        close_session(s);
        return;
    default:
        reply(s, "502 5.5.2 Error: command not recognized");
        return;
    }
}

/* --- MAIL / RCPT --- */

static bool in_txn(const struct smtp_session *s)
{
    return s->st == SMTP_ST_MAIL || s->st == SMTP_ST_RCPT || s->st == SMTP_ST_BDAT_READY;
}

/* Submission policy for an accepted MAIL: owner = login, then the rate. */
static int mail_policy(struct smtp_session *s, const struct smtp_mail_args *m)
{
    if (s->cfg.mode != SMTP_MODE_SUBMISSION)
        return 0;
    if (!m->addr[0] || strcasecmp(m->addr, s->login) != 0) {
        reply(s, "553 5.7.1 <%s>: Sender address rejected: not owned by user %s", m->addr,
              s->login);
        return -1;
    }
    uint64_t until = 0;
    if (s->cfg.ratelimit && smtp_ratelimit_check(s->cfg.ratelimit, m->addr, s->now, &until)) {
        char text[SMTP_RATELIMIT_REPLY_MAX];
        smtp_ratelimit_reply(text, sizeof text, m->addr, until);
        reply(s, "%s", text);
        return -1;
    }
    return 0;
}

static void cmd_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
    char err[SMTP_ERR_MAX];
    struct smtp_mail_args m;
    if (!s->helo) {
        reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (s->st == SMTP_ST_BDAT_READY) {
        reply(s, "503 5.5.1 Error: MAIL after BDAT");
        return;
    }
    if (in_txn(s)) {
        reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (s->cfg.mode == SMTP_MODE_SUBMISSION && !s->login) {
        reply(s, "530 5.7.0 Authentication required");
        return;
    }
    if (smtp_parse_mail(c->arg, c->arg_len, &m, err) < 0) {
        reply(s, "%s", err);
        return;
    }
    if (m.size >= 0 && (uint64_t)m.size > s->cfg.max_message_size) {
        reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return;
    }
    if (m.body == SMTP_BODY_BINARYMIME) {
        reply(s, "501 5.5.4 Unsupported BODY parameter");
        return;
    }
    if (m.addr_utf8 && !m.smtputf8) {
        reply(s, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        return;
    }
    if (mail_policy(s, &m) < 0)
        return;
    s->mail = m;
    s->st = SMTP_ST_MAIL;
    reply(s, "250 2.1.0 Ok");
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
    char err[SMTP_ERR_MAX];
    if (s->st == SMTP_ST_BDAT_READY) {
        reply(s, "503 5.5.1 Error: RCPT after BDAT");
        return;
    }
    if (s->st != SMTP_ST_MAIL && s->st != SMTP_ST_RCPT) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (s->n_rcpts >= LIM_SMTP_RCPT) {
        reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    if (smtp_parse_rcpt(c->arg, c->arg_len, &s->pending_rcpt, err) < 0) {
        reply(s, "%s", err);
        return;
    }
    if (s->pending_rcpt.addr_utf8 && !s->mail.smtputf8) {
        reply(s, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        return;
    }
    set_action(s, SMTP_ACT_CHECK_RCPT);
    s->act.addr = s->pending_rcpt.addr;
}

void smtp_session_resume_rcpt(struct smtp_session *s, enum smtp_rcpt_result r)
{
    if (s->act.kind != SMTP_ACT_CHECK_RCPT)
        return;
    set_action(s, SMTP_ACT_NONE);
    const char *a = s->pending_rcpt.addr;
    switch (r) {
    case SMTP_RCPT_LOCAL_OK:
    case SMTP_RCPT_REMOTE_OK:
        if (add_rcpt(s, &s->pending_rcpt, r == SMTP_RCPT_LOCAL_OK) < 0) {
            reply(s, "452 4.3.0 <%s>: Insufficient system resources", a);
            break;
        }
        s->st = SMTP_ST_RCPT;
        reply(s, "250 2.1.5 Ok");
        break;
    case SMTP_RCPT_LOCAL_UNKNOWN:
        reply(s,
              "550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table",
              a);
        break;
    case SMTP_RCPT_RELAY_DENIED:
        reply(s, "554 5.7.1 <%s>: Relay access denied", a);
        break;
    default:
        reply(s, "451 4.3.0 <%s>: Temporary lookup failure", a);
        break;
    }
    run(s);
}

/* --- DATA / BDAT --- */

static int chunk_sink(void *ctx, const char *p, size_t n)
{
    struct smtp_session *s = ctx;
    return buf_append(&s->chunk, p, n);
}

static void data_begin(struct smtp_session *s)
{
    smtp_data_init(&s->dec, s->cfg.max_message_size, chunk_sink, s);
    buf_reset(&s->chunk);
    s->spooled = 0;
    s->pending_finish = false;
}

static void cmd_data(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (s->st == SMTP_ST_BDAT_READY) {
        reply(s, "503 5.5.1 Error: DATA after BDAT");
        return;
    }
    if (s->st != SMTP_ST_RCPT) {
        if (s->st == SMTP_ST_MAIL) {
            reply(s, "554 5.5.1 Error: no valid recipients");
            return;
        }
        reply(s, "503 5.5.1 Error: need RCPT command");
        return;
    }
    if (c->arg_len) {
        reply(s, "501 5.5.4 Syntax: DATA");
        return;
    }
    data_begin(s);
    s->st = SMTP_ST_DATA;
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* The message is complete and every chunk was handed out. */
static void finish_message(struct smtp_session *s)
{
    s->pending_finish = false;
    if (!smtp_data_ok(&s->dec)) {
        if (s->dec.spool_failed)
            reply(s, "451 4.3.0 Error: queue file write error");
        else if (s->dec.too_big)
            reply(s, "552 5.3.4 Message size exceeds fixed limit");
        else
            reply(s, "500 5.5.0 Error: line too long");
        txn_reset(s, true);
        return;
    }
    s->env = (struct smtp_envelope){.login = s->login,
                                    .mail_from = s->mail.addr,
                                    .smtputf8 = s->mail.smtputf8,
                                    .body = s->mail.body,
                                    .ret = s->mail.ret,
                                    .envid = s->mail.envid,
                                    .rcpts = s->rcpts,
                                    .n_rcpts = s->n_rcpts,
                                    .size = s->spooled};
    set_action(s, SMTP_ACT_MESSAGE_DONE);
    s->act.env = &s->env;
}

static void bdat_chunk_end(struct smtp_session *s)
{
    if (s->bdat_last) {
        if (smtp_bdat_finish(&s->dec) != SMTP_DATA_END) {
            bare_newline(s, "CR");
            return;
        }
        s->pending_finish = true;
        return;
    }
    if (!smtp_data_ok(&s->dec)) {
        if (s->dec.too_big)
            reply(s, "552 5.3.4 Chunk exceeds message size limit");
        else if (s->dec.spool_failed)
            reply(s, "451 4.3.0 Error: queue file write error");
        else
            reply(s, "500 5.5.0 Error: line too long");
        txn_reset(s, true);
        return;
    }
    reply(s, "250 2.0.0 Ok: %llu bytes", (unsigned long long)s->bdat_size);
    s->st = SMTP_ST_BDAT_READY;
}

/* Hands out the decoded bytes, if any, as a DATA_CHUNK action. */
static bool flush_chunk(struct smtp_session *s)
{
    if (!s->chunk.len)
        return false;
    set_action(s, SMTP_ACT_DATA_CHUNK);
    s->act.data = s->chunk.data;
    s->act.len = s->chunk.len;
    s->spool_open = true;
    return true;
}

/* After decoding: first the spool write, then the end of a BDAT chunk or
 * of the message (so no reply goes out before its bytes are spooled). */
static void after_feed(struct smtp_session *s)
{
    if (flush_chunk(s))
        return;
    if (s->st == SMTP_ST_BDAT && s->bdat_left == 0 && !s->pending_finish) {
        bdat_chunk_end(s);
        if (s->st == SMTP_ST_CLOSED || flush_chunk(s))
            return;
    }
    if (s->pending_finish)
        finish_message(s);
}

static bool step_data(struct smtp_session *s)
{
    size_t avail = s->in.len - s->in_off;
    if (avail == 0)
        return false;
    size_t piece = avail < SMTP_CHUNK_MAX ? avail : SMTP_CHUNK_MAX;
    size_t used = 0;
    enum smtp_data_status st = smtp_data_feed(&s->dec, s->in.data + s->in_off, piece, &used);
    if (st == SMTP_DATA_BARE_LF || st == SMTP_DATA_BARE_CR) {
        bare_newline(s, st == SMTP_DATA_BARE_LF ? "LF" : "CR");
        return true;
    }
    s->in_off += used;
    if (st == SMTP_DATA_END)
        s->pending_finish = true;
    after_feed(s);
    return true;
}

static bool step_bdat(struct smtp_session *s)
{
    size_t avail = s->in.len - s->in_off;
    if (avail == 0)
        return false;
    size_t piece = avail < SMTP_CHUNK_MAX ? avail : SMTP_CHUNK_MAX;
    if (piece > s->bdat_left)
        piece = (size_t)s->bdat_left;
    enum smtp_data_status st = smtp_bdat_feed(&s->dec, s->in.data + s->in_off, piece);
    if (st != SMTP_DATA_MORE) {
        bare_newline(s, st == SMTP_DATA_BARE_LF ? "LF" : "CR");
        return true;
    }
    s->in_off += piece;
    s->bdat_left -= piece;
    after_feed(s);
    return true;
}

static bool step_skip(struct smtp_session *s)
{
    size_t avail = s->in.len - s->in_off;
    size_t n = avail < s->bdat_left ? avail : (size_t)s->bdat_left;
    s->in_off += n;
    s->bdat_left -= n;
    if (s->bdat_left == 0) {
        s->st = s->after_skip;
        reply(s, "%s", s->skip_reply);
        return true;
    }
    return n > 0;
}

/* Why this BDAT is refused, or NULL. */
static const char *bdat_refusal(const struct smtp_session *s)
{
    if (!s->tls)
        return "530 5.7.0 Must issue a STARTTLS command first";
    if (!s->helo)
        return "503 5.5.1 Error: send HELO/EHLO first";
    if (s->st == SMTP_ST_MAIL)
        return "554 5.5.1 Error: no valid recipients";
    if (s->st != SMTP_ST_RCPT && s->st != SMTP_ST_BDAT_READY)
        return "503 5.5.1 Error: need RCPT command";
    return NULL;
}

static void cmd_bdat(struct smtp_session *s, const struct smtp_cmd *c)
{
    uint64_t size;
    bool last;
    char err[SMTP_ERR_MAX];
    if (smtp_parse_bdat(c->arg, c->arg_len, &size, &last, err) < 0) {
        reply(s, "521 5.5.4 Syntax: BDAT count [LAST]"); /* chunk length unknown */
        close_session(s);
        return;
    }
    const char *why = bdat_refusal(s);
    s->bdat_left = size;
    if (why) {
        snprintf(s->skip_reply, sizeof s->skip_reply, "%s", why);
        s->after_skip = s->st;
        s->st = SMTP_ST_BDAT_SKIP;
        step_skip(s);
        return;
    }
    if (s->st == SMTP_ST_RCPT)
        data_begin(s);
    s->bdat_size = size;
    s->bdat_last = last;
    s->st = SMTP_ST_BDAT;
    if (size == 0)
        after_feed(s);
}

void smtp_session_resume_chunk(struct smtp_session *s, bool ok)
{
    if (s->act.kind != SMTP_ACT_DATA_CHUNK)
        return;
    set_action(s, SMTP_ACT_NONE);
    s->spooled += s->chunk.len;
    buf_reset(&s->chunk);
    if (!ok)
        s->dec.spool_failed = true;
    after_feed(s);
    run(s);
}

void smtp_session_resume(struct smtp_session *s)
{
    if (s->act.kind != SMTP_ACT_DATA_ABORT)
        return;
    set_action(s, SMTP_ACT_NONE);
    run(s);
}

void smtp_session_resume_message(struct smtp_session *s, const char *text)
{
    if (s->act.kind != SMTP_ACT_MESSAGE_DONE)
        return;
    char line[REPLY_TEXT_MAX + 1];
    sanitize(line, text, "451 4.3.0 Error: queue file write error");
    set_action(s, SMTP_ACT_NONE);
    s->spool_open = false; /* the owner took the spool */
    txn_reset(s, false);
    buf_printf(&s->out, "%s\r\n", line);
    run(s);
}

/* --- AUTH --- */

static void auth_done_step(struct smtp_session *s)
{
    s->st = SMTP_ST_READY;
    set_action(s, SMTP_ACT_AUTH);
    s->act.user = s->creds.user;
    s->act.password = s->creds.pass;
}

static void auth_fail(struct smtp_session *s, int r)
{
    wipe_creds(s);
    s->st = SMTP_ST_READY;
    if (r == -1)
        reply(s, "501 5.5.2 Cannot decode response");
    else
        reply(s, "535 5.7.8 Error: authentication failed: authentication failure");
}

static void auth_plain(struct smtp_session *s, const char *b64, size_t len)
{
    int r = (len == 1 && b64[0] == '=') ? -2 : smtp_auth_plain_decode(b64, len, &s->creds);
    if (r < 0) {
        auth_fail(s, r);
        return;
    }
    auth_done_step(s);
}

static void auth_login(struct smtp_session *s, const char *b64, size_t len, bool user)
{
    char *dst = user ? s->creds.user : s->creds.pass;
    size_t cap = user ? sizeof s->creds.user : sizeof s->creds.pass;
    int r = (len == 1 && b64[0] == '=') ? -2 : smtp_auth_login_decode(b64, len, dst, cap);
    if (r < 0) {
        auth_fail(s, r);
        return;
    }
    if (!user) {
        auth_done_step(s);
        return;
    }
    s->st = SMTP_ST_AUTH_LOGIN_PASS;
    reply(s, "334 UGFzc3dvcmQ6");
}

static void auth_response(struct smtp_session *s, const char *line, size_t len)
{
    if (len == 1 && line[0] == '*') {
        wipe_creds(s);
        s->st = SMTP_ST_READY;
        reply(s, "501 5.7.0 Authentication aborted");
        return;
    }
    if (s->st == SMTP_ST_AUTH_PLAIN)
        auth_plain(s, line, len);
    else
        auth_login(s, line, len, s->st == SMTP_ST_AUTH_LOGIN_USER);
}

static void cmd_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
    char err[SMTP_ERR_MAX];
    struct smtp_auth_args a;
    if (s->cfg.mode != SMTP_MODE_SUBMISSION) {
        reply(s, "503 5.5.1 Error: authentication not enabled");
        return;
    }
    if (!s->helo) {
        reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (in_txn(s)) {
        reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    if (s->login) {
        reply(s, "503 5.5.1 Error: already authenticated");
        return;
    }
    if (smtp_parse_auth(c->arg, c->arg_len, &a, err) < 0) {
        reply(s, "%s", err);
        return;
    }
    if (a.mech == SMTP_AUTH_MECH_OTHER) {
        reply(s, "535 5.7.8 Error: authentication failed: Invalid authentication mechanism");
        return;
    }
    memset(&s->creds, 0, sizeof s->creds);
    if (a.mech == SMTP_AUTH_MECH_PLAIN) {
        if (a.initial) {
            auth_plain(s, a.initial, a.initial_len);
            return;
        }
        s->st = SMTP_ST_AUTH_PLAIN;
        reply(s, "334 ");
        return;
    }
    if (a.initial) {
        auth_login(s, a.initial, a.initial_len, true);
        return;
    }
    s->st = SMTP_ST_AUTH_LOGIN_USER;
    reply(s, "334 VXNlcm5hbWU6");
}

void smtp_session_resume_auth(struct smtp_session *s, enum smtp_auth_result r, const char *reason)
{
    if (s->act.kind != SMTP_ACT_AUTH)
        return;
    set_action(s, SMTP_ACT_NONE);
    char why[REPLY_TEXT_MAX + 1];
    if (r == SMTP_AUTH_OK) {
        s->login = strdup(s->creds.user);
        if (s->login)
            reply(s, "235 2.7.0 Authentication successful");
        else
            reply(s, "454 4.7.0 Temporary authentication failure: out of memory");
    } else if (r == SMTP_AUTH_FAIL) {
        sanitize(why, reason, "authentication failure");
        reply(s, "535 5.7.8 Error: authentication failed: %s", why);
    } else {
        sanitize(why, reason, "internal error");
        reply(s, "454 4.7.0 Temporary authentication failure: %s", why);
    }
    wipe_creds(s);
    run(s);
}

/* --- command dispatch --- */

static bool allowed_before_tls(enum smtp_verb v)
{
    return v == SMTP_V_EHLO || v == SMTP_V_HELO || v == SMTP_V_STARTTLS || v == SMTP_V_NOOP ||
           v == SMTP_V_RSET || v == SMTP_V_QUIT || v == SMTP_V_UNKNOWN || v == SMTP_V_BDAT;
}

static void command(struct smtp_session *s, const char *line, size_t len)
{
    struct smtp_cmd c;
    char err[SMTP_ERR_MAX];
    if (s->errors >= LIM_SMTP_BAD_CMDS) {
        reply(s, "421 4.7.0 %s Error: too many errors", s->domain);
        close_session(s);
        return;
    }
    if (smtp_parse_line(line, len, &c, err) < 0) {
        reply(s, "%s", err);
        return;
    }
    if (!s->tls && !allowed_before_tls(c.verb)) {
        if (c.verb == SMTP_V_AUTH && s->cfg.mode == SMTP_MODE_SUBMISSION) {
            reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
            return;
        }
        reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        return;
    }
    switch (c.verb) {
    case SMTP_V_EHLO:
        cmd_helo(s, &c, true);
        return;
    case SMTP_V_HELO:
        cmd_helo(s, &c, false);
        return;
    case SMTP_V_STARTTLS:
        cmd_starttls(s, &c);
        return;
    case SMTP_V_AUTH:
        cmd_auth(s, &c);
        return;
    case SMTP_V_MAIL:
        cmd_mail(s, &c);
        return;
    case SMTP_V_RCPT:
        cmd_rcpt(s, &c);
        return;
    case SMTP_V_DATA:
        cmd_data(s, &c);
        return;
    case SMTP_V_BDAT:
        cmd_bdat(s, &c);
        return;
    default:
        cmd_simple(s, &c);
        return;
    }
}

/* --- line framing --- */

static bool auth_state(const struct smtp_session *s)
{
    return s->st == SMTP_ST_AUTH_PLAIN || s->st == SMTP_ST_AUTH_LOGIN_USER ||
           s->st == SMTP_ST_AUTH_LOGIN_PASS;
}

static void line_too_long(struct smtp_session *s)
{
    if (auth_state(s)) {
        wipe_creds(s);
        s->st = SMTP_ST_READY;
        reply(s, "500 5.5.6 SASL response limit exceeded");
        return;
    }
    reply(s, "500 5.5.0 Error: line too long");
}

/* Discards the rest of an over-long line, still refusing bare CR/LF. */
static int skip_long_line(struct smtp_session *s)
{
    const char *p = s->in.data + s->in_off;
    size_t n = s->in.len - s->in_off;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && !s->skip_cr)
            return bare_newline(s, "LF"), -1;
        if (s->skip_cr && p[i] != '\n')
            return bare_newline(s, "CR"), -1;
        if (p[i] == '\n') {
            s->in_off += i + 1;
            s->skipping = s->skip_cr = false;
            line_too_long(s);
            return -1;
        }
        s->skip_cr = p[i] == '\r';
    }
    s->in_off += n;
    return n ? -1 : 0;
}

/* 1: a line (without CRLF) in *line; 0: need more input; -1: something
 * was consumed or answered, look again. */
static int next_line(struct smtp_session *s, const char **line, size_t *len)
{
    if (s->skipping)
        return skip_long_line(s);
    size_t limit = auth_state(s) ? LIM_SMTP_AUTH_LINE : LIM_SMTP_LINE;
    if (!s->in.data) /* nothing buffered yet (or dropped at STARTTLS) */
        return 0;
    const char *base = s->in.data + s->in_off;
    size_t avail = s->in.len - s->in_off;
    const char *lf = avail > s->scan ? memchr(base + s->scan, '\n', avail - s->scan) : NULL;
    if (!lf) {
        s->scan = avail;
        if (avail < limit)
            return 0;
        s->skipping = true;
        s->skip_cr = base[avail - 1] == '\r';
        s->in_off += avail;
        s->scan = 0;
        return -1;
    }
    size_t n = (size_t)(lf - base);
    if (n == 0 || base[n - 1] != '\r')
        return bare_newline(s, "LF"), -1;
    if (memchr(base, '\r', n - 1))
        return bare_newline(s, "CR"), -1;
    s->in_off += n + 1;
    s->scan = 0;
    if (n + 1 > limit)
        return line_too_long(s), -1;
    *line = base;
    *len = n - 1;
    return 1;
}

static bool step_line(struct smtp_session *s)
{
    const char *line = NULL;
    size_t len = 0;
    int r = next_line(s, &line, &len);
    if (r <= 0)
        return r < 0;
    if (auth_state(s))
        auth_response(s, line, len);
    else
        command(s, line, len);
    return true;
}

#define SMTP_IN_KEEP (2 * LIM_SMTP_AUTH_LINE)

static void run(struct smtp_session *s)
{
    while (s->act.kind == SMTP_ACT_NONE && s->st != SMTP_ST_CLOSED) {
        bool progressed;
        if (s->st == SMTP_ST_DATA)
            progressed = step_data(s);
        else if (s->st == SMTP_ST_BDAT)
            progressed = step_bdat(s);
        else if (s->st == SMTP_ST_BDAT_SKIP)
            progressed = step_skip(s);
        else if (s->st == SMTP_ST_STARTTLS)
            progressed = false;
        else
            progressed = step_line(s);
        if (!progressed)
            break;
    }
    if (s->in_off) {
        buf_consume(&s->in, s->in_off);
        s->in_off = 0;
    }
    /* A read may have grown the buffer to LIM_READ_CHUNK; what stays
     * between reads is at most one unfinished line: keep only its size, so
     * an idle or unauthenticated session holds a few KiB (issue 16). */
    if (s->in.cap > SMTP_IN_KEEP && s->in.len < SMTP_IN_KEEP && s->act.kind == SMTP_ACT_NONE &&
        s->st != SMTP_ST_DATA && s->st != SMTP_ST_BDAT) {
        char *small = realloc(s->in.data, s->in.len + 1);
        if (small) {
            s->in.data = small;
            s->in.cap = s->in.len + 1;
        }
    }
}

/* --- public --- */

struct smtp_session *smtp_session_new(const struct smtp_session_config *cfg)
{
    struct smtp_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->domain = strdup(cfg->mail_domain ? cfg->mail_domain : "localhost");
    if (!s->domain) {
        free(s);
        return NULL;
    }
    s->cfg.mail_domain = s->domain;
    s->tls = cfg->implicit_tls;
    s->st = SMTP_ST_GREETING;
    reply(s, "220 %s ESMTP chatmaild", s->domain);
    return s;
}

void smtp_session_free(struct smtp_session *s)
{
    if (!s)
        return;
    free_rcpts(s);
    buf_free(&s->out);
    buf_free(&s->in);
    buf_free(&s->chunk);
    wipe_creds(s);
    free(s->login);
    free(s->domain);
    free(s);
}

struct buf *smtp_session_out(struct smtp_session *s)
{
    return &s->out;
}

const struct smtp_action *smtp_session_action(const struct smtp_session *s)
{
    return s->act.kind == SMTP_ACT_NONE ? NULL : &s->act;
}

enum smtp_state smtp_session_state(const struct smtp_session *s)
{
    return s->st;
}

bool smtp_session_want_read(const struct smtp_session *s)
{
    if (s->st == SMTP_ST_CLOSED || s->st == SMTP_ST_STARTTLS)
        return false;
    return s->act.kind == SMTP_ACT_NONE || s->in.len - s->in_off < SMTP_INBUF_MAX;
}

int smtp_session_input(struct smtp_session *s, const void *p, size_t n, uint64_t now_ns)
{
    s->now = now_ns;
    if (s->st == SMTP_ST_STARTTLS || n == 0)
        return 0;
    if (!smtp_session_want_read(s)) {
        close_session(s);
        return -1;
    }
    if (buf_append(&s->in, p, n) < 0) {
        reply(s, "421 4.3.0 %s Server local error", s->domain);
        close_session(s);
        return -1;
    }
    if (s->act.kind == SMTP_ACT_NONE)
        run(s);
    return 0;
}

void smtp_session_resume_tls(struct smtp_session *s)
{
    if (s->act.kind != SMTP_ACT_STARTTLS)
        return;
    set_action(s, SMTP_ACT_NONE);
    s->tls = true;
    s->helo = s->esmtp = false;
    buf_free(&s->in); /* nothing sent in plaintext survives the handshake */
    s->in_off = s->scan = 0;
    txn_reset(s, false);
    run(s);
}
