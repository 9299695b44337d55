/* headers.c: collects the header block of a message as it streams in
 * (bounded by DKIM_MAX_HEADER_BYTES), splits it into fields, and hashes the
 * fields a signature names (bottom-up selection, RFC 6376 §5.4.2). */
#include "dkim/dkim_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A field name: printable ASCII except ':' (RFC 5322 ftext), then
 * optional WSP (obsolete syntax) before the colon. */
static bool field_name_len(const char *p, size_t n, size_t *name_len)
{
    size_t i = 0;
    while (i < n && p[i] != ':')
        i++;
    if (i == n)
        return false;
    size_t e = i;
    while (e > 0 && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;
    if (e == 0)
        return false;
    for (size_t k = 0; k < e; k++)
        if ((unsigned char)p[k] < 0x21 || (unsigned char)p[k] > 0x7e)
            return false;
    *name_len = e;
    return true;
}

static void split_fields(struct dkim_headers *h)
{
    const char *d = h->raw.data;
    size_t len = h->raw.len, i = 0, cap = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && !(d[e] == '\n' && e > i && d[e - 1] == '\r'))
            e++;
        size_t next = e < len ? e + 1 : len;
        if (d[i] == ' ' || d[i] == '\t') {
            if (h->n == 0) {
                h->malformed = true;
                return;
            }
            h->f[h->n - 1].len = next - h->f[h->n - 1].off;
        } else {
            size_t nl;
            if (!field_name_len(d + i, next - i, &nl) || h->n == DKIM_MAX_FIELDS) {
                h->malformed = true;
                return;
            }
            if (h->n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct dkim_field *f = realloc(h->f, nc * sizeof *f);
                if (!f) {
                    h->malformed = true;
                    return;
                }
                h->f = f;
                cap = nc;
            }
            h->f[h->n++] = (struct dkim_field){.off = i, .len = next - i, .name_len = nl};
        }
        i = next;
    }
}

static void complete(struct dkim_headers *h)
{
    h->done = true;
    if (!h->overflow)
        split_fields(h);
}

size_t dkim_headers_feed(struct dkim_headers *h, const char *p, size_t n)
{
    if (h->done)
        return 0;
    size_t old = h->raw.len;
    size_t take = n;
    if (old + take > DKIM_MAX_HEADER_BYTES + 2)
        take = DKIM_MAX_HEADER_BYTES + 2 - old;
    if (buf_append(&h->raw, p, take) < 0) {
        h->overflow = true;
        complete(h);
        return n;
    }
    const char *d = h->raw.data;
    for (size_t i = h->scan; i < h->raw.len; i++) {
        if (d[i] != '\n' || i == 0 || d[i - 1] != '\r')
            continue;
        if (i == h->line_start + 1) { /* an empty line: the end of the header */
            size_t used = i + 1 - old;
            h->raw.len = h->line_start;
            complete(h);
            return used;
        }
        h->line_start = i + 1;
    }
    h->scan = h->raw.len;
    if (h->raw.len > DKIM_MAX_HEADER_BYTES) {
        h->overflow = true;
        complete(h);
    }
    return n;
}

void dkim_headers_finish(struct dkim_headers *h)
{
    if (!h->done)
        complete(h);
}

void dkim_headers_free(struct dkim_headers *h)
{
    buf_free(&h->raw);
    free(h->f);
    h->f = NULL;
    h->n = 0;
}

bool dkim_field_name_is(const struct dkim_headers *h, size_t i, const char *name)
{
    size_t n = strlen(name);
    return h->f[i].name_len == n && strncasecmp(h->raw.data + h->f[i].off, name, n) == 0;
}

int dkim_hash_headers(const struct dkim_headers *h, const char (*names)[64], size_t n_names,
                      enum dkim_canon canon, const char *sigfield, size_t sigfield_len,
                      unsigned char digest[32])
{
    /* used[i]: field i already consumed by an earlier instance of its name */
    bool *used = calloc(h->n ? h->n : 1, sizeof *used);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    struct buf c = {0};
    int rc = -1;
    if (!used || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto out;
    for (size_t k = 0; k < n_names; k++) {
        size_t i = h->n;
        while (i > 0) {
            i--;
            if (!used[i] && dkim_field_name_is(h, i, names[k])) {
                used[i] = true;
                buf_reset(&c);
                if (dkim_canon_header(canon, h->raw.data + h->f[i].off, h->f[i].len, &c) < 0 ||
                    EVP_DigestUpdate(md, c.data, c.len) != 1)
                    goto out;
                break;
            }
        }
    }
    buf_reset(&c);
    if (dkim_canon_header(canon, sigfield, sigfield_len, &c) < 0 || c.len < 2 ||
        EVP_DigestUpdate(md, c.data, c.len - 2) != 1 || EVP_DigestFinal_ex(md, digest, NULL) != 1)
        goto out;
    rc = 0;
out:
    buf_free(&c);
    EVP_MD_CTX_free(md);
    free(used);
    return rc;
}
