/* quota.c: per-account storage quota (Dovecot `quota = maildir`, rule
 * storage=<max_mailbox_size>M, quota_grace = 0) and the oldest-first trim
 * that chatmail runs at 75 % (quota_warning) down to 70 % (§5.2).
 *
 * Usage is the sum of the ,S= sizes (uncompressed) of every message in
 * cur/ and new/ of INBOX and all .Folders. It is scanned once per account
 * and then kept incrementally in a cache keyed by the account path. The
 * Maildir stays the truth: quota_forget() drops an entry and the next use
 * scans again. The first scan of an account runs under the cache lock, so
 * no concurrent delivery can slip between scan and insert. */
#include "store/maildir.h"

#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct quota_entry {
    struct quota_entry *next;
    uint64_t usage;
    bool trimming;
    char path[];
};

struct quota_cache {
    pthread_mutex_t lock;
    struct quota_entry **tab;
    size_t nbuckets, count;
};

#define QUOTA_INITIAL_BUCKETS 1024

struct quota_cache *quota_cache_new(void)
{
    struct quota_cache *qc = calloc(1, sizeof(*qc));
    if (!qc)
        return NULL;
    qc->tab = calloc(QUOTA_INITIAL_BUCKETS, sizeof(*qc->tab));
    if (!qc->tab) {
        free(qc);
        return NULL;
    }
    qc->nbuckets = QUOTA_INITIAL_BUCKETS;
    pthread_mutex_init(&qc->lock, NULL);
    return qc;
}

void quota_cache_free(struct quota_cache *qc)
{
    if (!qc)
        return;
    for (size_t i = 0; i < qc->nbuckets; i++)
        for (struct quota_entry *e = qc->tab[i], *nx; e; e = nx) {
            nx = e->next;
            free(e);
        }
    free(qc->tab);
    pthread_mutex_destroy(&qc->lock);
    free(qc);
}

static size_t hash_path(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct quota_entry **find_slot(struct quota_cache *qc, const char *path)
{
    struct quota_entry **pp = &qc->tab[hash_path(path) & (qc->nbuckets - 1)];
    while (*pp && strcmp((*pp)->path, path) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void grow(struct quota_cache *qc)
{
    size_t nb = qc->nbuckets * 2;
    struct quota_entry **tab = calloc(nb, sizeof(*tab));
    if (!tab)
        return; /* keep the longer chains */
    for (size_t i = 0; i < qc->nbuckets; i++)
        for (struct quota_entry *e = qc->tab[i], *nx; e; e = nx) {
            nx = e->next;
            size_t b = hash_path(e->path) & (nb - 1);
            e->next = tab[b];
            tab[b] = e;
        }
    free(qc->tab);
    qc->tab = tab;
    qc->nbuckets = nb;
}

/* ----------------------------------------------------------- scanning */

/* Size a message counts for: S= from the name, else the on-disk size. */
static uint64_t message_size(int dfd, const char *name)
{
    struct mdname mn;
    if (mdname_parse(name, strlen(name), &mn) == 0 && mn.has_size)
        return mn.size;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        return (uint64_t)st.st_size;
    return 0;
}

static uint64_t scan_subdir(int mfd, const char *sub)
{
    int dfd = openat(mfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return 0;
    }
    uint64_t sum = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
            continue;
        sum += message_size(dfd, de->d_name);
    }
    closedir(d);
    return sum;
}

static uint64_t scan_maildir(int mfd)
{
    return scan_subdir(mfd, "cur") + scan_subdir(mfd, "new");
}

int quota_scan(const char *account_dir, uint64_t *bytes)
{
    int afd = open(account_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (afd < 0)
        return -1;
    int dup_fd = dup(afd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        close(afd);
        return -1;
    }
    uint64_t sum = scan_maildir(afd);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] != '.' || !strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
            continue;
        int ffd = openat(afd, n, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ffd >= 0) {
            sum += scan_maildir(ffd);
            close(ffd);
        }
    }
    closedir(d);
    close(afd);
    *bytes = sum;
    return 0;
}

/* ------------------------------------------------------------ the cache */

/* Returns the entry, scanning the account when it is new. Lock held. */
static struct quota_entry *get_locked(struct quota_cache *qc, const char *account)
{
    struct quota_entry **pp = find_slot(qc, account);
    if (*pp)
        return *pp;
    uint64_t usage;
    if (quota_scan(account, &usage) < 0)
        return NULL;
    size_t len = strlen(account);
    struct quota_entry *e = calloc(1, sizeof(*e) + len + 1);
    if (!e)
        return NULL;
    memcpy(e->path, account, len + 1);
    e->usage = usage;
    *pp = e;
    if (++qc->count > 2 * qc->nbuckets)
        grow(qc);
    return e;
}

int quota_usage(struct quota_cache *qc, const char *account_dir, uint64_t *bytes)
{
    pthread_mutex_lock(&qc->lock);
    struct quota_entry *e = get_locked(qc, account_dir);
    if (e)
        *bytes = e->usage;
    pthread_mutex_unlock(&qc->lock);
    return e ? 0 : -1;
}

static bool over_limit(uint64_t usage, uint64_t size, uint64_t limit)
{
    return limit && (usage > limit || size > limit - usage);
}

int quota_reserve(struct quota_cache *qc, const char *account_dir, uint64_t size, uint64_t limit)
{
    pthread_mutex_lock(&qc->lock);
    struct quota_entry *e = get_locked(qc, account_dir);
    int rc = -1;
    if (e) {
        rc = over_limit(e->usage, size, limit) ? 1 : 0;
        if (rc == 0)
            e->usage += size;
    }
    pthread_mutex_unlock(&qc->lock);
    return rc;
}

void quota_adjust(struct quota_cache *qc, const char *account_dir, int64_t delta)
{
    pthread_mutex_lock(&qc->lock);
    struct quota_entry *e = *find_slot(qc, account_dir);
    if (e) {
        if (delta < 0 && (uint64_t)(-delta) > e->usage)
            e->usage = 0;
        else
            e->usage += (uint64_t)delta;
    }
    pthread_mutex_unlock(&qc->lock);
}

void quota_forget(struct quota_cache *qc, const char *account_dir)
{
    pthread_mutex_lock(&qc->lock);
    struct quota_entry **pp = find_slot(qc, account_dir);
    struct quota_entry *e = *pp;
    if (e) {
        *pp = e->next;
        qc->count--;
        free(e);
    }
    pthread_mutex_unlock(&qc->lock);
}

uint64_t quota_limit_bytes(long max_mailbox_size_mb)
{
    return max_mailbox_size_mb > 0 ? (uint64_t)max_mailbox_size_mb * 1024 * 1024 : 0;
}

uint64_t quota_trim_target_bytes(long max_mailbox_size_mb)
{
    if (max_mailbox_size_mb <= 0)
        return 0;
    return (uint64_t)max_mailbox_size_mb * QUOTA_TRIM_TARGET_PCT / 100 * 1024 * 1024;
}

/* Claims the account's trim when usage is over the trigger. Lock taken. */
static bool claim_trim(struct quota_cache *qc, const char *account, uint64_t trigger)
{
    pthread_mutex_lock(&qc->lock);
    struct quota_entry *e = *find_slot(qc, account);
    bool claim = e && !e->trimming && e->usage > trigger;
    if (claim)
        e->trimming = true;
    pthread_mutex_unlock(&qc->lock);
    return claim;
}

static void release_trim(struct quota_cache *qc, const char *account)
{
    pthread_mutex_lock(&qc->lock);
    struct quota_entry *e = *find_slot(qc, account);
    if (e)
        e->trimming = false;
    pthread_mutex_unlock(&qc->lock);
}

int quota_after_delivery(struct quota_cache *qc, const char *account_dir,
                         long max_mailbox_size_mb, int64_t now)
{
    uint64_t limit = quota_limit_bytes(max_mailbox_size_mb);
    if (!qc || !limit)
        return 0;
    uint64_t trigger = limit / 100 * QUOTA_TRIM_TRIGGER_PCT;
    if (!claim_trim(qc, account_dir, trigger))
        return 0;
    struct quota_trim_result res;
    int rc = quota_trim(qc, account_dir, quota_trim_target_bytes(max_mailbox_size_mb), now,
                        false, &res);
    release_trim(qc, account_dir);
    return rc < 0 ? -1 : (int)res.removed;
}

static struct quota_cache *shared_cache;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

struct quota_cache *quota_cache_shared(void)
{
    pthread_mutex_lock(&shared_lock);
    if (!shared_cache)
        shared_cache = quota_cache_new();
    struct quota_cache *qc = shared_cache;
    pthread_mutex_unlock(&shared_lock);
    return qc;
}

void quota_cache_shared_free(void)
{
    pthread_mutex_lock(&shared_lock);
    quota_cache_free(shared_cache);
    shared_cache = NULL;
    pthread_mutex_unlock(&shared_lock);
}

/* Store's own changes (expunge, COPY/MOVE, APPEND, undo, folder removal)
 * go to the shared cache when one exists; nothing to keep otherwise. */
void quota_changed(const char *account_dir, int64_t delta)
{
    pthread_mutex_lock(&shared_lock);
    if (shared_cache)
        quota_adjust(shared_cache, account_dir, delta);
    pthread_mutex_unlock(&shared_lock);
}

void quota_changed_unknown(const char *account_dir)
{
    pthread_mutex_lock(&shared_lock);
    if (shared_cache)
        quota_forget(shared_cache, account_dir);
    pthread_mutex_unlock(&shared_lock);
}
