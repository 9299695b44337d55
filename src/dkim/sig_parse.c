/* sig_parse.c: the DKIM-Signature tag list (RFC 6376 §3.5) into struct
 * dkim_sig. Pure; every refusal is a value with a reason. */
#include "core/base64.h"
#include "dkim/dkim_int.h"

#include <string.h>
#include <strings.h>

#define MAX_TAGS 64

/* Remembers tag names; -1 when one repeats or there are too many. */
struct seen {
    const char *name[MAX_TAGS];
    size_t len[MAX_TAGS];
    size_t n;
};

static int seen_add(struct seen *s, const struct dkim_tag *t, const char **why)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->len[i] == t->name_len && memcmp(s->name[i], t->name, t->name_len) == 0) {
            *why = "duplicate tag";
            return -1;
        }
    if (s->n == MAX_TAGS) {
        *why = "too many tags";
        return -1;
    }
    s->name[s->n] = t->name;
    s->len[s->n++] = t->name_len;
    return 0;
}

static bool val_is(const struct dkim_tag *t, const char *s)
{
    size_t n = strlen(s);
    return t->val_len == n && strncasecmp(t->val, s, n) == 0;
}

/* A domain or selector: labels of letters, digits, '-' and '_' joined by
 * single dots; stored lower case. */
static int copy_name(const char *p, size_t n, char *out, const char **why, const char *what)
{
    if (n == 0 || n > DKIM_NAME_MAX || p[0] == '.' || p[n - 1] == '.') {
        *why = what;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || (c == '.' && p[i + 1] != '.');
        if (!ok) {
            *why = what;
            return -1;
        }
    }
    memcpy(out, p, n);
    out[n] = '\0';
    dkim_lower(out);
    return 0;
}

static int parse_u64(const struct dkim_tag *t, uint64_t *out, const char **why)
{
    uint64_t v = 0;
    if (t->val_len == 0 || t->val_len > 19) {
        *why = "bad number";
        return -1;
    }
    for (size_t i = 0; i < t->val_len; i++) {
        if (t->val[i] < '0' || t->val[i] > '9') {
            *why = "bad number";
            return -1;
        }
        v = v * 10 + (uint64_t)(t->val[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_b64(const struct dkim_tag *t, unsigned char *out, size_t cap, size_t *out_len,
                     const char **why)
{
    char tmp[2 * DKIM_MAX_SIG_BYTES];
    size_t n;
    long got;
    if (dkim_tag_compact(t, tmp, sizeof tmp, &n) < 0 ||
        (got = base64_decode(tmp, n, out, cap)) < 0) {
        *why = "bad base64 value";
        return -1;
    }
    *out_len = (size_t)got;
    return 0;
}

static int parse_canon_word(const char *p, size_t n, enum dkim_canon *c)
{
    if (n == 6 && strncasecmp(p, "simple", 6) == 0)
        *c = DKIM_CANON_SIMPLE;
    else if (n == 7 && strncasecmp(p, "relaxed", 7) == 0)
        *c = DKIM_CANON_RELAXED;
    else
        return -1;
    return 0;
}

static int parse_c(const struct dkim_tag *t, struct dkim_sig *s, const char **why)
{
    const char *slash = memchr(t->val, '/', t->val_len);
    size_t hl = slash ? (size_t)(slash - t->val) : t->val_len;
    s->bcanon = DKIM_CANON_SIMPLE;
    if (parse_canon_word(t->val, hl, &s->hcanon) < 0 ||
        (slash && parse_canon_word(slash + 1, t->val_len - hl - 1, &s->bcanon) < 0)) {
        *why = "unknown canonicalization";
        return -1;
    }
    return 0;
}

/* h= : names separated by ':' with FWS around them. */
static int parse_h(const struct dkim_tag *t, struct dkim_sig *s, const char **why)
{
    size_t i = 0;
    bool from = false;
    s->n_hnames = 0;
    while (i <= t->val_len) {
        size_t st = i;
        while (i < t->val_len && t->val[i] != ':')
            i++;
        size_t a = st, b = i;
        while (a < b && dkim_is_wsp((unsigned char)t->val[a]))
            a++;
        while (b > a && dkim_is_wsp((unsigned char)t->val[b - 1]))
            b--;
        if (a == b || b - a >= 64 || s->n_hnames == DKIM_MAX_HNAMES) {
            *why = a == b ? "empty name in h=" : "h= too long";
            return -1;
        }
        for (size_t k = a; k < b; k++)
            if (dkim_is_wsp((unsigned char)t->val[k])) {
                *why = "bad name in h=";
                return -1;
            }
        char *dst = s->hnames[s->n_hnames++];
        memcpy(dst, t->val + a, b - a);
        dst[b - a] = '\0';
        dkim_lower(dst);
        if (strcmp(dst, "from") == 0)
            from = true;
        i++;
    }
    if (!from) {
        *why = "h= does not include From";
        return -1;
    }
    return 0;
}

static int parse_q(const struct dkim_tag *t, const char **why)
{
    if (dkim_tag_list_has(t, "dns/txt"))
        return 0;
    *why = "q= without dns/txt";
    return -1;
}

static int parse_a(const struct dkim_tag *t, struct dkim_sig *s, const char **why)
{
    if (val_is(t, "rsa-sha256"))
        s->alg = DKIM_ALG_RSA_SHA256;
    else if (val_is(t, "ed25519-sha256"))
        s->alg = DKIM_ALG_ED25519_SHA256;
    else if (val_is(t, "rsa-sha1"))
        s->alg = DKIM_ALG_RSA_SHA1;
    else {
        *why = "unknown algorithm";
        return -1;
    }
    return 0;
}

static int parse_i(const struct dkim_tag *t, struct dkim_sig *s, const char **why)
{
    const char *at = NULL;
    for (size_t k = 0; k < t->val_len; k++)
        if (t->val[k] == '@')
            at = t->val + k;
    if (!at) {
        *why = "i= without '@'";
        return -1;
    }
    size_t n = t->val_len - (size_t)(at + 1 - t->val);
    return copy_name(at + 1, n, s->auid_domain, why, "bad domain in i=");
}

/* The tags with a bit in `have`. */
enum { H_V = 1, H_A = 2, H_B = 4, H_BH = 8, H_D = 16, H_H = 32, H_S = 64, H_I = 128 };

static int one_tag(const struct dkim_tag *t, struct dkim_sig *s, unsigned *have, const char **why)
{
    if (dkim_tag_is(t, "v")) {
        *have |= H_V;
        if (!val_is(t, "1")) {
            *why = "unsupported version";
            return -1;
        }
        return 0;
    }
    if (dkim_tag_is(t, "a"))
        return *have |= H_A, parse_a(t, s, why);
    if (dkim_tag_is(t, "b")) {
        *have |= H_B;
        if (parse_b64(t, s->b, sizeof s->b, &s->b_len, why) < 0)
            return -1;
        if (s->b_len == 0) {
            *why = "empty b=";
            return -1;
        }
        return 0;
    }
    if (dkim_tag_is(t, "bh"))
        return *have |= H_BH, parse_b64(t, s->bh, sizeof s->bh, &s->bh_len, why);
    if (dkim_tag_is(t, "c"))
        return parse_c(t, s, why);
    if (dkim_tag_is(t, "d"))
        return *have |= H_D, copy_name(t->val, t->val_len, s->domain, why, "bad d=");
    if (dkim_tag_is(t, "h"))
        return *have |= H_H, parse_h(t, s, why);
    if (dkim_tag_is(t, "i"))
        return *have |= H_I, parse_i(t, s, why);
    if (dkim_tag_is(t, "l"))
        return s->has_l = true, parse_u64(t, &s->l, why);
    if (dkim_tag_is(t, "q"))
        return parse_q(t, why);
    if (dkim_tag_is(t, "s"))
        return *have |= H_S, copy_name(t->val, t->val_len, s->selector, why, "bad s=");
    if (dkim_tag_is(t, "t"))
        return s->has_t = true, parse_u64(t, &s->t, why);
    if (dkim_tag_is(t, "x"))
        return s->has_x = true, parse_u64(t, &s->x, why);
    return 0; /* z= and unknown tags are ignored */
}

/* i= must be d= or a subdomain of it (§3.5). */
static bool auid_in_domain(const struct dkim_sig *s)
{
    size_t a = strlen(s->auid_domain), d = strlen(s->domain);
    if (a == d)
        return strcmp(s->auid_domain, s->domain) == 0;
    return a > d && s->auid_domain[a - d - 1] == '.' &&
           strcmp(s->auid_domain + a - d, s->domain) == 0;
}

int dkim_sig_parse(const char *value, size_t len, struct dkim_sig *out, const char **why)
{
    struct dkim_tagit it;
    struct dkim_tag t;
    struct seen seen = {.n = 0};
    unsigned have = 0;
    int r;
    memset(out, 0, sizeof *out);
    dkim_tagit_init(&it, value, len);
    while ((r = dkim_tag_next(&it, &t, why)) == 1) {
        if (seen_add(&seen, &t, why) < 0 || one_tag(&t, out, &have, why) < 0)
            return -1;
    }
    if (r < 0)
        return -1;
    static const struct { unsigned bit; const char *why; } required[] = {
        {H_V, "missing v="}, {H_A, "missing a="}, {H_B, "missing b="}, {H_BH, "missing bh="},
        {H_D, "missing d="}, {H_H, "missing h="}, {H_S, "missing s="}};
    for (size_t k = 0; k < sizeof required / sizeof required[0]; k++)
        if (!(have & required[k].bit)) {
            *why = required[k].why;
            return -1;
        }
    if (!(have & H_I))
        memcpy(out->auid_domain, out->domain, sizeof out->domain);
    else if (!auid_in_domain(out)) {
        *why = "i= is not within d=";
        return -1;
    }
    if (out->has_t && out->has_x && out->x < out->t) {
        *why = "x= before t=";
        return -1;
    }
    return 0;
}
