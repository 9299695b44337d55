/* smtpc_proto.c: the outbound SMTP transaction as a state machine (see
 * smtpc_proto.h). */
#include "smtp/smtpc_proto.h"

#include <string.h>

void smtpc_proto_init(struct smtpc_proto *p, const struct smtpc_proto_job *job,
                      struct smtpc_reply *rcpt, bool *rcpt_final)
{
    memset(p, 0, sizeof *p);
    p->job = *job;
    p->rcpt = rcpt;
    p->rcpt_final = rcpt_final;
    memset(rcpt, 0, job->n_rcpts * sizeof *rcpt);
    memset(rcpt_final, 0, job->n_rcpts * sizeof *rcpt_final);
    smtpc_reply_init(&p->rp);
    p->stage = ST_GREETING;
    p->tls_active = job->tls == SMTPC_TLS_NEED_NONE;
}

void smtpc_proto_free(struct smtpc_proto *p)
{
    buf_free(&p->out);
}

/* Appends the dot-stuffed form of msg[*off..] until about max bytes of
 * msg were taken or it ends (then the final CRLF when missing, and ".").
 * 1: more remains, 0: all done, -1: memory. */
static int stuff_some(struct buf *out, const char *msg, size_t len, size_t *off, bool *bol,
                      size_t max)
{
    size_t i = *off, stop = len - i > max ? i + max : len;
    if (buf_reserve(out, (stop - i) + (stop - i) / 64 + 8) < 0)
        return -1;
    while (i < stop) {
        if (*bol && msg[i] == '.' && buf_append(out, ".", 1) < 0)
            return -1;
        const char *nl = memchr(msg + i, '\n', stop - i);
        size_t end = nl ? (size_t)(nl - msg) + 1 : stop;
        if (buf_append(out, msg + i, end - i) < 0)
            return -1;
        *bol = nl != NULL;
        i = end;
    }
    *off = i;
    if (i < len)
        return 1;
    if (len > 0 && !(len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n') &&
        buf_append(out, "\r\n", 2) < 0)
        return -1;
    return buf_append(out, ".\r\n", 3);
}

int smtpc_dot_stuff(struct buf *out, const char *msg, size_t len)
{
    size_t off = 0;
    bool bol = true;
    return stuff_some(out, msg, len, &off, &bol, len) < 0 ? -1 : 0;
}

static enum smtpc_event finish(struct smtpc_proto *p, enum smtpc_status st, const char *why,
                               bool quit)
{
    if (quit && st == SMTPC_OK && p->job.keep && p->stage != ST_DONE) {
        /* a healthy end: the connection may carry the next transaction;
         * only the end-of-data reply completes the one begun with MAIL */
        p->reusable = true;
        p->need_rset = p->stage != ST_BODY;
        quit = false;
    }
    p->status = st;
    p->why = why;
    p->stage = ST_DONE;
    if (quit)
        buf_append_str(&p->out, "QUIT\r\n");
    return SMTPC_EV_DONE;
}

static enum smtpc_event oom(struct smtpc_proto *p)
{
    return finish(p, SMTPC_E_IO, "out of memory", false);
}

static enum smtpc_event refused(struct smtpc_proto *p, const struct smtpc_reply *r)
{
    p->session = *r;
    return finish(p, SMTPC_E_REFUSED, "refused", true);
}

/* Every recipient without a final answer gets r; the transaction is over. */
static enum smtpc_event settle(struct smtpc_proto *p, const struct smtpc_reply *r)
{
    bool closing = r->code == 421; /* the server is going away: no reuse */
    for (size_t i = 0; i < p->job.n_rcpts; i++)
        if (!p->rcpt_final[i]) {
            p->rcpt[i] = *r;
            p->rcpt_final[i] = true;
        }
    if (closing)
        p->job.keep = false;
    return finish(p, SMTPC_OK, "transaction complete", true);
}

static bool non_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

static bool need_utf8(const struct smtpc_proto *p)
{
    if (non_ascii(p->job.mail_from))
        return true;
    for (size_t i = 0; i < p->job.n_rcpts; i++)
        if (non_ascii(p->job.rcpts[i]))
            return true;
    return false;
}

static int put_rcpt(struct smtpc_proto *p, size_t i)
{
    return buf_printf(&p->out, "RCPT TO:<%s>\r\n", p->job.rcpts[i]);
}

static enum smtpc_event start_mail(struct smtpc_proto *p)
{
    size_t size = p->job.len; /* what goes out before stuffing */
    if (size < 2 || p->job.msg[size - 2] != '\r' || p->job.msg[size - 1] != '\n')
        size += size ? 2 : 0;
    int rc = buf_printf(&p->out, "MAIL FROM:<%s>", p->job.mail_from);
    if (rc == 0 && p->caps.size)
        rc = buf_printf(&p->out, " SIZE=%zu", size);
    if (rc == 0 && p->caps.eightbitmime)
        rc = buf_append_str(&p->out, " BODY=8BITMIME");
    if (rc == 0 && p->caps.smtputf8 && need_utf8(p))
        rc = buf_append_str(&p->out, " SMTPUTF8");
    if (rc == 0)
        rc = buf_append_str(&p->out, "\r\n");
    p->pipelined = p->caps.pipelining;
    if (p->pipelined) {
        for (size_t i = 0; rc == 0 && i < p->job.n_rcpts; i++)
            rc = put_rcpt(p, i);
        if (rc == 0)
            rc = buf_append_str(&p->out, "DATA\r\n");
        p->sent_rcpt = p->job.n_rcpts;
    }
    if (rc < 0)
        return oom(p);
    p->stage = ST_MAIL;
    return SMTPC_EV_NONE;
}

static enum smtpc_event send_ehlo(struct smtpc_proto *p)
{
    if (buf_printf(&p->out, "EHLO %s\r\n", p->job.helo) < 0)
        return oom(p);
    p->stage = ST_EHLO;
    return SMTPC_EV_NONE;
}

static enum smtpc_event after_rcpts(struct smtpc_proto *p)
{
    if (p->accepted == 0) /* every recipient has its (failed) answer */
        return finish(p, SMTPC_OK, "no recipient accepted", true);
    if (buf_append_str(&p->out, "DATA\r\n") < 0)
        return oom(p);
    p->stage = ST_DATA;
    return SMTPC_EV_NONE;
}

static enum smtpc_event on_reply(struct smtpc_proto *p, const struct smtpc_reply *r,
                                 const struct smtpc_caps *caps)
{
    bool ok = r->code / 100 == 2;
    if (r->code == 421) { /* the server is closing the channel */
        if (p->stage >= ST_RCPT)
            return settle(p, r);
        p->session = *r;
        return finish(p, SMTPC_E_REFUSED, "service not available", false);
    }
    switch (p->stage) {
    case ST_GREETING:
        return ok ? send_ehlo(p) : refused(p, r);
    case ST_EHLO:
        if (!ok)
            return refused(p, r);
        p->caps = *caps;
        if (p->tls_active || p->job.tls == SMTPC_TLS_NEED_NONE)
            return start_mail(p);
        if (caps->starttls) {
            if (buf_append_str(&p->out, "STARTTLS\r\n") < 0)
                return oom(p);
            p->stage = ST_STARTTLS;
            return SMTPC_EV_NONE;
        }
        if (p->job.tls == SMTPC_TLS_NEED_REQUIRED)
            return finish(p, SMTPC_E_TLS, "STARTTLS not offered", true);
        return start_mail(p);
    case ST_STARTTLS:
        if (ok) {
            p->stage = ST_TLS;
            return SMTPC_EV_STARTTLS;
        }
        if (p->job.tls == SMTPC_TLS_NEED_REQUIRED) {
            p->session = *r;
            return finish(p, SMTPC_E_TLS, "STARTTLS refused", true);
        }
        return start_mail(p);
    case ST_TLS: /* the owner feeds nothing while the handshake runs */
        return finish(p, SMTPC_E_PROTO, "reply during the TLS handshake", false);
    case ST_RSET:
        if (!ok)
            return refused(p, r);
        return start_mail(p);
    case ST_MAIL:
        p->mail_answered = true;
        if (!ok)
            return refused(p, r);
        p->stage = ST_RCPT;
        if (!p->pipelined) {
            if (put_rcpt(p, 0) < 0)
                return oom(p);
            p->sent_rcpt = 1;
        }
        return SMTPC_EV_NONE;
    case ST_RCPT: {
        size_t i = p->next_rcpt++;
        p->rcpt[i] = *r;
        if (ok)
            p->accepted++;
        else
            p->rcpt_final[i] = true;
        if (p->next_rcpt < p->job.n_rcpts) {
            if (!p->pipelined) {
                if (put_rcpt(p, p->next_rcpt) < 0)
                    return oom(p);
                p->sent_rcpt++;
            }
            return SMTPC_EV_NONE;
        }
        if (p->pipelined) {
            p->stage = ST_DATA; /* DATA is on its way already */
            return SMTPC_EV_NONE;
        }
        return after_rcpts(p);
    }
    case ST_DATA:
        if (r->code != 354)
            return settle(p, r); /* DATA refused: the accepted ones get it */
        if (p->accepted == 0) {
            /* a server that says 354 with no recipient: end the empty data */
            if (buf_append_str(&p->out, ".\r\n") < 0)
                return oom(p);
        } else {
            p->body_pending = true;
            p->body_bol = true;
            p->body_off = 0;
        }
        p->stage = ST_BODY;
        return SMTPC_EV_NONE;
    case ST_BODY:
        p->body_pending = false; /* an early answer: stop sending the body */
        return settle(p, r);
    case ST_DONE:
        break;
    }
    return SMTPC_EV_DONE;
}

enum smtpc_event smtpc_proto_input(struct smtpc_proto *p, const char *data, size_t n)
{
    while (n > 0 && p->stage != ST_DONE) {
        if (p->stage == ST_TLS)
            return finish(p, SMTPC_E_PROTO, "data after the STARTTLS reply", false);
        size_t used = 0;
        int r = smtpc_reply_feed(&p->rp, data, n, &used);
        if (r == SMTPC_RP_ERR)
            return finish(p, SMTPC_E_PROTO, p->rp.why, false);
        if (r == SMTPC_RP_MORE)
            break;
        data += used;
        n -= used;
        enum smtpc_event ev = on_reply(p, &p->rp.reply, &p->rp.caps);
        if (ev == SMTPC_EV_STARTTLS) {
            if (n > 0) /* plaintext injected before the handshake (CVE-2011-0411) */
                return finish(p, SMTPC_E_PROTO, "data after the STARTTLS reply", false);
            return ev;
        }
    }
    return p->stage == ST_DONE ? SMTPC_EV_DONE : SMTPC_EV_NONE;
}

bool smtpc_proto_body(struct smtpc_proto *p, size_t max)
{
    if (!p->body_pending || p->stage != ST_BODY)
        return false;
    int r = stuff_some(&p->out, p->job.msg, p->job.len, &p->body_off, &p->body_bol,
                       max ? max : 1);
    if (r < 0) {
        p->body_pending = false;
        oom(p);
        return false;
    }
    p->body_pending = r == 1;
    return p->body_pending;
}

enum smtpc_event smtpc_proto_tls_ready(struct smtpc_proto *p)
{
    if (p->stage != ST_TLS)
        return p->stage == ST_DONE ? SMTPC_EV_DONE : SMTPC_EV_NONE;
    p->tls_active = true;
    memset(&p->caps, 0, sizeof p->caps);
    smtpc_reply_init(&p->rp);
    return send_ehlo(p);
}

void smtpc_proto_fail(struct smtpc_proto *p, enum smtpc_status st, const char *why)
{
    if (p->stage != ST_DONE)
        finish(p, st, why, false);
}

void smtpc_proto_init_reuse(struct smtpc_proto *p, const struct smtpc_proto_job *job,
                            struct smtpc_reply *rcpt, bool *rcpt_final,
                            const struct smtpc_caps *caps, bool need_rset)
{
    smtpc_proto_init(p, job, rcpt, rcpt_final);
    p->caps = *caps;
    p->tls_active = true; /* whatever the session negotiated stays */
    if (need_rset) {
        if (buf_append_str(&p->out, "RSET\r\n") < 0) {
            oom(p);
            return;
        }
        p->stage = ST_RSET;
        return;
    }
    start_mail(p);
}
