/* buf.h: a growable byte buffer. Callers bound its size themselves (see
 * core/limits.h); an empty buffer owns no memory, so idle sessions cost
 * nothing. */
#ifndef CM_CORE_BUF_H
#define CM_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

/* All return 0, or -1 when memory is exhausted (the buffer is unchanged). */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drops n bytes from the front; frees the storage when it becomes empty. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b); /* len = 0, keeps storage */
void buf_free(struct buf *b);  /* len = 0, frees storage */
/* Takes the storage out as a NUL-terminated string (caller frees). */
char *buf_steal_str(struct buf *b);

#endif
