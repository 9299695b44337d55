/* address.c: the first address of an RFC 5322 address-list (the From:
 * header), lower-cased. Skips display names (atoms, quoted strings,
 * encoded words), comments (nested) and folding; understands angle
 * brackets (with an obsolete route), groups ("name: a@b, c@d;") and
 * domain literals. Output is local@domain as written, without CFWS. */
#include "filter/filter.h"
#include "filter/filter_int.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

struct alex {
    const char *p, *end;
};

struct abuf {
    char s[FILTER_ADDR_MAX];
    size_t n;
    bool over;
};

static void ab_put(struct abuf *a, const char *p, size_t n)
{
    if (a->n + n >= sizeof a->s) {
        a->over = true;
        return;
    }
    memcpy(a->s + a->n, p, n);
    a->n += n;
}

static void skip_cfws(struct alex *l)
{
    while (l->p < l->end) {
        char c = *l->p;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            l->p++;
        } else if (c == '(') {
            int depth = 0;
            while (l->p < l->end) {
                char d = *l->p++;
                if (d == '\\' && l->p < l->end)
                    l->p++;
                else if (d == '(')
                    depth++;
                else if (d == ')' && --depth == 0)
                    break;
            }
        } else {
            return;
        }
    }
}

static bool is_atext(unsigned char c)
{
    return c > 0x20 && c != 0x7f && !strchr("()<>[]:;@\\,.\"", c);
}

/* An atom or a quoted string (kept with its quotes) or a dot. */
static bool take_word(struct alex *l, struct abuf *a)
{
    const char *s = l->p;
    if (*l->p == '"') {
        l->p++;
        while (l->p < l->end && *l->p != '"') {
            if (*l->p == '\\' && l->p + 1 < l->end)
                l->p++;
            l->p++;
        }
        if (l->p >= l->end)
            return false;
        l->p++;
    } else if (*l->p == '.') {
        l->p++;
    } else {
        while (l->p < l->end && is_atext((unsigned char)*l->p))
            l->p++;
    }
    ab_put(a, s, (size_t)(l->p - s));
    return l->p > s;
}

/* local-part words and dots until something else; false on bad quoting. */
static bool take_words(struct alex *l, struct abuf *a)
{
    for (;;) {
        skip_cfws(l);
        if (l->p >= l->end)
            return true;
        unsigned char c = (unsigned char)*l->p;
        if (c != '"' && c != '.' && !is_atext(c))
            return true;
        if (!take_word(l, a))
            return false;
    }
}

static bool take_domain(struct alex *l, struct abuf *a)
{
    skip_cfws(l);
    if (l->p < l->end && *l->p == '[') {
        const char *s = l->p;
        const char *close = memchr(s, ']', (size_t)(l->end - s));
        if (!close)
            return false;
        l->p = close + 1;
        ab_put(a, s, (size_t)(l->p - s));
        return true;
    }
    size_t before = a->n;
    while (l->p < l->end && (*l->p == '.' || is_atext((unsigned char)*l->p))) {
        take_word(l, a);
        skip_cfws(l);
    }
    return a->n > before;
}

/* After '<': [route:] local@domain '>' */
static bool take_angle(struct alex *l, struct abuf *a)
{
    skip_cfws(l);
    if (l->p < l->end && *l->p == '@') {
        const char *colon = memchr(l->p, ':', (size_t)(l->end - l->p));
        if (!colon)
            return false;
        l->p = colon + 1;
    }
    if (!take_words(l, a) || a->n == 0 || l->p >= l->end || *l->p != '@')
        return false;
    l->p++;
    ab_put(a, "@", 1);
    if (!take_domain(l, a))
        return false;
    skip_cfws(l);
    if (l->p < l->end && *l->p == '>')
        l->p++;
    return true;
}

static int emit(const struct abuf *a, char out[FILTER_ADDR_MAX])
{
    if (a->over || a->n == 0)
        return -1;
    for (size_t i = 0; i < a->n; i++)
        out[i] = (char)tolower((unsigned char)a->s[i]);
    out[a->n] = '\0';
    return 0;
}

int filter_parse_first_address(const char *v, size_t n, char out[FILTER_ADDR_MAX])
{
    struct alex l = {v, v + n};
    struct abuf a = {.n = 0};
    out[0] = '\0';
    while (skip_cfws(&l), l.p < l.end) {
        char c = *l.p;
        if (c == '<') {
            l.p++;
            a = (struct abuf){.n = 0};
            if (take_angle(&l, &a))
                return emit(&a, out);
            const char *gt = memchr(l.p, '>', (size_t)(l.end - l.p));
            l.p = gt ? gt + 1 : l.end;
            a = (struct abuf){.n = 0};
        } else if (c == '@' && a.n > 0) {
            l.p++;
            ab_put(&a, "@", 1);
            bool ok = take_domain(&l, &a);
            skip_cfws(&l);
            if (l.p < l.end && *l.p == '<') { /* it was a display name */
                a = (struct abuf){.n = 0};
                continue;
            }
            return ok ? emit(&a, out) : -1;
        } else if (c == '"' || c == '.' || is_atext((unsigned char)c)) {
            if (!take_word(&l, &a))
                return -1;
        } else { /* ':' group start, ',' ';' separators, stray specials */
            l.p++;
            a = (struct abuf){.n = 0};
        }
    }
    return -1;
}

bool addr_eq_nocase(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

int filter_from_address(const char *msg, size_t len, char *out, char *raw_out, size_t raw_cap)
{
    struct span hdr, body, v;
    if (raw_cap)
        raw_out[0] = '\0';
    out[0] = '\0';
    if (mime_split((struct span){msg, len}, &hdr, &body) < 0)
        return -1;
    int rc = hdr_find(hdr, "From", &v);
    if (rc <= 0)
        return rc;
    hdr_value_text(v, raw_out, raw_cap);
    return filter_parse_first_address(v.p, v.n, out) == 0 ? 1 : 0;
}
