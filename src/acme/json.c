/* json.c: the bounded JSON reader of acme_json.h (RFC 8259 grammar;
 * numbers are only checked, never converted). Recursive descent, with the
 * depth bounded by ACME_JSON_DEPTH. */
#include "acme/acme_json.h"

#include <string.h>

struct parser {
    const char *s;
    size_t len, pos;
    struct ajson_tok *tok;
    size_t cap, n;
};

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int new_tok(struct parser *p, enum ajson_type t, size_t start)
{
    if (p->n >= p->cap || start > UINT32_MAX)
        return -1;
    p->tok[p->n] = (struct ajson_tok){.type = (uint8_t)t, .start = (uint32_t)start};
    return (int)p->n++;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int parse_string(struct parser *p)
{
    size_t start = ++p->pos; /* after the quote */
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            int t = new_tok(p, AJ_STR, start);
            if (t < 0)
                return -1;
            p->tok[t].len = (uint32_t)(p->pos - start);
            p->tok[t].next = (uint32_t)p->n;
            p->pos++;
            return t;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (p->pos + 1 >= p->len)
                return -1;
            char e = p->s[p->pos + 1];
            if (e == 'u') {
                if (p->pos + 6 > p->len)
                    return -1;
                for (int i = 2; i < 6; i++)
                    if (!is_hex(p->s[p->pos + (size_t)i]))
                        return -1;
                p->pos += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return -1;
            p->pos += 2;
            continue;
        }
        p->pos++;
    }
    return -1;
}

static size_t digits(struct parser *p)
{
    size_t k = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++, k++;
    return k;
}

static int parse_number(struct parser *p)
{
    size_t start = p->pos;
    if (p->s[p->pos] == '-')
        p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '0')
        p->pos++;
    else if (digits(p) == 0)
        return -1;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        if (digits(p) == 0)
            return -1;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (digits(p) == 0)
            return -1;
    }
    int t = new_tok(p, AJ_NUM, start);
    if (t >= 0) {
        p->tok[t].len = (uint32_t)(p->pos - start);
        p->tok[t].next = (uint32_t)p->n;
    }
    return t;
}

static int parse_literal(struct parser *p, const char *word, enum ajson_type type)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return -1;
    int t = new_tok(p, type, p->pos);
    if (t >= 0) {
        p->tok[t].len = (uint32_t)n;
        p->tok[t].next = (uint32_t)p->n;
    }
    p->pos += n;
    return t;
}

static int parse_value(struct parser *p, int depth);

/* An object or an array; the opening bracket is at p->pos. */
static int parse_container(struct parser *p, int depth, bool obj)
{
    if (depth >= ACME_JSON_DEPTH)
        return -1;
    int t = new_tok(p, obj ? AJ_OBJ : AJ_ARR, p->pos);
    if (t < 0)
        return -1;
    char close = obj ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            skip_ws(p);
            if (obj) {
                if (p->pos >= p->len || p->s[p->pos] != '"' || parse_string(p) < 0)
                    return -1;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':')
                    return -1;
                p->pos++;
            }
            if (parse_value(p, depth + 1) < 0)
                return -1;
            p->tok[t].count++;
            skip_ws(p);
            if (p->pos >= p->len)
                return -1;
            if (p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->s[p->pos] != close)
                return -1;
            p->pos++;
            break;
        }
    }
    p->tok[t].len = (uint32_t)(p->pos - p->tok[t].start);
    p->tok[t].next = (uint32_t)p->n;
    return t;
}

static int parse_value(struct parser *p, int depth)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return -1;
    switch (p->s[p->pos]) {
    case '{': return parse_container(p, depth, true);
    case '[': return parse_container(p, depth, false);
    case '"': return parse_string(p);
    case 't': return parse_literal(p, "true", AJ_TRUE);
    case 'f': return parse_literal(p, "false", AJ_FALSE);
    case 'n': return parse_literal(p, "null", AJ_NULL);
    default:
        if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
            return parse_number(p);
        return -1;
    }
}

int ajson_parse(struct ajson *j, const char *text, size_t len, struct ajson_tok *toks,
                size_t cap)
{
    *j = (struct ajson){0};
    if (len > UINT32_MAX || !text)
        return -1;
    struct parser p = {.s = text, .len = len, .tok = toks, .cap = cap};
    if (parse_value(&p, 0) < 0)
        return -1;
    skip_ws(&p);
    if (p.pos != len)
        return -1;
    j->text = text;
    j->tok = toks;
    j->n = p.n;
    return 0;
}

static bool valid(const struct ajson *j, int t, enum ajson_type type)
{
    return t >= 0 && (size_t)t < j->n && j->tok[t].type == type;
}

int ajson_get(const struct ajson *j, int obj, const char *key)
{
    if (!valid(j, obj, AJ_OBJ))
        return -1;
    size_t klen = strlen(key);
    size_t k = (size_t)obj + 1;
    for (uint32_t i = 0; i < j->tok[obj].count && k < j->n; i++) {
        size_t v = k + 1;
        if (v >= j->n)
            return -1;
        const struct ajson_tok *kt = &j->tok[k];
        if (kt->len == klen && memcmp(j->text + kt->start, key, klen) == 0)
            return (int)v;
        k = j->tok[v].next;
    }
    return -1;
}

int ajson_at(const struct ajson *j, int arr, size_t i)
{
    if (!valid(j, arr, AJ_ARR) || i >= j->tok[arr].count)
        return -1;
    size_t k = (size_t)arr + 1;
    while (i-- > 0 && k < j->n)
        k = j->tok[k].next;
    return k < j->n ? (int)k : -1;
}

static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static size_t utf8_put(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

long ajson_str(const struct ajson *j, int t, char *out, size_t cap)
{
    if (!valid(j, t, AJ_STR) || cap == 0)
        return -1;
    const char *s = j->text + j->tok[t].start;
    size_t n = j->tok[t].len, o = 0;
    for (size_t i = 0; i < n;) {
        char tmp[4];
        size_t k = 0;
        if (s[i] != '\\') {
            tmp[k++] = s[i++];
        } else if (s[i + 1] != 'u') { /* the tokeniser checked the escape */
            char e = s[i + 1];
            tmp[k++] = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r'
                     : e == 't' ? '\t' : e;
            i += 2;
        } else {
            unsigned long cp = (unsigned long)hex4(s + i + 2);
            i += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u')
                    return -1;
                unsigned long lo = (unsigned long)hex4(s + i + 2);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            if (cp == 0)
                return -1;
            k = utf8_put(tmp, cp);
        }
        if (o + k >= cap)
            return -1;
        memcpy(out + o, tmp, k);
        o += k;
    }
    out[o] = '\0';
    return (long)o;
}

long ajson_get_str(const struct ajson *j, int obj, const char *key, char *out, size_t cap)
{
    return ajson_str(j, ajson_get(j, obj, key), out, cap);
}

bool ajson_str_is(const struct ajson *j, int obj, const char *key, const char *want)
{
    char buf[64];
    size_t wl = strlen(want);
    return wl < sizeof buf && ajson_get_str(j, obj, key, buf, sizeof buf) == (long)wl &&
           memcmp(buf, want, wl) == 0;
}
