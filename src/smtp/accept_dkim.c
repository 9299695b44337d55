/* accept_dkim.c: the DKIM stage of the acceptance pipeline (see
 * accept_int.h) for mail from other relays (port 25, POST /mxdeliv): after
 * the incoming filter accepted, a signature must verify with d= equal to
 * the From domain (federation facts §1). Hashing runs on a worker over the
 * message as it is in memory (one pass), the key lookups on the loop
 * (c-ares through core/dns, cached by dkim_resolver), the signature checks
 * on a worker again. A temporary DNS failure gives 451 4.7.5, never 554.
 *
 * dns_servers (chatmail.ini) chooses the resolvers; empty = the system's
 * /etc/resolv.conf. Each lookup waits DKIM_DNS_TIMEOUT_MS, then once more
 * twice as long (c-ares doubles it per round): at most 6 s in all. */
#include "smtp/accept_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/dns.h"
#include "core/metrics.h"

#define DKIM_DNS_TIMEOUT_MS 2000
#define DKIM_DNS_TRIES      2

static struct {
    struct dns *dns;
    struct dkim_resolver *resolver;
    bool stopped;
} D;

int accept_dkim_init(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen)
{
    const char *why = "out of memory";
    struct dns_options o = {.servers = (const char *const *)cfg->dns_servers,
                            .n_servers = cfg->n_dns_servers,
                            .timeout_ms = DKIM_DNS_TIMEOUT_MS,
                            .tries = DKIM_DNS_TRIES};
    D.stopped = false;
    D.dns = dns_start(loop, &o, &why);
    if (D.dns)
        D.resolver = dkim_resolver_new(D.dns, DKIM_CACHE_ENTRIES);
    if (!D.resolver) {
        snprintf(err, errlen, "DNS resolver for DKIM: %s", why);
        accept_dkim_stop();
        return -1;
    }
    return 0;
}

void accept_dkim_stop(void)
{
    if (D.dns && !D.stopped)
        dns_stop(D.dns); /* frees itself once its handles are closed */
    D.stopped = true;
}

void accept_dkim_free(void)
{
    dkim_resolver_free(D.resolver);
    memset(&D, 0, sizeof D);
}

/* The From domain of the filter's From address ("" when none). */
static void from_domain(struct accept_job *j)
{
    const char *at = strrchr(j->fr.from_addr, '@');
    snprintf(j->from_domain, sizeof j->from_domain, "%s", at ? at + 1 : "");
}

int accept_dkim_prepare(struct accept_job *j)
{
    j->dkim_kind = -1;
    if (!D.resolver || (j->m.origin != ACCEPT_MX && j->m.origin != ACCEPT_MXDELIV))
        return 0;
    from_domain(j);
    if (j->from_domain[0] == '[') /* address literal: exempt (spec §3.6) */
        return 0;
    if (!(j->dkim = dkim_verifier_new()))
        return -1;
    dkim_verifier_feed(j->dkim, j->m.data, j->m.len);
    dkim_verifier_finish(j->dkim);
    return 0;
}

static void on_keys(void *arg)
{
    struct accept_job *j = arg;
    j->dkim_done(j);
}

int accept_dkim_fetch(struct accept_job *j, void (*done)(struct accept_job *j))
{
    if (D.stopped) /* unanswered queries count as temporary failures */
        return 0;
    j->dkim_done = done;
    return dkim_resolver_fetch(D.resolver, j->dkim, j->from_domain, (int64_t)time(NULL), on_keys,
                               j) ? 1 : 0;
}

void accept_dkim_decide(struct accept_job *j)
{
    dkim_verifier_run(j->dkim, (int64_t)time(NULL));
    struct dkim_verdict v = dkim_verifier_verdict(j->dkim, j->from_domain);
    j->dkim_kind = (int)v.kind;
    if (v.kind != DKIM_VERDICT_PASS) {
        j->check_code = v.kind == DKIM_VERDICT_TEMP ? 451 : 554;
        snprintf(j->check_reply, sizeof j->check_reply, "%s", v.smtp_reply);
    }
}

void accept_dkim_conclude(struct accept_job *j)
{
    if (!j->dkim)
        return;
    if (j->dkim_kind >= 0) {
        if (D.resolver && !D.stopped)
            dkim_resolver_note_results(D.resolver, j->dkim);
        static const enum metric_counter by_kind[] = {
            [DKIM_VERDICT_PASS] = M_DKIM_PASS, [DKIM_VERDICT_NONE] = M_DKIM_NONE,
            [DKIM_VERDICT_INVALID] = M_DKIM_FAIL, [DKIM_VERDICT_TEMP] = M_DKIM_TEMPERROR};
        metrics_inc(by_kind[j->dkim_kind]);
    }
    dkim_verifier_free(j->dkim);
    j->dkim = NULL;
}
