/* mime.c: the small MIME reader the filter needs (RFC 5322 header fields,
 * RFC 2045 Content-Type / Content-Transfer-Encoding, RFC 2046 multipart
 * boundaries). Works in place on the caller's bytes; only mime_decode()
 * allocates, and never more than the part it decodes. Physical header lines
 * and header blocks are bounded by LIM_MIME_HEADER_LINE/_BYTES. */
#include "core/base64.h"
#include "filter/filter_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

struct span span_trim(struct span s)
{
    while (s.n && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

bool span_eq_lit(struct span s, const char *lit, bool nocase)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return false;
    return nocase ? strncasecmp(s.p, lit, n) == 0 : memcmp(s.p, lit, n) == 0;
}

void hdr_iter_init(struct hdr_iter *it, struct span block)
{
    it->p = block.p;
    it->end = block.p + block.n;
}

/* Moves *q past the next CRLF (or to end); -1 if the line is too long. */
static int next_line(const char **q, const char *end)
{
    size_t avail = (size_t)(end - *q);
    size_t window = avail < LIM_MIME_HEADER_LINE + 2 ? avail : LIM_MIME_HEADER_LINE + 2;
    const char *crlf = memmem(*q, window, "\r\n", 2);
    if (!crlf) {
        if (avail > LIM_MIME_HEADER_LINE)
            return -1;
        *q = end;
        return 0;
    }
    *q = crlf + 2;
    return 0;
}

int hdr_next(struct hdr_iter *it, struct hdr_field *f)
{
    if (it->p >= it->end)
        return 0;
    const char *start = it->p, *q = it->p;
    if (next_line(&q, it->end) < 0)
        return -1;
    const char *first_end = q;
    while (q < it->end && is_wsp(*q))
        if (next_line(&q, it->end) < 0)
            return -1;
    f->whole = (struct span){start, (size_t)(q - start)};
    const char *colon = memchr(start, ':', (size_t)(first_end - start));
    if (!colon) {
        f->name = (struct span){start, 0};
        f->value = (struct span){first_end, 0};
    } else {
        const char *ne = colon;
        while (ne > start && is_wsp(ne[-1]))
            ne--;
        f->name = (struct span){start, (size_t)(ne - start)};
        const char *ve = q;
        if (ve - colon >= 3 && ve[-2] == '\r' && ve[-1] == '\n')
            ve -= 2;
        f->value = (struct span){colon + 1, (size_t)(ve - colon - 1)};
    }
    it->p = q;
    return 1;
}

int hdr_find(struct span block, const char *name, struct span *value)
{
    struct hdr_iter it;
    struct hdr_field f;
    int rc;
    hdr_iter_init(&it, block);
    while ((rc = hdr_next(&it, &f)) > 0) {
        if (f.name.n && span_eq_lit(f.name, name, true)) {
            *value = f.value;
            return 1;
        }
    }
    return rc;
}

void hdr_value_text(struct span v, char *out, size_t cap)
{
    struct span t = span_trim(v);
    size_t o = 0;
    for (size_t i = 0; i < t.n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)t.p[i];
        if (c == '\r' || c == '\n')
            continue;
        out[o++] = (c == '\t') ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cap)
        out[o] = '\0';
}

int mime_split(struct span e, struct span *hdr, struct span *body)
{
    if (e.n >= 2 && e.p[0] == '\r' && e.p[1] == '\n') {
        *hdr = (struct span){e.p, 0};
        *body = (struct span){e.p + 2, e.n - 2};
        return 0;
    }
    size_t window = e.n < LIM_MIME_HEADER_BYTES + 4 ? e.n : LIM_MIME_HEADER_BYTES + 4;
    const char *sep = memmem(e.p, window, "\r\n\r\n", 4);
    if (!sep) {
        if (e.n > LIM_MIME_HEADER_BYTES)
            return -1;
        *hdr = e;
        *body = (struct span){e.p + e.n, 0};
        return 0;
    }
    size_t hn = (size_t)(sep - e.p) + 2;
    *hdr = (struct span){e.p, hn};
    *body = (struct span){sep + 4, e.n - hn - 2};
    return 0;
}

/* ---- Content-Type (RFC 2045 §5.1) ---- */

struct lex {
    const char *p, *end;
};

static void lex_skip_cfws(struct lex *l)
{
    while (l->p < l->end) {
        if (is_space(*l->p)) {
            l->p++;
        } else if (*l->p == '(') {
            int depth = 0;
            while (l->p < l->end) {
                char c = *l->p++;
                if (c == '\\' && l->p < l->end)
                    l->p++;
                else if (c == '(')
                    depth++;
                else if (c == ')' && --depth == 0)
                    break;
            }
        } else {
            return;
        }
    }
}

static bool is_token_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* Reads a token (lower-cased when `lower`); false if none or too long. */
static bool lex_token(struct lex *l, char *out, size_t cap, bool lower)
{
    size_t o = 0;
    while (l->p < l->end && is_token_char((unsigned char)*l->p)) {
        if (o + 1 >= cap)
            return false;
        char c = *l->p++;
        out[o++] = lower ? (char)tolower((unsigned char)c) : c;
    }
    out[o] = '\0';
    return o > 0;
}

static bool lex_quoted(struct lex *l, char *out, size_t cap)
{
    size_t o = 0;
    l->p++; /* opening quote */
    while (l->p < l->end && *l->p != '"') {
        char c = *l->p++;
        if (c == '\r' || c == '\n')
            continue;
        if (c == '\\' && l->p < l->end)
            c = *l->p++;
        if (o + 1 >= cap)
            return false;
        out[o++] = c;
    }
    if (l->p >= l->end)
        return false;
    l->p++;
    out[o] = '\0';
    return true;
}

static bool lex_char(struct lex *l, char c)
{
    lex_skip_cfws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        lex_skip_cfws(l);
        return true;
    }
    return false;
}

/* Skips a malformed parameter up to the next ';' outside quotes. */
static void skip_param(struct lex *l)
{
    while (l->p < l->end && *l->p != ';') {
        if (*l->p++ == '"') {
            while (l->p < l->end && *l->p != '"')
                l->p += (*l->p == '\\' && l->end - l->p > 1) ? 2 : 1;
            if (l->p < l->end)
                l->p++;
        }
    }
}

/* Parameters after the subtype; only `boundary` is kept. A malformed
 * parameter is skipped, as mail readers do. */
static void parse_params(struct lex *l, struct content_type *ct)
{
    char name[MIME_TOKEN_MAX], value[MIME_BOUNDARY_MAX + 1];
    for (;;) {
        lex_skip_cfws(l);
        if (l->p >= l->end)
            return;
        if (*l->p != ';') {
            skip_param(l);
            continue;
        }
        l->p++;
        lex_skip_cfws(l);
        if (!lex_token(l, name, sizeof name, true) || !lex_char(l, '='))
            continue;
        bool ok = (l->p < l->end && *l->p == '"') ? lex_quoted(l, value, sizeof value)
                                                    : lex_token(l, value, sizeof value, false);
        if (ok && !ct->has_boundary && strcmp(name, "boundary") == 0 && value[0]) {
            memcpy(ct->boundary, value, sizeof value);
            ct->has_boundary = true;
        }
    }
}

int mime_content_type(struct span hdr, struct content_type *ct)
{
    *ct = (struct content_type){.type = "text", .subtype = "plain"};
    struct span v;
    int rc = hdr_find(hdr, "Content-Type", &v);
    if (rc <= 0)
        return rc;
    struct lex l = {v.p, v.p + v.n};
    struct content_type t = {0};
    lex_skip_cfws(&l);
    if (!lex_token(&l, t.type, sizeof t.type, true) || !lex_char(&l, '/') ||
        !lex_token(&l, t.subtype, sizeof t.subtype, true))
        return 0; /* unparsable: text/plain, as RFC 2045 §5.2 says */
    parse_params(&l, &t);
    *ct = t;
    return 0;
}

bool ct_is(const struct content_type *ct, const char *type, const char *subtype)
{
    return strcmp(ct->type, type) == 0 && (!subtype || strcmp(ct->subtype, subtype) == 0);
}

enum mime_cte mime_cte(struct span hdr)
{
    struct span v;
    if (hdr_find(hdr, "Content-Transfer-Encoding", &v) <= 0)
        return CTE_IDENTITY;
    struct lex l = {v.p, v.p + v.n};
    char tok[MIME_TOKEN_MAX];
    lex_skip_cfws(&l);
    if (!lex_token(&l, tok, sizeof tok, true))
        return CTE_IDENTITY;
    if (strcmp(tok, "base64") == 0)
        return CTE_BASE64;
    if (strcmp(tok, "quoted-printable") == 0)
        return CTE_QUOTED_PRINTABLE;
    return CTE_IDENTITY;
}

/* ---- multipart (RFC 2046 §5.1.1) ---- */

/* Is there a delimiter line "--boundary[--]" at q? */
static bool delim_at(const char *q, const char *end, const char *b, size_t blen,
                     const char **after, bool *close)
{
    if ((size_t)(end - q) < 2 + blen || q[0] != '-' || q[1] != '-' || memcmp(q + 2, b, blen) != 0)
        return false;
    const char *r = q + 2 + blen;
    if (end - r >= 2 && r[0] == '-' && r[1] == '-') {
        *close = true;
        *after = end;
        return true;
    }
    while (r < end && is_wsp(*r))
        r++;
    if (r == end || (end - r >= 2 && r[0] == '\r' && r[1] == '\n')) {
        *close = false;
        *after = r == end ? end : r + 2;
        return true;
    }
    return false;
}

/* Next delimiter from p; returns the CRLF before it (or p when at_start). */
static const char *find_delim(const char *p, const char *end, const char *b, size_t blen,
                              bool at_start, const char **after, bool *close)
{
    if (at_start && delim_at(p, end, b, blen, after, close))
        return p;
    const char *q;
    while (p < end && (q = memmem(p, (size_t)(end - p), "\r\n--", 4)) != NULL) {
        if (delim_at(q + 2, end, b, blen, after, close))
            return q;
        p = q + 2;
    }
    return NULL;
}

size_t mime_parts(struct span body, const char *boundary, struct span *parts, size_t max)
{
    const char *end = body.p + body.n, *after;
    size_t blen = strlen(boundary), count = 0;
    bool close;
    if (max > LIM_MIME_PARTS)
        max = LIM_MIME_PARTS;
    if (!find_delim(body.p, end, boundary, blen, true, &after, &close))
        return 0;
    while (!close && count <= max) {
        const char *start = after;
        const char *from = (after - body.p >= 2 && after[-2] == '\r') ? after - 2 : after;
        const char *next = find_delim(from, end, boundary, blen, false, &after, &close);
        const char *stop = next ? next : end;
        if (stop < start)
            stop = start;
        if (count < max)
            parts[count] = (struct span){start, (size_t)(stop - start)};
        count++;
        if (!next)
            break;
    }
    return count;
}

/* ---- Content-Transfer-Encoding decoding ---- */

/* Lenient, like mail readers: skips non-alphabet bytes, stops at '='. */
static size_t decode_base64(struct span in, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < in.n && in.p[i] != '='; i++) {
        int v = base64_value((unsigned char)in.p[i]);
        if (v < 0)
            continue;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    return o;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)toupper((unsigned char)c);
    return (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

static size_t decode_qp(struct span in, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < in.n; i++) {
        char c = in.p[i];
        if (c == '=' && i + 2 < in.n && in.p[i + 1] == '\r' && in.p[i + 2] == '\n') {
            i += 2; /* soft line break */
        } else if (c == '=' && i + 2 < in.n && hex_value(in.p[i + 1]) >= 0 &&
                   hex_value(in.p[i + 2]) >= 0) {
            out[o++] = (char)(hex_value(in.p[i + 1]) * 16 + hex_value(in.p[i + 2]));
            i += 2;
        } else {
            out[o++] = c;
        }
    }
    return o;
}

int mime_decode(enum mime_cte cte, struct span in, struct span *out, char **owned)
{
    *owned = NULL;
    if (cte == CTE_IDENTITY || in.n == 0) {
        *out = in;
        return 0;
    }
    char *buf = malloc(in.n);
    if (!buf)
        return -1;
    size_t n = cte == CTE_BASE64 ? decode_base64(in, buf) : decode_qp(in, buf);
    *owned = buf;
    *out = (struct span){buf, n};
    return 0;
}
