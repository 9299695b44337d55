/* smtp_session.h: the SMTP server session as an explicit, sans-I/O state
 * machine (model: OpenSMTPD smtp_session.c). Bytes in, reply bytes out, and
 * at most one pending "action" that the I/O owner performs asynchronously
 * before it resumes the machine with the result. No socket, file or clock
 * inside: the owner passes the monotonic time with every input.
 *
 * Owner loop:
 *   s = smtp_session_new(&cfg);           banner is already in smtp_session_out(s)
 *   on bytes:  smtp_session_input(s, p, n, now_ns);
 *   then:      send and buf_consume() smtp_session_out(s); look at
 *              smtp_session_action(s) and, when its work is done, call the
 *              matching smtp_session_resume_*(); read more only while
 *              smtp_session_want_read(s).
 *   SMTP_ACT_CLOSE: flush the output, then close (dropping any spool).
 *
 * Modes: SMTP_MODE_SUBMISSION (587 with mandatory STARTTLS, 465 and ALPN
 * "smtp" with implicit TLS): AUTH PLAIN/LOGIN only under TLS, MAIL FROM must
 * equal the login, per-sender GCRA at MAIL. SMTP_MODE_MX (port 25): no
 * AUTH, STARTTLS mandatory before MAIL, no sender check, no rate limit.
 *
 * Decisions (see also smtp_data.h):
 *  - Before TLS only EHLO, HELO, STARTTLS, NOOP, RSET, QUIT are served;
 *    AUTH gets "538 5.7.11 Encryption required for requested authentication
 *    mechanism", anything else "530 5.7.0 Must issue a STARTTLS command
 *    first" (Postfix smtpd_tls_security_level=encrypt).
 *  - Input pipelined after STARTTLS is discarded (CVE-2011-0411).
 *  - The sender/login check and the rate limit run at MAIL FROM (Postfix
 *    and filtermail surface them at RCPT; rejecting at MAIL is cleaner and
 *    the texts are the same). The null sender is refused on submission with
 *    the same 553 (a client never needs it; filtermail would refuse the
 *    message later anyway).
 *  - The From header check (From == MAIL FROM) is the owner's, after
 *    SMTP_ACT_MESSAGE_DONE, where the filter parses the headers.
 *  - A bare LF or CR anywhere (command lines, DATA, BDAT) gets "550 5.5.2
 *    <domain> Error: bare <LF> received" (or <CR>) and closes the session.
 *  - Every 4xx/5xx reply counts as an error; the command after the
 *    LIM_SMTP_BAD_CMDS-th one gets "421 4.7.0 <domain> Error: too many
 *    errors" and the session closes.
 *  - Replies name only mail_domain; the client's address never appears. */
#ifndef CM_SMTP_SESSION_H
#define CM_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_ratelimit.h"

#define SMTP_INBUF_MAX (256 * 1024) /* buffered input while an action is pending */
#define SMTP_CHUNK_MAX (64 * 1024)  /* decoded bytes per SMTP_ACT_DATA_CHUNK */

enum smtp_mode { SMTP_MODE_SUBMISSION, SMTP_MODE_MX };

struct smtp_session_config {
    enum smtp_mode mode;
    const char *mail_domain;          /* the only name in banner and replies */
    uint64_t max_message_size;        /* SIZE and the DATA/BDAT limit */
    bool implicit_tls;                /* 465 / ALPN smtp: TLS from the start */
    struct smtp_ratelimit *ratelimit; /* submission only; NULL = no limit */
};

enum smtp_state {
    SMTP_ST_GREETING,   /* banner sent, no EHLO/HELO yet */
    SMTP_ST_READY,      /* EHLO done, no transaction */
    SMTP_ST_MAIL,       /* MAIL accepted, no recipient yet */
    SMTP_ST_RCPT,       /* at least one recipient */
    SMTP_ST_DATA,       /* reading DATA bytes */
    SMTP_ST_BDAT_READY, /* between two BDAT chunks of a transaction */
    SMTP_ST_BDAT,       /* reading a BDAT chunk */
    SMTP_ST_BDAT_SKIP,  /* discarding the chunk of a refused BDAT */
    SMTP_ST_AUTH_PLAIN, /* 334 sent, waiting for the PLAIN response */
    SMTP_ST_AUTH_LOGIN_USER,
    SMTP_ST_AUTH_LOGIN_PASS,
    SMTP_ST_STARTTLS, /* 220 sent, waiting for the handshake */
    SMTP_ST_CLOSED,   /* QUIT or fatal error: SMTP_ACT_CLOSE */
};

enum smtp_action_kind {
    SMTP_ACT_NONE = 0,
    SMTP_ACT_STARTTLS,     /* flush output, handshake, smtp_session_resume_tls() */
    SMTP_ACT_AUTH,         /* check user/password (create-on-login): resume_auth() */
    SMTP_ACT_CHECK_RCPT,   /* classify addr: resume_rcpt() */
    SMTP_ACT_DATA_CHUNK,   /* append data/len to the spool: resume_chunk() */
    SMTP_ACT_DATA_ABORT,   /* drop the spool of this transaction: resume() */
    SMTP_ACT_MESSAGE_DONE, /* spool complete, envelope in env: resume_message() */
    SMTP_ACT_CLOSE,        /* flush output and close; terminal */
};

struct smtp_rcpt {
    char *addr;
    unsigned notify; /* SMTP_NOTIFY_* */
    char *orcpt;     /* NULL when absent */
    bool local;      /* from SMTP_RCPT_LOCAL_OK */
};

struct smtp_envelope {
    const char *login;     /* SASL login (submission), NULL otherwise */
    const char *mail_from; /* "" for <> */
    bool smtputf8;
    enum smtp_body body;
    enum smtp_ret ret;
    const char *envid; /* "" when absent */
    const struct smtp_rcpt *rcpts;
    size_t n_rcpts;
    uint64_t size; /* bytes handed out in DATA_CHUNK actions */
};

struct smtp_action {
    enum smtp_action_kind kind;
    const char *user, *password; /* AUTH (password wiped after resume) */
    const char *addr;            /* CHECK_RCPT */
    const char *data;            /* DATA_CHUNK */
    size_t len;
    const struct smtp_envelope *env; /* MESSAGE_DONE */
};

enum smtp_auth_result { SMTP_AUTH_OK, SMTP_AUTH_FAIL, SMTP_AUTH_TEMPFAIL };
enum smtp_rcpt_result {
    SMTP_RCPT_LOCAL_OK,      /* local account exists */
    SMTP_RCPT_LOCAL_UNKNOWN, /* local domain, no account: 550 5.1.1 */
    SMTP_RCPT_REMOTE_OK,     /* another domain, relaying allowed */
    SMTP_RCPT_RELAY_DENIED,  /* another domain, not allowed (MX): 554 5.7.1 */
    SMTP_RCPT_TEMPFAIL,      /* lookup failed: 451 4.3.0 */
};

struct smtp_session;

/* NULL when out of memory. The banner "220 <domain> ESMTP chatmaild" is
 * already queued in the output. */
struct smtp_session *smtp_session_new(const struct smtp_session_config *cfg);
void smtp_session_free(struct smtp_session *s);

/* Reply bytes to send; the owner consumes what it sent (buf_consume). */
struct buf *smtp_session_out(struct smtp_session *s);
/* The pending action, or NULL. */
const struct smtp_action *smtp_session_action(const struct smtp_session *s);
enum smtp_state smtp_session_state(const struct smtp_session *s);
/* False while an action is pending and SMTP_INBUF_MAX bytes wait, or after
 * close: the owner pauses reading. */
bool smtp_session_want_read(const struct smtp_session *s);

/* Feeds received bytes. Returns 0, or -1 when the owner ignored
 * want_read (the bytes are dropped and the session closes) or memory ran
 * out (the session closes with 421). */
int smtp_session_input(struct smtp_session *s, const void *p, size_t n, uint64_t now_ns);

/* Resumptions; each must match the pending action (otherwise ignored). */
void smtp_session_resume_tls(struct smtp_session *s);
void smtp_session_resume_auth(struct smtp_session *s, enum smtp_auth_result r, const char *reason);
void smtp_session_resume_rcpt(struct smtp_session *s, enum smtp_rcpt_result r);
/* ok = false: the spool write failed; the rest of the message is read and
 * discarded, the client gets "451 4.3.0 Error: queue file write error". */
void smtp_session_resume_chunk(struct smtp_session *s, bool ok);
void smtp_session_resume(struct smtp_session *s); /* DATA_ABORT */
/* The final reply line for the message, without CRLF, e.g. "250 2.0.0 Ok:
 * queued as 4F2x", "523 Encryption Needed: Invalid Unencrypted Mail". */
void smtp_session_resume_message(struct smtp_session *s, const char *reply);

#endif
