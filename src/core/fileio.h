/* fileio.h: the small durable-file operations every part needs: write all
 * bytes, fsync a directory, and replace a file atomically (unique temporary
 * in the same directory, fsync, rename, fsync the directory), so that a
 * crash leaves either the old or the new file, never a torn one. */
#ifndef CM_CORE_FILEIO_H
#define CM_CORE_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes all n bytes (retrying on EINTR and short writes). 0 or -1 (errno). */
int fileio_write_all(int fd, const void *p, size_t n);
/* fsync of a path opened read-only (a directory or a file). 0 or -1 (errno). */
int fileio_fsync_path(const char *path);
/* Replaces <dir>/<name> with data: <dir>/<name>.tmp-<random> (no leading dot:
 * in a Maildir++ account that would be a folder), written with
 * `mode`, fsynced, renamed over the name; the directory is fsynced when
 * sync_dir is set. 0, or -1 with errno (the temporary is removed). */
int fileio_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                        mode_t mode, bool sync_dir);

#endif
