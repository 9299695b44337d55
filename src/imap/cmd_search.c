/* cmd_search.c: SEARCH / UID SEARCH with the RFC 3501 key set (flags,
 * sizes, internal and sent dates, header/body/text substrings, sequence
 * and UID sets, NOT/OR/lists, KEYWORD) plus MODSEQ (CONDSTORE) and
 * ESEARCH's RETURN (MIN MAX COUNT ALL). Substring matches are ASCII
 * case-insensitive on the raw message (no charset decoding). Worker.
 *
 * Cost bounded by design (issue 16): a command has at most
 * LIM_IMAP_SEARCH_KEYS arguments, and scans at most LIM_IMAP_SEARCH_SCAN
 * bytes (message bytes read plus bytes compared, per key); beyond either
 * it is answered NO [LIMIT] (RFC 9051 7.1). It runs on the separate slow
 * pool (session.h) and stops between messages once its client went away
 * (s->cancelled). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/limits.h"

#include "imap/imap_date.h"
#include "imap/imap_mime.h"
#include "imap/seqset.h"
#include "imap/session_int.h"
#include "store/store.h"

struct sctx {
    struct imap_session *s;
    const struct mailbox_msg *m;
    uint32_t seq;
    struct buf msg;
    bool loaded, failed;
    bool has_modseq; /* a MODSEQ key was seen */
    uint64_t scanned; /* bytes read and compared so far */
    bool over;        /* LIM_IMAP_SEARCH_SCAN reached: stop */
};

/* Counts n bytes of work; false once the command's budget is spent. */
static bool spend(struct sctx *x, size_t n)
{
    x->scanned += n;
    if (x->scanned > LIM_IMAP_SEARCH_SCAN)
        x->over = true;
    return !x->over;
}

static const struct mailbox_msg *load(struct sctx *x)
{
    if (!x->loaded) {
        struct buf path = {0};
        x->loaded = true;
        x->failed = !spend(x, x->m->vsize) || mailbox_msg_path(x->s->mb, x->m->uid, &path) < 0 ||
                    imap_read_message(path.data, &x->msg, (size_t)1 << 30) < 0;
        buf_free(&path);
    }
    return x->failed ? NULL : x->m;
}

static bool contains(struct sctx *x, struct span hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return true;
    if (!spend(x, hay.n))
        return false;
    int c0 = tolower((unsigned char)needle[0]);
    for (size_t i = 0; i + n <= hay.n; i++)
        if (tolower((unsigned char)hay.p[i]) == c0 && strncasecmp(hay.p + i, needle, n) == 0)
            return true;
    return false;
}

/* Arguments in a search program, lists included. */
static size_t count_args(const struct imap_arg *a, size_t n)
{
    size_t k = n;
    for (size_t i = 0; i < n; i++)
        if (a[i].type == IMAP_ARG_LIST)
            k += count_args(a[i].list, a[i].n);
    return k;
}

static bool header_has(struct sctx *x, const char *name, const char *needle)
{
    if (!load(x))
        return false;
    struct span hdr, body;
    if (mime_split((struct span){x->msg.data ? x->msg.data : "", x->msg.len}, &hdr, &body) < 0)
        return false;
    /* every field of that name counts (RFC 3501 6.4.4), not only the first */
    struct hdr_iter it;
    struct hdr_field f;
    hdr_iter_init(&it, hdr);
    while (hdr_next(&it, &f) == 1)
        if (span_eq_lit(f.name, name, true) && contains(x, f.value, needle))
            return true;
    return false;
}

static bool text_has(struct sctx *x, const char *needle, bool body_only)
{
    if (!load(x))
        return false;
    struct span all = {x->msg.data ? x->msg.data : "", x->msg.len}, hdr, body;
    if (body_only && mime_split(all, &hdr, &body) == 0)
        all = body;
    return contains(x, all, needle);
}

static int64_t sent_date(struct sctx *x)
{
    if (!load(x))
        return -1;
    struct span hdr, body, v;
    char text[256];
    if (mime_split((struct span){x->msg.data ? x->msg.data : "", x->msg.len}, &hdr, &body) < 0 ||
        hdr_find(hdr, "Date", &v) != 1)
        return -1;
    hdr_value_text(v, text, sizeof text);
    const char *p = strchr(text, ',');
    p = p ? p + 1 : text;
    while (*p == ' ')
        p++;
    char d[16];
    int day, year;
    char mon[4];
    if (sscanf(p, "%d %3s %d", &day, mon, &year) != 3)
        return -1;
    snprintf(d, sizeof d, "%d-%s-%d", day, mon, year);
    int64_t t;
    return imap_date_parse(d, &t) < 0 ? -1 : t;
}

static int eval(struct sctx *x, const struct imap_arg *a, size_t n, size_t *used);

/* k is BEFORE, ON or SINCE in any case (search keys are case-insensitive);
 * -1 for anything else. */
static int date_key(const char *k, int64_t when, int64_t day)
{
    int64_t d0 = when - when % 86400;
    if (strcasecmp(k, "BEFORE") == 0)
        return when >= 0 && d0 < day;
    if (strcasecmp(k, "ON") == 0)
        return when >= 0 && d0 == day;
    if (strcasecmp(k, "SINCE") == 0)
        return when >= 0 && d0 >= day;
    return -1;
}

/* A CONDSTORE mod-sequence value: 1*DIGIT, at most 63 bits. */
static bool parse_modseq(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    if (!*v)
        return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(*v - '0')) / 10)
            return false;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    *out = n;
    return true;
}

static int flag_key(struct sctx *x, const char *k)
{
    static const char *const names[] = {"SEEN", "ANSWERED", "FLAGGED", "DELETED", "DRAFT"};
    uint32_t f = x->m->flags;
    bool un = strncasecmp(k, "UN", 2) == 0 && strcasecmp(k, "UNKEYWORD") != 0;
    for (int i = 0; i < 5; i++)
        if (strcasecmp(k + (un ? 2 : 0), names[i]) == 0)
            return ((f >> i) & 1) != un;
    if (strcasecmp(k, "ALL") == 0)
        return 1;
    bool recent = imap_recent(x->s, x->m->uid);
    if (strcasecmp(k, "RECENT") == 0)
        return recent;
    if (strcasecmp(k, "OLD") == 0)
        return !recent;
    if (strcasecmp(k, "NEW") == 0) /* RECENT UNSEEN */
        return recent && !(f & MB_SEEN);
    return -1;
}

/* One key at a[0] (consuming *used args): 1 match, 0 no, -1 bad syntax. */
static int eval_key(struct sctx *x, const struct imap_arg *a, size_t n, size_t *used)
{
    *used = 1;
    if (a->type == IMAP_ARG_LIST) {
        size_t u;
        return eval(x, a->list, a->n, &u);
    }
    if (a->type != IMAP_ARG_ATOM)
        return -1;
    const char *k = a->str;
    int r = flag_key(x, k);
    if (r >= 0)
        return r;
    if ((k[0] >= '0' && k[0] <= '9') || k[0] == '*') {
        struct seqset set;
        if (imap_parse_msgset(x->s, a, false, &set) < 0)
            return -1;
        r = seqset_contains(&set, x->seq);
        seqset_free(&set);
        return r;
    }
    if (strcasecmp(k, "NOT") == 0) {
        if (n < 2 || (r = eval_key(x, a + 1, n - 1, used)) < 0)
            return -1;
        (*used)++;
        return !r;
    }
    if (strcasecmp(k, "OR") == 0) {
        size_t u1, u2;
        int r1 = n >= 3 ? eval_key(x, a + 1, n - 1, &u1) : -1;
        int r2 = r1 >= 0 && 1 + u1 < n ? eval_key(x, a + 1 + u1, n - 1 - u1, &u2) : -1;
        if (r2 < 0)
            return -1;
        *used = 1 + u1 + u2;
        return r1 || r2;
    }
    if (n < 2 || !imap_arg_is_string(&a[1]))
        return -1;
    *used = 2;
    const char *v = a[1].str;
    int64_t day;
    if (strcasecmp(k, "UID") == 0) {
        struct seqset set;
        if (imap_parse_msgset(x->s, &a[1], true, &set) < 0)
            return -1;
        r = seqset_contains(&set, x->m->uid);
        seqset_free(&set);
        return r;
    }
    if (strcasecmp(k, "LARGER") == 0)
        return x->m->vsize > strtoull(v, NULL, 10);
    if (strcasecmp(k, "SMALLER") == 0)
        return x->m->vsize < strtoull(v, NULL, 10);
    if (strcasecmp(k, "MODSEQ") == 0) {
        /* MODSEQ [entry-name entry-type] mod-sequence-value (RFC 7162 3.1.5):
         * the entry names a flag's metadata item; we keep one MODSEQ per
         * message, so "shared"/"priv"/"all" entries all match against it. */
        uint64_t want;
        if (!parse_modseq(v, &want)) { /* not a number: an entry name must follow */
            if (n < 4 || strncasecmp(v, "/flags/", 7) != 0 || !imap_arg_is_string(&a[2]) ||
                (strcasecmp(a[2].str, "priv") != 0 && strcasecmp(a[2].str, "shared") != 0 &&
                 strcasecmp(a[2].str, "all") != 0) ||
                !imap_arg_is_string(&a[3]) || !parse_modseq(a[3].str, &want))
                return -1;
            *used = 4;
        }
        x->has_modseq = true;
        return x->m->modseq >= want;
    }
    if (strcasecmp(k, "KEYWORD") == 0 || strcasecmp(k, "UNKEYWORD") == 0) {
        int i = mailbox_keyword_index(x->s->mb, v, false);
        bool has = i >= 0 && (x->m->flags & MB_KEYWORD(i));
        return has == (k[0] == 'K' || k[0] == 'k');
    }
    if (strcasecmp(k, "BEFORE") == 0 || strcasecmp(k, "ON") == 0 || strcasecmp(k, "SINCE") == 0)
        return imap_date_parse(v, &day) < 0 ? -1 : date_key(k, x->m->idate, day);
    if (strncasecmp(k, "SENT", 4) == 0) {
        if (imap_date_parse(v, &day) < 0 || date_key(k + 4, 0, 0) < 0)
            return -1;
        return date_key(k + 4, sent_date(x), day);
    }
    static const char *const hdrs[] = {"FROM", "TO", "CC", "BCC", "SUBJECT"};
    for (size_t i = 0; i < 5; i++)
        if (strcasecmp(k, hdrs[i]) == 0)
            return header_has(x, k, v);
    if (strcasecmp(k, "BODY") == 0 || strcasecmp(k, "TEXT") == 0)
        return text_has(x, v, k[0] == 'B' || k[0] == 'b');
    if (strcasecmp(k, "HEADER") == 0 && n >= 3 && imap_arg_is_string(&a[2])) {
        *used = 3;
        return header_has(x, v, a[2].str);
    }
    return -1;
}

/* All keys of a list must match (AND). */
static int eval(struct sctx *x, const struct imap_arg *a, size_t n, size_t *used)
{
    int all = 1;
    size_t i = 0;
    while (i < n) {
        size_t u;
        int r = eval_key(x, a + i, n - i, &u);
        if (r < 0)
            return -1;
        all &= r;
        i += u;
    }
    *used = n;
    return all;
}

/* v[0..k) are the results, ms[i] the MODSEQ of v[i]. With a MODSEQ key the
 * reply carries the highest MODSEQ of the messages it returns (RFC 7162
 * 3.1.5): of all of them, or of the MIN/MAX ones when only those are asked. */
static void write_result(struct imap_session *s, struct imap_cmd *c, const uint32_t *v,
                         const uint64_t *ms, size_t k, const struct imap_arg *ret,
                         bool with_modseq)
{
    uint64_t maxms = 0;
    for (size_t i = 0; i < k; i++)
        maxms = ms[i] > maxms ? ms[i] : maxms;
    if (!ret) {
        imap_out(s, "* SEARCH");
        for (size_t i = 0; i < k; i++)
            imap_out(s, " %u", v[i]);
        if (with_modseq && k)
            imap_out(s, " (MODSEQ %llu)", (unsigned long long)maxms);
        imap_out(s, "\r\n");
        return;
    }
    imap_out(s, "* ESEARCH (TAG \"%s\")%s", c->tag, c->uid ? " UID" : "");
    bool all = ret->n == 0, count = false, min = false, max = false;
    for (size_t i = 0; i < ret->n; i++) {
        if (imap_arg_atom_eq(&ret->list[i], "MIN") && k) {
            imap_out(s, " MIN %u", v[0]);
            min = true;
        } else if (imap_arg_atom_eq(&ret->list[i], "MAX") && k) {
            imap_out(s, " MAX %u", v[k - 1]);
            max = true;
        } else if (imap_arg_atom_eq(&ret->list[i], "COUNT")) {
            imap_out(s, " COUNT %zu", k);
            count = true;
        } else if (imap_arg_atom_eq(&ret->list[i], "ALL")) {
            all = true;
        }
    }
    if (all && k) {
        imap_out(s, " ALL ");
        seqset_write(&s->out, v, k);
    }
    if (with_modseq && k) {
        if (!all && !count && (min || max)) {
            maxms = 0;
            if (min)
                maxms = ms[0];
            if (max && ms[k - 1] > maxms)
                maxms = ms[k - 1];
        }
        imap_out(s, " MODSEQ %llu", (unsigned long long)maxms);
    }
    imap_out(s, "\r\n");
}

enum imap_cmd_result imap_cmd_search(struct imap_session *s, struct imap_cmd *c)
{
    const struct imap_arg *a = c->a, *ret = NULL;
    size_t n = c->n, used;
    if (n >= 2 && imap_arg_atom_eq(&a[0], "RETURN") && a[1].type == IMAP_ARG_LIST) {
        ret = &a[1];
        a += 2, n -= 2;
    }
    if (n >= 2 && imap_arg_atom_eq(&a[0], "CHARSET")) {
        if (!imap_arg_is_string(&a[1]) || (strcasecmp(a[1].str, "UTF-8") != 0 &&
                                           strcasecmp(a[1].str, "US-ASCII") != 0))
            return imap_no(s, c, "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
        a += 2, n -= 2;
    }
    if (n == 0)
        return imap_bad(s, c, "Missing search keys.");
    if (count_args(a, n) > LIM_IMAP_SEARCH_KEYS)
        return imap_no(s, c, "[LIMIT] Too many search keys.");
    size_t total = mailbox_count(s->mb), k = 0;
    uint32_t *v = malloc((total ? total : 1) * sizeof *v);
    uint64_t *ms = malloc((total ? total : 1) * sizeof *ms);
    if (!v || !ms) {
        free(v);
        free(ms);
        return imap_no(s, c, "Out of memory.");
    }
    struct sctx x = {.s = s};
    for (size_t i = 0; i < total; i++) {
        x.m = &mailbox_msgs(s->mb)[i];
        x.seq = (uint32_t)i + 1;
        x.loaded = false;
        if (atomic_load(&s->cancelled)) { /* nobody reads the answer */
            free(v);
            free(ms);
            return imap_no(s, c, "Search cancelled.");
        }
        int r = eval(&x, a, n, &used);
        buf_free(&x.msg);
        if (x.over) {
            free(v);
            free(ms);
            return imap_no(s, c, "[LIMIT] Search too expensive, use fewer or narrower keys.");
        }
        if (r < 0) {
            free(v);
            free(ms);
            return imap_bad(s, c, "Invalid search key.");
        }
        if (r) {
            ms[k] = x.m->modseq;
            v[k++] = c->uid ? x.m->uid : x.seq;
        }
    }
    if (total == 0 && eval(&(struct sctx){.s = s, .m = &(struct mailbox_msg){0}}, a, n, &used) < 0) {
        free(v);
        free(ms);
        return imap_bad(s, c, "Invalid search key.");
    }
    write_result(s, c, v, ms, k, ret, x.has_modseq);
    free(v);
    free(ms);
    return imap_ok(s, c, "Search completed.");
}
