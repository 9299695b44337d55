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
#include <time.h>

#include "core/dns.h"
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

int dnszone_format(const struct dnszone_in *in, struct buf *out)
{
    const struct config *c = in->cfg;
    const char *d = c->mail_domain;
    bool acme = c->tls_mode == TLS_MODE_ACME;
    int rc = buf_printf(out, "; DNS zone for %s (chatmaild-server dns); TTL %d\n", d,
                        DNSZONE_TTL);
    rc |= buf_append_str(out, "; required\n");
    for (size_t i = 0; i < in->n_addrs; i++)
        rc |= rr(out, "", d, strchr(in->addrs[i], ':') ? "AAAA" : "A", "%s", in->addrs[i]);
    if (in->n_addrs == 0 && in->addr_error)
        rc |= buf_printf(out, "; %s A/AAAA: the lookup failed (%s): add the server's addresses\n",
                         d, in->addr_error);
    else if (in->n_addrs == 0)
        rc |= buf_printf(out, "; %s has no A or AAAA record yet: add the server's addresses\n", d);
    rc |= rr(out, "", d, "MX", "10 %s.", d);
    if (acme) {
        char id[32];
        time_t t = (time_t)in->now;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(id, sizeof id, "%Y%m%d%H%M", &tm);
        char v[64];
        snprintf(v, sizeof v, "v=STSv1; id=%s", id);
        rc |= txt(out, "_mta-sts", d, v);
        rc |= rr(out, "mta-sts", d, "CNAME", "%s.", d);
    }
    rc |= rr(out, "www", d, "CNAME", "%s.", d);
    if (in->dkim_record)
        rc |= txt(out, "opendkim._domainkey", d, in->dkim_record);
    rc |= buf_append_str(out, "; recommended\n");
    rc |= txt(out, "", d, "v=spf1 a ~all");
    rc |= txt(out, "_dmarc", d, "v=DMARC1;p=reject;adkim=s;aspf=s");
    if (acme)
        rc |= rr(out, "", d, "CAA", "0 issue \"letsencrypt.org\"");
    rc |= txt(out, "_adsp._domainkey", d, "dkim=discardable");
    rc |= rr(out, "_submission._tcp", d, "SRV", "0 1 %d %s.", c->submission_port, d);
    rc |= rr(out, "_submissions._tcp", d, "SRV", "0 1 %d %s.", c->submissions_port, d);
    rc |= rr(out, "_imap._tcp", d, "SRV", "0 1 %d %s.", c->imap_port, d);
    rc |= rr(out, "_imaps._tcp", d, "SRV", "0 1 %d %s.", c->imaps_port, d);
    return rc ? -1 : 0;
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
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--zonefile") == 0 && i + 1 < argc) {
            zonefile = argv[++i];
        } else {
            fprintf(stderr, "dns: unknown argument: %s\nusage: dns [--zonefile FILE]\n", argv[i]);
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
    free(rec);
    if (rc < 0) {
        fprintf(stderr, "dns: out of memory\n");
        buf_free(&zone);
        return 1;
    }
    FILE *f = zonefile ? fopen(zonefile, "w") : stdout;
    if (!f || fwrite(zone.data, 1, zone.len, f) != zone.len || (zonefile && fclose(f) != 0)) {
        fprintf(stderr, "dns: cannot write %s\n", zonefile ? zonefile : "stdout");
        buf_free(&zone);
        return 1;
    }
    buf_free(&zone);
    return 0;
}
