/* lines.h: splits a byte stream into CRLF (or LF) terminated lines with a
 * bound on the line length. Bytes of a too-long line are dropped up to its
 * end and reported once as LINES_TOO_LONG. */
#ifndef CM_CORE_LINES_H
#define CM_CORE_LINES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

struct lines {
    struct buf pending; /* bytes of an incomplete line */
    size_t max;         /* longest line accepted, terminator included */
    bool skipping;      /* inside a too-long line */
};

enum lines_result { LINES_NONE = 0, LINES_LINE, LINES_TOO_LONG };

/* Takes the next line out of (p, n), advancing both. On LINES_LINE,
 * line and len hold the line without its terminator; valid until the next
 * call. Call until LINES_NONE. */
enum lines_result lines_next(struct lines *l, const char **p, size_t *n, const char **line,
                             size_t *len);
void lines_free(struct lines *l);

#endif
