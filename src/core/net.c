/* net.c: listeners, connections, TLS plumbing and protocol dispatch on the
 * libuv loop (see net.h for the contract).
 *
 * Memory per connection is kept small: reads use one loop-wide buffer (the
 * bytes are handed to TLS or the session synchronously), writes are tried
 * directly with uv_try_write and only the unsent remainder is copied into a
 * write request, and the one timer is embedded in the connection. */
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/ipcount.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/tls.h"

enum conn_flags {
    CF_SESSION = 1 << 0,   /* ops->open returned a session */
    CF_CLOSING = 1 << 1,   /* conn_close called: flushing */
    CF_CLOSED = 1 << 2,    /* uv_close called */
    CF_STARTTLS = 1 << 3,  /* a STARTTLS handshake is running */
    CF_PAUSED = 1 << 4,    /* reading stopped by the session */
    CF_DRAIN_CB = 1 << 5,  /* tell the session when output drains */
    CF_OUTFULL = 1 << 6,   /* reading stopped: the peer does not take our output */
    CF_COUNTED = 1 << 7,   /* counted against proto's caps (from accept on) */
};

/* Why a connection was refused (one counter each in the throttled log). */
enum refuse_reason { RR_TOTAL, RR_PER_IP, RR_FDS, RR_COUNT };

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct tls_conn *tls;
    const struct session_ops *ops;
    void *sess;
    struct ipcount *ipc;
    struct conn *prev, *next;
    uint64_t id;
    size_t pending;          /* bytes inside queued write requests */
    uint16_t flags;
    uint8_t kind;            /* enum listener_kind */
    uint8_t proto;           /* enum proto, valid with CF_COUNTED */
    uint8_t handles_open;    /* tcp + timer: freed when both are closed */
    char ip[INET6_ADDRSTRLEN];
};

struct listener {
    uv_tcp_t tcp;
    enum listener_kind kind;
    int port;
};

struct write_req {
    uv_write_t req;
    struct conn *conn;
    size_t len;
    char data[];
};

#define MAX_LISTENERS (LK_COUNT * CONFIG_MAX_LISTEN * 2)

static struct {
    uv_loop_t *loop;
    const struct config *cfg;
    struct tls_server *tls;
    struct listener *ls[MAX_LISTENERS];
    size_t n_ls;
    const struct session_ops *ops[PROTO_COUNT];
    unsigned sessions[PROTO_COUNT];
    unsigned n_conns;
    uint64_t next_id;
    struct conn *head;
    bool stopping;
    uv_timer_t grace;
    void (*done)(void);
    struct ipcount_table *ipt;
    unsigned conn_limit;     /* RLIMIT_NOFILE minus the reserve (and <= LIM_CONN_TOTAL_MAX) */
    unsigned long refused[PROTO_COUNT][RR_COUNT];
    uv_timer_t refuse_timer; /* throttles the "refused" log line */
    bool refuse_timer_init;
    char readbuf[LIM_READ_CHUNK];
    bool readbuf_busy;
} net;

static const char *const kind_names[LK_COUNT] = {
    "smtp", "submission", "submissions", "imap", "imaps", "https", "http",
};

static void conn_really_close(struct conn *c);
static void conn_uncount(struct conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void conn_deliver(struct conn *c, const char *p, size_t n);

/* ---------- helpers ---------- */

static int kind_port(const struct config *cfg, enum listener_kind k)
{
    switch (k) {
    case LK_SMTP: return cfg->smtp_port;
    case LK_SUBMISSION: return cfg->submission_port;
    case LK_SUBMISSIONS: return cfg->submissions_port;
    case LK_IMAP: return cfg->imap_port;
    case LK_IMAPS: return cfg->imaps_port;
    case LK_HTTPS: return cfg->https_port;
    case LK_HTTP: return cfg->http_port;
    default: return 0;
    }
}

static bool kind_implicit_tls(enum listener_kind k)
{
    return k == LK_SUBMISSIONS || k == LK_IMAPS || k == LK_HTTPS;
}

static enum tls_policy kind_policy(enum listener_kind k)
{
    switch (k) {
    case LK_SMTP: return TLS_POLICY_MX;
    case LK_HTTPS: return TLS_POLICY_HTTPS;
    default: return TLS_POLICY_CLIENT;
    }
}

/* The protocol a plain listener starts, or the one ALPN picked. */
static enum proto kind_proto(enum listener_kind k, const char *alpn)
{
    switch (k) {
    case LK_SMTP: return PROTO_SMTP_MX;
    case LK_SUBMISSION:
    case LK_SUBMISSIONS: return PROTO_SUBMISSION;
    case LK_IMAP:
    case LK_IMAPS: return PROTO_IMAP;
    case LK_HTTPS:
        if (alpn && strcmp(alpn, "smtp") == 0)
            return PROTO_SUBMISSION;
        if (alpn && strcmp(alpn, "imap") == 0)
            return PROTO_IMAP;
        return PROTO_HTTP;
    default: return PROTO_HTTP;
    }
}

/* Total and per-IP caps of a protocol (spec §5.3). */
static void proto_caps(enum proto p, unsigned *total, unsigned *per_ip)
{
    const struct config *cfg = net.cfg;
    switch (p) {
    case PROTO_SMTP_MX:
        *total = 100; /* Postfix default_process_limit */
        *per_ip = 50; /* Postfix smtpd_client_connection_count_limit */
        break;
    case PROTO_SUBMISSION:
        *total = (unsigned)cfg->max_smtp_connections;
        *per_ip = (unsigned)(cfg->max_smtp_connections / LIM_PER_IP_DIVISOR);
        break;
    case PROTO_IMAP:
        *total = (unsigned)cfg->max_imap_connections;
        *per_ip = (unsigned)(cfg->max_imap_connections / LIM_PER_IP_DIVISOR);
        break;
    default:
        *total = (unsigned)cfg->max_http_connections;
        *per_ip = (unsigned)(cfg->max_http_connections / LIM_PER_IP_DIVISOR);
        break;
    }
    if (*per_ip == 0)
        *per_ip = 1;
}

/* ---------- output ---------- */

static void on_write_done(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->conn;
    c->pending -= w->len;
    free(w);
    if ((c->flags & CF_OUTFULL) && c->pending <= LIM_CONN_OUTBUF_MAX / 2) {
        c->flags &= (uint16_t)~CF_OUTFULL;
        if (!(c->flags & (CF_PAUSED | CF_CLOSING | CF_CLOSED)))
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    if (status < 0 && !(c->flags & CF_CLOSED)) {
        log_debug("conn %llu: write failed: %s", (unsigned long long)c->id, uv_strerror(status));
        conn_really_close(c);
        return;
    }
    if (c->pending == 0 && (c->flags & CF_DRAIN_CB) && !(c->flags & (CF_CLOSING | CF_CLOSED))) {
        c->flags &= (uint16_t)~CF_DRAIN_CB;
        if (c->ops && c->ops->drained && (c->flags & CF_SESSION))
            c->ops->drained(c->sess);
    }
}

/* Writes bytes to the socket as they are (ciphertext or plain). */
static void raw_write(struct conn *c, const char *p, size_t n)
{
    if (c->flags & CF_CLOSED)
        return;
    if (c->pending == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r != UV_EAGAIN && r != UV_ENOSYS) {
            conn_really_close(c);
            return;
        }
    }
    if (n == 0)
        return;
    struct write_req *w = malloc(sizeof *w + n);
    if (!w) {
        conn_really_close(c);
        return;
    }
    w->conn = c;
    w->len = n;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write_done) < 0) {
        free(w);
        conn_really_close(c);
        return;
    }
    c->pending += n;
    c->flags |= CF_DRAIN_CB;
    /* A peer that does not read: stop reading from it until it catches up,
     * so that it cannot make us queue unbounded replies. */
    if (c->pending > LIM_CONN_OUTBUF_MAX && !(c->flags & CF_OUTFULL)) {
        c->flags |= CF_OUTFULL;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

static void tls_send_cb(void *ud, const uint8_t *p, size_t n) { raw_write(ud, (const char *)p, n); }

static void tls_recv_cb(void *ud, const uint8_t *p, size_t n)
{
    conn_deliver(ud, (const char *)p, n);
}

static void open_session(struct conn *c, enum proto p);

static void tls_handshake_cb(void *ud)
{
    struct conn *c = ud;
    uv_timer_stop(&c->timer);
    if (c->flags & CF_STARTTLS) {
        c->flags &= (uint16_t)~CF_STARTTLS;
        if ((c->flags & CF_SESSION) && c->ops->starttls_done)
            c->ops->starttls_done(c->sess);
        return;
    }
    if (strcmp(tls_conn_alpn(c->tls), TLS_ALPN_ACME) == 0) {
        conn_close(c); /* RFC 8737 §3: the validation is the handshake itself */
        return;
    }
    open_session(c, kind_proto((enum listener_kind)c->kind, tls_conn_alpn(c->tls)));
}

static const struct tls_io conn_tls_io = {
    .send = tls_send_cb, .recv = tls_recv_cb, .handshake_done = tls_handshake_cb,
};

int conn_write(struct conn *c, const void *p, size_t n)
{
    if (c->flags & (CF_CLOSING | CF_CLOSED))
        return -1;
    if (n == 0)
        return 0;
    if (c->tls && !(c->flags & CF_STARTTLS)) {
        const char *err = NULL;
        if (tls_conn_write(c->tls, p, n, &err) < 0) {
            log_debug("conn %llu: tls write: %s", (unsigned long long)c->id, err ? err : "?");
            conn_really_close(c);
            return -1;
        }
        return 0;
    }
    raw_write(c, p, n);
    return 0;
}

int conn_printf(struct conn *c, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return conn_write(c, small, (size_t)n);
    struct buf b = {0};
    va_start(ap, fmt);
    int rc = buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc == 0)
        rc = conn_write(c, b.data, b.len);
    buf_free(&b);
    return rc;
}

size_t conn_pending(const struct conn *c) { return c->pending; }

/* ---------- input ---------- */

static void conn_deliver(struct conn *c, const char *p, size_t n)
{
    if ((c->flags & (CF_CLOSING | CF_CLOSED)) || !(c->flags & CF_SESSION))
        return;
    c->ops->data(c->sess, p, n);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    if (net.readbuf_busy) { /* cannot happen on one thread; be safe */
        *b = uv_buf_init(NULL, 0);
        return;
    }
    net.readbuf_busy = true;
    *b = uv_buf_init(net.readbuf, sizeof net.readbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;
    if (nread > 0 && !(c->flags & CF_CLOSED)) {
        if (c->tls) {
            const char *err = NULL;
            if (tls_conn_feed(c->tls, (const uint8_t *)b->base, (size_t)nread, &err) < 0) {
                log_debug("conn %llu: tls: %s", (unsigned long long)c->id, err ? err : "error");
                conn_really_close(c);
            } else if (tls_conn_peer_closed(c->tls)) {
                conn_close(c);
            }
        } else {
            conn_deliver(c, b->base, (size_t)nread);
        }
    } else if (nread < 0) {
        if (nread != UV_EOF)
            log_debug("conn %llu: read: %s", (unsigned long long)c->id, uv_strerror((int)nread));
        if (nread == UV_EOF && !(c->flags & CF_CLOSED))
            conn_close(c);
        else
            conn_really_close(c);
    }
    if (b->base == net.readbuf)
        net.readbuf_busy = false;
}

void conn_pause(struct conn *c)
{
    if (!(c->flags & (CF_PAUSED | CF_CLOSED))) {
        c->flags |= CF_PAUSED;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

void conn_resume(struct conn *c)
{
    if ((c->flags & CF_PAUSED) && !(c->flags & (CF_CLOSING | CF_CLOSED))) {
        c->flags &= (uint16_t)~CF_PAUSED;
        if (!(c->flags & CF_OUTFULL))
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

/* ---------- timers ---------- */

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->flags & CF_CLOSING) { /* the peer does not take our last bytes */
        conn_really_close(c);
        return;
    }
    if ((c->flags & CF_SESSION) && c->ops->timeout && !(c->flags & CF_STARTTLS)) {
        c->ops->timeout(c->sess);
        return;
    }
    conn_really_close(c);
}

void conn_set_timeout(struct conn *c, unsigned ms)
{
    if (c->flags & CF_CLOSED)
        return;
    if (ms == 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---------- closing ---------- */

static void maybe_all_closed(void);

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    conn_uncount(c);
    if ((c->flags & CF_SESSION) && c->ops->closed)
        c->ops->closed(c->sess);
    ipcount_release(net.ipt, c->ipc);
    if (c->tls)
        tls_conn_free(c->tls);
    if (c->prev)
        c->prev->next = c->next;
    else
        net.head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    net.n_conns--;
    free(c);
    maybe_all_closed();
}

static void conn_really_close(struct conn *c)
{
    if (c->flags & CF_CLOSED)
        return;
    c->flags |= CF_CLOSED | CF_CLOSING;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_shutdown_done(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    free(req);
    conn_really_close(c);
}

void conn_close(struct conn *c)
{
    if (c->flags & (CF_CLOSING | CF_CLOSED))
        return;
    if (c->tls && tls_conn_established(c->tls) && !(c->flags & CF_STARTTLS))
        tls_conn_shutdown(c->tls);
    c->flags |= CF_CLOSING;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown_done) < 0) {
        free(req);
        conn_really_close(c);
        return;
    }
    req->data = c;
    /* Bound the time a peer may take to read our last bytes. */
    uv_timer_start(&c->timer, on_timer, 5000, 0);
}

/* ---------- TLS ---------- */

static int conn_tls_begin(struct conn *c)
{
    c->tls = tls_conn_new_server(net.tls, kind_policy((enum listener_kind)c->kind), &conn_tls_io, c);
    if (!c->tls)
        return -1;
    uv_timer_start(&c->timer, on_timer, LIM_TLS_HANDSHAKE_MS, 0);
    return 0;
}

int conn_starttls(struct conn *c)
{
    if (c->tls || (c->flags & (CF_CLOSING | CF_CLOSED)))
        return -1;
    c->flags |= CF_STARTTLS;
    if (conn_tls_begin(c) < 0) {
        c->flags &= (uint16_t)~CF_STARTTLS;
        return -1;
    }
    return 0;
}

bool conn_is_tls(const struct conn *c) { return c->tls && tls_conn_established(c->tls); }
const char *conn_alpn(const struct conn *c) { return c->tls ? tls_conn_alpn(c->tls) : ""; }
const char *conn_tls_version(const struct conn *c)
{
    return c->tls ? tls_conn_version(c->tls) : "";
}
enum listener_kind conn_listener(const struct conn *c) { return (enum listener_kind)c->kind; }
const char *conn_peer_ip(const struct conn *c) { return c->ip; }
const struct config *conn_config(const struct conn *c) { return net.cfg; }
uint64_t conn_id(const struct conn *c) { return c->id; }

/* ---------- sessions ---------- */

static const char *const reason_names[RR_COUNT] = {
    "total cap", "per-address cap", "descriptor reserve",
};

/* Logs the refusals counted since the last line; true if there were any. */
static bool refuse_report(void)
{
    char line[512];
    size_t len = 0;
    unsigned long all = 0;
    for (int p = 0; p < PROTO_COUNT; p++)
        for (int r = 0; r < RR_COUNT; r++) {
            unsigned long n = net.refused[p][r];
            if (!n)
                continue;
            all += n;
            int w = snprintf(line + len, sizeof line - len, "%s%s %s %lu", len ? ", " : "",
                             net.ops[p] ? net.ops[p]->name : "?", reason_names[r], n);
            if (w > 0 && (size_t)w < sizeof line - len)
                len += (size_t)w;
            net.refused[p][r] = 0;
        }
    if (!all)
        return false;
    log_info("connections refused: %s (at most one such line per %u s)", line,
             LIM_REFUSE_LOG_MS / 1000);
    return true;
}

static void on_refuse_timer(uv_timer_t *t)
{
    if (!refuse_report())
        uv_timer_stop(t);
}

/* Counts one refusal; the first after a quiet period is logged at once,
 * the others at most once per LIM_REFUSE_LOG_MS. */
static void refuse_count(enum proto p, enum refuse_reason r)
{
    net.refused[p][r]++;
    if (!net.refuse_timer_init) {
        uv_timer_init(net.loop, &net.refuse_timer);
        net.refuse_timer_init = true;
    }
    if (uv_is_active((uv_handle_t *)&net.refuse_timer))
        return;
    refuse_report();
    uv_timer_start(&net.refuse_timer, on_refuse_timer, LIM_REFUSE_LOG_MS, LIM_REFUSE_LOG_MS);
}

/* Counts c against p's caps, or says which cap is full. */
static bool conn_count(struct conn *c, enum proto p, enum refuse_reason *why)
{
    unsigned total, per_ip;
    proto_caps(p, &total, &per_ip);
    if (net.sessions[p] >= total) {
        *why = RR_TOTAL;
        return false;
    }
    if (ipcount_get(c->ipc, p) >= per_ip) {
        *why = RR_PER_IP;
        return false;
    }
    c->proto = (uint8_t)p;
    c->flags |= CF_COUNTED;
    net.sessions[p]++;
    metrics_gauge_add((enum metric_gauge)(G_CONN_SMTP + p), 1);
    ipcount_inc(c->ipc, p);
    return true;
}

static void conn_uncount(struct conn *c)
{
    if (!(c->flags & CF_COUNTED))
        return;
    c->flags &= (uint16_t)~CF_COUNTED;
    net.sessions[c->proto]--;
    metrics_gauge_add((enum metric_gauge)(G_CONN_SMTP + c->proto), -1);
    ipcount_dec(net.ipt, c->ipc, c->proto);
}

/* Opens protocol p's session on a connection counted for p (see
 * on_connection; after the handshake on port 443 the protocol ALPN picked
 * is counted instead, and refused with the protocol's own words when it is
 * full). */
static void open_session(struct conn *c, enum proto p)
{
    const struct session_ops *ops = net.ops[p];
    c->ops = ops;
    if (!ops || net.stopping) {
        conn_really_close(c);
        return;
    }
    if (!(c->flags & CF_COUNTED) || c->proto != p) {
        enum refuse_reason why;
        conn_uncount(c);
        if (!conn_count(c, p, &why)) {
            refuse_count(p, why);
            if (ops->refuse)
                ops->refuse(c);
            conn_close(c);
            return;
        }
    }
    c->flags |= CF_SESSION;
    c->sess = ops->open(c);
    if (!c->sess) {
        c->flags &= (uint16_t)~CF_SESSION;
        conn_really_close(c);
    }
}

uv_loop_t *net_loop(void) { return net.loop; }

unsigned net_sessions(enum proto p) { return p < PROTO_COUNT ? net.sessions[p] : 0; }

void net_set_protocol(enum proto p, const struct session_ops *ops)
{
    if (p < PROTO_COUNT)
        net.ops[p] = ops;
}

/* ---------- accepting ---------- */

static void peer_ip(uv_tcp_t *t, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    out[0] = '\0';
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, out, outlen);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)outlen);
        else
            uv_ip6_name(s6, out, outlen);
    }
}

/* Out of file descriptors. libuv retries accept() at once after telling us,
 * so unless the pending connections go away the loop spins and nobody else
 * is served. They are taken with the slot of a reserved descriptor and
 * closed at once (the clients see a reset and retry), as libuv's own trick
 * does, but with a reserve of ours that is always there; the count is
 * logged at most every LIM_EMFILE_LOG_MS. Should the reserve be lost to a
 * worker that opened a file in the gap, each retry waits 1 ms so the
 * workers, who free descriptors, go on. */
static int reserve_fd = -1;
static unsigned long shed_count;
static uint64_t shed_logged_ms;

static void shed_pending(struct listener *l, int status)
{
    uv_os_fd_t fd;
    bool drained = false;
    if (reserve_fd < 0)
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (reserve_fd >= 0 && uv_fileno((uv_handle_t *)&l->tcp, &fd) == 0) {
        close(reserve_fd);
        for (;;) {
            int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c >= 0) {
                close(c);
                shed_count++;
                continue;
            }
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            drained = errno == EAGAIN || errno == EWOULDBLOCK;
            break;
        }
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    uint64_t now = uv_now(net.loop);
    if (shed_logged_ms == 0 || now - shed_logged_ms >= LIM_EMFILE_LOG_MS) {
        log_warn("accept on %s port: %s; %lu connection(s) refused since the last report",
                 kind_names[l->kind], uv_strerror(status), shed_count);
        shed_logged_ms = now;
        shed_count = 0;
    }
    if (!drained)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    if (status == UV_EMFILE || status == UV_ENFILE) {
        shed_pending(l, status);
        return;
    }
    if (status < 0) {
        log_warn("accept on %s port: %s", kind_names[l->kind], uv_strerror(status));
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(net.loop, &c->tcp);
    uv_timer_init(net.loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->kind = (uint8_t)l->kind;
    c->id = ++net.next_id;
    c->next = net.head;
    if (net.head)
        net.head->prev = c;
    net.head = c;
    net.n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_really_close(c);
        return;
    }
    if (net.stopping) {
        conn_really_close(c);
        return;
    }
    /* From here the connection counts: against the descriptor reserve, and
     * against its protocol's caps (the listener's; on the https port HTTP
     * until ALPN says otherwise). Over a cap it is closed at once, before
     * any TLS work; plain listeners still say why in their protocol. */
    enum proto p = kind_proto(l->kind, NULL);
    if (net.n_conns > net.conn_limit) {
        refuse_count(p, RR_FDS);
        conn_really_close(c);
        return;
    }
    peer_ip(&c->tcp, c->ip, sizeof c->ip);
    c->ipc = ipcount_acquire(net.ipt, c->ip);
    enum refuse_reason why;
    if (!conn_count(c, p, &why)) {
        refuse_count(p, why);
        if (!kind_implicit_tls(l->kind) && net.ops[p] && net.ops[p]->refuse) {
            net.ops[p]->refuse(c);
            conn_close(c);
        } else {
            conn_really_close(c);
        }
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (kind_implicit_tls(l->kind)) {
        if (conn_tls_begin(c) < 0)
            conn_really_close(c);
        return;
    }
    open_session(c, p);
}

static int bind_one(enum listener_kind k, const char *addr, int port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    unsigned flags = 0;
    if (strchr(addr, ':')) {
        if (uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) != 0)
            goto bad;
        flags = UV_TCP_IPV6ONLY;
    } else if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) != 0) {
        goto bad;
    }
    if (net.n_ls >= MAX_LISTENERS) {
        snprintf(err, errlen, "too many listeners");
        return -1;
    }
    struct listener *l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    l->kind = k;
    uv_tcp_init(net.loop, &l->tcp);
    l->tcp.data = l;
    int r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, flags);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, LIM_LISTEN_BACKLOG, on_connection);
    if (r != 0) {
        snprintf(err, errlen, "cannot listen on %s port %s:%d: %s", kind_names[k], addr, port,
                 uv_strerror(r));
        uv_close((uv_handle_t *)&l->tcp, (uv_close_cb)free);
        return -1;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &blen);
    l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    net.ls[net.n_ls++] = l;
    log_info("listening on %s%s%s:%d (%s)", strchr(addr, ':') ? "[" : "", addr,
             strchr(addr, ':') ? "]" : "", l->port, kind_names[k]);
    return 0;
bad:
    snprintf(err, errlen, "bad listen address %s", addr);
    return -1;
}

/* Connections we take: RLIMIT_NOFILE minus a reserve for established
 * sessions' files, the stores, logging and outbound connections (an eighth,
 * at least LIM_FD_RESERVE_MIN, at most half), and never more than LIM_CONN_TOTAL_MAX. */
static unsigned net_conn_limit(void)
{
    struct rlimit rl;
    unsigned long lim = LIM_CONN_TOTAL_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)lim + LIM_FD_RESERVE_MIN) {
        unsigned long cur = (unsigned long)rl.rlim_cur, reserve = cur / 8;
        if (reserve < LIM_FD_RESERVE_MIN)
            reserve = LIM_FD_RESERVE_MIN;
        if (reserve > cur / 2)
            reserve = cur / 2;
        lim = cur > reserve ? cur - reserve : 1;
    }
    return (unsigned)lim;
}

int net_init(uv_loop_t *loop, const struct config *cfg, struct tls_server *tls, char *err,
             size_t errlen)
{
    net.loop = loop;
    net.cfg = cfg;
    net.tls = tls;
    net.ipt = ipcount_table_new();
    if (reserve_fd < 0)
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!net.ipt) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    net.conn_limit = net_conn_limit();
    for (int k = 0; k < LK_COUNT; k++) {
        int port = kind_port(cfg, (enum listener_kind)k);
        if (port <= 0)
            continue;
        if (cfg->n_listen > 0) {
            for (size_t i = 0; i < cfg->n_listen; i++)
                if (bind_one((enum listener_kind)k, cfg->listen[i], port, err, errlen) < 0)
                    return -1;
        } else {
            if (bind_one((enum listener_kind)k, "0.0.0.0", port, err, errlen) < 0)
                return -1;
            if (!cfg->disable_ipv6 && bind_one((enum listener_kind)k, "::", port, err, errlen) < 0)
                return -1;
        }
    }
    return 0;
}

int net_start(char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    return 0; /* uv_listen in net_init already accepts once the loop runs */
}

int net_listener_port(enum listener_kind k)
{
    for (size_t i = 0; i < net.n_ls; i++)
        if (net.ls[i]->kind == k)
            return net.ls[i]->port;
    return 0;
}

/* ---------- shutdown ---------- */

static void finish_shutdown(void)
{
    if (!net.done)
        return;
    void (*done)(void) = net.done;
    net.done = NULL;
    uv_timer_stop(&net.grace);
    uv_close((uv_handle_t *)&net.grace, NULL);
    if (net.refuse_timer_init) {
        refuse_report();
        uv_close((uv_handle_t *)&net.refuse_timer, NULL);
        net.refuse_timer_init = false;
    }
    ipcount_table_free(net.ipt);
    net.ipt = NULL;
    done();
}

static void maybe_all_closed(void)
{
    if (net.stopping && net.n_conns == 0)
        finish_shutdown();
}

static void on_grace_expired(uv_timer_t *t)
{
    (void)t;
    log_info("shutdown: closing %u remaining connection(s)", net.n_conns);
    for (struct conn *c = net.head; c; c = c->next)
        conn_really_close(c);
    maybe_all_closed();
}

void net_shutdown(unsigned grace_ms, void (*done)(void))
{
    if (net.stopping)
        return;
    net.stopping = true;
    net.done = done;
    for (size_t i = 0; i < net.n_ls; i++)
        uv_close((uv_handle_t *)&net.ls[i]->tcp, (uv_close_cb)free);
    net.n_ls = 0;
    uv_timer_init(net.loop, &net.grace);
    uv_timer_start(&net.grace, on_grace_expired, grace_ms, 0);
    struct conn *next;
    for (struct conn *c = net.head; c; c = next) {
        next = c->next;
        if ((c->flags & CF_SESSION) && c->ops->shutdown && !(c->flags & CF_CLOSING))
            c->ops->shutdown(c->sess);
        else
            conn_close(c);
    }
    maybe_all_closed();
}

_Static_assert(G_CONN_SUBMISSION - G_CONN_SMTP == PROTO_SUBMISSION &&
                   G_CONN_IMAP - G_CONN_SMTP == PROTO_IMAP &&
                   G_CONN_HTTP - G_CONN_SMTP == PROTO_HTTP,
               "connection gauges follow enum proto");
