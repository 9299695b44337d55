/* dns_rr.c: answer-section records as presentation text (see dns_rr.h). */
#include "core/dns_rr.h"

#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

/* The name at p (within abuf) into *out (malloc'd, "" for the root) and
 * its encoded length. -1 when malformed. */
static int name_at(const unsigned char *p, const unsigned char *abuf, size_t alen, char **out,
                   long *enc)
{
    char *s = NULL;
    if (ares_expand_name(p, abuf, (int)alen, &s, enc) != ARES_SUCCESS)
        return -1;
    *out = strdup(s);
    ares_free_string(s);
    return *out ? 0 : -1;
}

static int skip_name(const unsigned char *p, const unsigned char *abuf, size_t alen, long *enc)
{
    char *s = NULL;
    int rc = name_at(p, abuf, alen, &s, enc);
    free(s);
    return rc;
}

/* rdata [p, p + len) of `type` as text into b. */
static int rdata_text(const unsigned char *p, size_t len, int type, const unsigned char *abuf,
                      size_t alen, struct buf *b)
{
    char *name = NULL;
    long enc = 0;
    int rc = 0;
    switch (type) {
    case DNS_T_NS:
    case DNS_T_CNAME:
        if (len < 1 || name_at(p, abuf, alen, &name, &enc) < 0 || (size_t)enc > len)
            rc = -1;
        else
            rc = buf_printf(b, "%s.", name);
        break;
    case DNS_T_MX:
        if (len < 3 || name_at(p + 2, abuf, alen, &name, &enc) < 0 || (size_t)enc > len - 2)
            rc = -1;
        else
            rc = buf_printf(b, "%u %s.", get16(p), name);
        break;
    case DNS_T_SRV:
        if (len < 7 || name_at(p + 6, abuf, alen, &name, &enc) < 0 || (size_t)enc > len - 6)
            rc = -1;
        else
            rc = buf_printf(b, "%u %u %u %s.", get16(p), get16(p + 2), get16(p + 4), name);
        break;
    case DNS_T_TXT:
        for (size_t i = 0; i < len && rc == 0;) {
            size_t n = p[i];
            if (i + 1 + n > len)
                return -1;
            rc = buf_append(b, p + i + 1, n);
            i += 1 + n;
        }
        break;
    case DNS_T_CAA: {
        if (len < 2 || (size_t)p[1] + 2 > len)
            return -1;
        size_t tl = p[1];
        rc = buf_printf(b, "%u %.*s \"", p[0], (int)tl, (const char *)p + 2);
        for (size_t i = 2 + tl; i < len && rc == 0; i++) {
            if (p[i] == '"' || p[i] == '\\')
                rc = buf_append(b, "\\", 1);
            if (rc == 0)
                rc = buf_append(b, p + i, 1);
        }
        if (rc == 0)
            rc = buf_append(b, "\"", 1);
        break;
    }
    default:
        return -1;
    }
    free(name);
    return rc;
}

int dns_rr_parse(const unsigned char *abuf, size_t alen, int type, struct dns_rr_set *set)
{
    memset(set, 0, sizeof *set);
    if (alen < 12 || alen > 65535)
        return -1;
    unsigned qd = get16(abuf + 4), an = get16(abuf + 6);
    size_t off = 12;
    long enc;
    for (unsigned i = 0; i < qd; i++) {
        if (off >= alen || skip_name(abuf + off, abuf, alen, &enc) < 0 || off + (size_t)enc + 4 > alen)
            return -1;
        off += (size_t)enc + 4;
    }
    for (unsigned i = 0; i < an; i++) {
        if (off >= alen || skip_name(abuf + off, abuf, alen, &enc) < 0 || off + (size_t)enc + 10 > alen)
            goto bad;
        off += (size_t)enc;
        unsigned t = get16(abuf + off), rdlen = get16(abuf + off + 8);
        off += 10;
        if (off + rdlen > alen)
            goto bad;
        if ((int)t == type && set->n < DNS_RR_MAX) {
            struct buf b = {0};
            if (rdata_text(abuf + off, rdlen, type, abuf, alen, &b) < 0 || b.len > DNS_RR_TEXT_MAX) {
                buf_free(&b);
                goto bad;
            }
            set->text[set->n++] = b.data ? buf_steal_str(&b) : strdup("");
            if (!set->text[set->n - 1])
                goto bad;
        }
        off += rdlen;
    }
    return 0;
bad:
    dns_rr_set_free(set);
    return -1;
}

void dns_rr_set_free(struct dns_rr_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->text[i]);
    memset(set, 0, sizeof *set);
}
