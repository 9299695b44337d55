/* lastlogin.c: the password file's mtime is the day of the last login
 * (spec §2.6; decision 8: any successful IMAP or SMTP login counts).
 * Both atime and mtime are set to the start of the UTC day, and only when
 * the mtime differs, so a busy account costs one fstat per login. */
#include "store/accounts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECONDS_PER_DAY 86400

time_t store_day_floor(time_t t)
{
    time_t r = t % SECONDS_PER_DAY;
    if (r < 0)
        r += SECONDS_PER_DAY;
    return t - r;
}

static bool mtime_is(const struct stat *st, time_t day)
{
    return st->st_mtim.tv_sec == day && st->st_mtim.tv_nsec == 0;
}

int store_lastlogin_update_fd(int fd, time_t now)
{
    struct stat st;
    time_t day = store_day_floor(now);
    if (fstat(fd, &st) != 0)
        return -1;
    if (mtime_is(&st, day))
        return 0;
    struct timespec ts[2] = {{.tv_sec = day, .tv_nsec = 0}, {.tv_sec = day, .tv_nsec = 0}};
    return futimens(fd, ts) == 0 ? 1 : -1;
}

int store_lastlogin_update(const char *password_path, time_t now)
{
    struct stat st;
    time_t day = store_day_floor(now);
    if (stat(password_path, &st) != 0)
        return -1;
    if (mtime_is(&st, day))
        return 0;
    struct timespec ts[2] = {{.tv_sec = day, .tv_nsec = 0}, {.tv_sec = day, .tv_nsec = 0}};
    return utimensat(AT_FDCWD, password_path, ts, 0) == 0 ? 1 : -1;
}
