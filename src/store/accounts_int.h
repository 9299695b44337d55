/* accounts_int.h: helpers shared by the account files of src/store
 * (file locks, atomic writes, bounded reads, the credential cache).
 * Private to src/store; other folders use accounts.h. */
#ifndef CM_STORE_ACCOUNTS_PRIV_H
#define CM_STORE_ACCOUNTS_PRIV_H

#include "core/limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>


/* Opens (creating) path and takes an exclusive flock, polling until
 * timeout_ms. Returns the fd, or -1 (errno ETIMEDOUT on timeout). */
int store_lock_open(const char *path, int timeout_ms);
/* Releases the lock and closes fd. */
void store_lock_close(int fd);
/* mkdir -p; new directories get mode. Returns 0 or -1. */
int store_mkdir_p(const char *path, mode_t mode);
/* Writes dir/name atomically: dir/name.tmp-<random> (or dir/name.tmp when
 * fixed_tmp), fsync, rename, fsync dir. Returns 0 or -1. */
int store_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                       bool fixed_tmp);
/* Reads at most cap-1 bytes of an open file into out (NUL-terminated).
 * Returns the length, or -1 on error or when the file is larger. */
long store_read_fd(int fd, char *out, size_t cap);
/* out = dir "/" name; returns 0, or -1 when it does not fit. */
int store_path(char *out, size_t outsz, const char *dir, const char *name);
/* Drops trailing CR/LF/space/tab. */
void store_rstrip(char *s);

/* Credential cache (credcache.c): key = keyed BLAKE2b(process secret,
 * addr || 0 || password); an entry is valid for the password file whose
 * dev, inode, size, mtime and ctime it recorded, until it expires. */
#define STORE_CRED_KEY_BYTES 32
void store_cred_key(const char *addr, const char *password, uint8_t key[STORE_CRED_KEY_BYTES]);
bool store_cred_hit(const uint8_t key[STORE_CRED_KEY_BYTES], const struct stat *st, time_t now);
void store_cred_put(const uint8_t key[STORE_CRED_KEY_BYTES], const struct stat *st, time_t now);

#endif
