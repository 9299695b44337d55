/* base64.c: RFC 4648 base64 (see base64.h). */
#include "core/base64.h"

#include <string.h>

int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

long base64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + (size_t)k] == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = base64_value(s[i + (size_t)k])) < 0) {
                return -1;
            }
        }
        unsigned long w = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
                          ((unsigned long)v[2] << 6) | (unsigned long)v[3];
        size_t n = 3 - (size_t)pad;
        if (o + n > cap)
            return -1;
        unsigned char bytes[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8),
                                  (unsigned char)w};
        memcpy(out + o, bytes, n);
        o += n;
    }
    return (long)o;
}

long base64_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t need = (len + 2) / 3 * 4;
    if (need + 1 > cap)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned long w = (unsigned long)in[i] << 16;
        if (i + 1 < len)
            w |= (unsigned long)in[i + 1] << 8;
        if (i + 2 < len)
            w |= in[i + 2];
        out[o++] = tab[(w >> 18) & 63];
        out[o++] = tab[(w >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(w >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[w & 63] : '=';
    }
    out[o] = '\0';
    return (long)o;
}
