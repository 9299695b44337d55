/* sign.c: the streaming DKIM signer. The header block is kept (bounded),
 * the body flows through the simple canonicaliser into SHA-256, and at the
 * end the DKIM-Signature field is built, its relaxed canonical form hashed
 * with the selected fields, and signed.
 * Header set (federation facts §4): OpenDKIM's default set plus Autocrypt,
 * all over-signed (listed once more than they occur, so none can be added
 * later), then Content-Type and Message-ID as they occur. */
#include "core/base64.h"
#include "dkim/dkim_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const oversigned[] = {
    "from", "reply-to", "subject", "date", "to", "cc", "resent-date", "resent-from",
    "resent-sender", "resent-to", "resent-cc", "in-reply-to", "references", "list-id",
    "list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner",
    "list-archive", "autocrypt"};
static const char *const signed_once[] = {"content-type", "message-id"};

struct dkim_signer {
    EVP_PKEY *pkey;
    char domain[DKIM_NAME_MAX + 1];
    char selector[DKIM_NAME_MAX + 1];
    int64_t now;
    struct dkim_headers hdr;
    struct dkim_bodycanon body;
    EVP_MD_CTX *md;
    bool failed;
};

static void body_out(void *ctx, const char *p, size_t n)
{
    struct dkim_signer *s = ctx;
    if (EVP_DigestUpdate(s->md, p, n) != 1)
        s->failed = true;
}

static bool valid_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > DKIM_NAME_MAX)
        return false;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
              *n == '-' || *n == '.' || *n == '_'))
            return false;
    return true;
}

struct dkim_signer *dkim_signer_new(const struct dkim_signkey *k, const char *domain,
                                    const char *selector, int64_t now, const char **why)
{
    if (!valid_name(domain) || !valid_name(selector)) {
        *why = "bad signing domain or selector";
        return NULL;
    }
    struct dkim_signer *s = calloc(1, sizeof *s);
    if (!s || !(s->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
        if (s)
            EVP_MD_CTX_free(s->md);
        free(s);
        *why = "out of memory";
        return NULL;
    }
    s->pkey = dkim_signkey_pkey(k);
    snprintf(s->domain, sizeof s->domain, "%s", domain);
    snprintf(s->selector, sizeof s->selector, "%s", selector);
    dkim_lower(s->domain);
    s->now = now;
    dkim_bodycanon_init(&s->body, DKIM_CANON_SIMPLE, body_out, s);
    return s;
}

void dkim_signer_free(struct dkim_signer *s)
{
    if (!s)
        return;
    dkim_headers_free(&s->hdr);
    EVP_MD_CTX_free(s->md);
    free(s);
}

int dkim_signer_feed(struct dkim_signer *s, const char *p, size_t n)
{
    if (s->failed)
        return -1;
    if (!s->hdr.done) {
        size_t used = dkim_headers_feed(&s->hdr, p, n);
        p += used;
        n -= used;
        if (s->hdr.done && (s->hdr.overflow || s->hdr.malformed))
            s->failed = true;
    }
    if (n && !s->failed)
        dkim_bodycanon_feed(&s->body, p, n);
    return s->failed ? -1 : 0;
}

static size_t count_fields(const struct dkim_headers *h, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < h->n; i++)
        c += dkim_field_name_is(h, i, name);
    return c;
}

/* The h= names in order, into names[]; returns how many. */
static size_t pick_names(const struct dkim_headers *h, char (*names)[64])
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof oversigned / sizeof oversigned[0]; i++) {
        size_t c = count_fields(h, oversigned[i]) + 1;
        for (size_t k = 0; k < c && n < DKIM_MAX_HNAMES; k++)
            snprintf(names[n++], 64, "%s", oversigned[i]);
    }
    for (size_t i = 0; i < sizeof signed_once / sizeof signed_once[0]; i++) {
        size_t c = count_fields(h, signed_once[i]);
        for (size_t k = 0; k < c && n < DKIM_MAX_HNAMES; k++)
            snprintf(names[n++], 64, "%s", signed_once[i]);
    }
    return n;
}

/* Appends text, folding ("\r\n\t") first when the line would pass 76. */
static int put_folded(struct buf *b, size_t *col, const char *text, size_t len)
{
    if (*col + len > 76 && *col > 1) {
        if (buf_append(b, "\r\n\t", 3) < 0)
            return -1;
        *col = 1;
        if (len > 1 && text[0] == ' ') { /* the fold is the separator */
            text++;
            len--;
        }
    }
    *col += len;
    return buf_append(b, text, len);
}

/* "DKIM-Signature: v=1; ... b=" (folded, no CRLF). */
static int build_field(struct dkim_signer *s, const char *bh64, char (*names)[64], size_t n,
                       struct buf *f)
{
    char tmp[600];
    size_t col = 0;
    bool ed = EVP_PKEY_get_base_id(s->pkey) == EVP_PKEY_ED25519;
    int len = snprintf(tmp, sizeof tmp, "DKIM-Signature: v=1; a=%s; c=relaxed/simple;",
                       ed ? "ed25519-sha256" : "rsa-sha256");
    if (put_folded(f, &col, tmp, (size_t)len) < 0)
        return -1;
    len = snprintf(tmp, sizeof tmp, " d=%s;", s->domain);
    if (put_folded(f, &col, tmp, (size_t)len) < 0)
        return -1;
    len = snprintf(tmp, sizeof tmp, " s=%s;", s->selector);
    if (put_folded(f, &col, tmp, (size_t)len) < 0)
        return -1;
    if (s->now > 0) {
        len = snprintf(tmp, sizeof tmp, " t=%lld;", (long long)s->now);
        if (put_folded(f, &col, tmp, (size_t)len) < 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        len = snprintf(tmp, sizeof tmp, "%s%s%s", i == 0 ? " h=" : "", names[i],
                       i + 1 < n ? ":" : ";");
        if (put_folded(f, &col, tmp, (size_t)len) < 0)
            return -1;
    }
    len = snprintf(tmp, sizeof tmp, " bh=%s;", bh64);
    if (put_folded(f, &col, tmp, (size_t)len) < 0)
        return -1;
    return put_folded(f, &col, " b=", 3);
}

/* Appends the base64 signature in folded pieces, then CRLF. */
static int put_b64_folded(struct buf *f, const char *b64)
{
    size_t len = strlen(b64), col = 76; /* the "b=" line is taken to be full */
    for (size_t i = 0; i < len;) {
        size_t take = len - i < 72 ? len - i : 72;
        if (i > 0 || col > 72)
            if (buf_append(f, "\r\n\t", 3) < 0)
                return -1;
        if (buf_append(f, b64 + i, take) < 0)
            return -1;
        i += take;
        col = 1 + take;
    }
    return buf_append(f, "\r\n", 2);
}

int dkim_signer_finish(struct dkim_signer *s, struct buf *out, const char **why)
{
    unsigned char bh[32], digest[32], sig[DKIM_MAX_SIG_BYTES];
    size_t sig_len = sizeof sig;
    char bh64[64], sig64[2 * DKIM_MAX_SIG_BYTES];
    char(*names)[64] = NULL;
    struct buf field = {0};
    int rc = -1;
    dkim_headers_finish(&s->hdr);
    if (s->failed || s->hdr.overflow || s->hdr.malformed) {
        *why = "the header block is malformed or too large";
        return -1;
    }
    dkim_bodycanon_finish(&s->body);
    *why = "out of memory";
    names = calloc(DKIM_MAX_HNAMES, sizeof *names);
    if (!names || s->failed || EVP_DigestFinal_ex(s->md, bh, NULL) != 1 ||
        base64_encode(bh, sizeof bh, bh64, sizeof bh64) < 0)
        goto out;
    size_t n = pick_names(&s->hdr, names);
    if (build_field(s, bh64, names, n, &field) < 0 ||
        dkim_hash_headers(&s->hdr, (const char(*)[64])names, n, DKIM_CANON_RELAXED, field.data,
                          field.len, digest) < 0)
        goto out;
    if (dkim_crypto_sign(s->pkey, digest, sig, &sig_len) < 0) {
        *why = "signing failed";
        goto out;
    }
    if (base64_encode(sig, sig_len, sig64, sizeof sig64) < 0 || put_b64_folded(&field, sig64) < 0 ||
        buf_append(out, field.data, field.len) < 0)
        goto out;
    rc = 0;
out:
    free(names);
    buf_free(&field);
    return rc;
}
