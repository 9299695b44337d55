/* spool.h: where a message being received is kept while it streams in.
 * Small messages stay in memory; past SPOOL_MEM_MAX the bytes spill into an
 * anonymous file (O_TMPFILE) under a spool directory, so a thousand large
 * uploads at once do not hold gigabytes of RAM. The complete message is
 * then seen as one contiguous read-only region (memory or mmap). */
#ifndef CM_CORE_SPOOL_H
#define CM_CORE_SPOOL_H

#include <stddef.h>

#include "core/buf.h"

#define SPOOL_MEM_MAX (1024 * 1024)

struct spool {
    struct buf mem;      /* the bytes, while in memory */
    int fd;              /* spill file, or -1 */
    size_t size;         /* bytes appended so far */
    const char *dir;     /* where spill files go (not owned) */
    void *map;           /* mapping made by spool_view */
    size_t map_len;
    size_t mem_max;      /* bytes kept in memory before spilling (SPOOL_MEM_MAX) */
};

void spool_init(struct spool *s, const char *dir);
/* Appends bytes; returns 0 or -1 (errno set) when memory or disk fails. */
int spool_append(struct spool *s, const void *p, size_t n);
/* The whole message as one region (maps the spill file). Returns 0 or -1. */
int spool_view(struct spool *s, const char **data, size_t *len);
/* Empties the spool for the next message, releasing memory and file. */
void spool_reset(struct spool *s);

#endif
