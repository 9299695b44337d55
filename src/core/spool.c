/* spool.c: message spool in memory, spilling to an anonymous file (see
 * spool.h). Writes to the spill file go to the page cache; they are not
 * fsynced, since a spooled message has not been acknowledged yet. */
#include "core/spool.h"

#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void spool_init(struct spool *s, const char *dir)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->dir = dir;
    s->mem_max = SPOOL_MEM_MAX;
}

static int spill(struct spool *s)
{
    int fd = open(s->dir ? s->dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (fileio_write_all(fd, s->mem.data, s->mem.len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    buf_free(&s->mem);
    s->fd = fd;
    return 0;
}

int spool_append(struct spool *s, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (s->map) { /* appending after a view: drop the stale mapping */
        munmap(s->map, s->map_len);
        s->map = NULL;
    }
    if (s->fd < 0 && s->size + n > s->mem_max && spill(s) < 0)
        return -1;
    if (s->fd >= 0) {
        if (fileio_write_all(s->fd, p, n) < 0)
            return -1;
    } else if (buf_append(&s->mem, p, n) < 0) {
        errno = ENOMEM;
        return -1;
    }
    s->size += n;
    return 0;
}

int spool_view(struct spool *s, const char **data, size_t *len)
{
    *len = s->size;
    if (s->fd < 0) {
        *data = s->mem.data ? s->mem.data : "";
        return 0;
    }
    if (!s->map) {
        void *m = mmap(NULL, s->size, PROT_READ, MAP_SHARED, s->fd, 0);
        if (m == MAP_FAILED)
            return -1;
        s->map = m;
        s->map_len = s->size;
    }
    *data = s->map;
    return 0;
}

void spool_reset(struct spool *s)
{
    if (s->map)
        munmap(s->map, s->map_len);
    if (s->fd >= 0)
        close(s->fd);
    buf_free(&s->mem);
    const char *dir = s->dir;
    size_t mem_max = s->mem_max;
    spool_init(s, dir);
    s->mem_max = mem_max;
}
