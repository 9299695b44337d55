/* outconn.c: outbound connections on the libuv loop (see outconn.h). The
 * write path follows net.c: try the socket first, queue only what it did
 * not take. */
#include "core/outconn.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/limits.h"
#include "core/log.h"
#include "core/tls.h"

enum {
    OC_CONNECTED = 1 << 0,
    OC_CLOSING = 1 << 1,  /* outconn_close or an error: no more callbacks but closed */
    OC_CLOSED = 1 << 2,   /* uv_close called */
    OC_HANDSHAKE = 1 << 3,/* a TLS handshake is running */
    OC_SHUTDOWN = 1 << 4, /* uv_shutdown requested */
};

struct outconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t creq;
    uv_shutdown_t sreq;
    struct tls_conn *tls;
    struct tls_client *tc;
    const struct outconn_ops *ops;
    void *ud;
    size_t pending;
    unsigned connect_ms, io_ms;
    unsigned flags;
    int handles_open;
    bool verify, implicit_tls;
    const char *const *alpn;
    char host[LIM_TLS_HOST];
};

struct oc_write {
    uv_write_t req;
    struct outconn *c;
    size_t len;
    char data[];
};

static unsigned n_open;
static char readbuf[LIM_READ_CHUNK];

unsigned outconn_count(void) { return n_open; }

static void on_handle_closed(uv_handle_t *h)
{
    struct outconn *c = h->data;
    if (--c->handles_open > 0)
        return;
    if (c->tls)
        tls_conn_free(c->tls);
    n_open--;
    const struct outconn_ops *ops = c->ops;
    void *ud = c->ud;
    free(c);
    if (ops->closed)
        ops->closed(ud);
}

static void really_close(struct outconn *c)
{
    if (c->flags & OC_CLOSED)
        return;
    c->flags |= OC_CLOSED | OC_CLOSING;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* A failure: tell the owner once (unless it closed already), then close. */
static void fail(struct outconn *c, enum outconn_err kind, const char *why)
{
    if (c->flags & OC_CLOSING) {
        really_close(c);
        return;
    }
    c->flags |= OC_CLOSING;
    if (c->ops->error)
        c->ops->error(c->ud, kind, why);
    really_close(c);
}

static void on_timer(uv_timer_t *t)
{
    struct outconn *c = t->data;
    if (c->flags & OC_CLOSING) { /* the peer did not take our last bytes */
        really_close(c);
        return;
    }
    if (!(c->flags & OC_CONNECTED))
        fail(c, OUTCONN_E_CONNECT, "connect timeout");
    else
        fail(c, OUTCONN_E_TIMEOUT, "timeout");
}

static void touch(struct outconn *c)
{
    if (!(c->flags & (OC_CLOSING | OC_CLOSED)))
        uv_timer_start(&c->timer, on_timer, c->io_ms, 0);
}

static void on_write_done(uv_write_t *req, int status)
{
    struct oc_write *w = (struct oc_write *)req;
    struct outconn *c = w->c;
    c->pending -= w->len;
    free(w);
    if (c->flags & OC_CLOSED)
        return;
    if (status < 0) {
        fail(c, OUTCONN_E_IO, uv_strerror(status));
        return;
    }
    touch(c);
    if (c->pending == 0 && !(c->flags & OC_CLOSING) && c->ops->drained)
        c->ops->drained(c->ud);
}

static void raw_write(struct outconn *c, const char *p, size_t n)
{
    if (c->flags & OC_CLOSED)
        return;
    if (c->pending == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r != UV_EAGAIN && r != UV_ENOSYS) {
            fail(c, OUTCONN_E_IO, uv_strerror(r));
            return;
        }
    }
    if (n == 0)
        return;
    struct oc_write *w = malloc(sizeof *w + n);
    if (!w) {
        fail(c, OUTCONN_E_IO, "out of memory");
        return;
    }
    w->c = c;
    w->len = n;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write_done);
    if (r < 0) {
        free(w);
        fail(c, OUTCONN_E_IO, uv_strerror(r));
        return;
    }
    c->pending += n;
}

static void tls_send(void *ud, const uint8_t *p, size_t n) { raw_write(ud, (const char *)p, n); }

static void tls_recv(void *ud, const uint8_t *p, size_t n)
{
    struct outconn *c = ud;
    if (!(c->flags & OC_CLOSING) && c->ops->data)
        c->ops->data(c->ud, (const char *)p, n);
}

static void tls_handshake(void *ud)
{
    struct outconn *c = ud;
    c->flags &= ~(unsigned)OC_HANDSHAKE;
    if (c->flags & OC_CLOSING)
        return;
    if (c->implicit_tls) {
        c->implicit_tls = false;
        if (c->ops->connected)
            c->ops->connected(c->ud);
    } else if (c->ops->tls_done) {
        c->ops->tls_done(c->ud);
    }
}

static const struct tls_io oc_tls_io = {
    .send = tls_send, .recv = tls_recv, .handshake_done = tls_handshake,
};

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    *b = uv_buf_init(readbuf, sizeof readbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct outconn *c = s->data;
    if (c->flags & OC_CLOSED)
        return;
    if (n < 0) {
        uv_read_stop(s);
        if (c->flags & OC_CLOSING)
            really_close(c);
        else if (n == UV_EOF)
            fail(c, c->flags & OC_HANDSHAKE ? OUTCONN_E_TLS : OUTCONN_E_EOF,
                 c->flags & OC_HANDSHAKE ? "connection closed during the TLS handshake"
                                         : "connection closed by peer");
        else
            fail(c, OUTCONN_E_IO, uv_strerror((int)n));
        return;
    }
    if (n == 0)
        return;
    touch(c);
    if (c->tls) {
        const char *err = NULL;
        if (tls_conn_feed(c->tls, (const uint8_t *)b->base, (size_t)n, &err) < 0)
            fail(c, OUTCONN_E_TLS, err ? err : "TLS error");
        else if (tls_conn_peer_closed(c->tls) && !(c->flags & OC_CLOSING)) {
            /* answer the close_notify: a cleanly closed session stays
             * resumable (OpenSSL marks one freed without it as bad) */
            tls_conn_shutdown(c->tls);
            fail(c, OUTCONN_E_EOF, "TLS closed by peer");
        }
        return;
    }
    if (!(c->flags & OC_CLOSING) && c->ops->data)
        c->ops->data(c->ud, b->base, (size_t)n);
}

static int start_tls(struct outconn *c)
{
    if (!c->tc || c->tls)
        return -1;
    c->flags |= OC_HANDSHAKE;
    c->tls = tls_conn_new_client(c->tc, c->host, c->verify, c->alpn, &oc_tls_io, c);
    if (!c->tls) {
        c->flags &= ~(unsigned)OC_HANDSHAKE;
        return -1;
    }
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct outconn *c = req->data;
    if (c->flags & OC_CLOSED)
        return;
    if (status < 0) {
        fail(c, OUTCONN_E_CONNECT, uv_strerror(status));
        return;
    }
    if (c->flags & OC_CLOSING) {
        really_close(c);
        return;
    }
    c->flags |= OC_CONNECTED;
    uv_tcp_nodelay(&c->tcp, 1);
    touch(c);
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
        fail(c, OUTCONN_E_IO, uv_strerror(r));
        return;
    }
    if (c->implicit_tls) {
        if (start_tls(c) < 0)
            fail(c, OUTCONN_E_TLS, "cannot start TLS");
        return;
    }
    if (c->ops->connected)
        c->ops->connected(c->ud);
}

int outconn_open(struct outconn **out, uv_loop_t *loop, const struct outconn_opts *o,
                 const struct outconn_ops *ops, void *ud)
{
    *out = NULL;
    if (!o->addr || (o->addr->sa_family != AF_INET && o->addr->sa_family != AF_INET6))
        return -1;
    if ((o->implicit_tls && !o->tls) || (o->host && strlen(o->host) >= LIM_TLS_HOST))
        return -1;
    struct outconn *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->ops = ops;
    c->ud = ud;
    c->tc = o->tls;
    c->verify = o->verify;
    c->implicit_tls = o->implicit_tls;
    c->alpn = o->alpn;
    c->connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 30000;
    c->io_ms = o->io_timeout_ms ? o->io_timeout_ms : 300000;
    if (o->host)
        memcpy(c->host, o->host, strlen(o->host) + 1);
    if (uv_tcp_init(loop, &c->tcp) < 0) {
        free(c);
        return -1;
    }
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c->timer.data = c->creq.data = c;
    c->handles_open = 2;
    n_open++;
    int r = uv_tcp_connect(&c->creq, &c->tcp, o->addr, on_connect);
    if (r < 0) {
        /* no callback may run from inside outconn_open: close silently */
        static const struct outconn_ops none = {0};
        c->ops = &none;
        really_close(c);
        return -1;
    }
    uv_timer_start(&c->timer, on_timer, c->connect_ms, 0);
    *out = c;
    return 0;
}

int outconn_write(struct outconn *c, const void *p, size_t n)
{
    if (c->flags & (OC_CLOSING | OC_CLOSED) || !(c->flags & OC_CONNECTED))
        return -1;
    if (n == 0)
        return 0;
    if (c->tls) {
        const char *err = NULL;
        if ((c->flags & OC_HANDSHAKE) || tls_conn_write(c->tls, p, n, &err) < 0) {
            fail(c, OUTCONN_E_TLS, err ? err : "write during the TLS handshake");
            return -1;
        }
        return 0;
    }
    raw_write(c, p, n);
    return (c->flags & OC_CLOSING) ? -1 : 0;
}

int outconn_starttls(struct outconn *c)
{
    if (c->flags & (OC_CLOSING | OC_CLOSED) || !(c->flags & OC_CONNECTED))
        return -1;
    if (start_tls(c) < 0) {
        fail(c, OUTCONN_E_TLS, "cannot start TLS");
        return -1;
    }
    return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct outconn *c = req->data;
    /* wait (bounded by the timer) for the peer's FIN, then close */
    if (!(c->flags & OC_CLOSED) && !uv_is_active((uv_handle_t *)&c->tcp))
        really_close(c);
}

void outconn_close(struct outconn *c)
{
    if (!c || (c->flags & (OC_CLOSING | OC_CLOSED)))
        return;
    c->flags |= OC_CLOSING;
    if (!(c->flags & OC_CONNECTED)) {
        really_close(c);
        return;
    }
    if (c->tls && tls_conn_established(c->tls))
        tls_conn_shutdown(c->tls);
    if (c->flags & OC_CLOSED)
        return;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        really_close(c);
        return;
    }
    c->flags |= OC_SHUTDOWN;
    uv_timer_start(&c->timer, on_timer, 5000, 0);
}

size_t outconn_pending(const struct outconn *c) { return c->pending; }

bool outconn_is_tls(const struct outconn *c)
{
    return c->tls && tls_conn_established(c->tls);
}

bool outconn_tls_resumed(const struct outconn *c)
{
    return c->tls && tls_conn_resumed(c->tls);
}

const char *outconn_tls_version(const struct outconn *c)
{
    return c->tls ? tls_conn_version(c->tls) : "";
}
