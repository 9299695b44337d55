/* smtpc_proto.h: the outbound SMTP client's state machine for one
 * transaction on one connection, sans I/O.
 *
 *   greeting -> EHLO helo -> [STARTTLS -> (TLS) -> EHLO] -> MAIL FROM
 *   -> RCPT TO (each) -> DATA -> body -> QUIT
 *
 * With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one
 * write; otherwise lock-step, and DATA is skipped when no RCPT was
 * accepted. The owner feeds reply bytes with smtpc_proto_input(), sends
 * whatever smtpc_proto_output() holds after every call, and acts on the
 * returned event. No sockets, no clocks. */
#ifndef CM_SMTP_SMTPC_PROTO_H
#define CM_SMTP_SMTPC_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "smtp/smtpc_reply.h"

enum smtpc_status {
    SMTPC_OK = 0,
    SMTPC_E_CONNECT,
    SMTPC_E_TLS,
    SMTPC_E_IO,
    SMTPC_E_TIMEOUT,
    SMTPC_E_PROTO,
    SMTPC_E_REFUSED,
};

enum smtpc_tls_need {
    SMTPC_TLS_NEED_REQUIRED, /* STARTTLS must be offered and work */
    SMTPC_TLS_NEED_OPTIONAL, /* STARTTLS when offered, plaintext when not */
    SMTPC_TLS_NEED_NONE,     /* already on TLS, or never */
};

struct smtpc_proto_job {
    const char *helo;
    const char *mail_from; /* "" = null sender */
    const char *const *rcpts;
    size_t n_rcpts;
    const char *msg;
    size_t len;
    enum smtpc_tls_need tls;
    bool keep;          /* a transaction that ends cleanly sends no QUIT: the
                           owner may run the next one on the connection
                           (see reusable / need_rset) */
};

enum smtpc_event {
    SMTPC_EV_NONE,     /* send the output, wait for more input */
    SMTPC_EV_STARTTLS, /* send the output, then start the TLS handshake and
                          call smtpc_proto_tls_ready() when it completes */
    SMTPC_EV_DONE,     /* send the output (QUIT), then close; see result */
};

enum smtpc_stage {
    ST_GREETING, ST_EHLO, ST_STARTTLS, ST_TLS, ST_RSET, ST_MAIL, ST_RCPT, ST_DATA,
    ST_BODY, ST_DONE,
};

struct smtpc_proto {
    struct smtpc_proto_job job;
    struct smtpc_reply_parser rp;
    struct smtpc_caps caps;
    struct buf out;
    enum smtpc_stage stage;
    size_t next_rcpt;      /* RCPT replies consumed */
    size_t sent_rcpt;      /* RCPT commands sent (lock-step) */
    size_t accepted;       /* RCPTs answered 2xx */
    bool pipelined;        /* MAIL..DATA went in one write */
    bool body_pending;     /* after 354: the owner pulls the body */
    bool body_bol;         /* the next body byte starts a line */
    size_t body_off;
    bool tls_active;
    bool mail_answered;    /* the server replied to MAIL (or to RSET/EHLO...) */
    /* result, valid after SMTPC_EV_DONE */
    enum smtpc_status status;
    const char *why;
    struct smtpc_reply session;
    struct smtpc_reply *rcpt;   /* n_rcpts, owned by the caller */
    bool *rcpt_final;           /* n_rcpts, owned by the caller */
    bool reusable;              /* keep: ended healthy, no QUIT sent */
    bool need_rset;             /* ... but MAIL was accepted and no end of data
                                   answered: the next transaction starts with RSET */
};

/* rcpt and rcpt_final have job->n_rcpts entries (n_rcpts >= 1). Strings in
 * job must stay valid while p is used. */
void smtpc_proto_init(struct smtpc_proto *p, const struct smtpc_proto_job *job,
                      struct smtpc_reply *rcpt, bool *rcpt_final);
/* The next transaction on a connection whose previous one ended reusable:
 * caps are that session's EHLO capabilities; RSET first when need_rset
 * (RFC 5321 4.1.1.5), else MAIL FROM at once. The output holds the first
 * commands after this returns. */
void smtpc_proto_init_reuse(struct smtpc_proto *p, const struct smtpc_proto_job *job,
                            struct smtpc_reply *rcpt, bool *rcpt_final,
                            const struct smtpc_caps *caps, bool need_rset);
void smtpc_proto_free(struct smtpc_proto *p);
/* Reply bytes from the server. */
enum smtpc_event smtpc_proto_input(struct smtpc_proto *p, const char *data, size_t n);
/* After 354 the body is not put into the output at once: while
 * smtpc_proto_body_pending(), the owner calls smtpc_proto_body() whenever
 * its socket can take more; each call appends about max bytes of the
 * dot-stuffed message (the final "." line with the last piece). So a large
 * message is never copied whole. Returns whether more remains. */
bool smtpc_proto_body(struct smtpc_proto *p, size_t max);
static inline bool smtpc_proto_body_pending(const struct smtpc_proto *p) { return p->body_pending; }
/* The TLS handshake asked for by SMTPC_EV_STARTTLS completed. */
enum smtpc_event smtpc_proto_tls_ready(struct smtpc_proto *p);
/* The connection failed (I/O error, timeout, TLS error): ends the
 * transaction with that status unless it already ended. */
void smtpc_proto_fail(struct smtpc_proto *p, enum smtpc_status st, const char *why);
static inline struct buf *smtpc_proto_output(struct smtpc_proto *p) { return &p->out; }
static inline bool smtpc_proto_done(const struct smtpc_proto *p) { return p->stage == ST_DONE; }
/* Appends msg dot-stuffed with the final "." line; a message without a
 * final CRLF gets one. 0 or -1 (memory). */
int smtpc_dot_stuff(struct buf *out, const char *msg, size_t len);

#endif
