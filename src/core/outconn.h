/* outconn.h: one outbound TCP connection on the libuv loop, optionally
 * under TLS (client mode of core/tls), for the SMTP client and later push
 * and ACME.
 *
 *   outconn_open()      connect to a sockaddr, with a connect timeout;
 *                       implicit TLS right after the connect when asked
 *   outconn_starttls()  upgrade a plaintext session in the middle
 *   outconn_write()     queue bytes (encrypted when TLS is active)
 *   outconn_close()     flush, close_notify, FIN, then closed()
 *
 * The owner sees plaintext through ops->data. The I/O timeout is an idle
 * timer: it restarts whenever bytes arrive or a write completes, so a slow
 * but moving peer is not cut off. TLS: SNI = host (not for IP literals);
 * with verify the chain is checked against the tls_client's anchors and the
 * name against host; without verify any certificate is accepted (for
 * `_`-prefixed domains and IP literals).
 *
 * Lifecycle: ops->error is called at most once (connect failure, timeout,
 * TLS failure, I/O error, EOF) and the connection then closes itself;
 * ops->closed is called exactly once, last, after which the outconn is
 * freed. After outconn_close() no error() is reported. All callbacks run on
 * the loop thread and never inside outconn_open(). */
#ifndef CM_CORE_OUTCONN_H
#define CM_CORE_OUTCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct tls_client;
struct outconn;
typedef struct uv_loop_s uv_loop_t;

enum outconn_err {
    OUTCONN_E_CONNECT, /* the TCP connect failed or timed out */
    OUTCONN_E_TLS,     /* handshake or certificate verification failed */
    OUTCONN_E_IO,      /* read/write error */
    OUTCONN_E_TIMEOUT, /* no progress for io_timeout_ms */
    OUTCONN_E_EOF,     /* the peer closed the connection */
};

struct outconn_ops {
    /* TCP connected (and, with implicit TLS, the handshake is done) */
    void (*connected)(void *ud);
    /* plaintext from the peer */
    void (*data)(void *ud, const char *p, size_t n);
    /* the handshake started by outconn_starttls() completed */
    void (*tls_done)(void *ud);
    void (*error)(void *ud, enum outconn_err kind, const char *why);
    /* everything queued went to the socket (optional; for writers that
     * produce output piecewise, see outconn_pending) */
    void (*drained)(void *ud);
    void (*closed)(void *ud);
};

struct outconn_opts {
    const struct sockaddr *addr;  /* with the port */
    unsigned connect_timeout_ms;  /* 0: 30 s */
    unsigned io_timeout_ms;       /* 0: 300 s */
    struct tls_client *tls;       /* needed for implicit TLS or STARTTLS */
    const char *host;             /* SNI and certificate name ("" or NULL: none) */
    bool verify;                  /* check chain and name */
    bool implicit_tls;            /* handshake right after the connect */
    const char *const *alpn;      /* NULL-terminated, or NULL */
};

/* Starts connecting. Returns 0, or -1 (bad address, out of memory): then
 * no callback follows. opts->host is copied. */
int outconn_open(struct outconn **out, uv_loop_t *loop, const struct outconn_opts *opts,
                 const struct outconn_ops *ops, void *ud);
/* Returns 0, or -1 when the connection is failing or closing. */
int outconn_write(struct outconn *c, const void *p, size_t n);
/* Starts the client handshake now (after the server's "go ahead"). */
int outconn_starttls(struct outconn *c);
/* Flushes what is queued and closes; closed() follows. Safe to call from
 * any callback and more than once. */
void outconn_close(struct outconn *c);
/* Bytes queued but not yet taken by the socket. */
size_t outconn_pending(const struct outconn *c);
bool outconn_is_tls(const struct outconn *c);
const char *outconn_tls_version(const struct outconn *c);
/* The TLS handshake resumed an earlier session to the same host. */
bool outconn_tls_resumed(const struct outconn *c);
/* Number of open outbound connections (tests, shutdown). */
unsigned outconn_count(void);

#endif
