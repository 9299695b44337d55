/* smtpc_tool.c: a test-only driver of the outbound SMTP client (smtp/smtpc)
 * on a real libuv loop, for tests/integration/test_smtpc.py.
 *
 *   smtpc_tool HOST IP PORT TLS CAFILE FROM RCPTS MSGFILE [HELO] [IO_MS] [STOP_MS] [REPEAT]
 *     TLS      verify | any | plain   (SMTPC_TLS_VERIFY, _ANY_CERT, _PLAIN_OK);
 *              a comma-separated list is used in turn by the REPEAT deliveries
 *     CAFILE   extra trust anchors, or "-"
 *     FROM     envelope sender ("-" = null sender)
 *     RCPTS    comma-separated recipients
 *     HELO     default "relay.test"; IO_MS the I/O timeout (default 10000)
 *     STOP_MS  call smtpc_client_stop after this many ms (default, 0: never)
 *     REPEAT   deliver the job this many times, one after the other (default 1)
 *
 * Prints "status NAME WHY", then "session CODE ENH TEXT" when there is a
 * session reply, "tls yes|no resumed yes|no", "reused yes" when the delivery
 * ran on an earlier delivery's connection, then "rcpt ADDR CODE ENH
 * TEXT" per recipient (status ok only) - per delivery - then "callbacks N" and "closed" when the loop ended with no handle
 * left. After the last delivery the client is stopped (an idle connection
 * says QUIT). Exit 0 when the transaction ran, 1 when not, 2 on usage errors. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "smtp/smtpc.h"

static int callbacks, exit_code = 1;
static const char *const *g_rcpts;
static size_t g_n;
static struct smtpc_client *g_client;
static uv_timer_t stop_timer;
static struct smtpc_job g_job;
static int repeat = 1;
static enum smtpc_tls modes[8];
static int n_modes;
static void on_result(void *ud, const struct smtpc_result *r);

static void on_result(void *ud, const struct smtpc_result *r)
{
    (void)ud;
    callbacks++;
    printf("status %s %s\n", smtpc_status_name(r->status), r->why);
    if (r->session.code)
        printf("session %d %s %s\n", r->session.code, r->session.enh, r->session.text);
    printf("tls %s resumed %s\n", r->tls ? "yes" : "no", r->tls_resumed ? "yes" : "no");
    if (r->reused)
        printf("reused yes\n");
    if (r->status == 0) {
        for (size_t i = 0; i < g_n; i++)
            printf("rcpt %s %d %s %s\n", g_rcpts[i], r->rcpt[i].code, r->rcpt[i].enh,
                   r->rcpt[i].text);
        exit_code = 0;
    } else {
        exit_code = 1;
    }
    fflush(stdout);
    if (callbacks < repeat) {
        g_job.tls = modes[callbacks % n_modes];
        if (smtpc_deliver(g_client, &g_job, on_result, NULL) < 0) {
            printf("deliver refused the job\n");
            exit_code = 1;
        } else {
            return;
        }
    }
    smtpc_client_stop(g_client);
    uv_timer_stop(&stop_timer);
    uv_close((uv_handle_t *)&stop_timer, NULL);
}

static void on_stop(uv_timer_t *t)
{
    smtpc_client_stop(g_client);
    (void)t;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    size_t r;
    while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *q = realloc(p, cap *= 2);
            if (!q) {
                free(p);
                p = NULL;
            }
            p = q;
        }
    }
    fclose(f);
    *len = n;
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 9) {
        fprintf(stderr, "usage: smtpc_tool HOST IP PORT verify|any|plain CAFILE|- FROM|- RCPTS "
                        "MSGFILE [HELO] [IO_MS] [STOP_MS]\n");
        return 2;
    }
    struct smtpc_job job = {0};
    job.host = argv[1];
    int port = atoi(argv[3]);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&job.addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&job.addr;
    if (inet_pton(AF_INET, argv[2], &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, argv[2], &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
    } else {
        fprintf(stderr, "bad ip %s\n", argv[2]);
        return 2;
    }
    for (char *save = NULL, *m = strtok_r(argv[4], ",", &save); m && n_modes < 8;
         m = strtok_r(NULL, ",", &save)) {
        if (strcmp(m, "verify") == 0)
            modes[n_modes++] = SMTPC_TLS_VERIFY;
        else if (strcmp(m, "any") == 0)
            modes[n_modes++] = SMTPC_TLS_ANY_CERT;
        else if (strcmp(m, "plain") == 0)
            modes[n_modes++] = SMTPC_TLS_PLAIN_OK;
        else
            return 2;
    }
    if (n_modes == 0)
        return 2;
    job.tls = modes[0];
    const char *ca = strcmp(argv[5], "-") == 0 ? NULL : argv[5];
    job.mail_from = strcmp(argv[6], "-") == 0 ? "" : argv[6];
    static const char *rcpts[64];
    size_t n = 0;
    for (char *save = NULL, *r = strtok_r(argv[7], ",", &save); r && n < 64;
         r = strtok_r(NULL, ",", &save))
        rcpts[n++] = r;
    job.rcpts = rcpts;
    job.n_rcpts = n;
    g_rcpts = rcpts;
    g_n = n;
    char *msg = read_all(argv[8], &job.len);
    if (!msg) {
        fprintf(stderr, "cannot read %s\n", argv[8]);
        return 2;
    }
    job.msg = msg;
    job.helo = argc > 9 ? argv[9] : "relay.test";
    job.io_timeout_ms = argc > 10 ? (unsigned)atoi(argv[10]) : 10000;
    job.connect_timeout_ms = 5000;
    uv_loop_t *loop = uv_default_loop();
    char err[256];
    if (smtpc_client_new(&g_client, loop, ca, err, sizeof err) < 0) {
        fprintf(stderr, "client: %s\n", err);
        return 2;
    }
    uv_timer_init(loop, &stop_timer);
    if (argc > 11 && atoi(argv[11]) > 0)
        uv_timer_start(&stop_timer, on_stop, (uint64_t)atoi(argv[11]), 0);
    if (argc > 12)
        repeat = atoi(argv[12]);
    g_job = job;
    if (smtpc_deliver(g_client, &job, on_result, NULL) < 0) {
        printf("deliver refused the job\n");
        return 1;
    }
    if (callbacks) { /* the cb must never run inside smtpc_deliver */
        printf("callback ran inside smtpc_deliver\n");
        return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    smtpc_client_free(g_client);
    uv_run(loop, UV_RUN_DEFAULT);
    printf("callbacks %d\n", callbacks);
    if (uv_loop_close(loop) == 0)
        printf("closed\n");
    free(msg);
    return exit_code;
}
