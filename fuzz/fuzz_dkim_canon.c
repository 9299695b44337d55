/* fuzz_dkim_canon.c: differential checks of the canonicalisers.
 *  - body, simple and relaxed: feeding in chunks (sizes taken from the
 *    input) gives the same bytes as feeding all at once;
 *  - both body canonicalisations are idempotent, and so is relaxed header
 *    canonicalisation of a well-formed field (CR and LF only as CRLF, and
 *    that only before WSP or at the end: what the header splitter gives;
 *    stray CR/LF can form new CRLF pairs once one is unfolded);
 *  - relaxed body output has no WSP before a CRLF, no WSP run, and ends in
 *    CRLF unless empty. */
#include "dkim/dkim.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void collect(void *ctx, const char *p, size_t n)
{
    if (buf_append(ctx, p, n) < 0)
        abort();
}

static void canon(enum dkim_canon c, const char *p, size_t n, const uint8_t *chunks,
                  size_t nchunks, struct buf *out)
{
    struct dkim_bodycanon bc;
    dkim_bodycanon_init(&bc, c, collect, out);
    size_t off = 0, k = 0;
    while (off < n) {
        size_t step = nchunks ? (size_t)(chunks[k++ % nchunks] % 17) + 1 : n - off;
        if (step > n - off)
            step = n - off;
        dkim_bodycanon_feed(&bc, p + off, step);
        off += step;
    }
    dkim_bodycanon_finish(&bc);
}

static bool same(const struct buf *a, const struct buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void check_relaxed_shape(const struct buf *o)
{
    if (o->len == 0)
        return;
    if (o->len < 2 || o->data[o->len - 2] != '\r' || o->data[o->len - 1] != '\n')
        abort();
    for (size_t i = 1; i < o->len; i++) {
        bool wsp = o->data[i - 1] == ' ' || o->data[i - 1] == '\t';
        if (o->data[i - 1] == '\t' || (wsp && (o->data[i] == ' ' || o->data[i] == '\t')))
            abort();
        if (wsp && o->data[i] == '\r' && i + 1 < o->len && o->data[i + 1] == '\n')
            abort();
    }
}

static bool well_formed_field(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            return false;
        if (p[i] != '\r')
            continue;
        if (i + 1 >= n || p[i + 1] != '\n')
            return false;
        if (i + 2 < n && p[i + 2] != ' ' && p[i + 2] != '\t')
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    size_t nchunks = data[0] % 8;
    if (nchunks + 1 > size)
        return 0;
    const uint8_t *chunks = data + 1;
    const char *p = (const char *)data + 1 + nchunks;
    size_t n = size - 1 - nchunks;
    for (int c = DKIM_CANON_SIMPLE; c <= DKIM_CANON_RELAXED; c++) {
        struct buf one = {0}, chunked = {0}, twice = {0};
        canon((enum dkim_canon)c, p, n, NULL, 0, &one);
        canon((enum dkim_canon)c, p, n, chunks, nchunks, &chunked);
        if (!same(&one, &chunked))
            abort();
        canon((enum dkim_canon)c, one.data ? one.data : "", one.len, NULL, 0, &twice);
        if (!same(&one, &twice))
            abort();
        if (c == DKIM_CANON_RELAXED)
            check_relaxed_shape(&one);
        buf_free(&one);
        buf_free(&chunked);
        buf_free(&twice);
    }
    struct buf h1 = {0}, h2 = {0};
    if (!well_formed_field(p, n))
        return 0;
    if (dkim_canon_header(DKIM_CANON_RELAXED, p, n, &h1) < 0 ||
        dkim_canon_header(DKIM_CANON_RELAXED, h1.data, h1.len, &h2) < 0 || !same(&h1, &h2))
        abort();
    buf_free(&h1);
    buf_free(&h2);
    return 0;
}
