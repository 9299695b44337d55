/* lines.c: bounded line splitting over a byte stream (see lines.h). */
#include "core/lines.h"

#include <string.h>

static void strip_eol(const char *s, size_t *len)
{
    if (*len > 0 && s[*len - 1] == '\n')
        (*len)--;
    if (*len > 0 && s[*len - 1] == '\r')
        (*len)--;
}

enum lines_result lines_next(struct lines *l, const char **p, size_t *n, const char **line,
                             size_t *len)
{
    while (*n > 0) {
        const char *nl = memchr(*p, '\n', *n);
        size_t take = nl ? (size_t)(nl - *p) + 1 : *n;
        if (l->skipping) {
            *p += take;
            *n -= take;
            if (nl)
                l->skipping = false;
            continue;
        }
        if (l->pending.len + take > l->max) {
            buf_free(&l->pending);
            *p += take;
            *n -= take;
            l->skipping = nl == NULL;
            return LINES_TOO_LONG;
        }
        if (!nl) { /* incomplete: keep it */
            if (buf_append(&l->pending, *p, take) < 0)
                return LINES_TOO_LONG;
            *p += take;
            *n -= take;
            return LINES_NONE;
        }
        if (l->pending.len == 0) { /* zero-copy: the line is in the input */
            *line = *p;
            *len = take;
        } else {
            if (buf_append(&l->pending, *p, take) < 0)
                return LINES_TOO_LONG;
            *line = l->pending.data;
            *len = l->pending.len;
            l->pending.len = 0; /* storage reused; freed by lines_free/next overflow */
        }
        *p += take;
        *n -= take;
        strip_eol(*line, len);
        return LINES_LINE;
    }
    if (l->pending.len == 0)
        buf_free(&l->pending);
    return LINES_NONE;
}

void lines_free(struct lines *l) { buf_free(&l->pending); }
