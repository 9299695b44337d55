/* outq.h: private to src/smtp: the outbound queue runner (federation facts
 * §3). The queue files (queue.h) are the truth; next to each message
 * `<queue>/.st-<id>` holds the per-recipient state. The runner:
 *
 *   - loads every message at start and each new one accept.c tells it of;
 *   - per due message: reads it and DKIM-signs it on a worker (the signed
 *     bytes are the sent bytes), groups the recipients by domain, finds the
 *     destination (address literal, or MX via core/dns: null MX 556 5.1.10,
 *     NXDOMAIN 550 5.1.2, no MX = implicit MX, other failures retry), tries
 *     the MX hosts in preference order (equal ones shuffled) and per host
 *     the transports in order: `mxdeliv` (POST https://host/mxdeliv), then
 *     `smtp` (a slot; see outq_set_transport);
 *   - writes the state (tmp + fsync + rename), backs off with jitter
 *     (first retry within a minute, capped at an hour), gives up after
 *     `queue_lifetime`, remembers dead destinations, puts a delivery status
 *     notification into the local sender's INBOX on a permanent failure,
 *     and removes the message when every recipient is done.
 *
 * Sans-I/O parts (the fuzzers drive them): outq_state_parse/format,
 * outq_dsn_headers, outq_dsn_build. */
#ifndef CM_SMTP_OUTQ_H
#define CM_SMTP_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/buf.h"

struct config;

#define OUTQ_REPLY_MAX 256
#define OUTQ_STATE_MAX (1000 * 600 + 64) /* bytes of a state file */

/* ---------------------------------------------------------------- state */

enum outq_rstatus { OUTQ_PENDING = 0, OUTQ_DELIVERED, OUTQ_FAILED };

struct outq_rstate {
    char *addr;
    enum outq_rstatus status;
    unsigned attempts;
    int64_t next_try;              /* unix seconds; 0 = at once */
    char last[OUTQ_REPLY_MAX];     /* last reply ("" = none yet) */
};

struct outq_state {
    struct outq_rstate *r;
    size_t n;
};

/* Parses a state file: the line "CHATMAILD-QSTATE 1", then per recipient
 * "R <P|D|F> <attempts> <next_try> <addr> <last reply>" (CRLF or LF).
 * Bounded (OUTQ_STATE_MAX, QUEUE_MAX_RCPTS). 0, or -1 (st emptied). */
int outq_state_parse(const char *data, size_t len, struct outq_state *st);
/* The text form; the last reply's control characters become '?'. */
int outq_state_format(const struct outq_state *st, struct buf *out);
void outq_state_free(struct outq_state *st);

/* ---------------------------------------------------------------- DSN */

/* The header block of a message (up to the blank line or the end), at most
 * max bytes and only whole header lines; *msgid gets the Message-ID's
 * value (unfolded, trimmed; "" when none) in msgid_len bytes. */
size_t outq_dsn_headers(const char *msg, size_t len, size_t max, char *msgid,
                        size_t msgid_len);

struct outq_dsn_rcpt {
    const char *addr;
    const char *reply;   /* "550 5.1.2 ..." */
};
/* A multipart/report; report-type=delivery-status message from
 * mailer-daemon@domain to `to`, with Auto-Submitted: auto-replied,
 * X-Failed-Recipients, part 2 message/delivery-status with the per
 * recipient fields, part 3 text/rfc822-headers with `headers`. */
int outq_dsn_build(struct buf *out, const char *domain, const char *to,
                   const struct outq_dsn_rcpt *r, size_t n, const char *headers,
                   size_t headers_len, int64_t arrival, int64_t now, bool expired);

/* outq_dsn_store.c (worker): the report built and stored in the INBOX of
 * the local account of `sender` (*account gets its address), without a
 * quota refusal. 0 stored; -1 no local sender; -2 not built or stored. */
struct config;
struct quota_cache;
int outq_dsn_store(const struct config *cfg, struct quota_cache *quota, const char *sender,
                   char *account, size_t account_len, const struct outq_dsn_rcpt *r, size_t n,
                   const char *headers, size_t headers_len, int64_t arrival, int64_t now,
                   bool expired);

/* ---------------------------------------------------------------- transports */

struct outq_reply {
    int code;                      /* 0 = none */
    char text[OUTQ_REPLY_MAX];     /* the whole reply line, "451 4.4.1 ..." */
};

/* One delivery over one transport to one host. The runner fills the
 * inputs; the transport fills `session` (a reply for every recipient: the
 * connection or the transaction ended with it) or `rcpt[i]` (one reply per
 * recipient), sets `fallback` when the next transport should be tried
 * (mxdeliv: anything but 2xx), sets `connected` when the peer answered
 * anything (the destination is alive), and calls done(a) once, later, on the loop. */
struct outq_attempt {
    const char *host;              /* MX host name, or the literal */
    struct sockaddr_storage addr;  /* resolved by the runner (port 0) */
    bool any_cert;                 /* `_`-domain or address literal */
    const char *helo;              /* mail_domain */
    const char *mail_from;         /* "" = null sender */
    const char *const *rcpts;
    size_t n_rcpts;
    const char *msg;               /* signed bytes, valid until done */
    size_t len;
    struct outq_reply session;
    struct outq_reply *rcpt;       /* n_rcpts entries, zeroed */
    bool fallback;
    bool connected;                /* out: the peer answered (not unreachable) */
    bool transport_error;          /* out: connect, TLS or I/O failure */
    void (*done)(struct outq_attempt *a);
    void *ud;                      /* the runner's */
};

/* Starts a; returns 0 (done will run later) or -1 (it will not). */
typedef int (*outq_transport_fn)(void *ctx, struct outq_attempt *a);

enum outq_transport_id { OUTQ_T_MXDELIV = 0, OUTQ_T_SMTP, OUTQ_T_COUNT };

/* Replaces a transport (tests plug their own in). After outq_start, which
 * sets the real ones. */
void outq_set_transport(enum outq_transport_id id, outq_transport_fn fn, void *ctx);

/* The mxdeliv transport (outq_mxdeliv.c) over core/curlm. */
struct curlm;
struct outq_mxdeliv_ctx {
    struct curlm *curl;
    const char *ca_file;           /* tls_ca_file */
    int port;                      /* mxdeliv_port (443) */
};
int outq_mxdeliv_start(void *ctx, struct outq_attempt *a);

/* The smtp transport (outq_smtp.c) over smtpc, port outbound_smtp_port
 * (25). outq_start fills the context; stop before the resolver stops. */
struct smtpc_client;
struct dns;
struct smtp_req;
struct outq_smtp_ctx {
    uv_loop_t *loop;
    const struct config *cfg;
    struct smtpc_client *client;
    struct dns *dns;
    int port;
    bool stopping;
    struct smtp_req *reqs;         /* in flight */
};
int outq_smtp_start(void *ctx, struct outq_attempt *a);
void outq_smtp_stop(struct outq_smtp_ctx *c);
void outq_smtp_free(struct outq_smtp_ctx *c);

/* The "SMTP only" mark of MX hosts (outq_smtponly.c): hosts whose
 * /mxdeliv failed and whose SMTP delivered are tried over SMTP first for
 * 30 minutes; an SMTP connect/TLS/IO error clears the mark. Loop thread. */
#define OUTQ_SMTPONLY_SECS 1800
#define OUTQ_SMTPONLY_MAX 4096
bool outq_smtponly_is(const char *host, int64_t now);
bool outq_smtponly_mark(const char *host, int64_t now); /* true: newly marked */
bool outq_smtponly_clear(const char *host); /* true: it was marked */
size_t outq_smtponly_count(void);
void outq_smtponly_free(void);

/* ---------------------------------------------------------------- runner */

/* Starts the runner over queue_dir (loads the DKIM key from dkim_key_path,
 * creating it when missing and logging the DNS record to publish; starts
 * its resolver and curl). 0, or -1 with err. */
int outq_start(uv_loop_t *loop, const struct config *cfg, const char *queue_dir, char *err,
               size_t errlen);
/* A queue file was written (loop thread). */
void outq_notify(const char *id);
/* Stops: transfers and lookups in flight are dropped (their messages stay
 * queued as they were), handles closed. */
void outq_stop(void);
void outq_free(void);

#define OUTQ_FLUSH_FILE ".flush" /* in the queue dir: `queue flush` asks for a retry now */

/* `chatmaild-server -c FILE queue [flush]` (outq_cli.c). Exit code. */
int outq_cli(const struct config *cfg, int argc, char **argv);

#endif
