/* bench_store.c: Maildir delivery throughput and latency with fsync on.
 *
 *   bench_store [DIR] [N] [ACCOUNTS]     (defaults: /var/tmp 2000 20)
 *
 * Delivers N messages of 4 KiB into ACCOUNTS fresh mailboxes under a temp
 * directory in DIR (pick the file system you care about) and prints
 * deliveries/s and p50/p99 latency for:
 *   sync-1     store_deliver from one thread
 *   sync-T     store_deliver from T threads at once (no batching)
 *   async-T/bB store_deliver_async with T workers and 16 closed-loop
 *              clients; B = jobs per batch (1: no batching, 64: queued jobs
 *              share new/ fsyncs); latency = submit -> completion callback
 * and one message to 10 recipients (hard links), then the login costs:
 *   login-create   first login (argon2id hash, account created)
 *   login-verify   a login whose credentials are not cached (argon2id verify)
 *   login-cached   a repeated login (BLAKE2b-keyed cache, password file stat) */
#include "core/config.h"
#include "core/log.h"
#include "store/accounts.h"
#include "store/maildir.h"

#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MSG_SIZE 4096
#define THREADS 4

static char msg[MSG_SIZE];
static char root[512];
static char (*accounts)[600];
static int naccounts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, double *lat, int n, double secs)
{
    qsort(lat, (size_t)n, sizeof(*lat), cmp_d);
    printf("%-10s %6d deliveries  %8.0f /s  p50 %7.2f ms  p99 %7.2f ms\n", name, n, n / secs,
           lat[n / 2] * 1e3, lat[(int)(n * 0.99)] * 1e3);
}

struct thread_arg {
    int from, to;
    double *lat;
};

static void *deliver_range(void *p)
{
    struct thread_arg *a = p;
    struct store_opts o = {0};
    for (int i = a->from; i < a->to; i++) {
        struct store_rcpt r = {.dir = accounts[i % naccounts]};
        double t0 = now_s();
        if (store_deliver(msg, sizeof(msg), &r, 1, &o) != 1)
            fprintf(stderr, "delivery failed: %d\n", r.err);
        a->lat[i] = now_s() - t0;
    }
    return NULL;
}

static void run_threads(const char *name, int n, int nthreads, double *lat)
{
    pthread_t th[THREADS];
    struct thread_arg args[THREADS];
    double t0 = now_s();
    for (int t = 0; t < nthreads; t++) {
        args[t] = (struct thread_arg){n * t / nthreads, n * (t + 1) / nthreads, lat};
        pthread_create(&th[t], NULL, deliver_range, &args[t]);
    }
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    report(name, lat, n, now_s() - t0);
}

/* Closed loop: CLIENTS sessions, each submits its next delivery when the
 * previous one completed (like SMTP sessions waiting for their 250). */
#define CLIENTS 16

struct client {
    struct store_async *a;
    struct store_rcpt r;
    double t0;
    int *next, n;
    double *lat;  /* all latencies */
    double *slot; /* this delivery's */
};

static void submit(struct client *c);

static void on_done(void *ud, struct store_rcpt *r, size_t n)
{
    struct client *c = ud;
    if (r->status != STORE_OK)
        fprintf(stderr, "delivery failed: %d\n", r->err);
    (void)n;
    *c->slot = now_s() - c->t0;
    submit(c);
}

static void submit(struct client *c)
{
    if (*c->next >= c->n)
        return;
    int i = (*c->next)++;
    c->r = (struct store_rcpt){.dir = accounts[i % naccounts]};
    c->slot = &c->lat[i];
    c->t0 = now_s();
    if (store_deliver_async(c->a, msg, sizeof(msg), &c->r, 1, on_done, c) < 0)
        fprintf(stderr, "queue full\n");
}

static void run_async(const char *name, int n, double *lat, unsigned max_batch)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct store_opts o = {0};
    struct store_async *a = store_async_new(&loop, &o, THREADS);
    store_async_set_max_batch(a, max_batch);
    struct client cl[CLIENTS];
    int next = 0;
    double t0 = now_s();
    for (int k = 0; k < CLIENTS; k++) {
        cl[k] = (struct client){.a = a, .next = &next, .n = n, .lat = lat};
        submit(&cl[k]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    report(name, lat, n, now_s() - t0);
    store_async_free(a);
    uv_loop_close(&loop);
}

static void run_multi(int n, double *lat)
{
    struct store_rcpt r[10];
    struct store_opts o = {0};
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 10; k++)
            r[k] = (struct store_rcpt){.dir = accounts[k % naccounts]};
        double s = now_s();
        store_deliver(msg, sizeof(msg), r, 10, &o);
        lat[i] = now_s() - s;
    }
    report("10-rcpt", lat, n, now_s() - t0);
}

/* Runs one login n times; lat[] in seconds. */
static void time_logins(const char *name, struct config *cfg, int n, bool clear_cache,
                        bool fresh_accounts, double *lat)
{
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        char user[64];
        snprintf(user, sizeof user, "%s%04d@example.org", fresh_accounts ? "new" : "bench",
                 fresh_accounts ? i : 0);
        if (clear_cache)
            store_login_cache_clear();
        struct store_login_outcome out;
        double s = now_s();
        if (store_login_sync(cfg, user, "benchpassword1", &out) < 0 || out.result != STORE_LOGIN_OK)
            fprintf(stderr, "%s: login failed: %s\n", name, out.reason);
        lat[i] = now_s() - s;
    }
    double secs = now_s() - t0;
    qsort(lat, (size_t)n, sizeof(*lat), cmp_d);
    printf("%-12s %6d logins      %8.0f /s  p50 %9.1f us  p99 %9.1f us\n", name, n, n / secs,
           lat[n / 2] * 1e6, lat[(int)(n * 0.99)] * 1e6);
}

static void run_logins(double *lat)
{
    log_set_level(LOGL_ERROR); /* "Created address" once per account */
    struct config cfg = {0};
    char mdir[600];
    snprintf(mdir, sizeof mdir, "%s/logins", root);
    mkdir(mdir, 0700);
    cfg.mail_domain = "example.org";
    cfg.mailboxes_dir = mdir;
    cfg.nocreate_file = "/nonexistent/nocreate";
    cfg.username_min_length = 7;
    cfg.username_max_length = 9;
    cfg.password_min_length = 9;
    cfg.max_load_1m = 1000;
    time_logins("login-create", &cfg, 20, false, true, lat);
    time_logins("login-verify", &cfg, 20, true, false, lat);
    time_logins("login-cached", &cfg, 20000, false, false, lat);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/var/tmp";
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    naccounts = argc > 3 ? atoi(argv[3]) : 20;
    if (n < 10 || naccounts < 1)
        return 2;
    snprintf(root, sizeof(root), "%s/bench_store.XXXXXX", dir);
    if (!mkdtemp(root)) {
        perror(root);
        return 1;
    }
    accounts = calloc((size_t)naccounts, sizeof(*accounts));
    for (int i = 0; i < naccounts; i++) {
        snprintf(accounts[i], sizeof(accounts[i]), "%s/user%04d@example.org", root, i);
        mkdir(accounts[i], 0700); /* delivery creates cur/ new/ tmp/ */
    }
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (char)(i % 64 == 63 ? '\n' : 'A' + i % 26);
    double *lat = calloc((size_t)n, sizeof(*lat));
    printf("store benchmark in %s: %d messages of %d bytes, %d accounts, fsync on\n", root, n,
           MSG_SIZE, naccounts);
    run_threads("sync-1", n, 1, lat);
    run_threads("sync-4", n, THREADS, lat);
    run_async("async-4/b1", n, lat, 1);
    run_async("async-4/b64", n, lat, STORE_ASYNC_MAX_BATCH);
    run_multi(n / 10, lat);
    if (n < 20000) {
        free(lat);
        lat = calloc(20000, sizeof(*lat));
    }
    run_logins(lat);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed: %s\n", root);
    free(lat);
    free(accounts);
    return 0;
}
