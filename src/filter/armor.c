/* armor.c: ASCII armour of an OpenPGP message (RFC 4880 §6.2, RFC 9580
 * §6.2), checked line by line in place. The base64 is decoded strictly
 * (alphabet only, padding required, zero trailing bits) in a stream straight
 * into the packet walker, so no binary copy of the payload is ever made.
 * Layout accepted:
 *   -----BEGIN PGP MESSAGE-----CRLF
 *   Key: value CRLF ...   armour headers (outgoing: none allowed)
 *   CRLF                  blank line (tolerated if missing, as before)
 *   base64 lines, blank lines tolerated
 *   =XXXX CRLF            optional CRC-24 line, last; value not verified
 *   -----END PGP MESSAGE-----   then nothing but CR/LF */
#include "core/base64.h"
#include "filter/filter.h"
#include "filter/filter_int.h"

#include <string.h>

#define ARMOR_BEGIN "-----BEGIN PGP MESSAGE-----\r\n"
#define ARMOR_END "-----END PGP MESSAGE-----"

struct b64_stream {
    uint32_t acc;
    int nchars; /* characters of the current quad */
    int pad;    /* '=' seen in the current quad */
    bool done;  /* the padded final quad is complete */
    bool bad;
    struct pgp_walk *walk;
};

static void b64_quad_done(struct b64_stream *s)
{
    uint8_t out[3] = {(uint8_t)(s->acc >> 16), (uint8_t)(s->acc >> 8), (uint8_t)s->acc};
    size_t n = 3;
    if (s->pad == 1) {
        n = 2;
        s->bad |= (s->acc & 0xff) != 0;
    } else if (s->pad == 2) {
        n = 1;
        s->bad |= (s->acc & 0xffff) != 0;
    }
    s->done = s->pad > 0;
    s->acc = 0;
    s->nchars = 0;
    s->pad = 0;
    if (!s->bad)
        pgp_walk_feed(s->walk, out, n);
}

static void b64_char(struct b64_stream *s, unsigned char c)
{
    if (s->done) {
        s->bad = true;
        return;
    }
    if (c == '=') {
        if (s->nchars < 2) {
            s->bad = true;
            return;
        }
        s->pad++;
        s->acc <<= 6;
    } else {
        int v = base64_value(c);
        if (v < 0 || s->pad) {
            s->bad = true;
            return;
        }
        s->acc = (s->acc << 6) | (uint32_t)v;
    }
    if (++s->nchars == 4)
        b64_quad_done(s);
}

static bool is_crc_line(const char *l, size_t n)
{
    if (n != 5 || l[0] != '=')
        return false;
    for (size_t i = 1; i < 5; i++)
        if (base64_value((unsigned char)l[i]) < 0)
            return false;
    return true;
}

/* Finds [q, endm): the lines between the BEGIN line and the END line. */
static bool armor_frame(const char *p, size_t n, const char **q, const char **endm)
{
    size_t bl = strlen(ARMOR_BEGIN), el = strlen(ARMOR_END);
    if (n < bl || memcmp(p, ARMOR_BEGIN, bl) != 0)
        return false;
    const char *start = p + bl, *e = p + n;
    while (e > start && (e[-1] == '\r' || e[-1] == '\n'))
        e--;
    if ((size_t)(e - start) < el || memcmp(e - el, ARMOR_END, el) != 0)
        return false;
    const char *m = e - el;
    if (m != start && !(m - start >= 2 && m[-2] == '\r' && m[-1] == '\n'))
        return false;
    *q = start;
    *endm = m;
    return true;
}

bool filter_armor_ok(const char *p, size_t n, enum filter_direction dir)
{
    const char *q, *endm;
    if (!p || !armor_frame(p, n, &q, &endm))
        return false;
    struct pgp_walk walk;
    pgp_walk_init(&walk);
    struct b64_stream s = {.walk = &walk};
    bool in_headers = true, crc_seen = false;
    while (q < endm) {
        const char *eol = memmem(q, (size_t)(endm - q), "\r\n", 2);
        if (!eol)
            return false; /* cannot happen: the END line starts after a CRLF */
        size_t ln = (size_t)(eol - q);
        const char *line = q;
        q = eol + 2;
        if (in_headers) {
            if (ln == 0) {
                in_headers = false;
                continue;
            }
            if (memchr(line, ':', ln)) {
                if (dir == FILTER_OUTGOING)
                    return false; /* metadata minimisation: no armour headers */
                continue;
            }
            in_headers = false; /* no blank line: data starts here */
        }
        if (ln == 0)
            continue;
        if (crc_seen)
            return false;
        if (is_crc_line(line, ln)) {
            crc_seen = true;
            continue;
        }
        for (size_t i = 0; i < ln && !s.bad; i++)
            b64_char(&s, (unsigned char)line[i]);
        if (s.bad || walk.st == PW_FAIL)
            return false;
    }
    return s.nchars == 0 && pgp_walk_finish(&walk);
}
