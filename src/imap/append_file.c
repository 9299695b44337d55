/* append_file.c: writes an APPENDed message into a Maildir folder the way
 * delivery does (tmp/ -> fsync -> cur/ or new/ with a Dovecot-style name
 * carrying S= and W=), with the flags as the ":2," suffix and the internal
 * date as mtime. Worker thread. (Includes store/maildir.h only.) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imap/append_file.h"
#include "store/maildir.h"

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* MB_* bits (Seen, Answered, Flagged, Deleted, Draft, keywords) -> md. */
static unsigned md_flags(uint32_t f)
{
    return (f & 1 ? MDF_SEEN : 0) | (f & 2 ? MDF_REPLIED : 0) | (f & 4 ? MDF_FLAGGED : 0) |
           (f & 8 ? MDF_TRASHED : 0) | (f & 16 ? MDF_DRAFT : 0);
}

int imap_append_file(const char *folder_dir, const char *data, size_t len, uint32_t flags,
                     int64_t idate, char *name, size_t cap, bool *in_cur)
{
    char base[MDNAME_MAX + 1], tmp[4096], dst[4096];
    if (mdname_new(base, sizeof base, len, mdname_vsize(data, len)) < 0)
        return -1;
    *in_cur = flags != 0;
    if (*in_cur) {
        if (mdname_set_flags(name, cap, base, md_flags(flags), flags >> 5) < 0)
            return -1;
    } else if (snprintf(name, cap, "%s", base) >= (int)cap) {
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", folder_dir, base);
    snprintf(dst, sizeof dst, "%s/%s/%s", folder_dir, *in_cur ? "cur" : "new", name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (idate > 0) {
        struct timespec ts[2] = {{(time_t)idate, 0}, {(time_t)idate, 0}};
        futimens(fd, ts);
    }
    close(fd);
    if (rename(tmp, dst) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}
