/* outconn_tool.c: a test-only driver of core/outconn with implicit TLS (the
 * way push and ACME will use it), for tests/integration/test_smtpc.py.
 *
 *   outconn_tool HOST IP PORT verify|any CAFILE|- [ALPN]
 *
 * Connects, does the TLS handshake (SNI = HOST; with verify the chain and
 * the name are checked), sends "GET / HTTP/1.1" with Host: HOST and
 * Connection: close, reads until the peer closes. Prints "tls VERSION" after
 * the handshake, "first LINE" (the first response line), then "error KIND
 * WHY" if any, and "closed N" (callbacks of closed). Exit 0 when a response
 * line arrived. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/outconn.h"
#include "core/tls.h"

static struct outconn *oc;
static char first[512];
static size_t first_len;
static bool got_line;
static int closed;
static const char *host;

static void on_connected(void *ud)
{
    (void)ud;
    printf("tls %s\n", outconn_tls_version(oc));
    char req[512];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     host);
    outconn_write(oc, req, (size_t)n);
}

static void on_data(void *ud, const char *p, size_t n)
{
    (void)ud;
    for (size_t i = 0; i < n && !got_line; i++) {
        if (p[i] == '\n' || first_len == sizeof first - 1) {
            got_line = true;
            while (first_len && first[first_len - 1] == '\r')
                first_len--;
            first[first_len] = 0;
            printf("first %s\n", first);
        } else {
            first[first_len++] = p[i];
        }
    }
}

static void on_error(void *ud, enum outconn_err kind, const char *why)
{
    (void)ud;
    static const char *const names[] = {"connect", "tls", "io", "timeout", "eof"};
    printf("error %s %s\n", names[kind], why);
}

static void on_closed(void *ud)
{
    (void)ud;
    closed++;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: outconn_tool HOST IP PORT verify|any CAFILE|- [ALPN]\n");
        return 2;
    }
    host = argv[1];
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    uint16_t port = htons((uint16_t)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = port;
    } else if (inet_pton(AF_INET6, argv[2], &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = port;
    } else {
        return 2;
    }
    char err[256];
    struct tls_client *tc;
    if (tls_client_new(&tc, strcmp(argv[5], "-") ? argv[5] : NULL, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    const char *alpn[] = {argc > 6 ? argv[6] : "http/1.1", NULL};
    struct outconn_opts o = {
        .addr = (const struct sockaddr *)&ss, .connect_timeout_ms = 5000,
        .io_timeout_ms = 10000, .tls = tc, .host = host,
        .verify = strcmp(argv[4], "verify") == 0, .implicit_tls = true, .alpn = alpn,
    };
    static const struct outconn_ops ops = {
        .connected = on_connected, .data = on_data, .error = on_error, .closed = on_closed,
    };
    uv_loop_t *loop = uv_default_loop();
    if (outconn_open(&oc, loop, &o, &ops, NULL) < 0) {
        printf("open failed\n");
        return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    printf("closed %d open %u\n", closed, outconn_count());
    tls_client_free(tc);
    uv_loop_close(loop);
    return got_line ? 0 : 1;
}
