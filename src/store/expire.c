/* expire.c: the daily expiry pass of §5.1 (chatmail-expire) in one walk
 * over mailboxes_dir, which also yields the fsreport gauges of §5.5.
 *
 * For each entry whose name contains '@', in directory order:
 *   1. scan it recursively with dirfd-relative calls (openat, fdopendir,
 *      fstatat): regular files under a directory named cur, new or tmp are
 *      messages, other files are extra; `password` gives last_login (mtime);
 *   2. last_login older than delete_inactive_users_after -> remove it all;
 *   3. no password file -> rmdir when empty, else log and go on;
 *   4. messages older than delete_mails_after go; seen (cur/) messages over
 *      200000 bytes on disk older than delete_large_after go; tmp/ files
 *      older than 36 h go (Dovecot's tmp cleanup);
 *   5. quota trim to 70 % of max_mailbox_size (§5.2);
 *   6. if anything went, maildirsize goes too.
 * A dry run deletes nothing at all (decision 7) but counts what would go.
 * The caller drives it in batches (expire_step) so it can run on a worker
 * and report between batches. */
#include "store/maildir.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPIRE_MAX_DEPTH 8 /* deeper directories in a mailbox are not scanned */

const uint64_t fsreport_sizes[FSREPORT_NSIZES] = {0, 102400, 524288, 1048576,
                                                  2097152, 5242880, 10485760};
const int fsreport_days[FSREPORT_NDAYS] = {1, 10, 30, 40, 80, 100, 150};

enum msg_kind { MK_CUR, MK_NEW, MK_TMP };

struct msg_entry {
    size_t rel;        /* offset of the relative path in names */
    int64_t mtime;
    uint64_t size;     /* on disk */
    uint64_t ssize;    /* S= size, or size */
    enum msg_kind kind;
    bool top;          /* in the INBOX cur/ or new/ */
    bool removed;
};

struct mbox_scan {
    struct msg_entry *m;
    size_t n, cap;
    struct buf names;
    bool has_login;
    int64_t last_login;
    uint64_t extra_bytes;
    uint64_t maildirsize_bytes; /* part of extra_bytes */
    size_t entries; /* top-level entries, for the rmdir rule */
};

struct expire_run {
    struct expire_params p;
    char *base;
    int basefd;
    DIR *dir;
    struct mbox_scan sc;
    struct expire_stats st;
    struct timespec t0;
};

static int add_msg(struct mbox_scan *sc, const char *rel, const struct stat *st,
                   enum msg_kind kind, bool top, const char *name)
{
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        struct msg_entry *m = realloc(sc->m, cap * sizeof(*m));
        if (!m)
            return -1;
        sc->m = m;
        sc->cap = cap;
    }
    struct msg_entry *e = &sc->m[sc->n];
    e->rel = sc->names.len;
    if (buf_append(&sc->names, rel, strlen(rel) + 1) < 0)
        return -1;
    struct mdname mn;
    e->mtime = (int64_t)st->st_mtim.tv_sec;
    e->size = (uint64_t)st->st_size;
    e->ssize = mdname_parse(name, strlen(name), &mn) == 0 && mn.has_size ? mn.size : e->size;
    e->kind = kind;
    e->top = top && kind != MK_TMP && mn.has_secs && mn.has_size;
    e->removed = false;
    sc->n++;
    return 0;
}

static int kind_of(const char *dirname)
{
    if (!strcmp(dirname, "cur"))
        return MK_CUR;
    if (!strcmp(dirname, "new"))
        return MK_NEW;
    if (!strcmp(dirname, "tmp"))
        return MK_TMP;
    return -1;
}

static int scan_dir(struct mbox_scan *sc, int dfd, const char *rel, int kind, int depth);

static int scan_entry(struct mbox_scan *sc, int dfd, const char *rel, const struct dirent *de,
                      int kind, int depth)
{
    char path[4096];
    int pl = snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
    if (pl < 0 || (size_t)pl >= sizeof(path))
        return 0;
    if (de->d_type == DT_DIR) {
        if (depth + 1 >= EXPIRE_MAX_DEPTH)
            return 0;
        int fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? 0 : scan_dir(sc, fd, path, kind_of(de->d_name), depth + 1);
    }
    struct stat st;
    if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode)) { /* DT_UNKNOWN file systems */
        struct dirent d2 = *de;
        d2.d_type = DT_DIR;
        return scan_entry(sc, dfd, rel, &d2, kind, depth);
    }
    if (S_ISREG(st.st_mode) && !strcmp(de->d_name, "password") && (!sc->has_login || depth == 0)) {
        sc->has_login = true;
        sc->last_login = (int64_t)st.st_mtim.tv_sec;
    }
    if (kind >= 0 && S_ISREG(st.st_mode))
        return add_msg(sc, path, &st, (enum msg_kind)kind, depth == 1, de->d_name);
    if (depth == 0 && !strcmp(de->d_name, "maildirsize"))
        sc->maildirsize_bytes = (uint64_t)st.st_size;
    sc->extra_bytes += (uint64_t)st.st_size;
    return 0;
}

/* Scans the directory open at dfd (closed here). */
static int scan_dir(struct mbox_scan *sc, int dfd, const char *rel, int kind, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (depth == 0)
            sc->entries++;
        rc = scan_entry(sc, dirfd(d), rel, de, kind, depth);
    }
    closedir(d);
    return rc;
}

/* rm -r of the entry `name` in dfd, without following symlinks. */
static int remove_tree(int dfd, const char *name, int depth)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if ((errno != EISDIR && errno != EPERM) || depth > EXPIRE_MAX_DEPTH * 4)
        return -1;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rc |= remove_tree(dirfd(d), de->d_name, depth + 1);
    closedir(d);
    if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

static const char *rel_of(const struct mbox_scan *sc, const struct msg_entry *m)
{
    return sc->names.data + m->rel;
}

static bool remove_msg(struct expire_run *x, int mfd, struct mbox_scan *sc, struct msg_entry *m)
{
    if (x->p.verbose)
        log_info("expire: removing %s", rel_of(sc, m));
    if (!x->p.dry_run && unlinkat(mfd, rel_of(sc, m), 0) < 0 && errno != ENOENT)
        return false;
    m->removed = true;
    x->st.removed_files++;
    return true;
}

/* Step 4. Returns the number of messages removed. */
static size_t expire_messages(struct expire_run *x, int mfd, struct mbox_scan *sc)
{
    int64_t now = x->p.now;
    int64_t cut_mails = now - (int64_t)x->p.delete_mails_after * 86400;
    int64_t cut_large = now - (int64_t)x->p.delete_large_after * 86400;
    int64_t cut_tmp = now - EXPIRE_TMP_SECS;
    size_t removed = 0;
    for (size_t i = 0; i < sc->n; i++) {
        struct msg_entry *m = &sc->m[i];
        bool old = m->mtime < cut_mails;
        bool large = m->kind == MK_CUR && m->size > EXPIRE_LARGE_BYTES && m->mtime < cut_large;
        bool stale_tmp = m->kind == MK_TMP && m->mtime < cut_tmp;
        if ((old || large || stale_tmp) && remove_msg(x, mfd, sc, m))
            removed++;
    }
    return removed;
}

/* Step 5: §5.2 trim over the INBOX cur/ and new/ that are left. */
static size_t trim_mailbox(struct expire_run *x, int mfd, struct mbox_scan *sc, const char *name)
{
    if (x->p.max_mailbox_size_mb <= 0)
        return 0;
    uint64_t target = quota_trim_target_bytes(x->p.max_mailbox_size_mb);
    struct quota_trim_item *v = malloc((sc->n ? sc->n : 1) * sizeof(*v));
    if (!v)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < sc->n; i++) {
        struct msg_entry *m = &sc->m[i];
        const char *base = strchr(rel_of(sc, m), '/') + 1;
        struct mdname mn;
        if (m->top && !m->removed && mdname_parse(base, strlen(base), &mn) == 0)
            v[n++] = (struct quota_trim_item){mn.secs, m->ssize, rel_of(sc, m), i};
    }
    size_t k = quota_trim_pick(v, n, target, x->p.now), removed = 0;
    for (size_t i = 0; i < k; i++)
        removed += remove_msg(x, mfd, sc, &sc->m[v[i].idx]);
    free(v);
    if (removed)
        log_info("quota-expire: %s%zu message(s) from %s",
                 x->p.dry_run ? "dry run, would remove " : "removed ", removed, name);
    if (removed && !x->p.dry_run) {
        metrics_inc(M_QUOTA_EXPIRE_RUNS);
        metrics_add(M_QUOTA_EXPIRE_REMOVED_FILES, removed);
    }
    return removed;
}

/* fsreport gauges of a mailbox that stays. */
static void tally(struct expire_run *x, const struct mbox_scan *sc, const char *name)
{
    struct fsreport *f = &x->st.fs;
    f->accounts_all++;
    bool ci = strncmp(name, "ci-", 3) == 0;
    if (ci) {
        f->accounts_ci++;
    } else {
        f->accounts_user++;
        for (int d = 0; d < FSREPORT_NDAYS && sc->has_login; d++)
            if (sc->last_login >= x->p.now - (int64_t)fsreport_days[d] * 86400)
                f->active[d]++;
    }
    f->bytes_extra += sc->extra_bytes;
    for (size_t i = 0; i < sc->n; i++) {
        const struct msg_entry *m = &sc->m[i];
        if (m->removed)
            continue;
        f->bytes_messages += m->size;
        for (int t = 0; t < FSREPORT_NSIZES; t++)
            if (m->size >= fsreport_sizes[t]) {
                f->msg_bytes[t] += m->size;
                f->msg_count[t]++;
            }
    }
}

static void forget_quota(struct expire_run *x, const char *name)
{
    char path[4096];
    if (x->p.quota && !x->p.dry_run &&
        snprintf(path, sizeof(path), "%s/%s", x->base, name) < (int)sizeof(path))
        quota_forget(x->p.quota, path);
}

/* Steps 2 and 3. True when the mailbox is gone (or would be). */
static bool remove_whole(struct expire_run *x, const struct mbox_scan *sc, const char *name)
{
    int64_t cut = x->p.now - (int64_t)x->p.delete_inactive_users_after * 86400;
    if (sc->has_login && sc->last_login < cut) {
        if (x->p.verbose)
            log_info("expire: removing %s/%s", x->base, name);
        if (x->p.dry_run)
            return true;
        if (remove_tree(x->basefd, name, 0) < 0)
            log_warn("expire: could not remove all of %s/%s: %s", x->base, name, strerror(errno));
        else
            metrics_gauge_add(G_ACCOUNTS, -1);
        return true;
    }
    if (sc->has_login)
        return false;
    if (x->p.dry_run ? sc->entries == 0 : unlinkat(x->basefd, name, AT_REMOVEDIR) == 0)
        return true;
    log_info("Skipped deleting %s/%s, doesn't have last_login but isn't empty", x->base, name);
    return false;
}

static void process_mailbox(struct expire_run *x, const char *name)
{
    struct mbox_scan *sc = &x->sc;
    sc->n = sc->entries = 0;
    sc->has_login = false;
    sc->extra_bytes = sc->maildirsize_bytes = 0;
    buf_reset(&sc->names);
    int mfd = openat(x->basefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (mfd < 0)
        return; /* not a directory */
    x->st.mailboxes++;
    int sfd = dup(mfd);
    if (sfd < 0 || scan_dir(sc, sfd, "", -1, 0) < 0) {
        log_warn("expire: cannot scan %s/%s: %s", x->base, name, strerror(errno));
        close(mfd);
        return;
    }
    if (remove_whole(x, sc, name)) {
        x->st.removed_mailboxes++;
        forget_quota(x, name);
        close(mfd);
        return;
    }
    x->st.files += sc->n;
    size_t removed = expire_messages(x, mfd, sc);
    removed += trim_mailbox(x, mfd, sc, name);
    if (removed && !x->p.dry_run) {
        unlinkat(mfd, "maildirsize", 0);
        sc->extra_bytes -= sc->maildirsize_bytes;
        forget_quota(x, name);
    }
    tally(x, sc, name);
    close(mfd);
}

struct expire_run *expire_begin(const struct expire_params *p, char *err, size_t errlen)
{
    struct expire_run *x = calloc(1, sizeof(*x));
    if (!x || !(x->base = strdup(p->mailboxes_dir))) {
        snprintf(err, errlen, "out of memory");
        free(x);
        return NULL;
    }
    x->p = *p;
    x->p.mailboxes_dir = x->base;
    x->st.fs.computed_at = p->now;
    clock_gettime(CLOCK_MONOTONIC, &x->t0);
    x->basefd = open(x->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int sfd = x->basefd >= 0 ? dup(x->basefd) : -1;
    x->dir = sfd >= 0 ? fdopendir(sfd) : NULL;
    if (!x->dir) {
        snprintf(err, errlen, "%s: %s", x->base, strerror(errno));
        if (sfd >= 0)
            close(sfd);
        if (x->basefd >= 0)
            close(x->basefd);
        free(x->base);
        free(x);
        return NULL;
    }
    return x;
}

int expire_step(struct expire_run *x, size_t max_mailboxes)
{
    for (size_t k = 0; k < max_mailboxes; k++) {
        struct dirent *de = readdir(x->dir);
        if (!de)
            return 0;
        if (strchr(de->d_name, '@'))
            process_mailbox(x, de->d_name);
    }
    return 1;
}

void expire_end(struct expire_run *x, struct expire_stats *out)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    x->st.seconds = (double)(t1.tv_sec - x->t0.tv_sec) + (double)(t1.tv_nsec - x->t0.tv_nsec) / 1e9;
    *out = x->st;
    closedir(x->dir);
    close(x->basefd);
    free(x->sc.m);
    buf_free(&x->sc.names);
    free(x->base);
    free(x);
}

int expire_run_all(const struct expire_params *p, struct expire_stats *out, char *err,
                   size_t errlen)
{
    struct expire_run *x = expire_begin(p, err, errlen);
    if (!x)
        return -1;
    while (expire_step(x, 1000) > 0)
        ;
    expire_end(x, out);
    return 0;
}

int expire_summary(const struct expire_stats *s, char *out, size_t cap)
{
    return snprintf(out, cap,
                    "Removed %llu out of %llu mailboxes and %llu out of %llu files in existing "
                    "mailboxes in %.2f seconds",
                    (unsigned long long)s->removed_mailboxes, (unsigned long long)s->mailboxes,
                    (unsigned long long)s->removed_files, (unsigned long long)s->files,
                    s->seconds);
}
