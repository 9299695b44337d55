/* dkim_dns.c: answers a verifier's key queries from the key cache or by DNS
 * TXT lookups through core/dns, and keeps the cache honest: NXDOMAIN and
 * "no TXT" are cached briefly, temporary failures never, and a key whose
 * signature failed cryptographically is dropped (it may have been
 * rotated). */
#include "core/dns.h"
#include "dkim/dkim.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dkim_resolver {
    struct dns *dns;
    struct dkim_keycache *cache;
};

struct dkim_fetch;

struct pending {
    struct dkim_fetch *f;
    size_t query;
    struct dns_req *req;
};

struct dkim_fetch {
    struct dkim_resolver *r;
    struct dkim_verifier *v;
    int64_t now;
    dkim_fetch_cb cb;
    void *arg;
    size_t outstanding;
    bool cancelled, starting;
    struct pending p[DKIM_MAX_SIGS];
};

struct dkim_resolver *dkim_resolver_new(struct dns *dns, size_t capacity)
{
    struct dkim_resolver *r = calloc(1, sizeof *r);
    if (!r || !(r->cache = dkim_keycache_new(capacity))) {
        free(r);
        return NULL;
    }
    r->dns = dns;
    return r;
}

void dkim_resolver_free(struct dkim_resolver *r)
{
    if (!r)
        return;
    dkim_keycache_free(r->cache);
    free(r);
}

static void answer(struct dkim_fetch *f, size_t q, const struct dns_txt_result *res)
{
    const char *name = dkim_verifier_query(f->v, q);
    switch (res->status) {
    case DNS_OK:
        dkim_verifier_set_key(f->v, q, DKIM_LOOKUP_FOUND, (const char *const *)res->txt,
                              res->len, res->n);
        dkim_keycache_put(f->r->cache, name, f->now + DKIM_CACHE_TTL, DKIM_LOOKUP_FOUND,
                          (const char *const *)res->txt, res->len, res->n);
        break;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
    case DNS_BADNAME:
        dkim_verifier_set_key(f->v, q, DKIM_LOOKUP_NOKEY, NULL, NULL, 0);
        dkim_keycache_put(f->r->cache, name, f->now + DKIM_CACHE_NEG_TTL, DKIM_LOOKUP_NOKEY,
                          NULL, NULL, 0);
        break;
    default:
        dkim_verifier_set_key(f->v, q, DKIM_LOOKUP_TEMPFAIL, NULL, NULL, 0);
        break;
    }
}

static void on_txt(void *arg, const struct dns_txt_result *res)
{
    struct pending *p = arg;
    struct dkim_fetch *f = p->f;
    p->req = NULL;
    if (!f->cancelled)
        answer(f, p->query, res);
    if (--f->outstanding == 0 && !f->starting) {
        if (!f->cancelled)
            f->cb(f->arg);
        free(f);
    }
}

/* Is `name` ("<s>._domainkey.<d>") a key of domain d? */
static bool key_of(const char *name, const char *domain)
{
    size_t n = strlen(name), d = strlen(domain);
    return n > d + 12 && strcasecmp(name + n - d, domain) == 0 &&
           strncmp(name + n - d - 12, "._domainkey.", 12) == 0;
}

struct dkim_fetch *dkim_resolver_fetch(struct dkim_resolver *r, struct dkim_verifier *v,
                                       const char *only_domain, int64_t now, dkim_fetch_cb cb,
                                       void *arg)
{
    struct dkim_fetch *f = calloc(1, sizeof *f);
    size_t nq = dkim_verifier_nqueries(v);
    if (!f) {
        for (size_t q = 0; q < nq; q++)
            dkim_verifier_set_key(v, q, DKIM_LOOKUP_TEMPFAIL, NULL, NULL, 0);
        return NULL;
    }
    f->r = r;
    f->v = v;
    f->now = now;
    f->cb = cb;
    f->arg = arg;
    f->starting = true;
    for (size_t q = 0; q < nq && q < DKIM_MAX_SIGS; q++) {
        struct dkim_keycache_entry e;
        const char *name = dkim_verifier_query(v, q);
        if (only_domain && !key_of(name, only_domain))
            continue; /* stays unanswered: temperror, ignored by the verdict */
        if (dkim_keycache_get(r->cache, name, now, &e)) {
            dkim_verifier_set_key(v, q, e.status, e.txt, e.len, e.n);
            continue;
        }
        f->p[q] = (struct pending){.f = f, .query = q};
        f->outstanding++;
        f->p[q].req = dns_txt(r->dns, name, on_txt, &f->p[q]);
    }
    f->starting = false;
    if (f->outstanding == 0) {
        free(f);
        return NULL;
    }
    return f;
}

void dkim_fetch_cancel(struct dkim_fetch *f)
{
    if (!f)
        return;
    f->cancelled = true;
    for (size_t q = 0; q < DKIM_MAX_SIGS; q++)
        if (f->p[q].req) {
            dns_cancel(f->p[q].req);
            f->p[q].req = NULL;
            if (--f->outstanding == 0)
                break;
        }
    if (f->outstanding == 0)
        free(f);
}

void dkim_resolver_note_results(struct dkim_resolver *r, const struct dkim_verifier *v)
{
    for (size_t i = 0; i < dkim_verifier_nresults(v); i++) {
        const struct dkim_result *res = dkim_verifier_result(v, i);
        if (res->crypto_failed && res->query >= 0)
            dkim_keycache_drop(r->cache, dkim_verifier_query(v, (size_t)res->query));
    }
}
