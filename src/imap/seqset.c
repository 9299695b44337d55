/* seqset.c: sequence-set parsing, lookup and compact output (seqset.h). */
#include "imap/seqset.h"

#include <stdlib.h>
#include <string.h>

static int parse_num(const char **p, const char *end, uint32_t star, uint32_t *v)
{
    if (*p < end && **p == '*') {
        (*p)++;
        *v = star;
        return 0;
    }
    uint64_t n = 0;
    const char *s = *p;
    while (*p < end && **p >= '0' && **p <= '9') {
        n = n * 10 + (uint64_t)(**p - '0');
        if (n > UINT32_MAX)
            return -1;
        (*p)++;
    }
    if (*p == s || n == 0)
        return -1;
    *v = (uint32_t)n;
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const struct seq_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void merge(struct seqset *s)
{
    if (s->n == 0)
        return;
    qsort(s->r, s->n, sizeof *s->r, cmp_range);
    size_t k = 0;
    for (size_t i = 1; i < s->n; i++) {
        if ((uint64_t)s->r[i].lo <= (uint64_t)s->r[k].hi + 1) {
            if (s->r[i].hi > s->r[k].hi)
                s->r[k].hi = s->r[i].hi;
        } else {
            s->r[++k] = s->r[i];
        }
    }
    s->n = k + 1;
}

int seqset_parse(const char *text, size_t len, uint32_t star, struct seqset *out)
{
    memset(out, 0, sizeof *out);
    const char *p = text, *end = text + len;
    size_t cap = 0;
    while (p < end) {
        uint32_t a, b;
        if (parse_num(&p, end, star, &a) < 0)
            goto bad;
        b = a;
        if (p < end && *p == ':') {
            p++;
            if (parse_num(&p, end, star, &b) < 0)
                goto bad;
        }
        if (p < end && *p++ != ',')
            goto bad;
        if (p == end && p[-1] == ',')
            goto bad;
        if (out->n == cap) {
            if (cap >= SEQSET_MAX_RANGES)
                goto bad;
            cap = cap ? cap * 2 : 4;
            struct seq_range *r = realloc(out->r, cap * sizeof *r);
            if (!r)
                goto bad;
            out->r = r;
        }
        out->r[out->n++] = (struct seq_range){a < b ? a : b, a < b ? b : a};
    }
    if (out->n == 0)
        goto bad;
    merge(out);
    return 0;
bad:
    seqset_free(out);
    return -1;
}

bool seqset_contains(const struct seqset *s, uint32_t v)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v < s->r[mid].lo)
            hi = mid;
        else if (v > s->r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

void seqset_free(struct seqset *s)
{
    free(s->r);
    s->r = NULL;
    s->n = 0;
}

void seqset_write(struct buf *b, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        if (j == i)
            buf_printf(b, "%s%u", i ? "," : "", v[i]);
        else
            buf_printf(b, "%s%u:%u", i ? "," : "", v[i], v[j]);
        i = j + 1;
    }
}
