/* dnszone.c: the relay's DNS zone (federation facts §7) and the `dns`
 * command. The formatter is pure; the command reads the DKIM key and asks
 * DNS (dns_servers when set) for the domain's current addresses. */
#include "http/dnszone.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/dns.h"
#include "core/dns_rr.h"
#include "dkim/dkim.h"

#define TXT_CHUNK 255

static int rr(struct buf *o, const char *prefix, const char *d, const char *type,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int rr(struct buf *o, const char *prefix, const char *d, const char *type,
              const char *fmt, ...)
{
    int rc = buf_printf(o, "%s%s%s. %d IN %s ", prefix, *prefix ? "." : "", d, DNSZONE_TTL,
                        type);
    va_list ap;
    va_start(ap, fmt);
    rc |= buf_vprintf(o, fmt, ap);
    va_end(ap);
    rc |= buf_append_str(o, "\n");
    return rc;
}

/* A TXT value as quoted strings of at most 255 bytes ('"' and '\' escaped,
 * which does not count against the limit: the limit is on the value). */
static int txt(struct buf *o, const char *prefix, const char *d, const char *value)
{
    int rc = buf_printf(o, "%s%s%s. %d IN TXT", prefix, *prefix ? "." : "", d, DNSZONE_TTL);
    size_t n = strlen(value);
    for (size_t i = 0; i < n || i == 0; i += TXT_CHUNK) {
        rc |= buf_append_str(o, " \"");
        for (size_t k = i; k < n && k < i + TXT_CHUNK; k++) {
            if (value[k] == '"' || value[k] == '\\')
                rc |= buf_append(o, "\\", 1);
            rc |= buf_append(o, &value[k], 1);
        }
        rc |= buf_append_str(o, "\"");
        if (n == 0)
            break;
    }
    rc |= buf_append_str(o, "\n");
    return rc;
}

/* The zone as a list: what dnszone_format prints and `dns --check` asks. */
enum zhow { Z_EXACT, Z_PREFIX, Z_DKIM_P, Z_EXISTING };
struct zrec {
    const char *prefix;   /* "" = the domain itself */
    int type;             /* DNS_T_*, or 1 (A) / 28 (AAAA) */
    char value[1024];
    bool required;
    enum zhow how;        /* how --check compares */
};
#define ZONE_MAX 40

static size_t zone_records(const struct dnszone_in *in, struct zrec *z)
{
    const struct config *c = in->cfg;
    const char *d = c->mail_domain;
    bool acme = c->tls_mode == TLS_MODE_ACME;
    size_t n = 0;
#define ADD(pfx, t, req, h, ...)                                                   \
    do {                                                                           \
        z[n] = (struct zrec){.prefix = (pfx), .type = (t), .required = (req), .how = (h)}; \
        snprintf(z[n].value, sizeof z[n].value, __VA_ARGS__);                      \
        n++;                                                                       \
    } while (0)
    for (size_t i = 0; i < in->n_addrs && n < 16; i++)
        ADD("", strchr(in->addrs[i], ':') ? 28 : 1, true, Z_EXISTING, "%s", in->addrs[i]);
    ADD("", DNS_T_MX, true, Z_EXACT, "10 %s.", d);
    if (acme) {
        char id[32];
        time_t t = (time_t)in->now;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(id, sizeof id, "%Y%m%d%H%M", &tm);
        ADD("_mta-sts", DNS_T_TXT, true, Z_PREFIX, "v=STSv1; id=%s", id);
        ADD("mta-sts", DNS_T_CNAME, true, Z_EXACT, "%s.", d);
    }
    ADD("www", DNS_T_CNAME, true, Z_EXACT, "%s.", d);
    if (in->dkim_record)
        ADD("opendkim._domainkey", DNS_T_TXT, true, Z_DKIM_P, "%s", in->dkim_record);
    ADD("", DNS_T_TXT, false, Z_PREFIX, "v=spf1 a ~all");
    ADD("_dmarc", DNS_T_TXT, false, Z_PREFIX, "v=DMARC1;p=reject;adkim=s;aspf=s");
    if (acme)
        ADD("", DNS_T_CAA, false, Z_PREFIX, "0 issue \"letsencrypt.org\"");
    ADD("_adsp._domainkey", DNS_T_TXT, false, Z_EXACT, "dkim=discardable");
    ADD("_submission._tcp", DNS_T_SRV, false, Z_EXACT, "0 1 %d %s.", c->submission_port, d);
    ADD("_submissions._tcp", DNS_T_SRV, false, Z_EXACT, "0 1 %d %s.", c->submissions_port, d);
    ADD("_imap._tcp", DNS_T_SRV, false, Z_EXACT, "0 1 %d %s.", c->imap_port, d);
    ADD("_imaps._tcp", DNS_T_SRV, false, Z_EXACT, "0 1 %d %s.", c->imaps_port, d);
#undef ADD
    return n;
}

static const char *type_name(int t)
{
    switch (t) {
    case 1: return "A";
    case 28: return "AAAA";
    case DNS_T_NS: return "NS";
    case DNS_T_CNAME: return "CNAME";
    case DNS_T_MX: return "MX";
    case DNS_T_TXT: return "TXT";
    case DNS_T_SRV: return "SRV";
    case DNS_T_CAA: return "CAA";
    default: return "?";
    }
}

int dnszone_format(const struct dnszone_in *in, struct buf *out)
{
    const char *d = in->cfg->mail_domain;
    struct zrec z[ZONE_MAX];
    size_t n = zone_records(in, z);
    int rc = buf_printf(out, "; DNS zone for %s (chatmaild-server dns); TTL %d\n", d,
                        DNSZONE_TTL);
    rc |= buf_append_str(out, "; required\n");
    if (in->n_addrs == 0 && in->addr_error)
        rc |= buf_printf(out, "; %s A/AAAA: the lookup failed (%s): add the server's addresses\n",
                         d, in->addr_error);
    else if (in->n_addrs == 0)
        rc |= buf_printf(out, "; %s has no A or AAAA record yet: add the server's addresses\n", d);
    bool recommended = false;
    for (size_t i = 0; i < n; i++) {
        if (!z[i].required && !recommended) {
            rc |= buf_append_str(out, "; recommended\n");
            recommended = true;
        }
        if (z[i].type == DNS_T_TXT)
            rc |= txt(out, z[i].prefix, d, z[i].value);
        else
            rc |= rr(out, z[i].prefix, d, type_name(z[i].type), "%s", z[i].value);
    }
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------ --check */

/* The p= tag of a DKIM key record, whitespace removed. */
static void dkim_p(const char *rec, char *out, size_t cap)
{
    size_t k = 0;
    const char *p = rec;
    while ((p = strstr(p, "p=")) && p != rec && p[-1] != ';' && p[-1] != ' ' && p[-1] != '\t')
        p += 2;
    if (p)
        for (p += 2; *p && *p != ';' && k + 1 < cap; p++)
            if (*p != ' ' && *p != '\t')
                out[k++] = *p;
    out[k] = '\0';
}

static bool matches(const struct zrec *z, const char *got)
{
    switch (z->how) {
    case Z_EXACT: return strcasecmp(got, z->value) == 0;
    case Z_PREFIX: {
        /* "v=STSv1; id=..." : the part before the first ';' or ' id=' decides */
        size_t n = strcspn(z->value, ";");
        if (z->type == DNS_T_CAA)
            n = strlen(z->value) - 1; /* without the closing quote */
        return strncasecmp(got, z->value, n) == 0;
    }
    case Z_DKIM_P: {
        char a[1024], b[1024];
        dkim_p(z->value, a, sizeof a);
        dkim_p(got, b, sizeof b);
        return a[0] && strcmp(a, b) == 0;
    }
    default: return true;
    }
}

struct zcheck {
    const struct zrec *z;
    char name[300];
    enum dns_status st;
    const char *why;
    bool ok;
    char got[256];
    size_t *left;
};

static void on_rr(void *arg, const struct dns_rr_result *r)
{
    struct zcheck *c = arg;
    c->st = r->status;
    c->why = r->why;
    for (size_t i = 0; r->status == DNS_OK && i < r->n; i++) {
        if (!c->got[0])
            snprintf(c->got, sizeof c->got, "%s", r->text[i]);
        if (matches(c->z, r->text[i])) {
            c->ok = true;
            snprintf(c->got, sizeof c->got, "%s", r->text[i]);
        }
    }
    (*c->left)--;
}

struct nsfind {
    char host[256];
    char addr[64];
    const char *why;
};

static void on_ns(void *arg, const struct dns_rr_result *r)
{
    struct nsfind *f = arg;
    if (r->status == DNS_OK && r->n)
        snprintf(f->host, sizeof f->host, "%s", r->text[0]);
    else
        f->why = r->why;
}

static void on_ns_addr(void *arg, const struct dns_addr_result *r)
{
    struct nsfind *f = arg;
    for (size_t i = 0; r->status == DNS_OK && i < r->n && !f->addr[0]; i++) {
        const struct sockaddr_storage *ss = &r->addr[i];
        char s[INET6_ADDRSTRLEN];
        if (ss->ss_family == AF_INET &&
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, s, sizeof s))
            snprintf(f->addr, sizeof f->addr, "%s", s);
        else if (ss->ss_family == AF_INET6 &&
                 inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, s, sizeof s))
            snprintf(f->addr, sizeof f->addr, "[%s]", s);
    }
    if (!f->addr[0])
        f->why = r->why;
}

/* Runs one resolver until its lookups ended. */
static void drain(uv_loop_t *loop, struct dns *d)
{
    uv_run(loop, UV_RUN_DEFAULT);
    dns_stop(d);
    uv_run(loop, UV_RUN_DEFAULT);
}

/* The zone's authoritative server: dns_servers when set (a test or a
 * split-horizon setup), else the first NS of the domain or of its nearest
 * parent that has one, asked through the system's resolver. */
static int authority(const struct config *cfg, uv_loop_t *loop, char *server, size_t cap,
                     const char **why)
{
    if (cfg->n_dns_servers) {
        snprintf(server, cap, "%s", cfg->dns_servers[0]);
        return 0;
    }
    struct dns_options o = {0};
    struct nsfind f = {0};
    struct dns *d = dns_start(loop, &o, why);
    if (!d)
        return -1;
    for (const char *name = cfg->mail_domain; name && !f.host[0];) {
        f.why = NULL;
        (void)dns_rr(d, name, DNS_T_NS, on_ns, &f);
        uv_run(loop, UV_RUN_DEFAULT);
        name = strchr(name, '.');
        name = name && strchr(name + 1, '.') ? name + 1 : NULL; /* not the TLD */
    }
    if (f.host[0]) {
        (void)dns_addr(d, f.host, on_ns_addr, &f);
        uv_run(loop, UV_RUN_DEFAULT);
    }
    drain(loop, d);
    if (!f.addr[0]) {
        *why = f.why ? f.why : "no NS record found";
        return -1;
    }
    snprintf(server, cap, "%s", f.addr);
    return 0;
}

static int check(const struct dnszone_in *in, uv_loop_t *loop)
{
    const struct config *cfg = in->cfg;
    char server[256];
    const char *why = NULL;
    if (authority(cfg, loop, server, sizeof server, &why) < 0) {
        fprintf(stderr, "dns --check: cannot find the authoritative server of %s: %s\n",
                cfg->mail_domain, why);
        return 1;
    }
    printf("; checking at %s\n", server);
    const char *servers[1] = {server};
    struct dns_options o = {.servers = servers, .n_servers = 1};
    struct dns *d = dns_start(loop, &o, &why);
    if (!d) {
        fprintf(stderr, "dns --check: %s: %s\n", server, why);
        return 1;
    }
    struct zrec z[ZONE_MAX];
    struct zcheck c[ZONE_MAX];
    size_t n = zone_records(in, z), left = 0;
    for (size_t i = 0; i < n; i++) {
        c[i] = (struct zcheck){.z = &z[i], .left = &left};
        snprintf(c[i].name, sizeof c[i].name, "%s%s%s", z[i].prefix, *z[i].prefix ? "." : "",
                 cfg->mail_domain);
        if (z[i].how == Z_EXISTING) {
            c[i].ok = true;
            continue;
        }
        left++;
        (void)dns_rr(d, c[i].name, z[i].type, on_rr, &c[i]);
    }
    drain(loop, d);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (z[i].how == Z_EXISTING)
            continue;
        const char *t = type_name(z[i].type);
        if (c[i].ok) {
            printf("ok       %s %s %s\n", c[i].name, t, c[i].got);
            continue;
        }
        const char *level = z[i].required ? "MISSING" : "warning";
        if (c[i].got[0])
            printf("%s %s %s: \"%s\" where \"%s\" is wanted\n",
                   z[i].required ? "DIFFERS" : "warning", c[i].name, t, c[i].got, z[i].value);
        else
            printf("%s %s %s (%s): want \"%s\"\n", level, c[i].name, t,
                   c[i].why ? c[i].why : "no answer", z[i].value);
        bad += z[i].required;
    }
    if (bad)
        printf("%d required record%s missing or different\n", bad, bad == 1 ? "" : "s");
    return bad ? 1 : 0;
}

/* The domain's addresses as DNS has them now, through the relay's own
 * resolver (dns_servers when set, else the system's servers). */
struct lookup {
    char (*addrs)[INET6_ADDRSTRLEN];
    size_t max, n;
    const char *why;
};

static void on_addr(void *arg, const struct dns_addr_result *r)
{
    struct lookup *l = arg;
    l->why = r->status == DNS_OK || r->status == DNS_NODATA || r->status == DNS_NXDOMAIN
                 ? NULL
                 : r->why;
    for (size_t i = 0; r->status == DNS_OK && i < r->n && l->n < l->max; i++) {
        const struct sockaddr_storage *ss = &r->addr[i];
        const void *p = ss->ss_family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                            : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (inet_ntop(ss->ss_family, p, l->addrs[l->n], INET6_ADDRSTRLEN))
            l->n++;
    }
}

static size_t lookup(const struct config *cfg, char (*addrs)[INET6_ADDRSTRLEN], size_t max,
                     const char **why)
{
    struct lookup l = {.addrs = addrs, .max = max};
    uv_loop_t loop;
    if (uv_loop_init(&loop) < 0) {
        *why = "no event loop";
        return 0;
    }
    struct dns_options o = {.servers = (const char *const *)cfg->dns_servers,
                            .n_servers = cfg->n_dns_servers};
    struct dns *d = dns_start(&loop, &o, why);
    if (d) {
        (void)dns_addr(d, cfg->mail_domain, on_addr, &l); /* NULL: answered already */
        uv_run(&loop, UV_RUN_DEFAULT); /* until the answer (or the timeouts) */
        dns_stop(d);
        uv_run(&loop, UV_RUN_DEFAULT);
        if (l.why)
            *why = l.why;
    }
    uv_loop_close(&loop);
    return l.n;
}

int dnszone_cli(const struct config *cfg, int argc, char **argv)
{
    const char *zonefile = NULL;
    bool check_mode = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--zonefile") == 0 && i + 1 < argc) {
            zonefile = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0) {
            check_mode = true;
        } else {
            fprintf(stderr, "dns: unknown argument: %s\nusage: dns [--zonefile FILE] [--check]\n",
                    argv[i]);
            return 2;
        }
    }
    if (cfg->ipv4_relay) {
        printf("%s is an IPv4 address: no DNS records are needed\n", cfg->ipv4_relay);
        return 0;
    }
    const char *why = NULL;
    bool created = false;
    struct dkim_signkey *k = dkim_signkey_load(cfg->dkim_key_path, true, &created, &why);
    if (!k) {
        fprintf(stderr, "dns: DKIM key %s: %s\n", cfg->dkim_key_path, why ? why : "unusable");
        return 1;
    }
    if (created)
        fprintf(stderr, "dns: created the DKIM key %s\n", cfg->dkim_key_path);
    char *rec = dkim_signkey_dns_record(k);
    dkim_signkey_free(k);
    char addrs[16][INET6_ADDRSTRLEN];
    const char *ap[16];
    const char *lwhy = NULL;
    size_t n = lookup(cfg, addrs, 16, &lwhy);
    if (lwhy)
        fprintf(stderr, "dns: looking up %s: %s\n", cfg->mail_domain, lwhy);
    for (size_t i = 0; i < n; i++)
        ap[i] = addrs[i];
    struct buf zone = {0};
    struct dnszone_in in = {.cfg = cfg, .dkim_record = rec, .addrs = ap, .n_addrs = n,
                            .addr_error = lwhy, .now = (int64_t)time(NULL)};
    int rc = rec ? dnszone_format(&in, &zone) : -1;
    if (rc < 0) {
        fprintf(stderr, "dns: out of memory\n");
        free(rec);
        buf_free(&zone);
        return 1;
    }
    if (check_mode) {
        buf_free(&zone);
        uv_loop_t loop;
        if (uv_loop_init(&loop) < 0)
            return 1;
        rc = check(&in, &loop);
        uv_loop_close(&loop);
        free(rec);
        return rc;
    }
    free(rec);
    FILE *f = zonefile ? fopen(zonefile, "w") : stdout;
    if (!f || fwrite(zone.data, 1, zone.len, f) != zone.len || (zonefile && fclose(f) != 0)) {
        fprintf(stderr, "dns: cannot write %s\n", zonefile ? zonefile : "stdout");
        buf_free(&zone);
        return 1;
    }
    buf_free(&zone);
    return 0;
}
