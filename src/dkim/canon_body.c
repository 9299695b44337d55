/* canon_body.c: streaming body canonicalisation (RFC 6376 §3.4.3, §3.4.4).
 * Bytes arrive in chunks of any size; a CR at the end of a chunk waits for
 * the next one, WSP runs (relaxed) and empty lines wait until a byte shows
 * they are not trailing. Memory is constant: empty lines are a counter.
 *  simple:  empty lines at the end dropped; "" or a missing final CRLF
 *           gives a CRLF.
 *  relaxed: WSP runs -> one SP, WSP at line ends dropped, empty lines at
 *           the end dropped, a non-empty body without final CRLF gets one,
 *           an empty body stays empty. */
#include "dkim/dkim.h"

#include <string.h>

static void flush(struct dkim_bodycanon *c)
{
    if (c->olen) {
        c->out(c->ctx, c->obuf, c->olen);
        c->olen = 0;
    }
}

static void emit(struct dkim_bodycanon *c, const char *p, size_t n)
{
    c->out_bytes += n;
    c->any = true;
    if (n > sizeof c->obuf - c->olen) {
        flush(c);
        if (n > sizeof c->obuf) {
            c->out(c->ctx, p, n);
            return;
        }
    }
    memcpy(c->obuf + c->olen, p, n);
    c->olen += n;
}

/* Empty lines held back turn out not to be trailing. */
static void release_empty_lines(struct dkim_bodycanon *c)
{
    for (; c->empty_lines; c->empty_lines--)
        emit(c, "\r\n", 2);
}

/* A byte of line content (not the CRLF). */
static void content_byte(struct dkim_bodycanon *c, char ch)
{
    if (c->line_empty)
        release_empty_lines(c);
    if (c->pending_wsp) {
        emit(c, " ", 1);
        c->pending_wsp = false;
    }
    emit(c, &ch, 1);
    c->line_empty = false;
}

static void end_of_line(struct dkim_bodycanon *c)
{
    c->pending_wsp = false; /* relaxed: WSP at the end of a line goes */
    if (c->line_empty)
        c->empty_lines++;
    else
        emit(c, "\r\n", 2);
    c->line_empty = true;
}

void dkim_bodycanon_init(struct dkim_bodycanon *c, enum dkim_canon canon, dkim_out_fn out,
                         void *ctx)
{
    memset(c, 0, sizeof *c);
    c->canon = canon;
    c->line_empty = true;
    c->out = out;
    c->ctx = ctx;
}

/* The bytes of a run without CR and (relaxed) without WSP go out at once. */
static size_t plain_run(const struct dkim_bodycanon *c, const char *p, size_t n)
{
    size_t i = 0;
    if (c->canon == DKIM_CANON_SIMPLE) {
        const char *cr = memchr(p, '\r', n);
        return cr ? (size_t)(cr - p) : n;
    }
    while (i < n && p[i] != '\r' && p[i] != ' ' && p[i] != '\t')
        i++;
    return i;
}

void dkim_bodycanon_feed(struct dkim_bodycanon *c, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char ch = p[i];
        if (c->held_cr) {
            c->held_cr = false;
            if (ch == '\n') {
                end_of_line(c);
                i++;
                continue;
            }
            content_byte(c, '\r'); /* a bare CR is line content */
            continue;              /* ch is looked at again */
        }
        if (ch == '\r') {
            c->held_cr = true;
            i++;
            continue;
        }
        if (c->canon == DKIM_CANON_RELAXED && (ch == ' ' || ch == '\t')) {
            c->pending_wsp = true;
            i++;
            continue;
        }
        size_t run = plain_run(c, p + i, n - i);
        if (run == 0) /* cannot happen: p[i] is neither CR nor WSP here */
            run = 1;
        content_byte(c, p[i]);
        if (run > 1)
            emit(c, p + i + 1, run - 1);
        i += run;
    }
}

void dkim_bodycanon_finish(struct dkim_bodycanon *c)
{
    if (c->held_cr) {
        c->held_cr = false;
        content_byte(c, '\r');
    }
    if (!c->line_empty)
        end_of_line(c); /* the missing final CRLF */
    c->empty_lines = 0; /* trailing empty lines are ignored */
    if (c->canon == DKIM_CANON_SIMPLE && !c->any)
        emit(c, "\r\n", 2);
    flush(c);
}
