/* dnstool.c: a test-only driver of core/dns (and of the DKIM key lookup
 * glue) on a real libuv loop, for tests/integration/test_dns_resolver.py.
 *
 *   dnstool [--server S]... [--timeout MS] [--tries N] OP...
 *     txt NAME | mx NAME | addr NAME     start a lookup (all run at once)
 *     cancel NAME                         a TXT lookup cancelled at once
 *     stop NAME                           a TXT lookup, then dns_stop at once
 *     dkim MSGFILE FROMDOMAIN             verify a message with keys from
 *                                         DNS, twice (the second from cache)
 * One output line per OP, in order, then "closed" when the loop closed
 * with no handle left (exit 3 otherwise). */
#include "core/dns.h"
#include "dkim/dkim.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPS 32

struct op {
    const char *kind, *name, *arg2;
    struct buf out;
    bool done;
    struct dkim_verifier *v;
    char *msg;
    size_t msg_len;
    int round;
};

static struct dns *g_dns;
static struct dkim_resolver *g_res;
static struct op ops[MAX_OPS];
static size_t nops;

static const char *status_name(enum dns_status s)
{
    static const char *const n[] = {"OK", "NXDOMAIN", "NODATA", "TEMPFAIL", "CANCELLED", "BADNAME"};
    return n[s];
}

static void on_txt(void *arg, const struct dns_txt_result *r)
{
    struct op *o = arg;
    buf_printf(&o->out, "txt %s %s %zu", o->name, status_name(r->status), r->n);
    for (size_t i = 0; i < r->n; i++) {
        buf_append_str(&o->out, i ? "|" : " ");
        buf_append(&o->out, r->txt[i], r->len[i]);
    }
    o->done = true;
}

static void on_mx(void *arg, const struct dns_mx_result *r)
{
    struct op *o = arg;
    buf_printf(&o->out, "mx %s %s %zu", o->name, status_name(r->status), r->n);
    for (size_t i = 0; i < r->n; i++)
        buf_printf(&o->out, " %u:%s", r->mx[i].pref, r->mx[i].host);
    buf_printf(&o->out, " null=%d", r->null_mx ? 1 : 0);
    o->done = true;
}

static void on_addr(void *arg, const struct dns_addr_result *r)
{
    struct op *o = arg;
    buf_printf(&o->out, "addr %s %s %zu", o->name, status_name(r->status), r->n);
    for (size_t i = 0; i < r->n; i++) {
        char s[INET6_ADDRSTRLEN];
        const struct sockaddr_storage *a = &r->addr[i];
        if (a->ss_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, s, sizeof s);
        else
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, s, sizeof s);
        buf_printf(&o->out, " %s", s);
    }
    o->done = true;
}

static void dkim_round(struct op *o);

static void dkim_report(struct op *o, bool from_cache)
{
    static const char *const st[] = {"pass", "fail", "temperror", "permerror"};
    dkim_verifier_run(o->v, 1800000000);
    dkim_resolver_note_results(g_res, o->v);
    struct dkim_verdict vd = dkim_verifier_verdict(o->v, o->arg2);
    buf_printf(&o->out, "%sdkim%s %s", o->round ? " | " : "", from_cache ? "(cached)" : "",
               vd.smtp_reply ? vd.smtp_reply : "pass");
    for (size_t i = 0; i < dkim_verifier_nresults(o->v); i++)
        buf_printf(&o->out, " [%s %s]", st[dkim_verifier_result(o->v, i)->status],
                   dkim_verifier_result(o->v, i)->reason);
    dkim_verifier_free(o->v);
    o->v = NULL;
    if (++o->round < 2)
        dkim_round(o);
    else
        o->done = true;
}

static void dkim_fetched(void *arg)
{
    dkim_report(arg, false);
}

static void dkim_round(struct op *o)
{
    o->v = dkim_verifier_new();
    dkim_verifier_feed(o->v, o->msg, o->msg_len);
    dkim_verifier_finish(o->v);
    if (!dkim_resolver_fetch(g_res, o->v, o->arg2, 1800000000, dkim_fetched, o))
        dkim_report(o, true);
}

static int start_op(struct op *o)
{
    if (strcmp(o->kind, "txt") == 0)
        dns_txt(g_dns, o->name, on_txt, o);
    else if (strcmp(o->kind, "mx") == 0)
        dns_mx(g_dns, o->name, on_mx, o);
    else if (strcmp(o->kind, "addr") == 0)
        dns_addr(g_dns, o->name, on_addr, o);
    else if (strcmp(o->kind, "cancel") == 0) {
        struct dns_req *r = dns_txt(g_dns, o->name, on_txt, o);
        dns_cancel(r);
        buf_printf(&o->out, "cancel %s %s", o->name, r ? "pending-cancelled" : "answered-at-once");
        o->done = true;
    } else if (strcmp(o->kind, "stop") == 0) {
        dns_txt(g_dns, o->name, on_txt, o);
        dns_stop(g_dns);
    } else if (strcmp(o->kind, "dkim") == 0) {
        FILE *f = fopen(o->name, "rb");
        if (!f)
            return -1;
        struct buf b = {0};
        char tmp[4096];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
            buf_append(&b, tmp, n);
        fclose(f);
        o->msg_len = b.len;
        o->msg = b.data;
        dkim_round(o);
    } else {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *servers[8];
    struct dns_options opt = {.servers = servers};
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc)
            return 2;
        if (strcmp(argv[i], "--server") == 0 && opt.n_servers < 8)
            servers[opt.n_servers++] = argv[i + 1];
        else if (strcmp(argv[i], "--timeout") == 0)
            opt.timeout_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--tries") == 0)
            opt.tries = atoi(argv[i + 1]);
        else
            return 2;
    }
    for (; i + 1 < argc && nops < MAX_OPS; i += 2) {
        ops[nops].kind = argv[i];
        ops[nops].name = argv[i + 1];
        if (strcmp(argv[i], "dkim") == 0) {
            if (i + 2 >= argc)
                return 2;
            ops[nops].arg2 = argv[i + 2];
            i++;
        }
        nops++;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *why = NULL;
    g_dns = dns_start(&loop, &opt, &why);
    if (!g_dns) {
        printf("start failed: %s\n", why);
        uv_loop_close(&loop);
        return 1;
    }
    g_res = dkim_resolver_new(g_dns, DKIM_CACHE_ENTRIES);
    bool stopped = false;
    for (size_t k = 0; k < nops; k++) {
        if (start_op(&ops[k]) < 0)
            return 2;
        stopped |= strcmp(ops[k].kind, "stop") == 0;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!stopped)
        dns_stop(g_dns);
    uv_run(&loop, UV_RUN_DEFAULT);
    dkim_resolver_free(g_res);
    for (size_t k = 0; k < nops; k++) {
        printf("%s%s\n", ops[k].done ? "" : "NOT DONE ", ops[k].out.data ? ops[k].out.data : "");
        buf_free(&ops[k].out);
        free(ops[k].msg);
    }
    int rc = uv_loop_close(&loop);
    printf("%s\n", rc == 0 ? "closed" : "busy");
    return rc == 0 ? 0 : 3;
}
