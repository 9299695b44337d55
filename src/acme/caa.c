/* caa.c: before ordering with our own account, the domain's CAA records
 * (RFC 8659: the name, then its parents below the TLD). A relay that
 * published acmetool's recommended `issue "...; accounturi=..."` record
 * binds issuance to acmetool's account: when every issue record binds an
 * account that is not ours, ordering would fail at the CA, so the client
 * refuses, counts acme_orders_total{result="refused"} and logs the record
 * and the exact line to publish instead (federation facts §6). */
#include "acme/acme_client_int.h"

#include "core/dns.h"
#include "core/dns_rr.h"
#include "core/log.h"
#include "core/metrics.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void caa_lookup(struct acme *a);

/* `0 issue "ca.example; accounturi=URL; ..."` -> the issuer domain and the
 * accounturi (empty when absent). False for other tags. */
static bool caa_issue(const char *rec, char *issuer, size_t ilen, char *uri, size_t ulen)
{
    unsigned flags;
    char tag[32];
    int off = 0;
    issuer[0] = uri[0] = '\0';
    if (sscanf(rec, "%u %31s \"%n", &flags, tag, &off) < 2 || off == 0 ||
        strcasecmp(tag, "issue") != 0)
        return false;
    const char *v = rec + off;
    size_t n = strcspn(v, ";\" \t");
    snprintf(issuer, ilen, "%.*s", (int)n, v);
    const char *u = strstr(v, "accounturi=");
    if (u) {
        u += strlen("accounturi=");
        snprintf(uri, ulen, "%.*s", (int)strcspn(u, ";\" \t"), u);
    }
    return true;
}

/* The CAA set of a->caa_name: refuse when every issue record binds an
 * account and none is ours. */
static void caa_decide(struct acme *a, const struct dns_rr_result *r)
{
    char issuer[256], uri[URL_MAX], first_issuer[256] = "", line[2048] = "";
    size_t bound = 0, issue = 0;
    bool ours = false;
    for (size_t i = 0; i < r->n; i++) {
        if (!caa_issue(r->text[i], issuer, sizeof issuer, uri, sizeof uri))
            continue;
        issue++;
        if (!first_issuer[0])
            snprintf(first_issuer, sizeof first_issuer, "%s", issuer);
        if (uri[0]) {
            bound++;
            ours |= strcmp(uri, a->kid) == 0;
            if (!line[0])
                snprintf(line, sizeof line, "%s", r->text[i]);
        }
    }
    if (issue == 0 || bound < issue || ours) {
        acme_new_order(a);
        return;
    }
    metrics_inc(M_ACME_ORDER_REFUSED);
    a->failures++;
    unsigned delay = RETRY_MAX_S;
    metrics_gauge_set(G_ACME_NEXT_RENEWAL, (int64_t)(time(NULL) + delay));
    log_error("ACME: not ordering for %s: its CAA record `%s. CAA %s` binds issuance to "
              "another ACME account; reuse that account's key (acmetool's "
              "%s/accounts/*/privkey) or publish instead: %s. CAA 0 issue \"%s; accounturi=%s\" "
              "(checked again in %u s)",
              a->names[0], a->caa_name, line, a->acmetool_dir, a->caa_name, first_issuer, a->kid,
              delay);
    a->kid[0] = a->nonce[0] = '\0';
    acme_arm(a, (uint64_t)delay * 1000, acme_start_order);
}

static void on_caa(void *arg, const struct dns_rr_result *r)
{
    struct acme *a = arg;
    a->caa_req = NULL;
    if (a->stopping || r->status == DNS_CANCELLED)
        return;
    if (r->status == DNS_OK && r->n > 0) {
        caa_decide(a, r);
        return;
    }
    const char *dot = strchr(a->caa_name, '.');
    if ((r->status == DNS_NODATA || r->status == DNS_NXDOMAIN || r->status == DNS_OK) && dot &&
        strchr(dot + 1, '.')) {
        /* RFC 8659 §3: climb to the parent domain (not to the TLD) */
        memmove(a->caa_name, dot + 1, strlen(dot + 1) + 1);
        caa_lookup(a);
        return;
    }
    if (r->status != DNS_NODATA && r->status != DNS_NXDOMAIN && r->status != DNS_OK)
        log_warn("ACME: CAA lookup of %s failed (%s); ordering anyway (the CA checks CAA "
                 "itself)", a->caa_name, r->why ? r->why : "?");
    acme_new_order(a);
}

static void caa_lookup(struct acme *a)
{
    a->caa_req = dns_rr(a->dns, a->caa_name, DNS_T_CAA, on_caa, a);
}

/* Our own account (not one taken over): CAA may bind another account. */
void acme_caa_then_order(struct acme *a)
{
    if (a->only_existing || !a->dns) {
        acme_new_order(a);
        return;
    }
    snprintf(a->caa_name, sizeof a->caa_name, "%s", a->names[0]);
    caa_lookup(a);
}
