/* deliver.c: durable Maildir delivery, safe to call from worker threads.
 *
 * Promise: a recipient's status is STORE_OK only after its message file's
 * data was fsynced and its entry in new/ was made durable by an fsync of
 * new/. For one message:
 *   1. write <dir>/tmp/<name> (gzip when asked), fsync it, close it;
 *   2. every other recipient on the same filesystem gets a hard link of that
 *      durable file straight into its new/ (one inode, one copy of the data;
 *      Maildir never modifies files in place, flag changes are renames);
 *      recipients elsewhere (EXDEV, EMLINK) get their own written copy;
 *   3. rename tmp/<name> -> new/<name>;
 *   4. fsync each distinct new/ directory once — across all messages of a
 *      batch, which is where concurrent deliveries share fsyncs.
 * A crash at any point leaves at most a file in tmp/ (cleaned by expiry
 * after 36 h) and never a partial file in new/. */
#include "store/maildir.h"
#include "core/fileio.h"

#include "core/buf.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Per recipient: where its copy is and what is left to do. */
struct rstate {
    char *tmp_path;  /* own written copy in tmp/, renamed in phase 3 */
    char *new_path;  /* final path */
    char *new_dir;   /* <dir>/new */
    bool reserved;   /* quota was charged */
    size_t dup_of;   /* 1 + index of an earlier recipient with the same dir */
};

static char *path_join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s%s", a, b, *c ? "/" : "", c);
    return p;
}

static int mkdir_ok(const char *path, bool *created)
{
    if (mkdir(path, 0700) == 0) {
        *created = true;
        return 0;
    }
    return errno == EEXIST ? 0 : -1;
}

/* Creates dir, dir/tmp, dir/new, dir/cur as needed, durably. */
static int ensure_dirs(const char *dir, bool sync)
{
    bool created_dir = false, created_sub = false;
    char sub[4200];
    if (mkdir_ok(dir, &created_dir) < 0)
        return -1;
    static const char *const subs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < 3; i++) {
        if (snprintf(sub, sizeof(sub), "%s/%s", dir, subs[i]) >= (int)sizeof(sub)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (mkdir_ok(sub, &created_sub) < 0)
            return -1;
    }
    if (sync && created_sub && fileio_fsync_path(dir) < 0)
        return -1;
    if (sync && created_dir) {
        snprintf(sub, sizeof(sub), "%s/..", dir);
        return fileio_fsync_path(sub);
    }
    return 0;
}

/* Writes a durable file at path; on failure nothing is left behind. */
static int write_copy(const char *path, const struct buf *data, bool sync)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = fileio_write_all(fd, data->data, data->len);
    if (rc == 0 && sync)
        rc = fsync(fd);
    int e = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc < 0) {
        unlink(path);
        errno = e;
    }
    return rc;
}

static void fail(struct store_rcpt *r, int err)
{
    r->status = STORE_EIO;
    r->err = err ? err : EIO;
}

static const char *account_of(const struct store_rcpt *r)
{
    return r->account ? r->account : r->dir;
}

/* Per message of a batch. */
struct job_state {
    struct buf data; /* the bytes written: plain or gzip */
    struct rstate *rs;
    uint64_t size;
};

static void reserve_quota(struct store_job *j, struct job_state *js, const struct store_opts *o)
{
    uint64_t limit = quota_limit_bytes(o->max_mailbox_size_mb);
    if (!o->quota || !limit)
        return;
    for (size_t i = 0; i < j->n; i++) {
        struct store_rcpt *r = &j->r[i];
        if (r->status != STORE_OK || js->rs[i].dup_of)
            continue;
        int rc = quota_reserve(o->quota, account_of(r), js->size, limit);
        if (rc == 1) {
            r->status = STORE_EQUOTA;
            log_info("delivery refused: " QUOTA_REASON);
        } else if (rc < 0) {
            fail(r, errno);
        } else {
            js->rs[i].reserved = true;
        }
    }
}

static int write_copy_mkdir(const char *dir, const char *path, const struct buf *data, bool sync)
{
    if (write_copy(path, data, sync) == 0)
        return 0;
    if (errno != ENOENT || ensure_dirs(dir, sync) < 0)
        return -1;
    return write_copy(path, data, sync);
}

/* Hard-links the durable file src into the recipient's new/. */
static int link_copy(const char *src, const char *dir, const char *dst, bool sync)
{
    if (link(src, dst) == 0)
        return 0;
    if (errno != ENOENT || ensure_dirs(dir, sync) < 0)
        return -1;
    return link(src, dst);
}

/* Phase 1 and 2: one written copy per filesystem, hard links elsewhere. */
static void place_copies(struct store_job *j, struct job_state *js, const char *name,
                         const struct store_opts *o)
{
    const char *src = NULL;
    for (size_t i = 0; i < j->n; i++) {
        struct store_rcpt *r = &j->r[i];
        struct rstate *rs = &js->rs[i];
        if (r->status != STORE_OK || rs->dup_of)
            continue;
        snprintf(r->name, sizeof(r->name), "%s", name);
        rs->new_dir = path_join3(r->dir, "new", "");
        rs->new_path = path_join3(r->dir, "new", name);
        if (!rs->new_dir || !rs->new_path) {
            fail(r, ENOMEM);
            continue;
        }
        if (src && link_copy(src, r->dir, rs->new_path, !o->no_fsync) == 0)
            continue;
        rs->tmp_path = path_join3(r->dir, "tmp", name);
        if (!rs->tmp_path) {
            fail(r, ENOMEM);
        } else if (write_copy_mkdir(r->dir, rs->tmp_path, &js->data, !o->no_fsync) < 0) {
            fail(r, errno);
            free(rs->tmp_path);
            rs->tmp_path = NULL;
        } else if (!src) {
            src = rs->tmp_path;
        }
    }
}

/* Phase 3: written copies move from tmp/ into new/. */
static void rename_copies(struct store_job *j, struct job_state *js)
{
    for (size_t i = 0; i < j->n; i++) {
        struct rstate *rs = &js->rs[i];
        if (j->r[i].status != STORE_OK || !rs->tmp_path)
            continue;
        if (rename(rs->tmp_path, rs->new_path) < 0) {
            fail(&j->r[i], errno);
            unlink(rs->tmp_path);
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Phase 4: each distinct new/ directory of the batch is fsynced once; when
 * that fails, the entries in it are taken back and reported as failed. */
static void sync_dirs(struct store_job *jobs, size_t njobs, struct job_state *js)
{
    size_t total = 0, nd = 0;
    for (size_t k = 0; k < njobs; k++)
        total += jobs[k].n;
    char **dirs = malloc((total ? total : 1) * sizeof(*dirs));
    for (size_t k = 0; k < njobs; k++)
        for (size_t i = 0; i < jobs[k].n; i++)
            if (jobs[k].r[i].status == STORE_OK && js[k].rs[i].new_dir) {
                if (dirs)
                    dirs[nd++] = js[k].rs[i].new_dir;
                else if (fileio_fsync_path(js[k].rs[i].new_dir) < 0)
                    fail(&jobs[k].r[i], errno); /* no memory: one fsync each */
            }
    if (!dirs)
        return;
    qsort(dirs, nd, sizeof(*dirs), cmp_str);
    for (size_t d = 0; d < nd; d++) {
        if (d > 0 && strcmp(dirs[d], dirs[d - 1]) == 0)
            continue;
        if (fileio_fsync_path(dirs[d]) == 0)
            continue;
        int e = errno;
        for (size_t k = 0; k < njobs; k++)
            for (size_t i = 0; i < jobs[k].n; i++)
                if (jobs[k].r[i].status == STORE_OK && js[k].rs[i].new_dir &&
                    strcmp(js[k].rs[i].new_dir, dirs[d]) == 0) {
                    unlink(js[k].rs[i].new_path);
                    fail(&jobs[k].r[i], e);
                }
    }
    free(dirs);
}

/* Phase 5: quota of failed deliveries is given back; full accounts trimmed. */
static void settle_quota(struct store_job *j, struct job_state *js, const struct store_opts *o)
{
    if (!o->quota)
        return;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < j->n; i++) {
        struct store_rcpt *r = &j->r[i];
        if (!js->rs[i].reserved)
            continue;
        if (r->status != STORE_OK)
            quota_adjust(o->quota, account_of(r), -(int64_t)js->size);
        else if (quota_after_delivery(o->quota, account_of(r), o->max_mailbox_size_mb, now) < 0)
            log_warn("quota-expire: trim failed: %s", strerror(errno));
    }
}

/* A recipient listed twice (same dir) gets the first one's outcome. */
static void copy_dup_status(struct store_job *j, struct job_state *js)
{
    for (size_t i = 0; i < j->n; i++) {
        size_t d = js->rs[i].dup_of;
        if (d && j->r[i].status == STORE_OK) {
            j->r[i].status = j->r[d - 1].status;
            j->r[i].err = j->r[d - 1].err;
            memcpy(j->r[i].name, j->r[d - 1].name, sizeof(j->r[i].name));
        }
    }
}

static int prepare_job(struct store_job *j, struct job_state *js, const struct store_opts *o)
{
    for (size_t i = 0; i < j->n; i++) {
        j->r[i].status = STORE_OK;
        j->r[i].err = 0;
        j->r[i].name[0] = '\0';
    }
    js->size = j->len;
    js->rs = calloc(j->n ? j->n : 1, sizeof(*js->rs));
    if (!js->rs)
        return -1;
    for (size_t i = 0; i < j->n; i++)
        for (size_t e = 0; e < i && !js->rs[i].dup_of; e++)
            if (strcmp(j->r[i].dir, j->r[e].dir) == 0)
                js->rs[i].dup_of = e + 1;
    if (o->compress)
        return gz_compress(j->msg, j->len, &js->data);
    return buf_append(&js->data, j->msg, j->len);
}

static void free_job_state(struct store_job *j, struct job_state *js)
{
    for (size_t i = 0; js->rs && i < j->n; i++) {
        free(js->rs[i].tmp_path);
        free(js->rs[i].new_path);
        free(js->rs[i].new_dir);
    }
    free(js->rs);
    buf_free(&js->data);
}

void store_deliver_batch(struct store_job *jobs, size_t njobs, const struct store_opts *o)
{
    struct job_state *js = calloc(njobs ? njobs : 1, sizeof(*js));
    for (size_t k = 0; k < njobs; k++) {
        struct store_job *j = &jobs[k];
        char name[MDNAME_MAX + 1];
        if (!js || prepare_job(j, &js[k], o) < 0 ||
            mdname_new(name, sizeof(name), j->len, mdname_vsize(j->msg, j->len)) < 0) {
            for (size_t i = 0; i < j->n; i++)
                fail(&j->r[i], ENOMEM);
            continue;
        }
        reserve_quota(j, &js[k], o);
        place_copies(j, &js[k], name, o);
        rename_copies(j, &js[k]);
    }
    if (!js)
        return;
    if (!o->no_fsync)
        sync_dirs(jobs, njobs, js);
    for (size_t k = 0; k < njobs; k++) {
        if (js[k].rs) {
            settle_quota(&jobs[k], &js[k], o);
            copy_dup_status(&jobs[k], &js[k]);
        }
        free_job_state(&jobs[k], &js[k]);
    }
    free(js);
}

size_t store_deliver(const void *msg, size_t len, struct store_rcpt *r, size_t n,
                     const struct store_opts *o)
{
    struct store_job j = {.msg = msg, .len = len, .r = r, .n = n};
    store_deliver_batch(&j, 1, o);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += r[i].status == STORE_OK;
    return ok;
}

size_t store_undeliver(const struct store_rcpt *r, size_t n, const struct store_opts *o)
{
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].status != STORE_OK || !r[i].name[0])
            continue;
        char *path = path_join3(r[i].dir, "new", r[i].name);
        struct mdname mn;
        if (!path) {
            failed++;
            continue;
        }
        if (unlink(path) == 0) {
            int64_t size = mdname_parse(r[i].name, strlen(r[i].name), &mn) == 0 && mn.has_size
                               ? (int64_t)mn.size
                               : -1;
            if (size < 0 && o->quota)
                quota_forget(o->quota, account_of(&r[i]));
            else if (size < 0)
                quota_changed_unknown(account_of(&r[i]));
            else if (o->quota)
                quota_adjust(o->quota, account_of(&r[i]), -size);
            else
                quota_changed(account_of(&r[i]), -size);
        } else if (errno != ENOENT) {
            log_error("store: cannot take back %s: %s", path, strerror(errno));
            failed++;
        }
        free(path);
    }
    return failed;
}
