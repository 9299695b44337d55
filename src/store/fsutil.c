/* fsutil.c: file helpers for the account files: flock with a timeout,
 * mkdir -p, atomic replace (temporary file, fsync, rename, fsync of the
 * directory) and bounded reads. Blocking: worker threads only. */
#include "store/accounts_int.h"
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define LOCK_POLL_NS (5 * 1000 * 1000) /* 5 ms between flock attempts */

int store_lock_open(const char *path, int timeout_ms)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    long waited_ns = 0;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if ((errno != EWOULDBLOCK && errno != EINTR) ||
            waited_ns >= (long)timeout_ms * 1000000L) {
            int e = errno == EWOULDBLOCK ? ETIMEDOUT : errno;
            close(fd);
            errno = e;
            return -1;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = LOCK_POLL_NS};
        nanosleep(&ts, NULL);
        waited_ns += LOCK_POLL_NS;
    }
    return fd;
}

void store_lock_close(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

int store_mkdir_p(const char *path, mode_t mode)
{
    char tmp[LIM_STORE_PATH];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char saved = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return -1;
        tmp[i] = saved;
    }
    struct stat st;
    return (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ? 0 : -1;
}

int store_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                       bool fixed_tmp)
{
    char tmp[LIM_STORE_PATH], dst[LIM_STORE_PATH];
    unsigned char rnd[8];
    char hex[sizeof rnd * 2 + 1];
    if (sodium_init() < 0)
        return -1;
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    int n1 = fixed_tmp ? snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name)
                       : snprintf(tmp, sizeof tmp, "%s/%s.tmp-%s", dir, name, hex);
    int n2 = snprintf(dst, sizeof dst, "%s/%s", dir, name);
    if (n1 < 0 || (size_t)n1 >= sizeof tmp || n2 < 0 || (size_t)n2 >= sizeof dst)
        return -1;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (fixed_tmp ? O_TRUNC : O_EXCL);
    int fd = open(tmp, flags, 0600);
    if (fd < 0)
        return -1;
    if (fileio_write_all(fd, data, len) < 0 || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, dst) != 0) {
        unlink(tmp);
        return -1;
    }
    return fileio_fsync_path(dir);
}

long store_read_fd(int fd, char *out, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, out + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap - 1) {
            char extra;
            if (read(fd, &extra, 1) != 0)
                return -1; /* larger than allowed (or an error) */
            break;
        }
    }
    out[len] = '\0';
    return (long)len;
}

int store_path(char *out, size_t outsz, const char *dir, const char *name)
{
    int n = snprintf(out, outsz, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= outsz) ? -1 : 0;
}

void store_rstrip(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}
