/* msgread.c: reads a stored message for FETCH: gzip through store's gz.c,
 * then bare LF -> CRLF so that sizes match RFC822.SIZE (W=) as Dovecot's
 * do. Runs on a worker thread. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "imap/imap_mime.h"
#include "store/store.h"

static int crlf(struct buf *b)
{
    size_t bare = 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] == '\n' && (i == 0 || b->data[i - 1] != '\r'))
            bare++;
    if (!bare)
        return 0;
    struct buf o = {0};
    if (buf_reserve(&o, b->len + bare) < 0)
        return -1;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\n' && (i == 0 || b->data[i - 1] != '\r'))
            o.data[o.len++] = '\r';
        o.data[o.len++] = b->data[i];
    }
    buf_free(b);
    *b = o;
    return 0;
}

int imap_read_message(const char *path, struct buf *out, size_t max)
{
    buf_reset(out);
    if (gz_read_file(AT_FDCWD, path, out, max) < 0)
        return -1;
    return crlf(out);
}

/* Only the header block (up to the blank line), for header-only FETCHes:
 * a big message is not read for BODY.PEEK[HEADER.FIELDS (...)]. */
int imap_read_header(const char *path, struct buf *out, size_t max)
{
    buf_reset(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct gz_reader *r = gz_reader_open(fd);
    if (!r) {
        close(fd);
        return -1;
    }
    char chunk[8192];
    long n;
    int rc = 0;
    while (out->len < max && (n = gz_reader_read(r, chunk, sizeof chunk)) > 0) {
        size_t from = out->len > 3 ? out->len - 3 : 0;
        if (buf_append(out, chunk, (size_t)n) < 0) {
            rc = -1;
            break;
        }
        if (memmem(out->data + from, out->len - from, "\n\r\n", 3) ||
            memmem(out->data + from, out->len - from, "\n\n", 2))
            break;
    }
    gz_reader_close(r);
    return rc < 0 ? -1 : crlf(out);
}
