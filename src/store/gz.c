/* gz.c: gzip-compressed message files, as Dovecot's zlib plugin writes them
 * with `zlib_save = gz`. Reading detects the magic 1f 8b and inflates;
 * anything else is passed through untouched, so plain and compressed files
 * can live side by side in one Maildir. Inflation is bounded (max bytes)
 * and corrupt input is an error value, never a crash. */
#include "store/maildir.h"

#include "core/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define GZ_WINDOW (15 + 16) /* zlib: gzip wrapper */
#define GZ_CHUNK (64 * 1024)

bool gz_is_gzip(const void *p, size_t n)
{
    const unsigned char *u = p;
    return n >= 2 && u[0] == 0x1f && u[1] == 0x8b;
}

int gz_compress(const void *p, size_t n, struct buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (n > UINT32_MAX / 2)
        return -1;
    if (deflateInit2(&z, 6, Z_DEFLATED, GZ_WINDOW, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    uLong bound = deflateBound(&z, (uLong)n);
    if (buf_reserve(out, bound) < 0) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)(uintptr_t)p;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->data + out->len;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    size_t produced = bound - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END)
        return -1;
    out->len += produced;
    return 0;
}

/* Inflates one buffer fully into out; handles concatenated members. */
int gz_decompress(const void *p, size_t n, struct buf *out, size_t max)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (n > UINT32_MAX)
        return -1;
    if (inflateInit2(&z, GZ_WINDOW) != Z_OK)
        return -1;
    z.next_in = (Bytef *)(uintptr_t)p;
    z.avail_in = (uInt)n;
    size_t start = out->len;
    int rc = Z_OK;
    while (rc != Z_STREAM_END || z.avail_in > 0) {
        if (rc == Z_STREAM_END && inflateReset(&z) != Z_OK)
            break;
        if (out->len - start >= max || buf_reserve(out, GZ_CHUNK) < 0) {
            rc = Z_MEM_ERROR;
            break;
        }
        size_t room = out->cap - out->len - 1;
        if (room > max - (out->len - start))
            room = max - (out->len - start);
        z.next_out = (Bytef *)out->data + out->len;
        z.avail_out = (uInt)room;
        rc = inflate(&z, Z_NO_FLUSH);
        out->len += room - z.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END)
            break;
        if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
            rc = Z_DATA_ERROR; /* truncated */
            break;
        }
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        out->len = start;
        return -1;
    }
    return 0;
}

/* Reads the whole file (raw bytes) into raw, at most max bytes. */
static int read_all(int fd, struct buf *raw, size_t max)
{
    for (;;) {
        if (raw->len > max || buf_reserve(raw, GZ_CHUNK) < 0) {
            errno = EFBIG;
            return -1;
        }
        ssize_t r = read(fd, raw->data + raw->len, GZ_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        raw->len += (size_t)r;
    }
}

int gz_read_file(int dirfd, const char *path, struct buf *out, size_t max)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct buf raw = {0};
    int rc = read_all(fd, &raw, max);
    close(fd);
    if (rc == 0) {
        if (gz_is_gzip(raw.data, raw.len)) {
            rc = gz_decompress(raw.data, raw.len, out, max);
            if (rc < 0)
                errno = EILSEQ;
        } else {
            rc = buf_append(out, raw.data, raw.len);
        }
    }
    buf_free(&raw);
    return rc;
}

/* ---------------------------------------------------------- streaming */

struct gz_reader {
    int fd;
    bool gzip, started, eof, zdone;
    z_stream z;
    unsigned char in[GZ_CHUNK];
    size_t in_len; /* bytes in `in` not yet handed out (plain mode) */
    size_t in_off;
};

struct gz_reader *gz_reader_open(int fd)
{
    struct gz_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->fd = fd;
    return r;
}

static long fill(struct gz_reader *r)
{
    for (;;) {
        ssize_t n = read(r->fd, r->in, sizeof(r->in));
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            r->eof = true;
        if (n >= 0) {
            r->in_len = (size_t)n;
            r->in_off = 0;
        }
        return (long)n;
    }
}

static int start(struct gz_reader *r)
{
    r->started = true;
    if (fill(r) < 0)
        return -1;
    r->gzip = gz_is_gzip(r->in, r->in_len);
    if (!r->gzip)
        return 0;
    if (inflateInit2(&r->z, GZ_WINDOW) != Z_OK)
        return -1;
    r->z.next_in = r->in;
    r->z.avail_in = (uInt)r->in_len;
    return 0;
}

/* After the end of one gzip member: the next member, or the end. */
static int next_member(struct gz_reader *r)
{
    if (r->z.avail_in == 0) {
        long got = r->eof ? 0 : fill(r);
        if (got < 0)
            return -1;
        if (got == 0) {
            r->zdone = true;
            return 0;
        }
        r->z.next_in = r->in;
        r->z.avail_in = (uInt)r->in_len;
    }
    return inflateReset(&r->z) == Z_OK ? 0 : -1;
}

static long read_gzip(struct gz_reader *r, void *p, size_t n)
{
    uInt want = (uInt)(n > UINT32_MAX ? UINT32_MAX : n);
    r->z.next_out = p;
    r->z.avail_out = want;
    while (r->z.avail_out == want && !r->zdone) {
        if (r->z.avail_in == 0) {
            if (r->eof || fill(r) < 0)
                return -1; /* truncated, or a read error */
            r->z.next_in = r->in;
            r->z.avail_in = (uInt)r->in_len;
            continue;
        }
        int rc = inflate(&r->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            if (next_member(r) < 0)
                return -1;
        } else if (rc != Z_OK) {
            return -1;
        }
    }
    return (long)(want - r->z.avail_out);
}

long gz_reader_read(struct gz_reader *r, void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (!r->started && start(r) < 0)
        return -1;
    if (r->gzip)
        return read_gzip(r, p, n);
    if (r->in_off == r->in_len) {
        if (r->eof)
            return 0;
        long got = fill(r);
        if (got <= 0)
            return got;
    }
    size_t k = r->in_len - r->in_off;
    if (k > n)
        k = n;
    memcpy(p, r->in + r->in_off, k);
    r->in_off += k;
    return (long)k;
}

void gz_reader_close(struct gz_reader *r)
{
    if (!r)
        return;
    if (r->gzip)
        inflateEnd(&r->z);
    close(r->fd);
    free(r);
}
