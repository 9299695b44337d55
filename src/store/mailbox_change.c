/* mailbox_change.c: the writes to an open folder: flag changes (rename to
 * cur/<base>:2,<flags>, new MODSEQ), expunge (unlink, vanished record),
 * indexing a just-delivered file, COPY/MOVE by hard link, keywords in
 * dovecot-keywords, and rewriting dovecot-uidlist. Each index change is
 * one BEGIN IMMEDIATE transaction, so several mailbox objects of the same
 * folder (other sessions, other threads) stay consistent. */
#include "core/limits.h"
#include "store/index_int.h"
#include "store/mailbox.h"
#include "store/maildir.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYWORDS_FILE "dovecot-keywords"

static uint32_t apply_op(uint32_t cur, enum mailbox_flag_op op, uint32_t flags)
{
    flags &= MB_ALL_FLAGS;
    switch (op) {
    case MB_FLAGS_SET: return flags;
    case MB_FLAGS_ADD: return cur | flags;
    case MB_FLAGS_REMOVE: return cur & ~flags;
    }
    return cur;
}

static void view_update(struct mailbox *mb, uint32_t uid, uint32_t flags, uint64_t modseq)
{
    size_t lo = 0, hi = mb->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mb->msgs[mid].uid == uid) {
            mb->msgs[mid].flags = flags;
            mb->msgs[mid].modseq = modseq;
            return;
        }
        if (mb->msgs[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
}

/* One attempt; 2 = the file was not where the index said (resync). */
static int set_flags_once(struct mailbox *mb, uint32_t uid, enum mailbox_flag_op op,
                          uint32_t flags, uint64_t unchangedsince, uint32_t *flags_out,
                          uint64_t *modseq_out, const char **err)
{
    struct buf strings = {0}, from = {0}, to = {0};
    struct idx_row r;
    char info[80];
    int rc = -1;
    if (idx_begin(mb->ix) < 0 || idx_get(mb->ix, uid, &r, &strings) != 0) {
        *err = "no such message";
        goto out;
    }
    uint32_t nf = apply_op(r.flags, op, flags);
    *flags_out = r.flags;
    *modseq_out = r.modseq;
    if (unchangedsince && r.modseq > unchangedsince) {
        rc = 1;
        goto out;
    }
    if (nf == r.flags) {
        rc = 0;
        goto out;
    }
    struct idx_row nr = r;
    nr.in_cur = true;
    nr.info = info;
    if (idxname_info(r.info, nf, info, sizeof(info)) < 0 || mbsync_file_path(mb, &r, &from) < 0 ||
        mbsync_file_path(mb, &nr, &to) < 0 || mbsync_next_modseq(mb, &nr.modseq) < 0 ||
        idx_update_file(mb->ix, uid, true, info, nf, nr.modseq) < 0) {
        *err = "cannot update the mailbox index";
        goto out;
    }
    if (rename(from.data, to.data) < 0) {
        rc = errno == ENOENT ? 2 : -1;
        *err = "cannot rename the message file";
        goto out;
    }
    if (idx_commit(mb->ix) < 0) {
        (void)rename(to.data, from.data);
        *err = "cannot update the mailbox index";
        goto out;
    }
    *flags_out = nf;
    *modseq_out = nr.modseq;
    rc = 0;
out:
    idx_rollback(mb->ix);
    if (rc == 0)
        view_update(mb, uid, *flags_out, *modseq_out);
    buf_free(&strings);
    buf_free(&from);
    buf_free(&to);
    return rc;
}

int mailbox_set_flags(struct mailbox *mb, uint32_t uid, enum mailbox_flag_op op, uint32_t flags,
                      uint64_t unchangedsince, uint32_t *flags_out, uint64_t *modseq_out,
                      const char **err)
{
    int rc = set_flags_once(mb, uid, op, flags, unchangedsince, flags_out, modseq_out, err);
    if (rc == 2 && mailbox_sync(mb, true, err) == 0) /* renamed behind our back */
        rc = set_flags_once(mb, uid, op, flags, unchangedsince, flags_out, modseq_out, err);
    return rc == 2 ? -1 : rc;
}

int mailbox_expunge(struct mailbox *mb, uint32_t uid, uint64_t *modseq_out, const char **err)
{
    struct buf strings = {0}, path = {0};
    struct idx_row r;
    int rc = -1;
    if (idx_begin(mb->ix) < 0 || idx_get(mb->ix, uid, &r, &strings) != 0) {
        *err = "no such message";
        goto out;
    }
    bool removed = false;
    if (mbsync_file_path(mb, &r, &path) < 0) {
        *err = "cannot remove the message file";
        goto out;
    }
    if (unlink(path.data) == 0)
        removed = true;
    else if (errno != ENOENT) {
        *err = "cannot remove the message file";
        goto out;
    }
    /* The file is gone from here on: the quota follows whatever the index does. */
    if (removed)
        quota_changed(mb->account_dir, -(int64_t)r.size);
    if (mbsync_next_modseq(mb, modseq_out) < 0 || idx_expunge(mb->ix, uid, *modseq_out) < 0 ||
        mbsync_uidlist_stale(mb, 1) < 0 || idx_commit(mb->ix) < 0) {
        *err = "cannot update the mailbox index"; /* the next sync notices the file is gone */
        goto out;
    }
    rc = 0;
out:
    idx_rollback(mb->ix);
    buf_free(&strings);
    buf_free(&path);
    return rc;
}

/* Fills a row for the file <dir>/<cur|new>/<fname> (base copied to base). */
static int row_for_file(struct mailbox *mb, bool in_cur, const char *fname, struct idx_row *r,
                        char *base)
{
    struct idxname nm;
    struct stat st;
    if (idxname_parse(fname, &nm) < 0)
        return -1;
    buf_reset(&mb->scratch);
    if (buf_printf(&mb->scratch, "%s/%s/%s", mb->dir, in_cur ? "cur" : "new", fname) < 0 ||
        stat(mb->scratch.data, &st) < 0)
        return -1;
    memcpy(base, fname, nm.base_len);
    base[nm.base_len] = '\0';
    memset(r, 0, sizeof(*r));
    r->base = base;
    r->in_cur = in_cur;
    r->info = nm.info;
    r->flags = nm.flags & MB_ALL_FLAGS;
    r->size = nm.size ? (uint32_t)(nm.size > UINT32_MAX ? UINT32_MAX : nm.size)
                      : (uint32_t)(st.st_size > UINT32_MAX ? UINT32_MAX : st.st_size);
    r->vsize = nm.vsize ? (uint32_t)(nm.vsize > UINT32_MAX ? UINT32_MAX : nm.vsize) : r->size;
    /* internal date = the file's mtime, as Dovecot's Maildir (APPEND sets
     * it to the given date; COPY keeps the source's) */
    r->idate = st.st_mtime > 0 && st.st_mtime <= UINT32_MAX ? (uint32_t)st.st_mtime
               : nm.secs > 0 && nm.secs <= UINT32_MAX ? (uint32_t)nm.secs : 0;
    return 0;
}

int mailbox_append_file(struct mailbox *mb, bool in_cur, const char *fname, uint32_t *uid_out,
                        uint64_t *modseq_out, const char **err)
{
    char base[LIM_MAILDIR_NAME + 1];
    struct idx_row r;
    int64_t next = 0;
    if (row_for_file(mb, in_cur, fname, &r, base) < 0) {
        *err = "no such message file";
        return -1;
    }
    if (idx_begin(mb->ix) < 0) {
        *err = "cannot update the mailbox index";
        return -1;
    }
    int found = idx_uid_of(mb->ix, base, uid_out); /* a sync was faster */
    if (found == 0) {
        idx_rollback(mb->ix);
        *modseq_out = 0;
        return 0;
    }
    if (found < 0 || idx_meta_get(mb->ix, "nextuid", &next) != 0 || next >= UINT32_MAX - 1 ||
        mbsync_next_modseq(mb, &r.modseq) < 0 || (r.uid = (uint32_t)next, idx_insert(mb->ix, &r)) < 0 ||
        idx_meta_set(mb->ix, "nextuid", next + 1) < 0 || mbsync_uidlist_stale(mb, 1) < 0 ||
        idx_commit(mb->ix) < 0) {
        idx_rollback(mb->ix);
        *err = "cannot update the mailbox index";
        return -1;
    }
    *uid_out = r.uid;
    *modseq_out = r.modseq;
    return 0;
}

/* A copy of the file keeps its mtime: the message's internal date. */
static int copy_bytes(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    struct stat st;
    if (in < 0)
        return -1;
    if (fstat(in, &st) < 0) {
        close(in);
        return -1;
    }
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out >= 0) {
        char b[65536];
        ssize_t n;
        rc = 0;
        while (rc == 0 && (n = read(in, b, sizeof(b))) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            rc = n < 0 || write(out, b, (size_t)n) != n ? -1 : 0;
        }
        if (rc == 0) {
            struct timespec ts[2] = {st.st_atim, st.st_mtim};
            rc = futimens(out, ts);
        }
        if (rc == 0)
            rc = fsync(out);
        if (close(out) < 0)
            rc = -1;
        if (rc < 0)
            unlink(to);
    }
    close(in);
    return rc;
}

void mailbox_set_quota(struct mailbox *mb, uint64_t limit_bytes) { mb->quota_limit = limit_bytes; }

/* charge: the copy adds to the account's usage (COPY), checked against
 * dst's quota limit first; a MOVE within the account adds nothing. */
static int copy_msg(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *dst_uid,
                    bool charge, const char **err)
{
    struct buf strings = {0}, from = {0}, name = {0}, to = {0};
    struct idx_row r;
    char info[80];
    uint64_t ms;
    int rc = -1;
    bool reserved = false;
    *err = "no such message";
    if (mailbox_msg_path(src, uid, &from) < 0 || idx_get(src->ix, uid, &r, &strings) != 0)
        goto out;
    *err = "cannot copy the message file";
    if (idxname_info(r.info, r.flags, info, sizeof(info)) < 0 ||
        idxname_generate(&name, r.size, r.vsize) < 0 || buf_printf(&name, ":%s", info) < 0 ||
        buf_printf(&to, "%s/cur/%s", dst->dir, name.data) < 0)
        goto out;
    if (charge && dst->quota_limit) {
        struct quota_cache *qc = quota_cache_shared();
        int q = qc ? quota_reserve(qc, dst->account_dir, r.size, dst->quota_limit) : -1;
        if (q == 1) {
            *err = QUOTA_REASON;
            rc = MAILBOX_EQUOTA;
            goto out;
        }
        reserved = q == 0;
    }
    if (link(from.data, to.data) < 0 && copy_bytes(from.data, to.data) < 0) {
        if (reserved)
            quota_changed(dst->account_dir, -(int64_t)r.size);
        goto out;
    }
    rc = mailbox_append_file(dst, true, name.data, dst_uid, &ms, err);
    if (rc < 0) {
        unlink(to.data);
        if (reserved)
            quota_changed(dst->account_dir, -(int64_t)r.size);
    } else if (!reserved) {
        quota_changed(dst->account_dir, (int64_t)r.size); /* a link counts as a copy */
    }
out:
    buf_free(&strings);
    buf_free(&from);
    buf_free(&name);
    buf_free(&to);
    return rc;
}

int mailbox_move(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *dst_uid,
                 const char **err)
{
    uint64_t ms;
    bool same_account = strcmp(src->account_dir, dst->account_dir) == 0;
    int rc = copy_msg(src, uid, dst, dst_uid, !same_account, err);
    if (rc < 0)
        return rc;
    return mailbox_expunge(src, uid, &ms, err);
}

int mailbox_copy(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *dst_uid,
                 const char **err)
{
    return copy_msg(src, uid, dst, dst_uid, true, err);
}

struct vanished_ctx {
    uint32_t *uids;
    size_t n, cap;
};

static int vanished_push(void *ud, uint32_t uid, uint64_t modseq)
{
    struct vanished_ctx *v = ud;
    (void)modseq;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        uint32_t *nu = realloc(v->uids, cap * sizeof(*nu));
        if (!nu)
            return -1;
        v->uids = nu;
        v->cap = cap;
    }
    v->uids[v->n++] = uid;
    return 0;
}

int mailbox_vanished_since(struct mailbox *mb, uint64_t since, uint32_t **uids, size_t *n,
                           bool *complete, const char **err)
{
    struct vanished_ctx v = {0};
    int64_t floor = 0;
    if (idx_meta_get(mb->ix, "vanished_floor", &floor) < 0 ||
        idx_each_vanished(mb->ix, since, vanished_push, &v) != 0) {
        free(v.uids);
        *err = "cannot read the mailbox index";
        return -1;
    }
    *complete = since >= (uint64_t)floor;
    *uids = v.uids;
    *n = v.n;
    return 0;
}

static int keywords_save(struct mailbox *mb)
{
    struct buf b = {0};
    int rc = 0;
    for (int i = 0; i < MB_KEYWORDS_MAX && rc == 0; i++)
        if (mb->keywords[i])
            rc = buf_printf(&b, "%d %s\n", i, mb->keywords[i]);
    if (rc == 0)
        rc = idx_write_atomic(mb->dir, KEYWORDS_FILE, b.data ? b.data : "", b.len);
    buf_free(&b);
    return rc;
}

int mailbox_keyword_index(struct mailbox *mb, const char *name, bool create)
{
    int free_slot = -1;
    for (int i = 0; i < MB_KEYWORDS_MAX; i++) {
        if (mb->keywords[i] && strcasecmp(mb->keywords[i], name) == 0)
            return i;
        if (!mb->keywords[i] && free_slot < 0)
            free_slot = i;
    }
    size_t len = strlen(name);
    if (!create || free_slot < 0 || len == 0 || len > LIM_KEYWORD_NAME || strpbrk(name, " \r\n"))
        return -1;
    if (!(mb->keywords[free_slot] = strdup(name)))
        return -1;
    if (keywords_save(mb) < 0) {
        free(mb->keywords[free_slot]);
        mb->keywords[free_slot] = NULL;
        return -1;
    }
    return free_slot;
}

const char *mailbox_keyword_name(const struct mailbox *mb, int idx)
{
    return idx >= 0 && idx < MB_KEYWORDS_MAX ? mb->keywords[idx] : NULL;
}

struct uidlist_ctx {
    struct buf *b;
};

static int uidlist_row(void *ud, const struct idx_row *r)
{
    struct uidlist_ctx *c = ud;
    /* Sizes live in the file names (,S= ,W=): no extension fields. */
    return uidlist_format_rec(c->b, r->uid, r->base, 0, 0);
}

int mailbox_flush_uidlist(struct mailbox *mb, const char **err)
{
    struct buf b = {0}, guid = {0};
    int64_t uv = 0, next = 0;
    struct uidlist_ctx c = {&b};
    int rc = -1;
    if (idx_begin(mb->ix) < 0 || idx_meta_get(mb->ix, "uidvalidity", &uv) != 0 ||
        idx_meta_get(mb->ix, "nextuid", &next) != 0 || idx_meta_get_text(mb->ix, "guid", &guid) != 0 ||
        uidlist_format_header(&b, (uint32_t)uv, (uint32_t)next, guid.data) < 0 ||
        idx_each(mb->ix, 0, uidlist_row, &c) != 0) {
        *err = "cannot read the mailbox index";
        goto out;
    }
    if (uidlist_write(mb->dir, &b, err) < 0)
        goto out;
    if (idx_meta_set(mb->ix, "uidlist_stale", 0) == 0 && idx_commit(mb->ix) == 0)
        rc = 0;
out:
    idx_rollback(mb->ix);
    buf_free(&b);
    buf_free(&guid);
    return rc;
}

int mailbox_recent(struct mailbox *mb, bool claim, uint32_t *first, const char **err)
{
    int64_t w = 0;
    int g = idx_meta_get(mb->ix, "recent_uid", &w);
    if (g < 0) {
        *err = "cannot read the mailbox index";
        return -1;
    }
    if (g == 1) /* no watermark (an index from before it): nothing is recent */
        w = mb->uidnext;
    if (!claim || w >= mb->uidnext) {
        *first = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
        return 0;
    }
    if (idx_begin(mb->ix) < 0 || idx_meta_get(mb->ix, "recent_uid", &w) < 0)
        goto fail;
    if (w < mb->uidnext && idx_meta_set(mb->ix, "recent_uid", mb->uidnext) < 0)
        goto fail;
    if (idx_commit(mb->ix) < 0)
        goto fail;
    *first = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
    return 0;
fail:
    idx_rollback(mb->ix);
    *err = "cannot update the mailbox index";
    return -1;
}
