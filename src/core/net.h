/* net.h: listeners, connections and protocol dispatch on the libuv loop.
 *
 * A protocol session (SMTP, IMAP, HTTP) is a state machine that never sees
 * a socket: net.c hands it the plaintext bytes it reads (decrypted when TLS
 * is active) through struct session_ops, and the session answers with
 * conn_write()/conn_close()/conn_starttls(). All callbacks run on the loop
 * thread.
 *
 * Listeners and what they start:
 *   smtp_port (25)         plain, STARTTLS offered (TLS 1.2 min)    -> PROTO_SMTP_MX
 *   submission_port (587)  plain, STARTTLS (TLS 1.3 min)            -> PROTO_SUBMISSION
 *   submissions_port (465) implicit TLS 1.3                          -> PROTO_SUBMISSION
 *   imap_port (143)        plain, STARTTLS (TLS 1.3 min)            -> PROTO_IMAP
 *   imaps_port (993)       implicit TLS 1.3                          -> PROTO_IMAP
 *   https_port (443)       implicit TLS; ALPN "smtp" -> PROTO_SUBMISSION,
 *                          "imap" -> PROTO_IMAP (both TLS 1.3), else PROTO_HTTP
 *   http_port (80)         plain                                     -> PROTO_HTTP
 *
 * A connection counts against its protocol's total and per-address caps
 * from the moment it is accepted (on the https port as HTTP until ALPN
 * picks another protocol, which is then counted instead). Over a cap, or
 * when the descriptor reserve (RLIMIT_NOFILE minus an eighth) is reached, a
 * new connection is closed at once: implicit-TLS ports do no handshake for
 * it, plain ports write the protocol's refusal (refuse()) first. Refusals
 * are counted per protocol and reason and logged at most once per
 * LIM_REFUSE_LOG_MS. A TLS handshake must finish within
 * LIM_TLS_HANDSHAKE_MS of its start, whatever bytes arrive. */
#ifndef CM_CORE_NET_H
#define CM_CORE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct tls_server;
typedef struct uv_loop_s uv_loop_t;

enum proto { PROTO_SMTP_MX, PROTO_SUBMISSION, PROTO_IMAP, PROTO_HTTP, PROTO_COUNT };

enum listener_kind {
    LK_SMTP, LK_SUBMISSION, LK_SUBMISSIONS, LK_IMAP, LK_IMAPS, LK_HTTPS, LK_HTTP, LK_COUNT
};

struct conn;

struct session_ops {
    const char *name;
    /* The transport is ready for this protocol: write the greeting. Returns
     * the session's state, or NULL to close the connection at once. */
    void *(*open)(struct conn *c);
    /* Plaintext bytes from the peer. */
    void (*data)(void *s, const char *p, size_t n);
    /* The STARTTLS handshake asked for with conn_starttls() completed. */
    void (*starttls_done)(void *s);
    /* The timer set with conn_set_timeout() expired. The session writes its
     * goodbye and calls conn_close(); if it is NULL the connection is closed. */
    void (*timeout)(void *s);
    /* The server is stopping: finish soon (optional). */
    void (*shutdown)(void *s);
    /* All queued output has been written to the socket (optional). */
    void (*drained)(void *s);
    /* The connection is gone: free the state. Never call conn_* after. */
    void (*closed)(void *s);
    /* Over a connection cap: write the protocol's refusal (no state exists;
     * the connection closes after the write). */
    void (*refuse)(struct conn *c);
};

/* Binds every configured listener; returns 0 or -1 with a reason. Binding
 * happens before privileges are dropped. */
int net_init(uv_loop_t *loop, const struct config *cfg, struct tls_server *tls,
             char *err, size_t errlen);
void net_set_protocol(enum proto p, const struct session_ops *ops);
/* Starts accepting. */
int net_start(char *err, size_t errlen);
/* Stops accepting and asks every session to finish; once all are closed or
 * grace_ms passed, closes what is left and calls done(). */
void net_shutdown(unsigned grace_ms, void (*done)(void));
/* The bound port of a listener (useful with port 0 in tests), or 0. */
int net_listener_port(enum listener_kind k);
/* The loop the sessions run on (for timers and outbound connections). */
uv_loop_t *net_loop(void);
/* Open sessions per protocol (for caps, metrics). */
unsigned net_sessions(enum proto p);

/* --- for sessions --- */
/* Queues bytes for the peer (encrypting when TLS is active). Returns 0, or
 * -1 when the connection is closing. */
int conn_write(struct conn *c, const void *p, size_t n);
int conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes queued but not yet written to the socket. */
size_t conn_pending(const struct conn *c);
/* Flushes what is queued, then closes. The session's closed() follows. */
void conn_close(struct conn *c);
/* Starts a server-side TLS handshake on a plain connection, after the
 * session wrote its "go ahead" reply. Bytes the peer sent after the command
 * must be discarded by the session (no plaintext injection). */
int conn_starttls(struct conn *c);
/* Stops / resumes reading from the peer (flow control). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);
/* One timer per connection; 0 stops it. */
void conn_set_timeout(struct conn *c, unsigned ms);

bool conn_is_tls(const struct conn *c);
const char *conn_alpn(const struct conn *c);
const char *conn_tls_version(const struct conn *c);
enum listener_kind conn_listener(const struct conn *c);
/* The peer's IP as text; for limits only, never for logs about content. */
const char *conn_peer_ip(const struct conn *c);
const struct config *conn_config(const struct conn *c);
/* A small per-connection id for log correlation. */
uint64_t conn_id(const struct conn *c);

#endif
