/* metadata_json.c: the metadata.json reader and writer (spec §4.2).
 *
 * Reads {"devicetoken": {"<token>": <unix ts>, ...}} (other top-level keys
 * are skipped), and converts the legacy forms {"devicetoken": ["t1", ...]}
 * and ["t1", ...] with timestamp now. Writes what Python's json.dumps
 * wrote: {"devicetoken": {"t1": 1700000000, "t2": 1700000001}}.
 * Pure and bounded: nesting depth, token length and token count are capped;
 * anything malformed is an error value, never an abort. */
#include "core/limits.h"
#include "store/accounts.h"

#include "core/buf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


struct jp {
    const char *p, *end;
    int depth;
};

static void ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int eat(struct jp *j, char c)
{
    ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return 0;
    }
    return -1;
}

static int hex4(struct jp *j, unsigned *v)
{
    if (j->end - j->p < 4)
        return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *j->p++;
        unsigned d = (c >= '0' && c <= '9') ? (unsigned)(c - '0')
                   : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                   : (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10) : 16;
        if (d == 16)
            return -1;
        *v = *v * 16 + d;
    }
    return 0;
}

static void put_utf8(struct buf *b, unsigned cp, int *oom)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    if (b->len + n <= STORE_TOKEN_MAX + 4 && buf_append(b, u, n) < 0)
        *oom = 1;
}

/* \uXXXX, with surrogate pairs; a lone surrogate becomes U+FFFD. */
static int unicode_escape(struct jp *j, unsigned *cp)
{
    if (hex4(j, cp) < 0)
        return -1;
    if (*cp >= 0xD800 && *cp < 0xDC00 && j->end - j->p >= 6 && j->p[0] == '\\' &&
        j->p[1] == 'u') {
        struct jp save = *j;
        unsigned lo;
        j->p += 2;
        if (hex4(j, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
            *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
            return 0;
        }
        *j = save;
    }
    if (*cp >= 0xD800 && *cp < 0xE000)
        *cp = 0xFFFD;
    return 0;
}

static int escape(struct jp *j, unsigned *cp)
{
    if (j->p >= j->end)
        return -1;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *k = strchr(from, *j->p);
    if (*j->p && k) {
        *cp = (unsigned char)to[k - from];
        j->p++;
        return 0;
    }
    if (*j->p++ != 'u')
        return -1;
    return unicode_escape(j, cp);
}

/* Decodes a string into b (b->len > STORE_TOKEN_MAX means too long). */
static int string(struct jp *j, struct buf *b)
{
    int oom = 0;
    buf_reset(b);
    if (eat(j, '"') < 0)
        return -1;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        unsigned cp = c;
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            j->p++;
            if (escape(j, &cp) < 0)
                return -1;
            put_utf8(b, cp, &oom);
        } else {
            j->p++;
            if (b->len <= STORE_TOKEN_MAX + 4 && buf_append(b, &c, 1) < 0)
                oom = 1;
        }
    }
    if (oom || j->p >= j->end)
        return -1;
    j->p++;
    return 0;
}

/* A JSON number; integers exactly, fractions and exponents via strtod. */
static int number(struct jp *j, int64_t *v)
{
    ws(j);
    const char *s = j->p;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    const char *digits = j->p;
    while (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' ||
                             *j->p == 'E' || *j->p == '+' || *j->p == '-'))
        j->p++;
    size_t n = (size_t)(j->p - s);
    if (j->p == digits || *digits < '0' || *digits > '9' || n > 40)
        return -1;
    char tmp[48];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    double d = strtod(tmp, &end);
    if (end != tmp + n || isnan(d))
        return -1;
    if (d > 9.0e15 || d < -9.0e15) /* far outside any timestamp: clamp */
        d = d > 0 ? 9.0e15 : -9.0e15;
    long long iv = strtoll(tmp, &end, 10);
    *v = (end == tmp + n && errno == 0) ? (int64_t)iv : (int64_t)d;
    return 0;
}

static int skip_value(struct jp *j, struct buf *scratch);

static int skip_container(struct jp *j, struct buf *scratch, char close, bool keys)
{
    if (++j->depth > LIM_MD_DEPTH)
        return -1;
    if (eat(j, close) == 0) {
        j->depth--;
        return 0;
    }
    do {
        if (keys && (string(j, scratch) < 0 || eat(j, ':') < 0))
            return -1;
        if (skip_value(j, scratch) < 0)
            return -1;
    } while (eat(j, ',') == 0);
    j->depth--;
    return eat(j, close);
}

static int literal(struct jp *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return -1;
    j->p += n;
    return 0;
}

static int skip_value(struct jp *j, struct buf *scratch)
{
    int64_t ignored;
    ws(j);
    if (j->p >= j->end)
        return -1;
    switch (*j->p) {
    case '{': j->p++; return skip_container(j, scratch, '}', true);
    case '[': j->p++; return skip_container(j, scratch, ']', false);
    case '"': return string(j, scratch);
    case 't': return literal(j, "true");
    case 'f': return literal(j, "false");
    case 'n': return literal(j, "null");
    default: return number(j, &ignored);
    }
}

int store_md_set(struct store_tokens *t, const char *tok, size_t len, int64_t ts)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strlen(t->v[i].token) == len && memcmp(t->v[i].token, tok, len) == 0) {
            t->v[i].ts = ts;
            return 0;
        }
    }
    char *copy = strndup(tok, len);
    if (!copy)
        return -1;
    if (t->n == STORE_TOKENS_MAX) {
        size_t oldest = 0;
        for (size_t i = 1; i < t->n; i++)
            if (t->v[i].ts < t->v[oldest].ts)
                oldest = i;
        free(t->v[oldest].token);
        t->v[oldest] = t->v[--t->n];
    }
    if (!t->v && !(t->v = calloc(STORE_TOKENS_MAX, sizeof *t->v))) {
        free(copy);
        return -1;
    }
    t->v[t->n++] = (struct store_token){.token = copy, .ts = ts};
    return 0;
}

/* A token from the file is kept when it is a sane one (short, no NUL). */
static bool token_ok(const struct buf *b)
{
    return b->len > 0 && b->len <= STORE_TOKEN_MAX && !memchr(b->data, '\0', b->len);
}

static int token_list(struct jp *j, struct buf *s, int64_t now, struct store_tokens *t)
{
    if (eat(j, ']') == 0)
        return 0;
    do {
        if (string(j, s) < 0 || (token_ok(s) && store_md_set(t, s->data, s->len, now) < 0))
            return -1;
    } while (eat(j, ',') == 0);
    return eat(j, ']');
}

static int token_map(struct jp *j, struct buf *s, struct store_tokens *t)
{
    if (eat(j, '}') == 0)
        return 0;
    do {
        int64_t ts = 0;
        if (string(j, s) < 0 || eat(j, ':') < 0)
            return -1;
        ws(j);
        struct jp at = *j;
        if (number(j, &ts) < 0) {
            *j = at; /* not a number: the token is dropped as invalid */
            struct buf scratch = {0};
            int rc = skip_value(j, &scratch);
            buf_free(&scratch);
            if (rc < 0)
                return -1;
            continue;
        }
        if (token_ok(s) && store_md_set(t, s->data, s->len, ts) < 0)
            return -1;
    } while (eat(j, ',') == 0);
    return eat(j, '}');
}

/* The top-level object; sets *legacy when devicetoken was a list. */
static int top_object(struct jp *j, struct buf *s, int64_t now, struct store_tokens *t,
                      int *legacy)
{
    if (eat(j, '}') == 0)
        return 0;
    do {
        if (string(j, s) < 0 || eat(j, ':') < 0)
            return -1;
        bool is_tokens = s->len == 11 && memcmp(s->data, "devicetoken", 11) == 0;
        ws(j);
        int rc;
        if (is_tokens && j->p < j->end && *j->p == '{')
            j->p++, rc = token_map(j, s, t);
        else if (is_tokens && j->p < j->end && *j->p == '[')
            j->p++, rc = token_list(j, s, now, t), *legacy = 1;
        else
            rc = skip_value(j, s);
        if (rc < 0)
            return -1;
    } while (eat(j, ',') == 0);
    return eat(j, '}');
}

int store_md_parse(const char *text, size_t len, int64_t now, struct store_tokens *out)
{
    struct jp j = {.p = text, .end = text + len, .depth = 0};
    struct buf s = {0};
    int legacy = 0, rc = -1;
    out->v = NULL;
    out->n = 0;
    ws(&j);
    if (j.p < j.end && *j.p == '{')
        j.p++, rc = top_object(&j, &s, now, out, &legacy);
    else if (j.p < j.end && *j.p == '[')
        j.p++, rc = token_list(&j, &s, now, out), legacy = 1;
    buf_free(&s);
    ws(&j);
    if (rc < 0 || j.p != j.end) {
        store_md_free(out);
        return -1;
    }
    return legacy;
}

size_t store_md_expire(struct store_tokens *t, int64_t now)
{
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < t->n; i++) {
        int64_t ts = t->v[i].ts;
        if (ts > now - (int64_t)STORE_TOKEN_VALID_DAYS * 86400 &&
            ts < now + STORE_TOKEN_FUTURE_SLACK) {
            t->v[kept++] = t->v[i];
        } else {
            free(t->v[i].token);
            dropped++;
        }
    }
    t->n = kept;
    return dropped;
}

void store_md_free(struct store_tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].token);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

static int json_string(struct buf *out, const char *s)
{
    int rc = buf_append(out, "\"", 1);
    for (; *s && rc == 0; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = buf_printf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            rc = buf_printf(out, "\\u%04x", c);
        else
            rc = buf_append(out, &c, 1);
    }
    return rc == 0 ? buf_append(out, "\"", 1) : -1;
}

int store_md_format(const struct store_tokens *t, struct buf *out)
{
    int rc = buf_append_str(out, "{\"devicetoken\": {");
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        if (i > 0)
            rc = buf_append_str(out, ", ");
        if (rc == 0)
            rc = json_string(out, t->v[i].token);
        if (rc == 0)
            rc = buf_printf(out, ": %lld", (long long)t->v[i].ts);
    }
    return rc == 0 ? buf_append_str(out, "}}") : -1;
}
