/* verify.c: the streaming DKIM verifier (RFC 6376 §6). The message comes in
 * chunks; once the header block is complete every DKIM-Signature field is
 * parsed, its header hash computed and its key query listed, and the body
 * flows through one canonicaliser per canonicalisation in use (simple,
 * relaxed), never buffered. The caller answers the key queries (DNS is not
 * done here) and runs the checks with its clock. */
#include "dkim/dkim_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct vsig {
    struct dkim_sig sig;
    const char *why;   /* parse or hashing failure; NULL when usable */
    unsigned char hhash[32];
    int query;
    struct dkim_result res;
};

struct bodyhash {
    bool used;
    struct dkim_bodycanon canon;
    EVP_MD_CTX *md;
    unsigned char digest[32];
    bool ok;
};

struct query {
    char name[2 * DKIM_NAME_MAX + 16];
    bool answered;
    enum dkim_lookup status;
    size_t n;
    char *txt[DKIM_MAX_TXT_RECORDS];
    size_t len[DKIM_MAX_TXT_RECORDS];
};

struct dkim_verifier {
    struct dkim_headers hdr;
    bool headers_processed, finished;
    size_t nseen; /* DKIM-Signature fields present (all, not only evaluated) */
    struct vsig sigs[DKIM_MAX_SIGS];
    size_t nsigs;
    struct bodyhash bh[2]; /* by enum dkim_canon */
    struct query q[DKIM_MAX_SIGS];
    size_t nq;
};

struct dkim_verifier *dkim_verifier_new(void)
{
    return calloc(1, sizeof(struct dkim_verifier));
}

void dkim_verifier_free(struct dkim_verifier *v)
{
    if (!v)
        return;
    dkim_headers_free(&v->hdr);
    for (int i = 0; i < 2; i++)
        EVP_MD_CTX_free(v->bh[i].md);
    for (size_t i = 0; i < v->nq; i++)
        for (size_t k = 0; k < v->q[i].n; k++)
            free(v->q[i].txt[k]);
    free(v);
}

static void body_out(void *ctx, const char *p, size_t n)
{
    struct bodyhash *b = ctx;
    if (EVP_DigestUpdate(b->md, p, n) != 1)
        b->ok = false;
}

static int use_bodyhash(struct dkim_verifier *v, enum dkim_canon c)
{
    struct bodyhash *b = &v->bh[c];
    if (b->used)
        return 0;
    b->md = EVP_MD_CTX_new();
    if (!b->md || EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1)
        return -1;
    dkim_bodycanon_init(&b->canon, c, body_out, b);
    b->used = b->ok = true;
    return 0;
}

static int add_query(struct dkim_verifier *v, const struct dkim_sig *s)
{
    char name[sizeof v->q[0].name];
    snprintf(name, sizeof name, "%s._domainkey.%s", s->selector, s->domain);
    for (size_t i = 0; i < v->nq; i++)
        if (strcmp(v->q[i].name, name) == 0)
            return (int)i;
    memcpy(v->q[v->nq].name, name, sizeof name);
    return (int)v->nq++;
}

/* The signature field with its b= value removed (RFC 6376 §3.7). */
static char *field_without_b(const char *field, size_t len, size_t value_off, size_t *out_len)
{
    struct dkim_tagit it;
    struct dkim_tag t;
    const char *why;
    dkim_tagit_init(&it, field + value_off, len - value_off);
    while (dkim_tag_next(&it, &t, &why) == 1) {
        if (!dkim_tag_is(&t, "b"))
            continue;
        size_t a = value_off + t.raw_start, b = value_off + t.raw_end;
        char *out = malloc(len - (b - a) + 1);
        if (!out)
            return NULL;
        memcpy(out, field, a);
        memcpy(out + a, field + b, len - b);
        *out_len = len - (b - a);
        return out;
    }
    return NULL;
}

static void prepare_sig(struct dkim_verifier *v, size_t fi)
{
    struct vsig *vs = &v->sigs[v->nsigs++];
    const struct dkim_field *f = &v->hdr.f[fi];
    const char *field = v->hdr.raw.data + f->off;
    size_t colon = f->name_len;
    while (field[colon] != ':')
        colon++;
    vs->query = -1;
    vs->res.status = DKIM_TEMPERROR; /* until dkim_verifier_run */
    vs->res.reason = "not checked";
    vs->res.query = -1;
    if (dkim_sig_parse(field + colon + 1, f->len - colon - 1, &vs->sig, &vs->why) < 0)
        return;
    if (vs->sig.alg == DKIM_ALG_RSA_SHA1 || vs->sig.has_l)
        return; /* refused in run(); no key needed */
    size_t flen;
    char *nob = field_without_b(field, f->len, colon + 1, &flen);
    if (!nob || dkim_hash_headers(&v->hdr, (const char(*)[64])vs->sig.hnames, vs->sig.n_hnames,
                                  vs->sig.hcanon, nob, flen, vs->hhash) < 0 ||
        use_bodyhash(v, vs->sig.bcanon) < 0) {
        free(nob);
        vs->why = "out of memory";
        return;
    }
    free(nob);
    vs->query = add_query(v, &vs->sig);
}

static void process_headers(struct dkim_verifier *v)
{
    v->headers_processed = true;
    if (v->hdr.overflow || v->hdr.malformed)
        return;
    for (size_t i = 0; i < v->hdr.n; i++) {
        if (!dkim_field_name_is(&v->hdr, i, "DKIM-Signature"))
            continue;
        v->nseen++;
        if (v->nsigs < DKIM_MAX_SIGS)
            prepare_sig(v, i);
    }
}

static void feed_body(struct dkim_verifier *v, const char *p, size_t n)
{
    for (int i = 0; i < 2; i++)
        if (v->bh[i].used)
            dkim_bodycanon_feed(&v->bh[i].canon, p, n);
}

void dkim_verifier_feed(struct dkim_verifier *v, const char *p, size_t n)
{
    if (v->finished)
        return;
    if (!v->hdr.done) {
        size_t used = dkim_headers_feed(&v->hdr, p, n);
        p += used;
        n -= used;
        if (!v->hdr.done)
            return;
        process_headers(v);
    }
    if (n)
        feed_body(v, p, n);
}

void dkim_verifier_finish(struct dkim_verifier *v)
{
    if (v->finished)
        return;
    v->finished = true;
    if (!v->headers_processed) {
        dkim_headers_finish(&v->hdr);
        process_headers(v);
    }
    for (int i = 0; i < 2; i++) {
        struct bodyhash *b = &v->bh[i];
        if (!b->used)
            continue;
        dkim_bodycanon_finish(&b->canon);
        if (EVP_DigestFinal_ex(b->md, b->digest, NULL) != 1)
            b->ok = false;
    }
}

bool dkim_verifier_headers_done(const struct dkim_verifier *v)
{
    return v->headers_processed;
}

size_t dkim_verifier_nqueries(const struct dkim_verifier *v)
{
    return v->nq;
}

const char *dkim_verifier_query(const struct dkim_verifier *v, size_t i)
{
    return i < v->nq ? v->q[i].name : NULL;
}

void dkim_verifier_set_key(struct dkim_verifier *v, size_t i, enum dkim_lookup status,
                           const char *const *txt, const size_t *len, size_t n)
{
    if (i >= v->nq)
        return;
    struct query *q = &v->q[i];
    for (size_t k = 0; k < q->n; k++)
        free(q->txt[k]);
    q->n = 0;
    q->answered = true;
    q->status = status;
    for (size_t k = 0; status == DKIM_LOOKUP_FOUND && k < n && q->n < DKIM_MAX_TXT_RECORDS; k++) {
        if (len[k] > DKIM_MAX_TXT_BYTES)
            continue;
        char *c = malloc(len[k] + 1);
        if (!c) {
            q->status = DKIM_LOOKUP_TEMPFAIL;
            return;
        }
        memcpy(c, txt[k], len[k]);
        c[len[k]] = '\0';
        q->txt[q->n] = c;
        q->len[q->n++] = len[k];
    }
    if (status == DKIM_LOOKUP_FOUND && q->n == 0)
        q->status = DKIM_LOOKUP_NOKEY;
}

static void set(struct dkim_result *r, enum dkim_status st, const char *reason)
{
    r->status = st;
    r->reason = reason;
}

/* Tries each key record of the query; the first that verifies wins. */
static void check_keys(struct vsig *vs, const struct query *q)
{
    struct dkim_result *r = &vs->res;
    const char *last = "no usable key record";
    enum dkim_status st = DKIM_PERMERROR;
    for (size_t k = 0; k < q->n; k++) {
        struct dkim_key key;
        const char *why;
        if (dkim_key_parse(q->txt[k], q->len[k], &key, &why) < 0) {
            last = why;
            continue;
        }
        if (key.revoked) {
            last = "key revoked";
            continue;
        }
        if (key.strict && strcmp(vs->sig.auid_domain, vs->sig.domain) != 0) {
            last = "key demands i= equal to d= (t=s)";
            continue;
        }
        int ok = dkim_crypto_verify(vs->sig.alg, &key, vs->hhash, vs->sig.b, vs->sig.b_len, &why);
        if (ok == 1) {
            set(r, DKIM_PASS, "pass");
            return;
        }
        if (ok == 0) {
            st = DKIM_FAIL;
            last = "signature did not verify";
            r->crypto_failed = true;
        } else if (st != DKIM_FAIL) {
            last = why;
        }
    }
    set(r, st, last);
}

static void run_one(struct dkim_verifier *v, struct vsig *vs, int64_t now)
{
    struct dkim_result *r = &vs->res;
    memset(r, 0, sizeof *r);
    memcpy(r->domain, vs->sig.domain, sizeof r->domain);
    memcpy(r->selector, vs->sig.selector, sizeof r->selector);
    r->query = vs->query;
    if (vs->why)
        return set(r, DKIM_PERMERROR, vs->why);
    if (vs->sig.alg == DKIM_ALG_RSA_SHA1)
        return set(r, DKIM_PERMERROR, "rsa-sha1 not accepted");
    if (vs->sig.has_l)
        return set(r, DKIM_PERMERROR, "l= not accepted");
    if (vs->sig.has_x && now >= 0 && (uint64_t)now > vs->sig.x)
        return set(r, DKIM_PERMERROR, "signature expired");
    const struct bodyhash *b = &v->bh[vs->sig.bcanon];
    if (!v->finished || !b->ok)
        return set(r, DKIM_TEMPERROR, "message incomplete");
    if (vs->sig.bh_len != 32 || memcmp(vs->sig.bh, b->digest, 32) != 0)
        return set(r, DKIM_FAIL, "body hash mismatch");
    const struct query *q = &v->q[vs->query];
    if (!q->answered || q->status == DKIM_LOOKUP_TEMPFAIL)
        return set(r, DKIM_TEMPERROR, "key lookup failed temporarily");
    if (q->status == DKIM_LOOKUP_NOKEY)
        return set(r, DKIM_PERMERROR, "no key record");
    check_keys(vs, q);
}

void dkim_verifier_run(struct dkim_verifier *v, int64_t now)
{
    for (size_t i = 0; i < v->nsigs; i++)
        run_one(v, &v->sigs[i], now);
}

size_t dkim_verifier_nresults(const struct dkim_verifier *v)
{
    return v->nsigs;
}

const struct dkim_result *dkim_verifier_result(const struct dkim_verifier *v, size_t i)
{
    return i < v->nsigs ? &v->sigs[i].res : NULL;
}

struct dkim_verdict dkim_verifier_verdict(const struct dkim_verifier *v, const char *from_domain)
{
    struct dkim_verdict none = {DKIM_VERDICT_NONE, DKIM_REPLY_NONE};
    struct dkim_verdict invalid = {DKIM_VERDICT_INVALID, DKIM_REPLY_INVALID};
    struct dkim_verdict temp = {DKIM_VERDICT_TEMP, DKIM_REPLY_TEMP};
    struct dkim_verdict pass = {DKIM_VERDICT_PASS, NULL};
    if (from_domain && from_domain[0] == '[')
        return pass; /* address literals are exempt (federation facts §1) */
    if (v->hdr.overflow || v->hdr.malformed)
        return invalid;
    if (v->nseen == 0)
        return none;
    if (!from_domain || !*from_domain)
        return invalid;
    bool could = false;
    for (size_t i = 0; i < v->nsigs; i++) {
        const struct dkim_result *r = &v->sigs[i].res;
        if (strcasecmp(r->domain, from_domain) != 0)
            continue;
        if (r->status == DKIM_PASS)
            return pass;
        if (r->status == DKIM_TEMPERROR)
            could = true;
    }
    return could ? temp : invalid;
}
