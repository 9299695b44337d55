/* credcache.c: recently verified credentials, so that a client that logs
 * in again (every IMAP reconnect, every SMTP submission) costs an fstat
 * instead of an argon2 run.
 *
 * The key is BLAKE2b keyed with a per-process random secret over
 * addr || 0 || password: nothing in memory reveals a password, and nobody
 * outside can aim collisions at a slot. An entry is trusted only while the
 * password file is the one it was verified against (same device, inode,
 * size, mtime and ctime) and for LIM_CRED_CACHE_TTL seconds. Direct-mapped
 * table, one mutex: workers look up and insert. */
#include "core/limits.h"
#include "store/accounts_int.h"

#include "store/accounts.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>


struct cred_entry {
    uint8_t key[STORE_CRED_KEY_BYTES];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    time_t expires; /* 0 = empty slot */
};

static struct cred_entry slots[LIM_CRED_CACHE_SLOTS];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t secret[crypto_generichash_KEYBYTES];
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static void make_secret(void)
{
    if (sodium_init() < 0)
        return; /* the secret stays zero: the cache still works, keys are unkeyed */
    randombytes_buf(secret, sizeof secret);
}

void store_cred_key(const char *addr, const char *password, uint8_t key[STORE_CRED_KEY_BYTES])
{
    pthread_once(&secret_once, make_secret);
    crypto_generichash_state st;
    crypto_generichash_init(&st, secret, sizeof secret, STORE_CRED_KEY_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)addr, strlen(addr) + 1);
    crypto_generichash_update(&st, (const unsigned char *)password, strlen(password));
    crypto_generichash_final(&st, key, STORE_CRED_KEY_BYTES);
    sodium_memzero(&st, sizeof st);
}

static struct cred_entry *slot_of(const uint8_t key[STORE_CRED_KEY_BYTES])
{
    uint32_t h;
    memcpy(&h, key, sizeof h);
    return &slots[h % LIM_CRED_CACHE_SLOTS];
}

static bool same_ts(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

bool store_cred_hit(const uint8_t key[STORE_CRED_KEY_BYTES], const struct stat *st, time_t now)
{
    pthread_mutex_lock(&cache_mu);
    struct cred_entry *e = slot_of(key);
    bool hit = e->expires > now && sodium_memcmp(e->key, key, STORE_CRED_KEY_BYTES) == 0 &&
               e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
               same_ts(&e->mtime, &st->st_mtim) && same_ts(&e->ctime, &st->st_ctim);
    pthread_mutex_unlock(&cache_mu);
    return hit;
}

void store_cred_put(const uint8_t key[STORE_CRED_KEY_BYTES], const struct stat *st, time_t now)
{
    pthread_mutex_lock(&cache_mu);
    struct cred_entry *e = slot_of(key);
    memcpy(e->key, key, STORE_CRED_KEY_BYTES);
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtim;
    e->ctime = st->st_ctim;
    e->expires = now + LIM_CRED_CACHE_TTL;
    pthread_mutex_unlock(&cache_mu);
}

void store_login_cache_clear(void)
{
    pthread_mutex_lock(&cache_mu);
    sodium_memzero(slots, sizeof slots);
    pthread_mutex_unlock(&cache_mu);
}
