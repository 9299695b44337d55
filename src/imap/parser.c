/* parser.c: IMAP command reading (lines + literals) and argument parsing
 * (see parser.h). Both are pure functions of the bytes given. */
#include "imap/parser.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/limits.h"

#define IMAP_MAX_LITERALS 64

/* ---------- reader ---------- */

void imap_reader_init(struct imap_reader *r, size_t max_literal)
{
    memset(r, 0, sizeof *r);
    r->max_line = LIM_IMAP_LINE;
    r->max_literal = max_literal;
    r->max_total = max_literal + 8 * LIM_IMAP_LINE;
}

void imap_reader_set_limits(struct imap_reader *r, size_t max_line, size_t max_literal,
                            size_t max_total)
{
    r->max_line = max_line;
    r->max_literal = max_literal;
    r->max_total = max_total;
}

void imap_reader_set_ext(struct imap_reader *r, struct spool *spool, size_t max_ext)
{
    r->ext = spool;
    r->max_ext = spool ? max_ext : 0;
}

const char *imap_reader_ext_marker(const struct imap_reader *r)
{
    return r->ext_used && r->cmd.data ? r->cmd.data + r->ext_pos : NULL;
}

void imap_reader_free(struct imap_reader *r) { buf_free(&r->cmd); }

const char *imap_reader_command(const struct imap_reader *r, size_t *len)
{
    *len = r->cmd.len;
    return r->cmd.data ? r->cmd.data : "";
}

void imap_reader_next(struct imap_reader *r)
{
    buf_free(&r->cmd);
    r->line_start = 0;
    r->literal_left = 0;
    r->n_literals = 0;
    r->done = false;
    r->error = NULL;
    r->error_tag[0] = '\0';
    r->ext_used = r->ext_failed = false;
    r->ext_left = 0;
}

/* The tag a command starts with (atom characters up to the first space),
 * "" when there is none: the refusal of the command is tagged with it. */
static void take_tag(struct imap_reader *r)
{
    const char *p = r->cmd.data ? r->cmd.data : "";
    size_t i = 0;
    while (i < r->cmd.len && i + 1 < sizeof r->error_tag && p[i] > ' ' && p[i] < 0x7f &&
           !strchr("(){\"%*+\\]", p[i]))
        i++;
    if (i == 0 || i >= r->cmd.len || p[i] != ' ')
        i = 0;
    memcpy(r->error_tag, p, i);
    r->error_tag[i] = '\0';
}

/* Is the command being read an APPEND ("tag APPEND ...")? */
static bool is_append(const struct imap_reader *r)
{
    const char *p = r->cmd.data ? r->cmd.data : "";
    const char *sp = memchr(p, ' ', r->cmd.len);
    return sp && (size_t)(p + r->cmd.len - sp) > 8 && strncasecmp(sp + 1, "APPEND ", 7) == 0;
}

/* Does the line end in a literal marker {n} or {n+}? */
static bool literal_marker(const char *line, size_t len, uint64_t *size, bool *sync)
{
    if (len < 3 || line[len - 1] != '}')
        return false;
    size_t end = len - 1;
    *sync = true;
    if (line[end - 1] == '+') {
        *sync = false;
        end--;
    }
    size_t start = end;
    while (start > 0 && isdigit((unsigned char)line[start - 1]))
        start--;
    if (start == end || start == 0 || line[start - 1] != '{' || end - start > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = start; i < end; i++)
        v = v * 10 + (uint64_t)(line[i] - '0');
    *size = v;
    return true;
}

static enum imap_read_result refuse(struct imap_reader *r, const char *why, bool line_done,
                                    const char *line, size_t len)
{
    uint64_t size = 0;
    bool sync = true;
    /* A refused non-synchronising literal arrives anyway: skip it. */
    bool nonsync = line_done && literal_marker(line, len, &size, &sync) && !sync;
    r->error = why;
    take_tag(r);
    buf_free(&r->cmd); /* line may point into it: used above only */
    if (r->ext_used)
        spool_reset(r->ext);
    r->ext_used = r->ext_failed = false;
    r->ext_left = 0;
    r->line_start = 0;
    r->literal_left = 0;
    r->n_literals = 0;
    r->skipping = !line_done || nonsync;
    r->skip_literal = nonsync ? (size_t)size : 0;
    return IMAP_READ_ERROR;
}

/* Skips the rest of a refused command. Returns true when it is over. */
static bool skip_bytes(struct imap_reader *r, const char **p, size_t *n)
{
    while (*n > 0 && r->skipping) {
        if (r->skip_literal > 0) {
            size_t k = *n < r->skip_literal ? *n : r->skip_literal;
            r->skip_literal -= k;
            *p += k;
            *n -= k;
            continue;
        }
        const char *nl = memchr(*p, '\n', *n);
        if (!nl) {
            *p += *n;
            *n = 0;
            return false;
        }
        size_t len = (size_t)(nl - *p);
        uint64_t size;
        bool sync;
        bool lit = literal_marker(*p, len > 0 && (*p)[len - 1] == '\r' ? len - 1 : len, &size,
                                  &sync);
        *p = nl + 1;
        *n -= len + 1;
        if (lit && !sync)
            r->skip_literal = (size_t)size;
        else
            r->skipping = false;
    }
    return !r->skipping;
}

static enum imap_read_result end_of_line(struct imap_reader *r)
{
    const char *line = r->cmd.data ? r->cmd.data + r->line_start : "";
    size_t len = r->cmd.len - r->line_start;
    uint64_t size;
    bool sync;
    if (!literal_marker(line, len, &size, &sync)) {
        r->done = true;
        return IMAP_READ_COMMAND;
    }
    if (size > r->max_literal && r->ext && !r->ext_used && size <= r->max_ext && is_append(r)) {
        /* the message of an APPEND: into the spool, not into memory */
        const char *brace = line + len;
        while (brace > line && brace[-1] != '{')
            brace--;
        r->ext_pos = (size_t)(brace - 1 - r->cmd.data);
        r->ext_used = true;
        r->ext_failed = false;
        r->ext_left = (size_t)size;
        spool_reset(r->ext);
        r->line_start = r->cmd.len;
        return sync ? IMAP_READ_CONTINUE : IMAP_READ_MORE;
    }
    if (size > r->max_literal)
        return refuse(r, "Literal too large.", true, line, len);
    if (r->cmd.len + size > r->max_total || ++r->n_literals > IMAP_MAX_LITERALS)
        return refuse(r, "Command too large.", true, line, len);
    r->literal_left = (size_t)size;
    r->line_start = r->cmd.len + (size_t)size;
    if (buf_reserve(&r->cmd, (size_t)size) < 0)
        return refuse(r, "Out of memory.", true, line, len);
    return sync ? IMAP_READ_CONTINUE : IMAP_READ_MORE;
}

enum imap_read_result imap_reader_feed(struct imap_reader *r, const char *p, size_t n,
                                       size_t *used)
{
    const char *start = p;
    enum imap_read_result res = IMAP_READ_MORE;
    while (n > 0 && !r->done) {
        if (r->skipping) {
            skip_bytes(r, &p, &n);
            continue;
        }
        if (r->ext_left > 0) {
            size_t k = n < r->ext_left ? n : r->ext_left;
            if (!r->ext_failed && spool_append(r->ext, p, k) < 0)
                r->ext_failed = true; /* the bytes still arrive: dropped */
            r->ext_left -= k;
            p += k;
            n -= k;
            continue;
        }
        if (r->literal_left > 0) {
            size_t k = n < r->literal_left ? n : r->literal_left;
            buf_append(&r->cmd, p, k);
            r->literal_left -= k;
            p += k;
            n -= k;
            continue;
        }
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (r->cmd.len - r->line_start + take > r->max_line + 1) {
            p += nl ? take + 1 : take;
            n -= nl ? take + 1 : take;
            res = refuse(r, "Too long argument.", nl != NULL, "", 0);
            break;
        }
        if (buf_append(&r->cmd, p, take) < 0) {
            res = refuse(r, "Out of memory.", nl != NULL, "", 0);
            break;
        }
        p += take;
        n -= take;
        if (!nl)
            break;
        p++; /* the LF */
        n--;
        if (r->cmd.len > r->line_start && r->cmd.data[r->cmd.len - 1] == '\r')
            r->cmd.data[--r->cmd.len] = '\0';
        res = end_of_line(r);
        if (res != IMAP_READ_MORE)
            break;
    }
    *used = (size_t)(p - start);
    return r->done ? IMAP_READ_COMMAND : res;
}

/* ---------- arguments ---------- */

struct pctx {
    const char *p, *end;
    const char *ext; /* the external literal's marker */
    struct imap_args *out;
    size_t count;
    const char *error;
};

static int fail(struct pctx *x, const char *why)
{
    if (!x->error)
        x->error = why;
    return -1;
}

static bool atom_char(unsigned char c)
{
    return c > ' ' && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '"' && c != ']';
}

static const char *save(struct pctx *x, const char *s, size_t len)
{
    struct buf *b = &x->out->strings; /* reserved up front: never moves */
    char *d = b->data + b->len;
    memcpy(d, s, len);
    d[len] = '\0';
    b->len += len + 1;
    return d;
}

static int parse_quoted(struct pctx *x, struct imap_arg *a)
{
    struct buf *b = &x->out->strings;
    char *d = b->data + b->len;
    size_t len = 0;
    x->p++; /* opening quote */
    while (x->p < x->end && *x->p != '"') {
        char c = *x->p++;
        if (c == '\\') {
            if (x->p >= x->end || (*x->p != '\\' && *x->p != '"'))
                return fail(x, "Invalid escape in quoted string.");
            c = *x->p++;
        } else if (c == '\r' || c == '\n' || c == '\0') {
            return fail(x, "Invalid character in quoted string.");
        }
        d[len++] = c;
    }
    if (x->p >= x->end)
        return fail(x, "Missing '\"'.");
    x->p++;
    d[len] = '\0';
    b->len += len + 1;
    a->type = IMAP_ARG_STRING;
    a->str = d;
    a->len = len;
    return 0;
}

static int parse_literal(struct pctx *x, struct imap_arg *a)
{
    const char *q = x->p + 1;
    uint64_t size = 0;
    size_t digits = 0;
    while (q < x->end && isdigit((unsigned char)*q) && digits < 20) {
        size = size * 10 + (uint64_t)(*q++ - '0');
        digits++;
    }
    if (q < x->end && *q == '+')
        q++;
    if (digits == 0 || q >= x->end || *q != '}')
        return fail(x, "Invalid literal.");
    q++;
    if (x->p == x->ext) { /* its bytes are in the reader's spool */
        a->type = IMAP_ARG_LITERAL;
        a->str = save(x, "", 0);
        a->len = 0;
        a->ext = true;
        x->p = q;
        return 0;
    }
    if ((uint64_t)(x->end - q) < size)
        return fail(x, "Literal ends early.");
    a->type = IMAP_ARG_LITERAL;
    a->str = save(x, q, (size_t)size);
    a->len = (size_t)size;
    x->p = q + size;
    return 0;
}

static int parse_atom(struct pctx *x, struct imap_arg *a)
{
    const char *s = x->p;
    while (x->p < x->end) {
        unsigned char c = (unsigned char)*x->p;
        if (c == '[') { /* a section: anything but CR/LF up to ']' */
            const char *close = memchr(x->p, ']', (size_t)(x->end - x->p));
            if (!close) { /* no section: '[' is a plain atom character */
                x->p++;
                continue;
            }
            for (const char *q = x->p; q < close; q++)
                if (*q == '\r' || *q == '\n' || *q == '\0')
                    return fail(x, "Invalid character in section.");
            x->p = close + 1;
            continue;
        }
        if (!atom_char(c))
            break;
        x->p++;
    }
    if (x->p == s)
        return fail(x, "Unexpected character.");
    size_t len = (size_t)(x->p - s);
    if (len == 3 && strncasecmp(s, "NIL", 3) == 0) {
        /* NIL where an nstring is allowed; also the atom "NIL" where an
         * astring is (imap_arg_is_string), so the text is kept */
        a->type = IMAP_ARG_NIL;
        a->str = save(x, s, len);
        a->len = len;
        return 0;
    }
    a->type = IMAP_ARG_ATOM;
    a->str = save(x, s, len);
    a->len = len;
    return 0;
}

static int parse_list(struct pctx *x, int depth, bool top, struct imap_arg **out, size_t *n);

static int parse_one(struct pctx *x, int depth, struct imap_arg *a)
{
    if (++x->count > LIM_IMAP_ARGS)
        return fail(x, "Too many arguments.");
    memset(a, 0, sizeof *a);
    char c = *x->p;
    if (c == '(') {
        if (depth >= LIM_IMAP_DEPTH)
            return fail(x, "Too deeply nested lists.");
        x->p++;
        a->type = IMAP_ARG_LIST;
        if (parse_list(x, depth + 1, false, &a->list, &a->n) < 0)
            return -1;
        return 0;
    }
    if (c == '"')
        return parse_quoted(x, a);
    if (c == '{')
        return parse_literal(x, a);
    return parse_atom(x, a);
}

/* o->blocks grows in powers of two (8, 16, ...): the count says the size */
static int remember_block(struct imap_args *o, struct imap_arg *blk)
{
    size_t n = o->n_blocks;
    if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
        struct imap_arg **b = realloc(o->blocks, (n ? n * 2 : 8) * sizeof *b);
        if (!b)
            return -1;
        o->blocks = b;
    }
    o->blocks[o->n_blocks++] = blk;
    return 0;
}

static int parse_list(struct pctx *x, int depth, bool top, struct imap_arg **out, size_t *n)
{
    struct imap_arg *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = -1;
    for (;;) {
        while (x->p < x->end && *x->p == ' ')
            x->p++;
        if (x->p >= x->end) {
            if (top)
                break;
            fail(x, "Missing ')'.");
            goto out;
        }
        if (*x->p == ')') {
            if (top) {
                fail(x, "Unexpected ')'.");
                goto out;
            }
            x->p++;
            break;
        }
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct imap_arg *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                fail(x, "Out of memory.");
                goto out;
            }
            v = nv;
            cap = ncap;
        }
        if (parse_one(x, depth, &v[cnt]) < 0)
            goto out;
        cnt++;
        if (x->p < x->end && *x->p != ' ' && *x->p != ')') {
            fail(x, "Missing space between arguments.");
            goto out;
        }
    }
    rc = 0;
out:
    if (v && remember_block(x->out, v) < 0) {
        free(v);
        v = NULL;
        rc = fail(x, "Out of memory.");
    }
    *out = v;
    *n = rc == 0 ? cnt : 0;
    return rc;
}

int imap_parse_args(const char *text, size_t len, struct imap_args *out, const char **error)
{
    return imap_parse_args_ext(text, len, NULL, out, error);
}

int imap_parse_args_ext(const char *text, size_t len, const char *ext_marker,
                        struct imap_args *out, const char **error)
{
    memset(out, 0, sizeof *out);
    if (buf_reserve(&out->strings, 2 * len + 2) < 0) {
        *error = "Out of memory.";
        return -1;
    }
    struct pctx x = {.p = text, .end = text + len, .out = out, .ext = ext_marker};
    if (parse_list(&x, 0, true, &out->v, &out->n) < 0) {
        *error = x.error ? x.error : "Invalid arguments.";
        imap_args_free(out);
        return -1;
    }
    return 0;
}

void imap_args_free(struct imap_args *a)
{
    for (size_t i = 0; i < a->n_blocks; i++)
        free(a->blocks[i]);
    free(a->blocks);
    buf_free(&a->strings);
    memset(a, 0, sizeof *a);
}

int imap_split_command(const char *cmd, size_t len, char *tag, size_t taglen, char *name,
                       size_t namelen, const char **rest, size_t *restlen, const char **error)
{
    size_t i = 0;
    while (i < len && atom_char((unsigned char)cmd[i]) && cmd[i] != '+' && cmd[i] != '*' &&
           cmd[i] != '%' && cmd[i] != '\\')
        i++;
    if (i == 0 || i >= taglen || i >= len || cmd[i] != ' ') {
        *error = i == 0 || i >= len ? "Error in IMAP command received by server."
                                    : "Invalid tag.";
        return -1;
    }
    memcpy(tag, cmd, i);
    tag[i] = '\0';
    size_t s = ++i;
    while (i < len && isalnum((unsigned char)cmd[i]))
        i++;
    if (i == s || i - s >= namelen || (i < len && cmd[i] != ' ')) {
        *error = "Error in IMAP command received by server.";
        return -1;
    }
    for (size_t k = s; k < i; k++)
        name[k - s] = (char)toupper((unsigned char)cmd[k]);
    name[i - s] = '\0';
    if (i < len)
        i++;
    *rest = cmd + i;
    *restlen = len - i;
    return 0;
}

bool imap_arg_is_string(const struct imap_arg *a)
{
    return a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_STRING ||
           a->type == IMAP_ARG_LITERAL || a->type == IMAP_ARG_NIL;
}

bool imap_arg_atom_eq(const struct imap_arg *a, const char *atom)
{
    return a->type == IMAP_ARG_ATOM && strcasecmp(a->str, atom) == 0;
}
