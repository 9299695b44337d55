/* test_curlm.c: core/curlm against a small HTTP/1.1 server on the same
 * loop: a POST with headers and body arrives as sent and its answer comes
 * back; the host name is pinned to the given address (the name itself does
 * not resolve); two requests share one connection; a refused connection
 * and a request timeout are errors with no status; curlm_stop ends a
 * request in flight with CURLM_ERR_CANCELLED and the loop drains. */
#include "check.h"

#include "core/buf.h"
#include "core/curlm.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct srv {
    uv_tcp_t tcp;
    int port;
    bool silent;        /* read, never answer */
    int accepted;
    int requests;
    struct buf last;    /* the last complete request */
};

struct conn {
    uv_tcp_t tcp;
    struct srv *s;
    struct buf in;
};

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    buf_free(&c->in);
    free(c);
}

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(want);
    b->len = b->base ? want : 0;
}

static void written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

/* One complete request in c->in? Then answer it. */
static void maybe_answer(struct conn *c)
{
    const char *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
    if (!end)
        return;
    size_t head = (size_t)(end - c->in.data) + 4;
    const char *cl = memmem(c->in.data, head, "Content-Length: ", 16);
    size_t blen = cl ? strtoul(cl + 16, NULL, 10) : 0;
    if (c->in.len < head + blen)
        return;
    struct srv *s = c->s;
    s->requests++;
    buf_reset(&s->last);
    buf_append(&s->last, c->in.data, head + blen);
    buf_consume(&c->in, head + blen);
    if (s->silent)
        return;
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n250 OK";
    uv_write_t *w = malloc(sizeof *w);
    uv_buf_t b = uv_buf_init((char *)answer, sizeof answer - 1);
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, written);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = st->data;
    if (n > 0) {
        buf_append(&c->in, b->base, (size_t)n);
        maybe_answer(c);
    } else if (n < 0) {
        uv_close((uv_handle_t *)st, conn_closed);
    }
    free(b->base);
}

static void on_conn(uv_stream_t *l, int status)
{
    struct srv *s = l->data;
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof *c);
    c->s = s;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) == 0) {
        s->accepted++;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    } else {
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
    }
}

static void srv_start(uv_loop_t *loop, struct srv *s)
{
    memset(s, 0, sizeof *s);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    uv_tcp_bind(&s->tcp, (const struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&s->tcp, 16, on_conn);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len);
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Closes what is left: the listener (data = the srv) and accepted
 * connections (data = a conn, freed in its close callback). */
static void close_walk(uv_handle_t *h, void *arg)
{
    const struct srv *s = arg;
    if (uv_is_closing(h))
        return;
    uv_close(h, h == (const uv_handle_t *)&s->tcp ? NULL : conn_closed);
}

struct got {
    int calls;
    long status;
    int code;
    char body[64];
};

static void on_done(void *ud, const struct curlm_result *r)
{
    struct got *g = ud;
    g->calls++;
    g->status = r->status;
    g->code = r->curl_code;
    size_t n = r->body_len < sizeof g->body - 1 ? r->body_len : sizeof g->body - 1;
    memcpy(g->body, r->body, n);
    g->body[n] = '\0';
}

static void run_until(uv_loop_t *loop, const int *flag)
{
    for (int i = 0; i < 200000 && !*flag; i++)
        uv_run(loop, UV_RUN_ONCE);
}

static struct sockaddr_storage loopback(void)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    uv_ip4_addr("127.0.0.1", 0, (struct sockaddr_in *)&ss);
    return ss;
}

TEST(post_pinned_and_reused)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&loop, &s);
    const char *why = NULL;
    struct curlm *m = curlm_start(&loop, &why);
    CHECK(m != NULL);
    char url[128];
    snprintf(url, sizeof url, "http://peer.invalid:%d/mxdeliv", s.port);
    struct sockaddr_storage pin = loopback();
    const char *hdr[] = {"X-MAIL-FROM: a@relay1.test", "X-MAIL-TO: b@peer.invalid"};
    struct curlm_post p = {.url = url, .headers = hdr, .n_headers = 2, .body = "hello\r\n",
                           .body_len = 7, .pin_addr = &pin, .timeout_ms = 10000};
    struct got g = {0};
    CHECK(curlm_post(m, &p, on_done, &g) != NULL);
    CHECK_INT_EQ(g.calls, 0); /* never inside the call */
    CHECK_INT_EQ(curlm_pending(m), 1);
    run_until(&loop, &g.calls);
    CHECK_INT_EQ(g.calls, 1);
    CHECK_INT_EQ(g.code, 0);
    CHECK_INT_EQ(g.status, 200);
    CHECK_STR_EQ(g.body, "250 OK");
    CHECK(buf_append(&s.last, "", 1) == 0);
    CHECK(strncmp(s.last.data, "POST /mxdeliv HTTP/1.1\r\n", 24) == 0);
    CHECK(strstr(s.last.data, "\r\nX-MAIL-TO: b@peer.invalid\r\n") != NULL);
    CHECK(strstr(s.last.data, "\r\nX-MAIL-FROM: a@relay1.test\r\n") != NULL);
    CHECK(strstr(s.last.data, "\r\nHost: peer.invalid:") != NULL);
    CHECK(strstr(s.last.data, "Expect:") == NULL);
    CHECK(strstr(s.last.data, "\r\n\r\nhello\r\n") != NULL);
    /* the second request goes over the same connection */
    struct got g2 = {0};
    CHECK(curlm_post(m, &p, on_done, &g2) != NULL);
    run_until(&loop, &g2.calls);
    CHECK_INT_EQ(g2.status, 200);
    CHECK_INT_EQ(s.requests, 2);
    CHECK_INT_EQ(s.accepted, 1);
    CHECK_INT_EQ(curlm_pending(m), 0);
    curlm_stop(m);
    uv_walk(&loop, close_walk, &s);
    uv_run(&loop, UV_RUN_DEFAULT);
    buf_free(&s.last);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

TEST(errors_and_stop)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    srv_start(&loop, &s);
    s.silent = true;
    const char *why = NULL;
    struct curlm *m = curlm_start(&loop, &why);
    char url[128];
    /* refused: a port nobody listens on (ours, closed below, is not reused at once) */
    struct srv gone;
    srv_start(&loop, &gone);
    int gone_port = gone.port;
    uv_close((uv_handle_t *)&gone.tcp, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", gone_port);
    struct curlm_post p = {.url = url, .body = "x", .body_len = 1, .timeout_ms = 5000};
    struct got g = {0};
    CHECK(curlm_post(m, &p, on_done, &g) != NULL);
    run_until(&loop, &g.calls);
    CHECK_INT_EQ(g.status, 0);
    CHECK_INT_EQ(g.code, 7); /* CURLE_COULDNT_CONNECT */
    /* a peer that never answers: the request's deadline */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", s.port);
    p.timeout_ms = 300;
    struct got t = {0};
    CHECK(curlm_post(m, &p, on_done, &t) != NULL);
    run_until(&loop, &t.calls);
    CHECK_INT_EQ(t.code, 28); /* CURLE_OPERATION_TIMEDOUT */
    CHECK_INT_EQ(t.status, 0);
    /* stop with a request in flight */
    p.timeout_ms = 60000;
    struct got c = {0};
    int before = s.requests;
    CHECK(curlm_post(m, &p, on_done, &c) != NULL);
    for (int i = 0; i < 100000 && s.requests == before; i++)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT_EQ(s.requests, before + 1);
    CHECK_INT_EQ(c.calls, 0);
    curlm_stop(m);
    CHECK_INT_EQ(c.calls, 1);
    CHECK_INT_EQ(c.code, CURLM_ERR_CANCELLED);
    uv_walk(&loop, close_walk, &s);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns: nothing of curl is left open */
    buf_free(&s.last);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
    RUN(post_pinned_and_reused);
    RUN(errors_and_stop);
    return check_report();
}
