/* smtp_data.c: DATA dot-unstuffing and BDAT chunk checking with strict CRLF
 * framing (see smtp_data.h). Output goes to the sink in spans of the input,
 * so the decoder itself holds no message bytes. */
#include "smtp/smtp_data.h"

#include "core/limits.h"

enum {
    ST_LS = 0, /* at the start of a line */
    ST_DOT,    /* a '.' at the start of a line (dropped) */
    ST_DOT_CR, /* ".\r" at the start of a line: only LF may follow */
    ST_MID,    /* inside a line */
    ST_CR,     /* a CR inside a line: only LF may follow */
};

void smtp_data_init(struct smtp_data *d, uint64_t max_size, smtp_data_sink sink, void *ctx)
{
    *d = (struct smtp_data){.state = ST_LS, .max_size = max_size, .sink = sink, .ctx = ctx};
}

bool smtp_data_ok(const struct smtp_data *d)
{
    return !d->too_big && !d->line_too_long && !d->spool_failed;
}

static void emit(struct smtp_data *d, const char *p, size_t n)
{
    if (n == 0 || !smtp_data_ok(d))
        return;
    if (n > d->max_size - d->size || d->size > d->max_size) {
        d->too_big = true;
        return;
    }
    d->size += n;
    if (d->sink && d->sink(d->ctx, p, n) < 0)
        d->spool_failed = true;
}

static void line_grow(struct smtp_data *d, size_t n)
{
    d->line_len += n;
    if (d->line_len > LIM_SMTP_DATA_LINE)
        d->line_too_long = true;
}

/* Skips ordinary line bytes from i; returns the index of the first CR/LF
 * (or n). */
static size_t skip_text(struct smtp_data *d, const char *p, size_t i, size_t n)
{
    size_t j = i;
    while (j < n && p[j] != '\r' && p[j] != '\n')
        j++;
    line_grow(d, j - i);
    return j;
}

enum smtp_data_status smtp_data_feed(struct smtp_data *d, const char *p, size_t n, size_t *consumed)
{
    size_t span = 0; /* start of the bytes not yet given to the sink */
    size_t i = 0;
    *consumed = 0;
    while (i < n) {
        char c = p[i];
        switch (d->state) {
        case ST_LS:
        case ST_MID:
            if (d->state == ST_LS && c == '.') {
                emit(d, p + span, i - span);
                span = i + 1;
                d->state = ST_DOT;
                line_grow(d, 1);
                i++;
                break;
            }
            i = skip_text(d, p, i, n);
            d->state = ST_MID;
            if (i < n) {
                if (p[i] == '\n')
                    return SMTP_DATA_BARE_LF;
                d->state = ST_CR;
                i++;
            }
            break;
        case ST_CR:
            if (c != '\n')
                return SMTP_DATA_BARE_CR;
            d->state = ST_LS;
            d->line_len = 0;
            i++;
            break;
        case ST_DOT:
            if (c == '\n')
                return SMTP_DATA_BARE_LF;
            if (c == '\r') {
                emit(d, p + span, i - span);
                span = i + 1;
                d->state = ST_DOT_CR;
                i++;
            } else {
                d->state = ST_MID; /* dot-stuffed line: the dot stays dropped */
            }
            break;
        default: /* ST_DOT_CR */
            if (c != '\n')
                return SMTP_DATA_BARE_CR;
            d->state = ST_LS;
            d->line_len = 0;
            *consumed = i + 1;
            return SMTP_DATA_END;
        }
    }
    emit(d, p + span, n - span);
    *consumed = n;
    return SMTP_DATA_MORE;
}

enum smtp_data_status smtp_bdat_feed(struct smtp_data *d, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (d->state == ST_CR) {
            if (p[i] != '\n')
                return SMTP_DATA_BARE_CR;
            d->state = ST_LS;
            d->line_len = 0;
            i++;
            continue;
        }
        i = skip_text(d, p, i, n);
        if (i < n) {
            if (p[i] == '\n')
                return SMTP_DATA_BARE_LF;
            d->state = ST_CR;
            i++;
        } else {
            d->state = ST_MID;
        }
    }
    emit(d, p, n);
    return SMTP_DATA_MORE;
}

enum smtp_data_status smtp_bdat_finish(struct smtp_data *d)
{
    if (d->state == ST_CR)
        return SMTP_DATA_BARE_CR;
    if (d->state == ST_MID)
        emit(d, "\r\n", 2);
    d->state = ST_LS;
    d->line_len = 0;
    return SMTP_DATA_END;
}
