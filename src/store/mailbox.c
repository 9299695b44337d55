/* mailbox.c: an open Maildir folder (see mailbox.h): opening and rebuilding
 * its index, the per-session view (UID order, 32 bytes a message) and its
 * refresh from the shared index, flag changes (rename into cur/ with the
 * new :2,<flags>), expunge (unlink + vanished record), the append fast
 * path, COPY/MOVE, and writing dovecot-uidlist lazily. */
#include "core/limits.h"
#include "store/mailbox.h"
#include "store/index_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYWORDS_FILE "dovecot-keywords"

static int mkdir_ok(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

static int make_dirs(struct mailbox *mb)
{
    static const char *const sub[] = {"cur", "new", "tmp"};
    if (mkdir_ok(mb->dir) < 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        buf_reset(&mb->scratch);
        if (buf_printf(&mb->scratch, "%s/%s", mb->dir, sub[i]) < 0 ||
            mkdir_ok(mb->scratch.data) < 0)
            return -1;
    }
    return 0;
}

/* True when dovecot-uidlist says more than the index: Dovecot (or an
 * older index) ran later, so its UIDs win and the index is rebuilt. */
static bool uidlist_is_newer(struct mailbox *mb)
{
    struct buf path = {0}, data = {0};
    struct uidlist ul;
    const char *err;
    int e;
    bool newer = false;
    int64_t uv = 0, next = 0;
    if (buf_printf(&path, "%s/%s", mb->dir, UIDLIST_NAME) == 0 &&
        idx_read_file(path.data, LIM_UIDLIST_BYTES, &data, &e) == 0 && data.len > 0) {
        const char *nl = memchr(data.data, '\n', data.len);
        size_t hlen = nl ? (size_t)(nl - data.data) : data.len;
        if (uidlist_parse(data.data, hlen, &ul, &err) == 0) {
            idx_meta_get(mb->ix, "uidvalidity", &uv);
            idx_meta_get(mb->ix, "nextuid", &next);
            newer = ul.uidvalidity != (uint32_t)uv || ul.nextuid > (uint64_t)next;
            uidlist_free(&ul);
        }
    }
    buf_free(&path);
    buf_free(&data);
    return newer;
}

static int view_push(struct mailbox *mb, const struct mailbox_msg *m)
{
    if (mb->n == mb->cap) {
        size_t cap = mb->cap ? mb->cap * 2 : 64;
        struct mailbox_msg *nm = realloc(mb->msgs, cap * sizeof(*nm));
        if (!nm)
            return -1;
        mb->msgs = nm;
        mb->cap = cap;
    }
    mb->msgs[mb->n++] = *m;
    return 0;
}

static void msg_of_row(struct mailbox_msg *m, const struct idx_row *r)
{
    memset(m, 0, sizeof(*m));
    m->uid = r->uid;
    m->flags = r->flags;
    m->modseq = r->modseq;
    m->size = r->size;
    m->vsize = r->vsize;
    m->idate = r->idate;
}

static int load_row(void *ud, const struct idx_row *r)
{
    struct mailbox_msg m;
    msg_of_row(&m, r);
    return view_push(ud, &m);
}

static int load_meta(struct mailbox *mb)
{
    int64_t uv = 0, next = 0, ms = 0;
    if (idx_meta_get(mb->ix, "uidvalidity", &uv) != 0 || idx_meta_get(mb->ix, "nextuid", &next) != 0 ||
        idx_meta_get(mb->ix, "highestmodseq", &ms) != 0)
        return -1;
    mb->uidvalidity = (uint32_t)uv;
    mb->uidnext = (uint32_t)next;
    mb->modseq = (uint64_t)ms;
    return 0;
}

static int load_view(struct mailbox *mb)
{
    mb->n = 0;
    if (load_meta(mb) < 0)
        return -1;
    return idx_each(mb->ix, 0, load_row, mb) == 0 ? 0 : -1;
}

static void keywords_load(struct mailbox *mb)
{
    struct buf path = {0}, data = {0};
    int e;
    if (buf_printf(&path, "%s/%s", mb->dir, KEYWORDS_FILE) == 0 &&
        idx_read_file(path.data, LIM_KEYWORDS_FILE, &data, &e) == 0 && data.data) {
        char *save = NULL;
        for (char *line = strtok_r(data.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            char *sp = strchr(line, ' ');
            char *end;
            long i = strtol(line, &end, 10);
            if (!sp || end != sp || i < 0 || i >= MB_KEYWORDS_MAX || !sp[1] || mb->keywords[i] ||
                strlen(sp + 1) > LIM_KEYWORD_NAME)
                continue;
            mb->keywords[i] = strdup(sp + 1);
        }
    }
    buf_free(&path);
    buf_free(&data);
}

/* Opens the index, rebuilding it when it is new, broken or older than
 * dovecot-uidlist; then scans the directory. */
static int open_index(struct mailbox *mb, const char **err)
{
    bool fresh;
    if (idx_open(mb->dir, &mb->ix, &fresh, err) < 0)
        return -1;
    if (!fresh && uidlist_is_newer(mb)) {
        idx_close(mb->ix);
        mb->ix = NULL;
        idx_unlink(mb->dir);
        if (idx_open(mb->dir, &mb->ix, &fresh, err) < 0)
            return -1;
        fresh = true;
    }
    if (mbsync_scan(mb, fresh, false, err) == 0)
        return 0;
    if (fresh || !idx_corrupt(mb->ix))
        return -1;
    idx_close(mb->ix); /* corruption found only now: start over once */
    mb->ix = NULL;
    idx_unlink(mb->dir);
    if (idx_open(mb->dir, &mb->ix, &fresh, err) < 0)
        return -1;
    return mbsync_scan(mb, true, true, err);
}

static int maybe_flush(struct mailbox *mb)
{
    int64_t stale = 0;
    const char *err;
    if (idx_meta_get(mb->ix, "uidlist_stale", &stale) == 0 && stale >= MAILBOX_UIDLIST_BATCH)
        return mailbox_flush_uidlist(mb, &err);
    return 0;
}

int mailbox_open(const char *account_dir, const char *name, struct mailbox **out,
                 const char **err)
{
    struct buf dir = {0};
    struct mailbox *mb = NULL;
    *out = NULL;
    if (!folder_name_valid(name) || folder_path(account_dir, name, &dir) < 0) {
        *err = "invalid mailbox name";
        buf_free(&dir);
        return -1;
    }
    mb = calloc(1, sizeof(*mb));
    if (!mb || !(mb->account_dir = strdup(account_dir)) || !(mb->name = strdup(name))) {
        *err = "out of memory";
        goto fail;
    }
    mb->dir = buf_steal_str(&dir);
    if (mb->dir && strcasecmp(name, "INBOX") != 0 && access(mb->dir, F_OK) < 0) {
        *err = "mailbox does not exist"; /* only INBOX springs into being */
        goto fail;
    }
    if (!mb->dir || make_dirs(mb) < 0) {
        *err = "cannot create the mailbox directories";
        goto fail;
    }
    if (open_index(mb, err) < 0)
        goto fail;
    if (load_view(mb) < 0) {
        *err = "cannot read the mailbox index";
        goto fail;
    }
    keywords_load(mb);
    (void)maybe_flush(mb);
    *out = mb;
    return 0;
fail:
    buf_free(&dir);
    mailbox_close(mb);
    return -1;
}

void mailbox_suspend(struct mailbox *mb)
{
    if (!mb)
        return;
    idx_suspend(mb->ix);
    buf_free(&mb->scratch);
}

void mailbox_close(struct mailbox *mb)
{
    const char *err;
    int64_t stale = 0;
    if (!mb)
        return;
    if (mb->ix && idx_meta_get(mb->ix, "uidlist_stale", &stale) == 0 && stale > 0)
        (void)mailbox_flush_uidlist(mb, &err);
    idx_close(mb->ix);
    for (int i = 0; i < MB_KEYWORDS_MAX; i++)
        free(mb->keywords[i]);
    free(mb->msgs);
    free(mb->account_dir);
    free(mb->name);
    free(mb->dir);
    buf_free(&mb->scratch);
    free(mb);
}

/* Rebuilds the whole index in place (after corruption showed up late). */
static int rebuild_now(struct mailbox *mb, const char **err)
{
    bool fresh;
    idx_close(mb->ix);
    mb->ix = NULL;
    idx_unlink(mb->dir);
    if (idx_open(mb->dir, &mb->ix, &fresh, err) < 0)
        return -1;
    return mbsync_scan(mb, true, true, err);
}

int mailbox_sync(struct mailbox *mb, bool force, const char **err)
{
    if (!mb->ix)
        return rebuild_now(mb, err);
    if (idx_corrupt(mb->ix))
        return rebuild_now(mb, err);
    int rc = mbsync_scan(mb, false, force, err);
    if (rc < 0 && idx_corrupt(mb->ix))
        rc = rebuild_now(mb, err);
    if (rc == 0)
        (void)maybe_flush(mb);
    return rc;
}

static struct mailbox_msg *view_find(const struct mailbox *mb, uint32_t uid, size_t *pos)
{
    size_t lo = 0, hi = mb->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mb->msgs[mid].uid == uid) {
            *pos = mid;
            return &mb->msgs[mid];
        }
        if (mb->msgs[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return NULL;
}

struct refresh_ctx {
    struct mailbox *mb;
    mailbox_change_fn fn;
    void *ud;
    struct mailbox_msg *adds;
    size_t nadds, capadds;
    bool kw_reloaded;
};

/* Keywords another mailbox object of the folder added (to dovecot-keywords)
 * since this one read the file: read it again, once a refresh. */
static void keywords_check(struct refresh_ctx *c, uint32_t flags)
{
    for (int i = 0; i < MB_KEYWORDS_MAX && !c->kw_reloaded; i++) {
        if ((flags & MB_KEYWORD(i)) && !c->mb->keywords[i]) {
            keywords_load(c->mb);
            c->kw_reloaded = true;
        }
    }
}

static int refresh_vanished(void *ud, uint32_t uid, uint64_t modseq)
{
    struct refresh_ctx *c = ud;
    size_t pos;
    if (!view_find(c->mb, uid, &pos))
        return 0;
    struct mailbox_change ch = {MB_CHANGE_EXPUNGE, uid, (uint32_t)pos + 1, 0, modseq};
    memmove(&c->mb->msgs[pos], &c->mb->msgs[pos + 1], (c->mb->n - pos - 1) * sizeof(*c->mb->msgs));
    c->mb->n--;
    if (c->fn)
        c->fn(c->ud, &ch);
    return 0;
}


static int refresh_row(void *ud, const struct idx_row *r)
{
    struct refresh_ctx *c = ud;
    size_t pos;
    keywords_check(c, r->flags);
    struct mailbox_msg *m = view_find(c->mb, r->uid, &pos);
    if (!m) { /* new: reported after all flag changes */
        if (c->nadds == c->capadds) {
            size_t cap = c->capadds ? c->capadds * 2 : 16;
            struct mailbox_msg *na = realloc(c->adds, cap * sizeof(*na));
            if (!na)
                return -1;
            c->adds = na;
            c->capadds = cap;
        }
        msg_of_row(&c->adds[c->nadds++], r);
        return 0;
    }
    if (m->modseq == r->modseq && m->flags == r->flags)
        return 0;
    m->flags = r->flags;
    m->modseq = r->modseq;
    struct mailbox_change ch = {MB_CHANGE_FLAGS, r->uid, (uint32_t)pos + 1, r->flags, r->modseq};
    if (c->fn)
        c->fn(c->ud, &ch);
    return 0;
}

static int refresh_adds(struct refresh_ctx *c)
{
    for (size_t i = 0; i < c->nadds; i++) {
        struct mailbox_msg *a = &c->adds[i];
        size_t pos;
        if (view_find(c->mb, a->uid, &pos) || view_push(c->mb, a) < 0)
            continue;
        if (pos != c->mb->n - 1) { /* keep UID order (rare) */
            memmove(&c->mb->msgs[pos + 1], &c->mb->msgs[pos],
                    (c->mb->n - 1 - pos) * sizeof(*a));
            c->mb->msgs[pos] = *a;
        }
        struct mailbox_change ch = {MB_CHANGE_APPEND, a->uid, (uint32_t)pos + 1, a->flags,
                                    a->modseq};
        if (c->fn)
            c->fn(c->ud, &ch);
    }
    return 0;
}

int mailbox_refresh(struct mailbox *mb, mailbox_change_fn fn, void *ud, const char **err)
{
    int64_t h = 0, next = 0;
    if (idx_meta_get(mb->ix, "highestmodseq", &h) != 0 || idx_meta_get(mb->ix, "nextuid", &next) != 0) {
        *err = "cannot read the mailbox index";
        return -1;
    }
    if ((uint64_t)h == mb->modseq)
        return 0;
    struct refresh_ctx c = {.mb = mb, .fn = fn, .ud = ud};
    int rc = idx_each_vanished(mb->ix, mb->modseq, refresh_vanished, &c);
    if (rc == 0)
        rc = idx_each(mb->ix, mb->modseq, refresh_row, &c);
    if (rc == 0)
        rc = refresh_adds(&c);
    free(c.adds);
    if (rc != 0) {
        *err = "cannot read the mailbox index";
        return -1;
    }
    mb->modseq = (uint64_t)h;
    if ((uint32_t)next > mb->uidnext)
        mb->uidnext = (uint32_t)next;
    return 0;
}

size_t mailbox_count(const struct mailbox *mb) { return mb->n; }
const struct mailbox_msg *mailbox_msgs(const struct mailbox *mb) { return mb->msgs; }
uint32_t mailbox_uidvalidity(const struct mailbox *mb) { return mb->uidvalidity; }
uint32_t mailbox_uidnext(const struct mailbox *mb) { return mb->uidnext; }
uint64_t mailbox_highestmodseq(const struct mailbox *mb) { return mb->modseq; }
const char *mailbox_name(const struct mailbox *mb) { return mb->name; }

const struct mailbox_msg *mailbox_find(const struct mailbox *mb, uint32_t uid, uint32_t *seq_out)
{
    size_t pos;
    const struct mailbox_msg *m = view_find(mb, uid, &pos);
    if (m && seq_out)
        *seq_out = (uint32_t)pos + 1;
    return m;
}

int mailbox_msg_path(struct mailbox *mb, uint32_t uid, struct buf *out)
{
    struct buf strings = {0};
    struct idx_row r;
    const char *err;
    int rc = -1;
    for (int attempt = 0; attempt < 2 && rc < 0; attempt++) {
        if (attempt == 1 && mailbox_sync(mb, true, &err) < 0)
            break;
        if (idx_get(mb->ix, uid, &r, &strings) != 0)
            break;
        if (mbsync_file_path(mb, &r, out) == 0 && access(out->data, F_OK) == 0)
            rc = 0;
    }
    buf_free(&strings);
    return rc;
}
