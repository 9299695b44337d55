/* util.c: URL percent-encoding and -decoding, query parameters, and the
 * address list that guards /metrics. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int url_decode(const char *src, size_t len, bool plus_space, size_t max, struct buf *out)
{
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval(src[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0' || out->len >= max || buf_append(out, &c, 1) < 0)
            return -1;
    }
    return 0;
}

const char *url_query_param(const char *url, const char *name, size_t *len)
{
    const char *q = strchr(url, '?');
    size_t nl = strlen(name);
    while (q) {
        q++;
        size_t seg = strcspn(q, "&#");
        if (seg > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
            *len = seg - nl - 1;
            return q + nl + 1;
        }
        if (q[seg] != '&')
            break;
        q += seg;
    }
    return NULL;
}

int url_encode(struct buf *out, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved || (c && strchr(keep, c))) {
            rc |= buf_append(out, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc |= buf_append(out, e, 3);
        }
    }
    return rc ? -1 : 0;
}

/* Parses "ip" or "ip/bits" into family, 16 address bytes and prefix bits. */
static bool parse_net(const char *s, size_t len, int *fam, unsigned char a[16], int *bits)
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *slash = strchr(tmp, '/');
    *bits = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1 || b < 0 || b > 128)
            return false;
        *bits = (int)b;
    }
    memset(a, 0, 16);
    if (inet_pton(AF_INET, tmp, a) == 1)
        *fam = AF_INET;
    else if (inet_pton(AF_INET6, tmp, a) == 1)
        *fam = AF_INET6;
    else
        return false;
    int max = *fam == AF_INET ? 32 : 128;
    if (*bits > max)
        return false;
    if (*bits < 0)
        *bits = max;
    return true;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

/* An IPv4-mapped IPv6 address becomes plain IPv4. */
static bool unmap(int *fam, unsigned char a[16])
{
    static const unsigned char pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (*fam != AF_INET6 || memcmp(a, pre, 12) != 0)
        return false;
    memmove(a, a + 12, 4);
    memset(a + 4, 0, 12);
    *fam = AF_INET;
    return true;
}

bool ip_allowed(const char *ip, const char *list)
{
    int fam, bits;
    unsigned char a[16];
    if (!ip || !parse_net(ip, strlen(ip), &fam, a, &bits))
        return false;
    unmap(&fam, a);
    static const unsigned char v6lo[16] = {[15] = 1};
    if ((fam == AF_INET && a[0] == 127) || (fam == AF_INET6 && memcmp(a, v6lo, 16) == 0))
        return true;
    for (const char *p = list ? list : ""; *p;) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        int nf, nb;
        unsigned char na[16];
        if (n && parse_net(p, n, &nf, na, &nb)) {
            if (unmap(&nf, na))
                nb = nb >= 96 ? nb - 96 : 0;
            if (nf == fam && prefix_match(a, na, nb))
                return true;
        }
        p += n;
    }
    return false;
}
