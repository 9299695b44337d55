/* outq_state.c: the per-recipient state file of a queued message (see
 * outq.h). Pure: bytes in, struct out, and back. */
#include "smtp/outq.h"
#include "smtp/queue.h"

#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC "CHATMAILD-QSTATE 1"

void outq_state_free(struct outq_state *st)
{
    for (size_t i = 0; i < st->n; i++)
        free(st->r[i].addr);
    free(st->r);
    st->r = NULL;
    st->n = 0;
}

/* A decimal number of at most 19 digits from *p (up to end), then one
 * space. */
static int take_num(const char **p, const char *end, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    size_t k = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (++k > 18)
            return -1;
        v = v * 10 + (*s++ - '0');
    }
    if (k == 0 || s >= end || *s != ' ')
        return -1;
    *p = s + 1;
    *out = v;
    return 0;
}

static int parse_row(struct outq_state *st, const char *p, const char *end)
{
    if (end - p < 4 || p[0] != 'R' || p[1] != ' ' || p[3] != ' ')
        return -1;
    enum outq_rstatus s = p[2] == 'P' ? OUTQ_PENDING
                          : p[2] == 'D' ? OUTQ_DELIVERED
                          : p[2] == 'F' ? OUTQ_FAILED
                                        : (enum outq_rstatus)-1;
    if ((int)s < 0)
        return -1;
    p += 4;
    int64_t att, next;
    if (take_num(&p, end, &att) < 0 || att > 1000000 || take_num(&p, end, &next) < 0)
        return -1;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    const char *aend = sp ? sp : end;
    size_t alen = (size_t)(aend - p);
    if (alen == 0 || alen > 320 || memchr(p, '\0', alen))
        return -1;
    if (st->n >= QUEUE_MAX_RCPTS)
        return -1;
    struct outq_rstate *r = realloc(st->r, (st->n + 1) * sizeof *r);
    if (!r)
        return -1;
    st->r = r;
    struct outq_rstate *x = &r[st->n];
    memset(x, 0, sizeof *x);
    if (!(x->addr = strndup(p, alen)))
        return -1;
    x->status = s;
    x->attempts = (unsigned)att;
    x->next_try = next;
    if (sp) {
        size_t l = (size_t)(end - sp - 1);
        if (l >= sizeof x->last)
            l = sizeof x->last - 1;
        memcpy(x->last, sp + 1, l);
        x->last[l] = '\0';
        for (size_t i = 0; i < l; i++)
            if ((unsigned char)x->last[i] < 0x20 || x->last[i] == 0x7f)
                x->last[i] = '?';
    }
    st->n++;
    return 0;
}

int outq_state_parse(const char *data, size_t len, struct outq_state *st)
{
    memset(st, 0, sizeof *st);
    if (len > OUTQ_STATE_MAX)
        return -1;
    const char *p = data, *end = data + len;
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) /* every line ends: a torn write is refused */
            goto bad;
        const char *le = nl;
        if (le > p && le[-1] == '\r')
            le--;
        if (first) {
            if ((size_t)(le - p) != sizeof STATE_MAGIC - 1 ||
                memcmp(p, STATE_MAGIC, sizeof STATE_MAGIC - 1) != 0)
                goto bad;
            first = false;
        } else if (parse_row(st, p, le) < 0) {
            goto bad;
        }
        p = nl + 1;
    }
    if (first)
        goto bad;
    return 0;
bad:
    outq_state_free(st);
    return -1;
}

int outq_state_format(const struct outq_state *st, struct buf *out)
{
    int rc = buf_append_str(out, STATE_MAGIC "\n");
    for (size_t i = 0; i < st->n && rc == 0; i++) {
        const struct outq_rstate *r = &st->r[i];
        char last[OUTQ_REPLY_MAX];
        size_t l = strnlen(r->last, sizeof last - 1);
        for (size_t k = 0; k < l; k++)
            last[k] = (unsigned char)r->last[k] < 0x20 || r->last[k] == 0x7f ? '?' : r->last[k];
        last[l] = '\0';
        char c = r->status == OUTQ_DELIVERED ? 'D' : r->status == OUTQ_FAILED ? 'F' : 'P';
        rc = buf_printf(out, "R %c %u %lld %s %s\n", c, r->attempts,
                        (long long)(r->next_try < 0 ? 0 : r->next_try), r->addr, last);
    }
    return rc < 0 ? -1 : 0;
}
