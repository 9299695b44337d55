/* append.c: IMAP APPEND into a folder, written exactly like a delivery:
 * quota reserved first (refusal = STORE_EQUOTA, IMAP NO [OVERQUOTA]),
 * tmp/<name> written (gzip when store_compress), fsynced, its mtime set to
 * the internal date, renamed into cur/ (when flags are given, with the
 * ":2," suffix) or new/, and that directory fsynced; only then is the file
 * indexed and STORE_OK returned. A crash before the directory fsync leaves
 * at most a file in tmp/, which expiry cleans. Worker thread. A message
 * given as a file (store_append_fd: IMAP's spool) is copied in 64 KiB
 * chunks, never mapped or read whole (with store_compress, the caller maps
 * it: gzip needs the whole input). */
#include "store/mailbox.h"
#include "store/maildir.h"

#include "core/buf.h"
#include "core/fileio.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* MB_* bits (Seen, Answered, Flagged, Deleted, Draft, keywords) -> md. */
static unsigned md_flags(uint32_t f)
{
    return (f & MB_SEEN ? MDF_SEEN : 0) | (f & MB_ANSWERED ? MDF_REPLIED : 0) |
           (f & MB_FLAGGED ? MDF_FLAGGED : 0) | (f & MB_DELETED ? MDF_TRASHED : 0) |
           (f & MB_DRAFT ? MDF_DRAFT : 0);
}

/* tmp/<base> with the bytes, fsynced, mtime = idate. */
/* The message: bytes in memory, or (src_fd >= 0) a file read in chunks,
 * so that a large APPEND is never whole in this process's memory. */
struct msg_src {
    const void *p;
    int fd;
    size_t len;
};

static int copy_from_fd(int out, int in, size_t len)
{
    char b[65536];
    for (size_t off = 0; off < len;) {
        size_t want = len - off < sizeof b ? len - off : sizeof b;
        ssize_t n = pread(in, b, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* the spool file is shorter than said */
            return -1;
        }
        if (fileio_write_all(out, b, (size_t)n) < 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

/* mdname_vsize over a file, in chunks. */
static int vsize_fd(int in, size_t len, uint64_t *out)
{
    char b[65536];
    uint64_t v = len;
    char prev = '\0';
    for (size_t off = 0; off < len;) {
        size_t want = len - off < sizeof b ? len - off : sizeof b;
        ssize_t n = pread(in, b, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        for (ssize_t i = 0; i < n; i++) { /* a bare LF counts as CRLF */
            if (b[i] == '\n' && prev != '\r')
                v++;
            prev = b[i];
        }
        off += (size_t)n;
    }
    *out = v;
    return 0;
}

static int write_tmp(const char *tmp, const struct msg_src *src, int64_t idate, bool sync)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = src->fd >= 0 ? copy_from_fd(fd, src->fd, src->len)
                          : fileio_write_all(fd, src->p, src->len);
    if (rc == 0 && idate > 0) {
        struct timespec ts[2] = {{(time_t)idate, 0}, {(time_t)idate, 0}};
        rc = futimens(fd, ts);
    }
    if (rc == 0 && sync)
        rc = fsync(fd);
    int e = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc < 0) {
        unlink(tmp);
        errno = e;
    }
    return rc;
}

/* Writes the file durably; name gets its final name, *in_cur its place. */
static int place_file(const char *dir, const struct msg_src *src, uint32_t flags,
                      int64_t idate, const struct store_opts *o, char *name, size_t cap,
                      bool *in_cur)
{
    char base[MDNAME_MAX + 1];
    struct buf data = {0}, tmp = {0}, dst = {0}, sub = {0};
    int rc = -1;
    const void *msg = src->p;
    size_t len = src->len;
    uint64_t vsize = 0;
    *in_cur = flags != 0;
    if (src->fd >= 0 ? vsize_fd(src->fd, len, &vsize) < 0 : (vsize = mdname_vsize(msg, len), 0))
        goto out;
    if (mdname_new(base, sizeof base, len, vsize) < 0 ||
        (*in_cur ? mdname_set_flags(name, cap, base, md_flags(flags), flags >> 5) < 0
                 : snprintf(name, cap, "%s", base) >= (int)cap)) {
        errno = ENAMETOOLONG;
        goto out;
    }
    /* uncompressed, the bytes go to the file as they are (no copy in
     * memory: an APPEND's message may be a mapped spool file) */
    if ((o->compress && src->fd < 0 && gz_compress(msg, len, &data) < 0) ||
        buf_printf(&tmp, "%s/tmp/%s", dir, base) < 0 ||
        buf_printf(&sub, "%s/%s", dir, *in_cur ? "cur" : "new") < 0 ||
        buf_printf(&dst, "%s/%s", sub.data, name) < 0) {
        errno = ENOMEM;
        goto out;
    }
    struct msg_src gz = {data.data, -1, data.len};
    if (write_tmp(tmp.data, o->compress && src->fd < 0 ? &gz : src, idate, !o->no_fsync) < 0)
        goto out;
    if (rename(tmp.data, dst.data) < 0) {
        int e = errno;
        unlink(tmp.data);
        errno = e;
        goto out;
    }
    if (!o->no_fsync && fileio_fsync_path(sub.data) < 0) {
        int e = errno;
        unlink(dst.data);
        errno = e;
        goto out;
    }
    rc = 0;
out:
    buf_free(&data);
    buf_free(&tmp);
    buf_free(&dst);
    buf_free(&sub);
    return rc;
}

static enum store_status append_src(struct mailbox *mb, const char *account_dir,
                                    const struct msg_src *src, uint32_t flags, int64_t idate,
                                    const struct store_opts *o, uint32_t *uid_out,
                                    uint64_t *modseq_out, int *err_out);

enum store_status store_append(struct mailbox *mb, const char *account_dir, const void *msg,
                               size_t len, uint32_t flags, int64_t idate,
                               const struct store_opts *o, uint32_t *uid_out,
                               uint64_t *modseq_out, int *err_out)
{
    struct msg_src src = {msg, -1, len};
    return append_src(mb, account_dir, &src, flags, idate, o, uid_out, modseq_out, err_out);
}

enum store_status store_append_fd(struct mailbox *mb, const char *account_dir, int fd,
                                  size_t len, uint32_t flags, int64_t idate,
                                  const struct store_opts *o, uint32_t *uid_out,
                                  uint64_t *modseq_out, int *err_out)
{
    struct msg_src src = {NULL, fd, len};
    return append_src(mb, account_dir, &src, flags, idate, o, uid_out, modseq_out, err_out);
}

static enum store_status append_src(struct mailbox *mb, const char *account_dir,
                                    const struct msg_src *src, uint32_t flags, int64_t idate,
                                    const struct store_opts *o, uint32_t *uid_out,
                                    uint64_t *modseq_out, int *err_out)
{
    size_t len = src->len;
    uint64_t limit = quota_limit_bytes(o->max_mailbox_size_mb);
    bool reserved = false;
    *err_out = 0;
    if (o->quota && limit) {
        int q = quota_reserve(o->quota, account_dir, len, limit);
        if (q == 1)
            return STORE_EQUOTA;
        if (q < 0) {
            *err_out = errno ? errno : EIO;
            return STORE_EIO;
        }
        reserved = true;
    }
    struct buf dir = {0};
    char name[MDNAME_MAX + 1];
    const char *err;
    bool in_cur;
    int rc = folder_path(account_dir, mailbox_name(mb), &dir);
    if (rc == 0)
        rc = place_file(dir.data, src, flags, idate, o, name, sizeof name, &in_cur);
    if (rc < 0)
        *err_out = errno ? errno : EIO;
    buf_free(&dir);
    if (rc == 0 && mailbox_append_file(mb, in_cur, name, uid_out, modseq_out, &err) < 0) {
        /* Durable but not indexed: the next sync gives it its UID. */
        log_warn("append: %s", err);
        *uid_out = 0;
        *modseq_out = 0;
    }
    if (rc < 0) {
        if (reserved)
            quota_adjust(o->quota, account_dir, -(int64_t)len);
        return STORE_EIO;
    }
    if (!reserved && o->quota)
        quota_adjust(o->quota, account_dir, (int64_t)len);
    else if (!reserved)
        quota_changed(account_dir, (int64_t)len);
    else if (quota_after_delivery(o->quota, account_dir, o->max_mailbox_size_mb,
                                  (int64_t)time(NULL)) < 0)
        log_warn("quota-expire: trim failed: %s", strerror(errno));
    return STORE_OK;
}
