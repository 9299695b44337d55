/* session_io.c: the thin I/O owner of the IMAP session machine
 * (session.h) on net.h: feeds plaintext in, writes replies out (through
 * DEFLATE after COMPRESS), performs the machine's actions - logins via
 * store_login_async, command work on libuv's worker pool (SEARCH on the
 * separate slow pool, core/workpool.h, reading on so that a hang-up cancels
 * it), STARTTLS, the
 * TURN credential fetch over chatmail-turn's unix socket (uv_pipe +
 * 5 s timer, never blocking the loop) - and keeps one timer per
 * connection. Reading pauses while an action runs; a long FETCH resumes
 * only once the queued output drained (backpressure). */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zlib.h>

#include "core/authfail.h"
#include "core/config.h"
#include "core/limits.h"
#include "core/workpool.h"
#include "imap/imap.h"
#include "imap/session.h"
#include "store/store.h"

#define IO_DRAIN_LOW (256 * 1024) /* a yielded FETCH goes on below this */
#define IO_ZCHUNK 16384
#define TURN_TIMEOUT_MS 5000
#define TURN_LINE_MAX 512

struct turn_req;

struct io {
    struct io *prev, *next;   /* every IMAP connection, for the hibernation sweep */
    uint64_t active_ms;       /* loop time of the last input or output */
    bool hibernated;          /* index connection dropped; cleared by activity */
    struct conn *c;
    struct imap_session *s;
    uv_work_t work;
    struct workpool_job slow; /* the same work on the slow pool (SEARCH) */
    enum imap_work_result work_result; /* written by the worker, read in after_work */
    struct store_login_req *login;
    struct authfail_wait *authwait; /* a failed login waiting to be answered */
    int login_result;
    uint64_t opened_ms;             /* loop time of the open: pre-login deadline */
    struct turn_req *turn;
    z_stream *zin, *zout;
    bool working, gone, wait_drain, shutdown_later;
};

static void step(struct io *io);

/* ---------------------------------------------------------- hibernation */

/* Like Dovecot's imap-hibernate, but in place: one loop-wide timer finds
 * sessions that have been in IDLE without traffic for LIM_IMAP_HIBERNATE_MS
 * and lets them drop their index connection. Active chats keep theirs, so
 * a message to them costs no reopen. */
static struct io *all_ios;
static uv_timer_t sweep_timer;
static bool sweep_started;

static void on_sweep(uv_timer_t *t)
{
    uint64_t now = uv_now(t->loop);
    unsigned n = 0;
    for (struct io *io = all_ios; io; io = io->next)
        if (!io->working && !io->login && !io->authwait && !io->turn && !io->hibernated &&
            now - io->active_ms >= LIM_IMAP_HIBERNATE_MS && imap_session_hibernate(io->s)) {
            io->hibernated = true;
            n++;
        }
    if (n > 0) /* give what the index connections held back to the kernel now */
        malloc_trim(0);
}

static void io_link(struct io *io)
{
    uv_loop_t *loop = net_loop();
    io->active_ms = uv_now(loop);
    io->next = all_ios;
    if (all_ios)
        all_ios->prev = io;
    all_ios = io;
    if (!sweep_started) { /* unref: it never keeps the loop alive */
        uv_timer_init(loop, &sweep_timer);
        uv_timer_start(&sweep_timer, on_sweep, LIM_IMAP_HIBERNATE_MS / 2,
                       LIM_IMAP_HIBERNATE_MS / 2);
        uv_unref((uv_handle_t *)&sweep_timer);
        sweep_started = true;
    }
}

static void io_unlink(struct io *io)
{
    if (io->prev)
        io->prev->next = io->next;
    else
        all_ios = io->next;
    if (io->next)
        io->next->prev = io->prev;
}

/* ---------------------------------------------------------- compression */

static void z_free(struct io *io)
{
    if (io->zin) {
        inflateEnd(io->zin);
        free(io->zin);
    }
    if (io->zout) {
        deflateEnd(io->zout);
        free(io->zout);
    }
    io->zin = io->zout = NULL;
}

static int z_start(struct io *io)
{
    io->zin = calloc(1, sizeof *io->zin);
    io->zout = calloc(1, sizeof *io->zout);
    if (!io->zin || !io->zout || inflateInit2(io->zin, -15) != Z_OK) {
        free(io->zin);
        free(io->zout);
        io->zin = io->zout = NULL;
        return -1;
    }
    /* small window and memLevel for our output: ~10 KiB per connection */
    if (deflateInit2(io->zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -10, 1, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        inflateEnd(io->zin);
        free(io->zin);
        free(io->zout);
        io->zin = io->zout = NULL;
        return -1;
    }
    return 0;
}

static void z_write(struct io *io, const char *p, size_t n)
{
    char out[IO_ZCHUNK];
    io->zout->next_in = (Bytef *)p;
    io->zout->avail_in = (uInt)n;
    do {
        io->zout->next_out = (Bytef *)out;
        io->zout->avail_out = sizeof out;
        deflate(io->zout, Z_SYNC_FLUSH);
        conn_write(io->c, out, sizeof out - io->zout->avail_out);
    } while (io->zout->avail_out == 0);
}

static void feed(struct io *io, const char *p, size_t n)
{
    if (!io->zin) {
        imap_session_input(io->s, p, n);
        return;
    }
    char out[IO_ZCHUNK];
    io->zin->next_in = (Bytef *)p;
    io->zin->avail_in = (uInt)n;
    do {
        io->zin->next_out = (Bytef *)out;
        io->zin->avail_out = sizeof out;
        int rc = inflate(io->zin, Z_SYNC_FLUSH);
        size_t got = sizeof out - io->zin->avail_out;
        if (got)
            imap_session_input(io->s, out, got);
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            conn_close(io->c); /* corrupt stream */
            return;
        }
    } while (io->zin->avail_out == 0);
}

/* --------------------------------------------------------------- output */

static void flush(struct io *io)
{
    struct buf *out = imap_session_out(io->s);
    if (out->len == 0)
        return;
    if (io->zout)
        z_write(io, out->data, out->len);
    else
        conn_write(io->c, out->data, out->len);
    buf_free(out);
}

static void wake(void *ud)
{
    struct io *io = ud;
    io->active_ms = uv_now(net_loop());
    io->hibernated = false; /* an IDLE update went out */
    flush(io);
}

/* ------------------------------------------------------------------ login */

static void login_answer(void *ud)
{
    struct io *io = ud;
    io->authwait = NULL;
    imap_session_resume_login(io->s, io->login_result);
    step(io);
}

/* issue 16: a failure is logged, counted for the address and answered
 * only after core/authfail's delay (a loop timer; no worker is held). */
static void login_done(void *ud, int result, const char *err)
{
    struct io *io = ud;
    (void)err;
    io->login = NULL;
    io->login_result = result;
    if (result != STORE_LOGIN_OK && result != STORE_LOGIN_TRY_AGAIN) {
        const char *user = imap_session_login_user(io->s);
        unsigned ms = authfail_record("imap", conn_peer_ip(io->c), user ? user : "");
        io->authwait = authfail_wait_start(ms, login_answer, io);
        if (io->authwait)
            return;
    }
    login_answer(io);
}

static void start_login(struct io *io)
{
    if (!imap_session_login_password(io->s)) { /* cmd_auth: cannot succeed */
        login_done(io, STORE_LOGIN_REFUSED, NULL);
        return;
    }
    io->login = store_login_async(net_loop(), conn_config(io->c), imap_session_login_user(io->s),
                                  imap_session_login_password(io->s), conn_peer_ip(io->c),
                                  login_done, io);
    if (!io->login) {
        imap_session_resume_login(io->s, STORE_LOGIN_TRY_AGAIN);
        step(io);
    }
}

/* ------------------------------------------------------------------- work */

/* Worker thread: the session's command runs; its outcome comes back as a
 * value, applied on the loop in after_work (see session.h, Threads). */
static void work_cb(uv_work_t *w)
{
    struct io *io = w->data;
    io->work_result = imap_session_work(io->s);
}

static void io_free(struct io *io);

static void after_work(uv_work_t *w, int status)
{
    struct io *io = w->data;
    (void)status;
    io->working = false;
    if (io->gone) {
        io_free(io);
        return;
    }
    imap_session_resume_work(io->s, io->work_result);
    if (io->shutdown_later) {
        io->shutdown_later = false;
        imap_session_shutdown(io->s);
    }
    step(io);
}

static void slow_work_cb(struct workpool_job *j)
{
    struct io *io = j->data;
    io->work_result = imap_session_work(io->s);
}

static void slow_done_cb(struct workpool_job *j) { after_work(&((struct io *)j->data)->work, 0); }

static void start_work(struct io *io)
{
    io->work.data = io;
    io->working = true;
    if (imap_session_work_slow(io->s)) {
        struct workpool *p = workpool_get(net_loop(), LIM_IMAP_SLOW_WORKERS);
        io->slow = (struct workpool_job){.work = slow_work_cb, .done = slow_done_cb, .data = io};
        if (p && workpool_submit(p, &io->slow) == 0)
            return;
    }
    if (uv_queue_work(net_loop(), &io->work, work_cb, after_work) < 0) {
        io->working = false;
        conn_close(io->c);
    }
}

/* ------------------------------------------------------------------- TURN */

struct turn_req {
    struct io *io; /* NULL once the connection is gone */
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_connect_t conn;
    char line[TURN_LINE_MAX];
    size_t len;
    int closing;
    bool done;
};

static void turn_closed(uv_handle_t *h)
{
    struct turn_req *t = h->data;
    if (--t->closing == 0)
        free(t);
}

static void turn_finish(struct turn_req *t, bool ok)
{
    if (t->done)
        return;
    t->done = true;
    struct io *io = t->io;
    t->closing = 2;
    uv_close((uv_handle_t *)&t->pipe, turn_closed);
    uv_close((uv_handle_t *)&t->timer, turn_closed);
    if (!io)
        return;
    io->turn = NULL;
    t->line[t->len < TURN_LINE_MAX ? t->len : TURN_LINE_MAX - 1] = '\0';
    imap_session_resume_turn(io->s, ok && t->len ? t->line : NULL);
    step(io);
}

static void turn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct turn_req *t = h->data;
    (void)hint;
    *b = uv_buf_init(t->line + t->len, (unsigned)(TURN_LINE_MAX - 1 - t->len));
}

static void turn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct turn_req *t = st->data;
    (void)b;
    if (n > 0)
        t->len += (size_t)n;
    if (n < 0 || memchr(t->line, '\n', t->len) || t->len >= TURN_LINE_MAX - 1)
        turn_finish(t, n == UV_EOF || memchr(t->line, '\n', t->len));
}

static void turn_connected(uv_connect_t *req, int status)
{
    struct turn_req *t = req->data;
    if (status < 0 || uv_read_start((uv_stream_t *)&t->pipe, turn_alloc, turn_read) < 0)
        turn_finish(t, false);
}

static void turn_timeout(uv_timer_t *tm) { turn_finish(tm->data, false); }

static void start_turn(struct io *io)
{
    struct turn_req *t = calloc(1, sizeof *t);
    if (!t) {
        imap_session_resume_turn(io->s, NULL);
        step(io);
        return;
    }
    t->io = io;
    io->turn = t;
    uv_pipe_init(net_loop(), &t->pipe, 0);
    uv_timer_init(net_loop(), &t->timer);
    t->pipe.data = t->timer.data = t->conn.data = t;
    uv_timer_start(&t->timer, turn_timeout, TURN_TIMEOUT_MS, 0);
    uv_pipe_connect(&t->conn, &t->pipe, conn_config(io->c)->turn_socket_path, turn_connected);
}

/* ----------------------------------------------------------------- driver */

/* The session's timer, but before login never past imap_prelogin_timeout
 * from the open: bytes do not extend it (issue 16). */
static unsigned timeout_ms(const struct io *io)
{
    unsigned ms = imap_session_timeout_ms(io->s);
    if (imap_session_authenticated(io->s))
        return ms;
    long secs = conn_config(io->c)->imap_prelogin_timeout;
    uint64_t deadline = io->opened_ms + (uint64_t)(secs > 0 ? secs : 1) * 1000u;
    uint64_t now = uv_now(net_loop());
    uint64_t left = deadline > now ? deadline - now : 1;
    return left < ms ? (unsigned)left : ms;
}

/* Flushes the output and starts whatever the machine asks for. */
static void step(struct io *io)
{
    flush(io);
    enum imap_action_kind a = imap_session_action(io->s);
    if (a == IMAP_ACT_NONE) {
        conn_resume(io->c);
        conn_set_timeout(io->c, timeout_ms(io));
        return;
    }
    /* Reading pauses while an action runs (the handshake itself needs
     * reading). Slow work keeps reading so that a client that hangs up is
     * seen at once and its SEARCH cancelled; what it sends meanwhile is
     * buffered up to one line, then reading pauses (io_data). */
    if (a != IMAP_ACT_STARTTLS && !(a == IMAP_ACT_WORK && imap_session_work_slow(io->s)))
        conn_pause(io->c);
    if (a == IMAP_ACT_CLOSE) {
        conn_close(io->c);
    } else if (a == IMAP_ACT_LOGIN) {
        start_login(io);
    } else if (a == IMAP_ACT_WORK) {
        if (conn_pending(io->c) > IO_DRAIN_LOW)
            io->wait_drain = true;
        else
            start_work(io);
    } else if (a == IMAP_ACT_STARTTLS) {
        conn_starttls(io->c);
    } else if (a == IMAP_ACT_TURN) {
        start_turn(io);
    } else if (a == IMAP_ACT_COMPRESS) {
        if (z_start(io) < 0) {
            conn_close(io->c);
            return;
        }
        struct buf *pend = imap_session_pending_input(io->s);
        struct buf in = *pend;
        *pend = (struct buf){0};
        imap_session_resume(io->s);
        if (in.len)
            feed(io, in.data, in.len);
        buf_free(&in);
        step(io);
    }
}

static void *io_open(struct conn *c)
{
    struct io *io = calloc(1, sizeof *io);
    if (!io)
        return NULL;
    io->c = c;
    io->s = imap_session_new(conn_config(c), conn_is_tls(c), wake, io);
    if (!io->s) {
        free(io);
        return NULL;
    }
    io->opened_ms = uv_now(net_loop());
    io_link(io);
    step(io);
    return io;
}

static void io_data(void *ud, const char *p, size_t n)
{
    struct io *io = ud;
    io->active_ms = uv_now(net_loop());
    io->hibernated = false;
    feed(io, p, n); /* buffered by the machine while an action runs */
    if (!io->working && !io->login && !io->authwait && !io->turn)
        step(io);
    else if (io->working && imap_session_pending_input(io->s)->len > LIM_IMAP_LINE)
        conn_pause(io->c); /* resumed by step() once the work is done */
}

static void io_starttls_done(void *ud)
{
    struct io *io = ud;
    imap_session_resume_starttls(io->s);
    step(io);
}

static void io_timeout(void *ud)
{
    struct io *io = ud;
    if (io->working || io->login || io->authwait || io->turn)
        return;
    imap_session_timeout(io->s);
    step(io);
}

static void io_shutdown(void *ud)
{
    struct io *io = ud;
    if (io->working) { /* the worker owns the session now */
        io->shutdown_later = true;
        return;
    }
    imap_session_shutdown(io->s); /* deferred by the machine while an action runs */
    if (!io->login && !io->authwait && !io->turn)
        step(io);
}

static void io_drained(void *ud)
{
    struct io *io = ud;
    if (io->wait_drain && !io->working) {
        io->wait_drain = false;
        start_work(io);
    }
}

static void io_free(struct io *io)
{
    io_unlink(io);
    imap_session_free(io->s);
    z_free(io);
    free(io);
}

static void io_closed(void *ud)
{
    struct io *io = ud;
    if (io->login)
        store_login_cancel(io->login);
    authfail_wait_cancel(io->authwait);
    io->authwait = NULL;
    if (io->turn)
        io->turn->io = NULL;
    io->login = NULL;
    io->turn = NULL;
    if (io->working) {
        io->gone = true; /* freed when the worker is done */
        imap_session_cancel(io->s);
        return;
    }
    io_free(io);
}

static void io_refuse(struct conn *c)
{
    conn_printf(c, "* BYE Too many connections, try again later.\r\n");
}

const struct session_ops imap_session_ops = {
    .name = "imap", .open = io_open, .data = io_data, .starttls_done = io_starttls_done,
    .timeout = io_timeout, .shutdown = io_shutdown, .drained = io_drained,
    .closed = io_closed, .refuse = io_refuse,
};
