/* mailbox_sync.c: brings a folder's index in line with its Maildir (the
 * truth): reads new/ and cur/, gives new files the next UIDs in delivery
 * order (name timestamp), records vanished files as expunged, picks up
 * renames (flag changes made by others), and rebuilds an empty index from
 * dovecot-uidlist so that UIDs survive index loss. One transaction. */
#include "store/index_int.h"
#include "store/mailbox.h"
#include "store/maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MODSEQ_EPOCH_SHIFT 20 /* rebuilt HIGHESTMODSEQ = now << 20: stays monotonic */
#define MTIME_SETTLE_NS (2LL * 1000000000LL) /* younger dir mtimes force a rescan */

struct scan_ent {
    uint32_t name_off; /* into scan.arena */
    uint16_t base_len;
    bool cur, seen;
    uint32_t flags, size, vsize, idate;
    int64_t secs;
    uint32_t usecs;
    uint32_t uid; /* from the uidlist on a rebuild, else 0 */
};

struct scan {
    struct buf arena;
    struct scan_ent *e;
    size_t n, cap;
    const struct scan_ent *sorted_base; /* for comparators */
};

struct upd {
    uint32_t uid;
    uint32_t ent;      /* index into scan.e, or UINT32_MAX for an expunge */
    uint64_t modseq;   /* row modseq (kept when flags did not change) */
    uint32_t flags;    /* row flags */
};

struct walk {
    struct scan *sc;
    struct upd *u;
    size_t n, cap;
};

static const char *ent_name(const struct scan *sc, const struct scan_ent *e)
{
    return sc->arena.data + e->name_off;
}

static int cmp_base(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* qsort has no user pointer in C17; syncs may run on several workers. */
static _Thread_local const struct scan *qsort_scan;

static int ent_cmp_base(const void *a, const void *b)
{
    const struct scan_ent *x = a, *y = b;
    int c = cmp_base(ent_name(qsort_scan, x), x->base_len, ent_name(qsort_scan, y), y->base_len);
    return c ? c : (int)y->cur - (int)x->cur; /* cur/ first among duplicates */
}

static int ent_cmp_delivery(const void *a, const void *b)
{
    const struct scan_ent *x = *(const struct scan_ent *const *)a;
    const struct scan_ent *y = *(const struct scan_ent *const *)b;
    if ((x->uid != 0) != (y->uid != 0))
        return x->uid ? -1 : 1; /* files the uidlist knows come first */
    if (x->uid != y->uid)
        return x->uid < y->uid ? -1 : 1;
    if (x->idate != y->idate)
        return x->idate < y->idate ? -1 : 1;
    if (x->usecs != y->usecs)
        return x->usecs < y->usecs ? -1 : 1;
    return strcmp(ent_name(qsort_scan, x), ent_name(qsort_scan, y));
}

static int scan_push(struct scan *sc, const char *name, const struct idxname *nm, bool cur,
                     int dfd)
{
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 256;
        struct scan_ent *ne = realloc(sc->e, cap * sizeof(*ne));
        if (!ne)
            return -1;
        sc->e = ne;
        sc->cap = cap;
    }
    struct scan_ent *e = &sc->e[sc->n];
    memset(e, 0, sizeof(*e));
    e->name_off = (uint32_t)sc->arena.len;
    if (buf_append(&sc->arena, name, strlen(name) + 1) < 0)
        return -1;
    e->base_len = (uint16_t)nm->base_len;
    e->cur = cur;
    e->flags = nm->flags & MB_ALL_FLAGS;
    e->size = (uint32_t)(nm->size > UINT32_MAX ? UINT32_MAX : nm->size);
    e->vsize = (uint32_t)(nm->vsize > UINT32_MAX ? UINT32_MAX : nm->vsize);
    e->secs = nm->secs;
    e->usecs = nm->usecs;
    e->idate = nm->secs >= 0 && nm->secs <= UINT32_MAX ? (uint32_t)nm->secs : 0;
    /* internal date = the file's mtime (Dovecot's Maildir); the name's
     * time only when the file cannot be stat'ed */
    struct stat st;
    if (fstatat(dfd, name, &st, 0) == 0) {
        if (!e->size)
            e->size = st.st_size > UINT32_MAX ? UINT32_MAX : (uint32_t)st.st_size;
        if (st.st_mtime > 0 && st.st_mtime <= UINT32_MAX)
            e->idate = (uint32_t)st.st_mtime;
    }
    if (!e->vsize)
        e->vsize = e->size;
    sc->n++;
    return 0;
}

static int scan_dir(struct mailbox *mb, bool cur, struct scan *sc)
{
    buf_reset(&mb->scratch);
    if (buf_printf(&mb->scratch, "%s/%s", mb->dir, cur ? "cur" : "new") < 0)
        return -1;
    DIR *d = opendir(mb->scratch.data);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct idxname nm;
        if (de->d_type == DT_DIR || idxname_parse(de->d_name, &nm) < 0)
            continue;
        rc = scan_push(sc, de->d_name, &nm, cur, dirfd(d));
    }
    closedir(d);
    return rc;
}

/* Sorts by base name and drops duplicates (the same base in new/ and cur/
 * while someone moves it: the cur/ one wins). */
static void scan_sort(struct scan *sc)
{
    qsort_scan = sc;
    if (sc->n > 1)
        qsort(sc->e, sc->n, sizeof(*sc->e), ent_cmp_base);
    size_t w = 0;
    for (size_t i = 0; i < sc->n; i++) {
        if (w > 0 && cmp_base(ent_name(sc, &sc->e[w - 1]), sc->e[w - 1].base_len,
                              ent_name(sc, &sc->e[i]), sc->e[i].base_len) == 0)
            continue;
        sc->e[w++] = sc->e[i];
    }
    sc->n = w;
}

static struct scan_ent *scan_find(struct scan *sc, const char *base, size_t blen)
{
    size_t lo = 0, hi = sc->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct scan_ent *e = &sc->e[mid];
        int c = cmp_base(ent_name(sc, e), e->base_len, base, blen);
        if (c == 0)
            return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int walk_push(struct walk *w, const struct upd *u)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct upd *nu = realloc(w->u, cap * sizeof(*nu));
        if (!nu)
            return -1;
        w->u = nu;
        w->cap = cap;
    }
    w->u[w->n++] = *u;
    return 0;
}

/* Compares one index row with the directory. */
static int walk_row(void *ud, const struct idx_row *r)
{
    struct walk *w = ud;
    struct scan_ent *e = scan_find(w->sc, r->base, strlen(r->base));
    struct upd u = {.uid = r->uid, .ent = UINT32_MAX, .modseq = r->modseq, .flags = r->flags};
    if (!e)
        return walk_push(w, &u);
    e->seen = true;
    const char *name = ent_name(w->sc, e);
    const char *info = name[e->base_len] == ':' ? name + e->base_len + 1 : NULL;
    bool same_info = (!info && !r->info) || (info && r->info && strcmp(info, r->info) == 0);
    if (e->cur == r->in_cur && same_info)
        return 0;
    u.ent = (uint32_t)(e - w->sc->e);
    return walk_push(w, &u);
}

int mbsync_next_modseq(struct mailbox *mb, uint64_t *modseq)
{
    int64_t h = 0;
    if (idx_meta_get(mb->ix, "highestmodseq", &h) < 0)
        return -1;
    *modseq = (uint64_t)h + 1;
    return idx_meta_set(mb->ix, "highestmodseq", (int64_t)*modseq);
}

int mbsync_uidlist_stale(struct mailbox *mb, int64_t n)
{
    int64_t v = 0;
    if (n == 0)
        return 0;
    if (idx_meta_get(mb->ix, "uidlist_stale", &v) < 0)
        return -1;
    return idx_meta_set(mb->ix, "uidlist_stale", v + n);
}

int mbsync_file_path(const struct mailbox *mb, const struct idx_row *r, struct buf *out)
{
    buf_reset(out);
    return buf_printf(out, "%s/%s/%s%s%s", mb->dir, r->in_cur ? "cur" : "new", r->base,
                      r->info ? ":" : "", r->info ? r->info : "");
}

static int apply_updates(struct mailbox *mb, struct walk *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct upd *u = &w->u[i];
        uint64_t ms = u->modseq;
        if (u->ent == UINT32_MAX) {
            if (mbsync_next_modseq(mb, &ms) < 0 || idx_expunge(mb->ix, u->uid, ms) < 0)
                return -1;
            continue;
        }
        struct scan_ent *e = &w->sc->e[u->ent];
        const char *name = ent_name(w->sc, e);
        const char *info = name[e->base_len] == ':' ? name + e->base_len + 1 : NULL;
        if (e->flags != u->flags && mbsync_next_modseq(mb, &ms) < 0)
            return -1;
        if (idx_update_file(mb->ix, u->uid, e->cur, info, e->flags, ms) < 0)
            return -1;
    }
    return 0;
}

static int insert_ent(struct mailbox *mb, struct scan *sc, struct scan_ent *e, uint32_t uid)
{
    char base[LIM_MAILDIR_NAME + 1];
    const char *name = ent_name(sc, e);
    memcpy(base, name, e->base_len);
    base[e->base_len] = '\0';
    struct idx_row r = {.uid = uid, .base = base, .in_cur = e->cur, .flags = e->flags,
                        .size = e->size, .vsize = e->vsize, .idate = e->idate};
    r.info = name[e->base_len] == ':' ? name + e->base_len + 1 : NULL;
    if (mbsync_next_modseq(mb, &r.modseq) < 0)
        return -1;
    return idx_insert(mb->ix, &r);
}

/* Gives the unseen files UIDs: uidlist ones first, then by delivery time. */
static int add_new(struct mailbox *mb, struct scan *sc, size_t *added)
{
    size_t n = 0;
    struct scan_ent **v = malloc((sc->n ? sc->n : 1) * sizeof(*v));
    int64_t next = 1;
    if (!v || idx_meta_get(mb->ix, "nextuid", &next) < 0) {
        free(v);
        return -1;
    }
    for (size_t i = 0; i < sc->n; i++)
        if (!sc->e[i].seen)
            v[n++] = &sc->e[i];
    qsort_scan = sc;
    if (n > 1)
        qsort(v, n, sizeof(*v), ent_cmp_delivery);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t uid = v[i]->uid ? v[i]->uid : (uint32_t)next;
        if (uid >= UINT32_MAX - 1)
            rc = -1; /* UID space exhausted: needs a new UIDVALIDITY */
        else
            rc = insert_ent(mb, sc, v[i], uid);
        if (uid >= next)
            next = (int64_t)uid + 1;
    }
    free(v);
    *added = n;
    return rc < 0 ? -1 : idx_meta_set(mb->ix, "nextuid", next);
}

/* On a rebuild: the uidlist's UIDs for the files it lists. */
static void match_uidlist(struct scan *sc, const struct uidlist *ul)
{
    for (size_t i = 0; i < ul->n; i++) {
        const char *base = uidlist_base(ul, &ul->recs[i]);
        struct scan_ent *e = scan_find(sc, base, strlen(base));
        if (e)
            e->uid = ul->recs[i].uid; /* later duplicates win, as in Dovecot */
    }
}

static void random_guid(char out[33])
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)((ts.tv_nsec >> (i % 4 * 8)) ^ (getpid() >> (i % 2 * 8)) ^ i);
    }
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; i < sizeof(b); i++) {
        out[2 * i] = "0123456789abcdef"[b[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[b[i] & 15];
    }
    out[32] = '\0';
}

static int init_meta(struct mailbox *mb, const struct uidlist *ul)
{
    char guid[33];
    int64_t base = (int64_t)time(NULL) << MODSEQ_EPOCH_SHIFT;
    uint32_t uv = ul ? ul->uidvalidity : uidvalidity_next(mb->account_dir);
    if (ul && ul->guid[0])
        memcpy(guid, ul->guid, sizeof(guid));
    else
        random_guid(guid);
    if (idx_meta_set(mb->ix, "uidvalidity", uv) < 0 ||
        idx_meta_set(mb->ix, "nextuid", ul ? ul->nextuid : 1) < 0 ||
        idx_meta_set(mb->ix, "highestmodseq", base) < 0 ||
        idx_meta_set(mb->ix, "vanished_floor", base) < 0 ||
        /* \Recent: what the uidlist did not list yet is new to every session */
        idx_meta_set(mb->ix, "recent_uid", ul ? ul->nextuid : 1) < 0 ||
        idx_meta_set_text(mb->ix, "guid", guid) < 0)
        return -1;
    /* A uidlist is rewritten at once when it was not ours or is missing. */
    return idx_meta_set(mb->ix, "uidlist_stale", ul ? 0 : MAILBOX_UIDLIST_BATCH);
}

static int64_t dir_mtime(struct mailbox *mb, const char *sub)
{
    struct stat st;
    buf_reset(&mb->scratch);
    if (buf_printf(&mb->scratch, "%s/%s", mb->dir, sub) < 0 || stat(mb->scratch.data, &st) < 0)
        return 0;
    int64_t m = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t n = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    return n - m < MTIME_SETTLE_NS ? 0 : m; /* 0: never "unchanged" */
}

static bool dirs_unchanged(struct mailbox *mb, int64_t mnew, int64_t mcur)
{
    int64_t a = 0, b = 0;
    return mnew && mcur && idx_meta_get(mb->ix, "mtime_new", &a) == 0 &&
           idx_meta_get(mb->ix, "mtime_cur", &b) == 0 && a == mnew && b == mcur;
}

static int scan_apply(struct mailbox *mb, struct scan *sc, bool rebuild, const struct uidlist *ul,
                      int64_t mnew, int64_t mcur)
{
    struct walk w = {.sc = sc};
    size_t added = 0;
    int rc = -1;
    if (idx_begin(mb->ix) < 0)
        return -1;
    if (rebuild && init_meta(mb, ul) < 0)
        goto out;
    if (!rebuild && idx_each(mb->ix, 0, walk_row, &w) != 0)
        goto out;
    if (apply_updates(mb, &w) < 0 || add_new(mb, sc, &added) < 0)
        goto out;
    size_t expunged = 0;
    for (size_t i = 0; i < w.n; i++)
        expunged += w.u[i].ent == UINT32_MAX;
    if (mbsync_uidlist_stale(mb, (int64_t)(added + expunged)) < 0 ||
        idx_meta_set(mb->ix, "mtime_new", mnew) < 0 || idx_meta_set(mb->ix, "mtime_cur", mcur) < 0)
        goto out;
    rc = idx_commit(mb->ix);
    /* Files removed behind our back (trim, expiry, another program): what
     * they weighed is not known here, so the quota is counted again. */
    if (rc == 0 && expunged)
        quota_changed_unknown(mb->account_dir);
out:
    if (rc < 0)
        idx_rollback(mb->ix);
    free(w.u);
    return rc;
}

int mbsync_scan(struct mailbox *mb, bool rebuild, bool force, const char **err)
{
    int64_t mnew = dir_mtime(mb, "new"), mcur = dir_mtime(mb, "cur");
    if (!rebuild && !force && dirs_unchanged(mb, mnew, mcur))
        return 0;
    struct scan sc = {0};
    struct uidlist ul = {0};
    bool have_ul = false;
    const char *e2 = NULL;
    if (rebuild)
        have_ul = uidlist_load(mb->dir, &ul, &e2) == 0;
    int rc = -1;
    if (scan_dir(mb, false, &sc) == 0 && scan_dir(mb, true, &sc) == 0) {
        scan_sort(&sc);
        if (have_ul)
            match_uidlist(&sc, &ul);
        rc = scan_apply(mb, &sc, rebuild, have_ul ? &ul : NULL, mnew, mcur);
    }
    if (rc < 0)
        *err = "cannot sync the mailbox index";
    uidlist_free(&ul);
    buf_free(&sc.arena);
    free(sc.e);
    return rc;
}
