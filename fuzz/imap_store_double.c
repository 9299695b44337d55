/* imap_store_double.c: an in-memory double of the store functions that
 * src/imap calls (the undefined store_/mailbox_/folder_/quota_ symbols of
 * cm_imap), linked into fuzz_imap_session instead of cm_store, so that an
 * input costs microseconds rather than the file system and SQLite work of
 * the real store (~200 inputs/s).
 *
 * It keeps the contracts of store/mailbox.h, store/maildir.h and
 * store/accounts.h as the IMAP code relies on them:
 *  - a folder holds messages (UID, flags, MODSEQ, sizes, internal date),
 *    UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the expunged UIDs since a floor
 *    (QRESYNC), the \Recent watermark and its 26 keyword names;
 *  - a struct mailbox is a view of a folder: several can be open on the
 *    same folder; a view changes only by its own set_flags and by
 *    mailbox_refresh, which reports expunges (by UID), flag changes and
 *    appends made through any view, in that order, as the real one does;
 *  - APPEND is charged against the quota (STORE_EQUOTA) and, over 75 %,
 *    trims INBOX's messages older than a day (quota_after_delivery);
 *  - folders are flat Maildir++ names ("INBOX" any case), RENAME takes the
 *    children along, DELETE leaves them, subscriptions are a name list.
 * Message contents are kept in memory and handed out by the double's
 * gz_read_file and gz_reader_* (store's gz.c reserves 128 KiB a read, which
 * under ASan is an mmap and munmap each time). Each message also has a file
 * under files_dir, because the IMAP code opens the path itself before it
 * hands the descriptor to gz_reader_open (the file's inode says which
 * message it is). address.c, watch.c and metadata_json.c of the store are
 * linked as they are: they do no file I/O.
 * Any name of an account other than the fuzzed one aborts: the session
 * must never reach another account.
 *
 * Bounded where the real store is bounded by the disk: DBL_FOLDERS_MAX
 * folders, DBL_MSGS_MAX messages a folder (COPY 1:* doubles a folder). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/limits.h"
#include "imap_store_double.h"
#include "store/accounts.h"
#include "store/mailbox.h"
#include "store/maildir.h"

#define DBL_FOLDERS_MAX 32
#define DBL_MSGS_MAX 256
#define DBL_SUBS_MAX 64
#define DBL_FILES_MAX 4096

/* ------------------------------------------------------------ the state */

struct dmsg {
    uint32_t uid, flags, size, vsize, idate, file;
    uint64_t modseq;
};

struct dvan {
    uint32_t uid;
    uint64_t modseq;
};

struct dfolder {
    char *name;    /* "INBOX" or a Maildir++ name */
    unsigned refs; /* the account's list (while it exists) and each open view */
    bool gone;     /* deleted: its files are gone for the views still open */
    uint32_t uidvalidity, uidnext, recent_uid;
    uint64_t modseq, vanished_floor;
    struct dmsg *msgs; /* UID order */
    size_t n, cap;
    struct dvan *van; /* expunged, in MODSEQ order */
    size_t nvan, capvan;
    char *kw[MB_KEYWORDS_MAX];
};

struct mailbox {
    struct dfolder *f;
    uint64_t quota_limit; /* mailbox_set_quota */
    char *name;
    struct mailbox_msg *msgs;
    size_t n, cap;
    uint32_t uidnext;
    uint64_t modseq;
};

struct account {
    struct dfolder *folders[DBL_FOLDERS_MAX]; /* [0] is INBOX */
    size_t nfolders;
    char *subs[DBL_SUBS_MAX];
    size_t nsubs;
    uint32_t next_uidvalidity;
    struct store_tokens tokens;
};

struct quota_cache {
    int unused;
};

/* A message's bytes (as store's gz_read_file would give them: gzip'd
 * files come out inflated) and its file. */
struct dfile {
    char *path;
    ino_t ino;
    const char *data;
    size_t len;
    uint32_t vsize;
    bool owned; /* data is malloc'd (APPEND), else a fixture */
};

static struct account cur, tmpl;
static struct dfile files[DBL_FILES_MAX];
static size_t nfiles, nfiles_fixed, nfiles_written;
static char files_dir[256], acct_dir[512], acct_addr[STORE_ADDR_MAX + 1];
static unsigned open_views;
static bool dirty; /* cur differs from tmpl */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

static void check_account(const char *account_dir)
{
    if (!account_dir || strcmp(account_dir, acct_dir) != 0) {
        fprintf(stderr, "imap_store_double: a session named the account directory %s, not %s\n",
                account_dir ? account_dir : "(null)", acct_dir);
        abort();
    }
}

static void check_addr(const struct config *cfg, const char *addr)
{
    char dir[LIM_STORE_PATH];
    if (!addr || store_account_dir(cfg, addr, dir, sizeof dir) < 0)
        check_account(NULL);
    check_account(dir);
}

static bool is_inbox(const char *name) { return strcasecmp(name, "INBOX") == 0; }

/* Size with every bare LF counted as CRLF (as store's mdname_vsize). */
static uint32_t vsize_of(const char *p, size_t len)
{
    uint64_t v = len;
    for (size_t i = 0; i < len; i++)
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            v++;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static struct dfolder *folder_new(const char *name, uint32_t uidvalidity, uint64_t modseq)
{
    struct dfolder *f = xcalloc(1, sizeof *f);
    f->name = xstrdup(name);
    f->refs = 1;
    f->uidvalidity = uidvalidity;
    f->uidnext = 1;
    f->recent_uid = 1;
    f->modseq = f->vanished_floor = modseq;
    return f;
}

static void folder_unref(struct dfolder *f)
{
    if (!f || --f->refs > 0)
        return;
    for (int i = 0; i < MB_KEYWORDS_MAX; i++)
        free(f->kw[i]);
    free(f->msgs);
    free(f->van);
    free(f->name);
    free(f);
}

static struct dfolder *folder_dup(const struct dfolder *o)
{
    struct dfolder *f = xcalloc(1, sizeof *f);
    *f = *o;
    f->refs = 1;
    f->name = xstrdup(o->name);
    f->msgs = xcalloc(o->cap, sizeof *f->msgs);
    if (o->n)
        memcpy(f->msgs, o->msgs, o->n * sizeof *f->msgs);
    f->van = xcalloc(o->capvan, sizeof *f->van);
    if (o->nvan)
        memcpy(f->van, o->van, o->nvan * sizeof *f->van);
    for (int i = 0; i < MB_KEYWORDS_MAX; i++)
        f->kw[i] = o->kw[i] ? xstrdup(o->kw[i]) : NULL;
    return f;
}

static void account_free(struct account *a)
{
    for (size_t i = 0; i < a->nfolders; i++)
        folder_unref(a->folders[i]);
    for (size_t i = 0; i < a->nsubs; i++)
        free(a->subs[i]);
    store_md_free(&a->tokens);
    memset(a, 0, sizeof *a);
}

static void account_copy(struct account *to, const struct account *from)
{
    memset(to, 0, sizeof *to);
    for (size_t i = 0; i < from->nfolders; i++)
        to->folders[i] = folder_dup(from->folders[i]);
    to->nfolders = from->nfolders;
    for (size_t i = 0; i < from->nsubs; i++)
        to->subs[i] = xstrdup(from->subs[i]);
    to->nsubs = from->nsubs;
    to->next_uidvalidity = from->next_uidvalidity;
    for (size_t i = 0; i < from->tokens.n; i++)
        if (store_md_set(&to->tokens, from->tokens.v[i].token, strlen(from->tokens.v[i].token),
                         from->tokens.v[i].ts) < 0)
            abort();
}

static struct dfolder *find_folder(const char *name, size_t *idx)
{
    for (size_t i = 0; i < cur.nfolders; i++) {
        if (i == 0 ? is_inbox(name) : strcmp(cur.folders[i]->name, name) == 0) {
            if (idx)
                *idx = i;
            return cur.folders[i];
        }
    }
    return NULL;
}

static struct dmsg *fmsg_find(struct dfolder *f, uint32_t uid, size_t *pos)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->msgs[mid].uid == uid) {
            if (pos)
                *pos = mid;
            return &f->msgs[mid];
        }
        if (f->msgs[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return NULL;
}

/* Appends a message with the next UID and MODSEQ; NULL when full. */
static struct dmsg *fmsg_add(struct dfolder *f, uint32_t flags, uint32_t size, uint32_t vsize,
                             uint32_t idate, uint32_t file)
{
    if (f->n >= DBL_MSGS_MAX || f->uidnext >= UINT32_MAX - 1)
        return NULL;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct dmsg *m = realloc(f->msgs, cap * sizeof *m);
        if (!m)
            return NULL;
        f->msgs = m;
        f->cap = cap;
    }
    struct dmsg *m = &f->msgs[f->n++];
    *m = (struct dmsg){.uid = f->uidnext++, .flags = flags & MB_ALL_FLAGS, .size = size,
                       .vsize = vsize, .idate = idate, .file = file, .modseq = ++f->modseq};
    dirty = true;
    return m;
}

/* Removes the message at pos and records its UID as expunged. */
static uint64_t fmsg_expunge(struct dfolder *f, size_t pos)
{
    uint32_t uid = f->msgs[pos].uid;
    memmove(&f->msgs[pos], &f->msgs[pos + 1], (f->n - pos - 1) * sizeof *f->msgs);
    f->n--;
    if (f->nvan == f->capvan) {
        size_t cap = f->capvan ? f->capvan * 2 : 8;
        struct dvan *v = realloc(f->van, cap * sizeof *v);
        if (!v)
            abort();
        f->van = v;
        f->capvan = cap;
    }
    f->van[f->nvan++] = (struct dvan){uid, ++f->modseq};
    if (f->nvan > MAILBOX_VANISHED_MAX) { /* bounded history: the floor moves up */
        f->vanished_floor = f->van[0].modseq;
        memmove(&f->van[0], &f->van[1], (f->nvan - 1) * sizeof *f->van);
        f->nvan--;
    }
    dirty = true;
    return f->modseq;
}

static uint64_t usage(void)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < cur.nfolders; i++)
        for (size_t k = 0; k < cur.folders[i]->n; k++)
            sum += cur.folders[i]->msgs[k].size;
    return sum;
}

/* --------------------------------------------------------------- views */

static void msg_of(struct mailbox_msg *m, const struct dmsg *d)
{
    *m = (struct mailbox_msg){.uid = d->uid, .flags = d->flags, .modseq = d->modseq,
                              .size = d->size, .vsize = d->vsize, .idate = d->idate};
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

static int view_insert(struct mailbox *mb, size_t pos, const struct mailbox_msg *m)
{
    if (mb->n == mb->cap) {
        size_t cap = mb->cap ? mb->cap * 2 : 8;
        struct mailbox_msg *v = realloc(mb->msgs, cap * sizeof *v);
        if (!v)
            return -1;
        mb->msgs = v;
        mb->cap = cap;
    }
    memmove(&mb->msgs[pos + 1], &mb->msgs[pos], (mb->n - pos) * sizeof *m);
    mb->msgs[pos] = *m;
    mb->n++;
    return 0;
}

int mailbox_open(const char *account_dir, const char *name, struct mailbox **out,
                 const char **err)
{
    check_account(account_dir);
    *out = NULL;
    if (!folder_name_valid(name)) {
        *err = "invalid mailbox name";
        return -1;
    }
    struct dfolder *f = find_folder(name, NULL);
    if (!f) {
        *err = "mailbox does not exist"; /* only INBOX springs into being */
        return -1;
    }
    struct mailbox *mb = xcalloc(1, sizeof *mb);
    mb->name = xstrdup(name);
    mb->msgs = xcalloc(f->n, sizeof *mb->msgs);
    for (size_t i = 0; i < f->n; i++)
        msg_of(&mb->msgs[i], &f->msgs[i]);
    mb->n = mb->cap = f->n;
    mb->uidnext = f->uidnext;
    mb->modseq = f->modseq;
    mb->f = f;
    f->refs++;
    open_views++;
    *out = mb;
    return 0;
}

void mailbox_close(struct mailbox *mb)
{
    if (!mb)
        return;
    folder_unref(mb->f);
    free(mb->msgs);
    free(mb->name);
    free(mb);
    open_views--;
}

void mailbox_suspend(struct mailbox *mb) { (void)mb; }

int mailbox_sync(struct mailbox *mb, bool force, const char **err)
{
    (void)mb, (void)force, (void)err; /* the double has no files to scan */
    return 0;
}

static int cmp_van_uid(const void *a, const void *b)
{
    uint32_t x = ((const struct dvan *)a)->uid, y = ((const struct dvan *)b)->uid;
    return x < y ? -1 : x > y;
}

/* Expunged since `since`, by UID; *n entries (malloc'd, NULL when none). */
static struct dvan *vanished_after(const struct dfolder *f, uint64_t since, size_t *n)
{
    struct dvan *v = NULL;
    *n = 0;
    for (size_t i = 0; i < f->nvan; i++) {
        if (f->van[i].modseq <= since)
            continue;
        if (!v)
            v = xcalloc(f->nvan, sizeof *v);
        v[(*n)++] = f->van[i];
    }
    if (*n > 1)
        qsort(v, *n, sizeof *v, cmp_van_uid);
    return v;
}

int mailbox_refresh(struct mailbox *mb, mailbox_change_fn fn, void *ud, const char **err)
{
    (void)err;
    struct dfolder *f = mb->f;
    if (f->modseq == mb->modseq)
        return 0;
    size_t nv, pos;
    struct dvan *v = vanished_after(f, mb->modseq, &nv);
    for (size_t i = 0; i < nv; i++) {
        if (!view_find(mb, v[i].uid, &pos))
            continue;
        struct mailbox_change ch = {MB_CHANGE_EXPUNGE, v[i].uid, (uint32_t)pos + 1, 0,
                                    v[i].modseq};
        memmove(&mb->msgs[pos], &mb->msgs[pos + 1], (mb->n - pos - 1) * sizeof *mb->msgs);
        mb->n--;
        if (fn)
            fn(ud, &ch);
    }
    free(v);
    /* flag changes first, then the new messages */
    size_t nadd = 0;
    struct mailbox_msg *adds = NULL;
    for (size_t i = 0; i < f->n; i++) {
        const struct dmsg *d = &f->msgs[i];
        if (d->modseq <= mb->modseq)
            continue;
        struct mailbox_msg *m = view_find(mb, d->uid, &pos);
        if (!m) {
            if (!adds)
                adds = xcalloc(f->n, sizeof *adds);
            msg_of(&adds[nadd++], d);
            continue;
        }
        if (m->modseq == d->modseq && m->flags == d->flags)
            continue;
        m->flags = d->flags;
        m->modseq = d->modseq;
        struct mailbox_change ch = {MB_CHANGE_FLAGS, d->uid, (uint32_t)pos + 1, d->flags,
                                    d->modseq};
        if (fn)
            fn(ud, &ch);
    }
    for (size_t i = 0; i < nadd; i++) {
        if (view_find(mb, adds[i].uid, &pos) || view_insert(mb, pos, &adds[i]) < 0)
            continue;
        struct mailbox_change ch = {MB_CHANGE_APPEND, adds[i].uid, (uint32_t)pos + 1,
                                    adds[i].flags, adds[i].modseq};
        if (fn)
            fn(ud, &ch);
    }
    free(adds);
    mb->modseq = f->modseq;
    if (f->uidnext > mb->uidnext)
        mb->uidnext = f->uidnext;
    return 0;
}

size_t mailbox_count(const struct mailbox *mb) { return mb->n; }
const struct mailbox_msg *mailbox_msgs(const struct mailbox *mb) { return mb->msgs; }
uint32_t mailbox_uidvalidity(const struct mailbox *mb) { return mb->f->uidvalidity; }
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
    buf_reset(out);
    const struct dmsg *d = mb->f->gone ? NULL : fmsg_find(mb->f, uid, NULL);
    return d ? buf_append_str(out, files[d->file].path) : -1;
}

static uint32_t apply_op(uint32_t cur_flags, enum mailbox_flag_op op, uint32_t flags)
{
    flags &= MB_ALL_FLAGS;
    switch (op) {
    case MB_FLAGS_SET: return flags;
    case MB_FLAGS_ADD: return cur_flags | flags;
    case MB_FLAGS_REMOVE: return cur_flags & ~flags;
    }
    return cur_flags;
}

int mailbox_set_flags(struct mailbox *mb, uint32_t uid, enum mailbox_flag_op op, uint32_t flags,
                      uint64_t unchangedsince, uint32_t *flags_out, uint64_t *modseq_out,
                      const char **err)
{
    struct dmsg *d = mb->f->gone ? NULL : fmsg_find(mb->f, uid, NULL);
    if (!d) {
        *err = "no such message";
        return -1;
    }
    *flags_out = d->flags;
    *modseq_out = d->modseq;
    if (unchangedsince && d->modseq > unchangedsince)
        return 1;
    uint32_t nf = apply_op(d->flags, op, flags);
    if (nf != d->flags) {
        d->flags = nf;
        d->modseq = ++mb->f->modseq;
        *flags_out = nf;
        *modseq_out = d->modseq;
        dirty = true;
    }
    size_t pos;
    struct mailbox_msg *m = view_find(mb, uid, &pos);
    if (m) {
        m->flags = *flags_out;
        m->modseq = *modseq_out;
    }
    return 0;
}

int mailbox_expunge(struct mailbox *mb, uint32_t uid, uint64_t *modseq_out, const char **err)
{
    size_t pos;
    if (mb->f->gone || !fmsg_find(mb->f, uid, &pos)) {
        *err = "no such message";
        return -1;
    }
    *modseq_out = fmsg_expunge(mb->f, pos);
    return 0;
}

int mailbox_append_file(struct mailbox *mb, bool in_cur, const char *fname, uint32_t *uid_out,
                        uint64_t *modseq_out, const char **err)
{
    (void)mb, (void)in_cur, (void)fname, (void)uid_out, (void)modseq_out;
    *err = "not in the IMAP store double";
    return -1;
}

void mailbox_set_quota(struct mailbox *mb, uint64_t limit_bytes) { mb->quota_limit = limit_bytes; }

static int copy_msg(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *dst_uid,
                    bool charge, const char **err)
{
    *err = "no such message";
    const struct dmsg *d = src->f->gone ? NULL : fmsg_find(src->f, uid, NULL);
    if (!d)
        return -1;
    struct dmsg m = *d; /* dst may be the same folder: its array moves */
    if (charge && dst->quota_limit && usage() + m.size > dst->quota_limit) {
        *err = QUOTA_REASON;
        return MAILBOX_EQUOTA;
    }
    *err = "cannot copy the message file";
    /* the copy keeps the internal date (the file's mtime, as store's) */
    const struct dmsg *c = dst->f->gone ? NULL
                                        : fmsg_add(dst->f, m.flags, m.size, m.vsize, m.idate,
                                                   m.file);
    if (!c)
        return -1;
    *dst_uid = c->uid;
    return 0;
}

int mailbox_move(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *dst_uid,
                 const char **err)
{
    uint64_t ms;
    int rc = copy_msg(src, uid, dst, dst_uid, false, err); /* one account: net zero */
    if (rc < 0)
        return rc;
    return mailbox_expunge(src, uid, &ms, err);
}

int mailbox_copy(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *dst_uid,
                 const char **err)
{
    return copy_msg(src, uid, dst, dst_uid, true, err);
}

int mailbox_vanished_since(struct mailbox *mb, uint64_t since, uint32_t **uids, size_t *n,
                           bool *complete, const char **err)
{
    (void)err;
    struct dvan *v = vanished_after(mb->f, since, n);
    *uids = NULL;
    if (*n) {
        *uids = xcalloc(*n, sizeof **uids);
        for (size_t i = 0; i < *n; i++)
            (*uids)[i] = v[i].uid;
    }
    free(v);
    *complete = since >= mb->f->vanished_floor;
    return 0;
}

int mailbox_recent(struct mailbox *mb, bool claim, uint32_t *first, const char **err)
{
    (void)err;
    uint32_t w = mb->f->recent_uid;
    *first = w;
    if (claim && w < mb->uidnext) {
        mb->f->recent_uid = mb->uidnext;
        dirty = true;
    }
    return 0;
}

int mailbox_keyword_index(struct mailbox *mb, const char *name, bool create)
{
    struct dfolder *f = mb->f;
    int free_slot = -1;
    for (int i = 0; i < MB_KEYWORDS_MAX; i++) {
        if (f->kw[i] && strcasecmp(f->kw[i], name) == 0)
            return i;
        if (!f->kw[i] && free_slot < 0)
            free_slot = i;
    }
    size_t len = strlen(name);
    if (!create || free_slot < 0 || len == 0 || len > LIM_KEYWORD_NAME || strpbrk(name, " \r\n"))
        return -1;
    f->kw[free_slot] = xstrdup(name);
    dirty = true;
    return free_slot;
}

const char *mailbox_keyword_name(const struct mailbox *mb, int idx)
{
    return idx >= 0 && idx < MB_KEYWORDS_MAX ? mb->f->kw[idx] : NULL;
}

int mailbox_flush_uidlist(struct mailbox *mb, const char **err)
{
    (void)mb, (void)err;
    return 0;
}

/* -------------------------------------------------------------- folders */

/* The rules of src/store/folder.c. */
bool folder_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > MAILBOX_NAME_MAX || name[0] == '~' || name[0] == '.' ||
        name[len - 1] == '.' || strstr(name, ".."))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return false;
    }
    return true;
}

int folder_path(const char *account_dir, const char *name, struct buf *out)
{
    buf_reset(out);
    if (!folder_name_valid(name))
        return -1;
    if (is_inbox(name))
        return buf_append_str(out, account_dir);
    return buf_printf(out, "%s/.%s", account_dir, name);
}

int folder_create(const char *account_dir, const char *name, const char **err)
{
    check_account(account_dir);
    if (is_inbox(name) || (folder_name_valid(name) && find_folder(name, NULL))) {
        *err = "mailbox already exists";
        return -1;
    }
    if (!folder_name_valid(name)) {
        *err = "invalid mailbox name";
        return -1;
    }
    if (cur.nfolders == DBL_FOLDERS_MAX) {
        *err = "cannot create mailbox";
        return -1;
    }
    uint64_t base = cur.folders[0]->modseq + 1000;
    cur.folders[cur.nfolders++] = folder_new(name, cur.next_uidvalidity++, base);
    dirty = true;
    return 0;
}

static void subs_remove(const char *name)
{
    for (size_t i = 0; i < cur.nsubs; i++) {
        if (strcmp(cur.subs[i], name) == 0) {
            free(cur.subs[i]);
            memmove(&cur.subs[i], &cur.subs[i + 1], (--cur.nsubs - i) * sizeof *cur.subs);
            dirty = true;
            return;
        }
    }
}

int folder_delete(const char *account_dir, const char *name, const char **err)
{
    check_account(account_dir);
    size_t i;
    if (is_inbox(name) || !folder_name_valid(name)) {
        *err = is_inbox(name) ? "INBOX cannot be deleted" : "invalid mailbox name";
        return -1;
    }
    struct dfolder *f = find_folder(name, &i);
    if (!f) {
        *err = "mailbox does not exist";
        return -1;
    }
    cur.folders[i] = cur.folders[--cur.nfolders];
    f->gone = true;
    folder_unref(f);
    subs_remove(name);
    dirty = true;
    return 0;
}

int folder_rename(const char *account_dir, const char *from, const char *to, const char **err)
{
    check_account(account_dir);
    *err = "cannot rename mailbox";
    if (!folder_name_valid(from) || !folder_name_valid(to) || is_inbox(from) || is_inbox(to)) {
        *err = "invalid mailbox name";
        return -1;
    }
    if (find_folder(to, NULL)) {
        *err = "mailbox already exists";
        return -1;
    }
    struct dfolder *f = find_folder(from, NULL);
    if (!f)
        return -1;
    size_t flen = strlen(from);
    struct dfolder *kids[DBL_FOLDERS_MAX];
    size_t nkids = 0;
    for (size_t i = 1; i < cur.nfolders; i++) /* children: from.x -> to.x */
        if (strncmp(cur.folders[i]->name, from, flen) == 0 && cur.folders[i]->name[flen] == '.')
            kids[nkids++] = cur.folders[i];
    free(f->name);
    f->name = xstrdup(to);
    dirty = true;
    int rc = 0;
    for (size_t i = 0; i < nkids; i++) {
        struct buf nn = {0};
        if (buf_printf(&nn, "%s%s", to, kids[i]->name + flen) < 0 ||
            !folder_name_valid(nn.data) || find_folder(nn.data, NULL)) {
            rc = -1;
        } else {
            free(kids[i]->name);
            kids[i]->name = buf_steal_str(&nn);
        }
        buf_free(&nn);
    }
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int folder_list(const char *account_dir, char ***names, const char **err)
{
    (void)err;
    check_account(account_dir);
    char **v = xcalloc(cur.nfolders + 1, sizeof *v);
    v[0] = xstrdup("INBOX");
    for (size_t i = 1; i < cur.nfolders; i++)
        v[i] = xstrdup(cur.folders[i]->name);
    qsort(v + 1, cur.nfolders - 1, sizeof *v, cmp_str);
    *names = v;
    return 0;
}

void folder_list_free(char **names)
{
    if (!names)
        return;
    for (size_t i = 0; names[i]; i++)
        free(names[i]);
    free(names);
}

int folder_subscriptions(const char *account_dir, char ***names, const char **err)
{
    (void)err;
    check_account(account_dir);
    char **v = xcalloc(cur.nsubs + 1, sizeof *v);
    for (size_t i = 0; i < cur.nsubs; i++)
        v[i] = xstrdup(cur.subs[i]);
    *names = v;
    return 0;
}

int folder_subscribe(const char *account_dir, const char *name, bool on, const char **err)
{
    check_account(account_dir);
    if (!folder_name_valid(name)) {
        *err = "invalid mailbox name";
        return -1;
    }
    if (is_inbox(name))
        name = "INBOX";
    if (!on) {
        subs_remove(name);
        return 0;
    }
    for (size_t i = 0; i < cur.nsubs; i++)
        if (strcmp(cur.subs[i], name) == 0)
            return 0;
    if (cur.nsubs == DBL_SUBS_MAX) {
        *err = "cannot write subscriptions";
        return -1;
    }
    cur.subs[cur.nsubs++] = xstrdup(name);
    dirty = true;
    return 0;
}

/* ------------------------------------------------------- append, quota */

static struct quota_cache the_quota_cache;

struct quota_cache *quota_cache_shared(void) { return &the_quota_cache; }

uint64_t quota_limit_bytes(long max_mailbox_size_mb)
{
    return max_mailbox_size_mb > 0 ? (uint64_t)max_mailbox_size_mb * 1024 * 1024 : 0;
}

int quota_scan(const char *account_dir, uint64_t *bytes)
{
    check_account(account_dir);
    *bytes = usage();
    return 0;
}

/* quota_after_delivery: over 75 % of the limit, INBOX loses its oldest
 * messages (by internal date, size, UID) down to 70 %, none younger than a
 * day. The sessions learn it at their next refresh. */
static void trim_after_append(long max_mailbox_size_mb)
{
    uint64_t limit = quota_limit_bytes(max_mailbox_size_mb);
    uint64_t target = (uint64_t)max_mailbox_size_mb * QUOTA_TRIM_TARGET_PCT / 100 * 1024 * 1024;
    uint64_t used = usage();
    if (used <= limit / 100 * QUOTA_TRIM_TRIGGER_PCT)
        return;
    struct dfolder *f = cur.folders[0];
    uint32_t young = (uint32_t)(time(NULL) - QUOTA_TRIM_PROTECT_SECS);
    while (used > target && f->n) {
        size_t old = 0;
        for (size_t i = 1; i < f->n; i++) {
            const struct dmsg *a = &f->msgs[i], *b = &f->msgs[old];
            if (a->idate < b->idate || (a->idate == b->idate && a->size < b->size))
                old = i;
        }
        if (f->msgs[old].idate > young)
            break;
        used -= f->msgs[old].size;
        fmsg_expunge(f, old);
    }
}

static int write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, p, n);
    int rc = w == (ssize_t)n ? 0 : -1;
    if (close(fd) < 0)
        rc = -1;
    return rc;
}

/* A message (its bytes stay where they are: the caller keeps them or they
 * are `owned`); its index in files[], or -1. */
static int add_file(const char *p, size_t n, bool owned)
{
    if (nfiles == DBL_FILES_MAX)
        return -1;
    struct dfile *f = &files[nfiles];
    struct buf path = {0};
    struct stat st;
    if (buf_printf(&path, "%s/m%zu", files_dir, nfiles) < 0 || write_file(path.data, p, n) < 0 ||
        stat(path.data, &st) < 0) {
        buf_free(&path);
        return -1;
    }
    *f = (struct dfile){buf_steal_str(&path), st.st_ino, p, n, vsize_of(p, n), owned};
    if (nfiles >= nfiles_written)
        nfiles_written = nfiles + 1;
    return (int)nfiles++;
}

static void files_truncate(size_t n)
{
    for (size_t i = n; i < nfiles; i++) {
        free(files[i].path);
        if (files[i].owned)
            free((char *)files[i].data);
    }
    nfiles = n;
}

/* ------------------------------------------------- reading the messages */

int gz_read_file(int dirfd, const char *path, struct buf *out, size_t max)
{
    (void)dirfd; /* the IMAP code passes absolute paths */
    for (size_t i = 0; i < nfiles; i++) {
        if (strcmp(files[i].path, path) != 0)
            continue;
        if (files[i].len > max) {
            errno = EFBIG;
            return -1;
        }
        return buf_append(out, files[i].data, files[i].len);
    }
    errno = ENOENT;
    return -1;
}

struct gz_reader {
    int fd;
    const struct dfile *f;
    size_t off;
};

struct gz_reader *gz_reader_open(int fd)
{
    struct stat st;
    const struct dfile *f = NULL;
    for (size_t i = 0; !f && fstat(fd, &st) == 0 && i < nfiles; i++)
        if (files[i].ino == st.st_ino)
            f = &files[i];
    struct gz_reader *r = f ? calloc(1, sizeof *r) : NULL;
    if (r) {
        r->fd = fd;
        r->f = f;
    }
    return r;
}

long gz_reader_read(struct gz_reader *r, void *p, size_t n)
{
    size_t left = r->f->len - r->off;
    if (n > left)
        n = left;
    memcpy(p, r->f->data + r->off, n);
    r->off += n;
    return (long)n;
}

void gz_reader_close(struct gz_reader *r)
{
    if (!r)
        return;
    close(r->fd);
    free(r);
}

enum store_status store_append(struct mailbox *mb, const char *account_dir, const void *msg,
                               size_t len, uint32_t flags, int64_t idate,
                               const struct store_opts *o, uint32_t *uid_out,
                               uint64_t *modseq_out, int *err_out)
{
    check_account(account_dir);
    uint64_t limit = quota_limit_bytes(o->max_mailbox_size_mb);
    *err_out = 0;
    if (o->quota && limit && usage() + len > limit)
        return STORE_EQUOTA;
    if (mb->f->gone) {
        *err_out = ENOENT;
        return STORE_EIO;
    }
    if (mb->f->n >= DBL_MSGS_MAX || len > UINT32_MAX) {
        *err_out = ENOSPC;
        return STORE_EIO;
    }
    char *copy = malloc(len ? len : 1);
    int file = copy ? add_file(memcpy(copy, msg, len), len, true) : -1;
    if (file < 0) {
        free(copy);
        *err_out = ENOSPC;
        return STORE_EIO;
    }
    uint32_t when = idate > 0 && idate <= UINT32_MAX ? (uint32_t)idate : (uint32_t)time(NULL);
    const struct dmsg *d = fmsg_add(mb->f, flags, (uint32_t)len, files[file].vsize, when,
                                    (uint32_t)file);
    *uid_out = d->uid;
    *modseq_out = d->modseq;
    if (o->quota && limit)
        trim_after_append(o->max_mailbox_size_mb);
    return STORE_OK;
}

/* The session's spool file (never used here: no state_dir, no spool). */
enum store_status store_append_fd(struct mailbox *mb, const char *account_dir, int fd,
                                  size_t len, uint32_t flags, int64_t idate,
                                  const struct store_opts *o, uint32_t *uid_out,
                                  uint64_t *modseq_out, int *err_out)
{
    char *b = malloc(len ? len : 1);
    if (!b || pread(fd, b, len, 0) != (ssize_t)len) {
        free(b);
        *err_out = EIO;
        return STORE_EIO;
    }
    enum store_status st =
        store_append(mb, account_dir, b, len, flags, idate, o, uid_out, modseq_out, err_out);
    free(b);
    return st;
}

/* ------------------------------------------------------ metadata tokens */

int store_md_add_token(const struct config *cfg, const char *addr, const char *token,
                       time_t now)
{
    check_addr(cfg, addr);
    size_t n = token ? strnlen(token, STORE_TOKEN_MAX + 1) : 0;
    if (n == 0 || n > STORE_TOKEN_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)token[i] < 0x20 || token[i] == 0x7f)
            return -1;
    store_md_expire(&cur.tokens, (int64_t)now);
    dirty = true;
    return store_md_set(&cur.tokens, token, n, (int64_t)now);
}

int store_md_get_tokens(const struct config *cfg, const char *addr, time_t now,
                        struct buf *out)
{
    check_addr(cfg, addr);
    if (store_md_expire(&cur.tokens, (int64_t)now) > 0)
        dirty = true;
    for (size_t i = 0; i < cur.tokens.n; i++)
        if ((i && buf_append(out, " ", 1) < 0) || buf_append_str(out, cur.tokens.v[i].token) < 0)
            return -1;
    return 0;
}

int store_md_remove_token(const struct config *cfg, const char *addr, const char *token,
                          time_t now)
{
    check_addr(cfg, addr);
    store_md_expire(&cur.tokens, (int64_t)now);
    size_t kept = 0;
    for (size_t i = 0; i < cur.tokens.n; i++) {
        if (!token || strcmp(cur.tokens.v[i].token, token) == 0)
            free(cur.tokens.v[i].token);
        else
            cur.tokens.v[kept++] = cur.tokens.v[i];
    }
    cur.tokens.n = kept;
    dirty = true;
    return 0;
}

/* address.c's helper (store's fsutil.c). */
int store_path(char *out, size_t outsz, const char *dir, const char *name);
int store_path(char *out, size_t outsz, const char *dir, const char *name)
{
    int n = snprintf(out, outsz, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= outsz) ? -1 : 0;
}

/* ------------------------------------------------------------- fixture */

#define TXT(s) s, sizeof(s) - 1

/* INBOX's messages, oldest first: each a different MIME shape. */
static const struct {
    const char *folder;
    const char *text;
    size_t len;
    uint32_t flags;
    bool huge; /* its S= claims what fills the quota (the file is small) */
} fixture[] = {
    {"INBOX",
     TXT("From: Alice <alice@example.org>\r\nTo: fuzzuser1@example.org\r\n"
         "Subject: old and large\r\nDate: Sun, 13 Sep 2020 12:26:40 +0000\r\n"
         "Message-ID: <old@example.org>\r\n\r\nThe name of this file says it is large.\r\n"),
     MB_SEEN, true},
    {"INBOX",
     TXT("Return-Path: <bob@example.net>\r\n"
         "From: =?utf-8?q?Bob_M=C3=BCller?= <bob@example.net>\r\n"
         "Sender: list@example.net\r\nReply-To: \"Bob (work)\" <bob.work@example.net>\r\n"
         "To: \"Fuzz User\" <fuzzuser1@example.org>, undisclosed-recipients:;,\r\n"
         " friends: carol@example.com, \"Dave \\\"D\\\"\" <dave@example.com>;\r\n"
         "Cc: eve@example.com\r\nBcc:\r\n"
         "Subject: =?utf-8?b?R3LDvMOfZQ==?= and more\r\n"
         "Date: Tue, 14 Nov 2023 22:13:20 +0100\r\nMessage-ID: <alt-1@example.net>\r\n"
         "In-Reply-To: <old@example.org>\r\nReferences: <x@y> <old@example.org>\r\n"
         "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
         "preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe, plain\r\n"
         "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n"
         "--b1--\r\nepilogue\r\n"),
     MB_FLAGGED | MB_KEYWORD(0), false},
    {"INBOX",
     TXT("From: carol@example.com\r\nTo: fuzzuser1@example.org\r\nSubject: mixed\r\n"
         "Date: 14 Nov 2023 22:13:20 -0000\r\nMessage-ID: <mixed@example.com>\r\n"
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n"
         "--outer\r\nContent-Type: text/plain\r\n\r\nsee attachments\r\n"
         "--outer\r\nContent-Type: application/octet-stream; name=\"a b.bin\"\r\n"
         "Content-Transfer-Encoding: base64\r\n"
         "Content-Disposition: attachment; filename=\"a b.bin\"; size=4\r\n"
         "Content-ID: <part2@example.com>\r\nContent-Description: some bytes\r\n"
         "Content-Language: en, de\r\nContent-Location: http://example.com/a\r\n\r\n"
         "AAECAw==\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\n"
         "From: inner@example.com\r\nSubject: inner\r\n"
         "Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
         "--inner\r\nContent-Type: text/plain\r\n\r\ninner text\r\n"
         "--inner\r\nContent-Type: text/enriched\r\n\r\n<bold>x</bold>\r\n"
         "--inner--\r\n--outer--\r\n"),
     0, false},
    {"INBOX",
     TXT("From: <dan@example.org>\r\nTo: <fuzzuser1@example.org>\r\nSubject: [...]\r\n"
         "Date: Wed, 15 Nov 2023 08:00:00 +0000\r\nMessage-ID: <Mr.enc@example.org>\r\n"
         "Chat-Version: 1.0\r\n"
         "Autocrypt: addr=dan@example.org; prefer-encrypt=mutual; keydata=mDMEZW\r\n"
         " xhbXBsZQ==\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n"
         " boundary=\"enc\"\r\n\r\n"
         "--enc\r\nContent-Type: application/pgp-encrypted\r\n"
         "Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n"
         "--enc\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n"
         "Content-Description: OpenPGP encrypted message\r\n"
         "Content-Disposition: inline; filename=\"encrypted.asc\";\r\n\r\n"
         "-----BEGIN PGP MESSAGE-----\r\n\r\nwV4DAAAAAAAAAAASAQdAexample\r\n=abcd\r\n"
         "-----END PGP MESSAGE-----\r\n\r\n--enc--\r\n"),
     MB_SEEN | MB_ANSWERED | MB_KEYWORD(1), false},
    {"INBOX", /* bare LF, folded and 8-bit headers */
     TXT("Subject: =?utf-8?b?w6TDtsO8?=\n folded\tcontinuation\n"
         "From: \"Quoted, Name\" <q@example.org> (comment)\nTo: a@b, c@d\n"
         "Content-Type: text/plain; charset=utf-8; format=flowed\n"
         "Content-Transfer-Encoding: 8bit\n\nGr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \nline two\n"),
     MB_DRAFT, false},
    {"INBOX", /* headers only, a header without colon, a NUL, a lost boundary */
     TXT("X-No-Colon-Header\r\nContent-Type: multipart/mixed; boundary=\"never\"\r\n"
         "Subject: no body, a NUL: \0 here\r\nFrom: @\r\nTo: ,,\r\n"),
     MB_DELETED, false},
    {"Sent",
     TXT("From: fuzzuser1@example.org\r\nTo: bob@example.net\r\nSubject: sent\r\n\r\n"
         "sent body\r\n"),
     MB_SEEN, false},
    {"Sent",
     TXT("From: fuzzuser1@example.org\r\nTo: carol@example.com\r\nSubject: signed\r\n"
         "Content-Type: multipart/signed; micalg=pgp-sha256;\r\n"
         " protocol=\"application/pgp-signature\"; boundary=\"s\"\r\n\r\n"
         "--s\r\nContent-Type: text/plain; charset=\"utf-8\"; protected-headers=\"v1\"\r\n\r\n"
         "signed text\r\n--s\r\n"
         "Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n"
         "-----BEGIN PGP SIGNATURE-----\r\nabc\r\n-----END PGP SIGNATURE-----\r\n--s--\r\n"),
     MB_SEEN, false},
};
#define N_FIXTURE (sizeof fixture / sizeof fixture[0])

void store_double_init(const char *dir, const char *account_dir, const char *addr,
                       long max_mailbox_size_mb)
{
    snprintf(files_dir, sizeof files_dir, "%s", dir);
    snprintf(acct_dir, sizeof acct_dir, "%s", account_dir);
    snprintf(acct_addr, sizeof acct_addr, "%s", addr);
    const uint64_t base = (uint64_t)1700000000 << 20; /* as a rebuilt index starts */
    /* INBOX: UIDs 1-2 expunged before the history floor, 3 after it; 4-9
     * below. Sent: two messages. Archive.2024: empty, its parent missing. */
    cur.folders[0] = folder_new("INBOX", 1700000000, base);
    struct dfolder *sent = cur.folders[1] = folder_new("Sent", 1700000001, base + 100);
    cur.folders[2] = folder_new("Archive.2024", 1700000002, base + 200);
    cur.nfolders = 3;
    cur.next_uidvalidity = 1700000003;
    cur.folders[0]->van = xcalloc(8, sizeof(struct dvan));
    cur.folders[0]->capvan = 8;
    cur.folders[0]->nvan = 1;
    cur.folders[0]->van[0] = (struct dvan){3, ++cur.folders[0]->modseq};
    cur.folders[0]->uidnext = 4;
    cur.folders[0]->kw[0] = xstrdup("$Forwarded");
    cur.folders[0]->kw[1] = xstrdup("$label");
    uint64_t others = 0;
    for (size_t i = 0; i < N_FIXTURE; i++)
        others += fixture[i].huge ? 0 : fixture[i].len;
    uint64_t limit = quota_limit_bytes(max_mailbox_size_mb);
    uint32_t now = (uint32_t)time(NULL);
    for (size_t i = 0; i < N_FIXTURE; i++) {
        int file = add_file(fixture[i].text, fixture[i].len, false);
        if (file < 0) {
            fprintf(stderr, "imap_store_double: cannot write %s: %s\n", files_dir,
                    strerror(errno));
            abort();
        }
        uint32_t size = (uint32_t)fixture[i].len, vsize = files[file].vsize;
        if (fixture[i].huge && limit > others + 2048)
            size = vsize = (uint32_t)(limit - others - 2048);
        uint32_t idate = fixture[i].huge ? 1600000000 : now - 3600 * (uint32_t)(N_FIXTURE - i);
        if (!fmsg_add(find_folder(fixture[i].folder, NULL), fixture[i].flags, size, vsize, idate,
                      (uint32_t)file))
            abort();
    }
    cur.folders[0]->recent_uid = 8; /* 8 and 9 are \Recent for the first session */
    sent->recent_uid = sent->uidnext;
    cur.subs[0] = xstrdup("INBOX");
    cur.subs[1] = xstrdup("Sent");
    cur.subs[2] = xstrdup("Gone"); /* subscribed, does not exist */
    cur.nsubs = 3;
    if (store_md_set(&cur.tokens, TXT("devtoken0"), (int64_t)now) < 0)
        abort();
    nfiles_fixed = nfiles;
    account_copy(&tmpl, &cur);
    dirty = false;
}

void store_double_reset(void)
{
    if (open_views) {
        fprintf(stderr, "imap_store_double: %u mailbox view(s) left open\n", open_views);
        abort();
    }
    files_truncate(nfiles_fixed);
    if (!dirty)
        return;
    account_free(&cur);
    account_copy(&cur, &tmpl);
    dirty = false;
}

void store_double_poke(unsigned kind)
{
    struct dfolder *f = cur.folders[0];
    uint32_t now = (uint32_t)time(NULL);
    switch (kind % 4) {
    case 0: { /* a delivery: a copy of a fixture message */
        uint32_t file = (uint32_t)(f->uidnext % nfiles_fixed);
        const struct dmsg *d = fmsg_add(f, 0, (uint32_t)files[file].len, files[file].vsize, now,
                                        file);
        if (d)
            store_notify_append(acct_addr, "INBOX", d->uid, d->flags, d->modseq, NULL);
        break;
    }
    case 1: /* another session toggles \Seen of the first message */
        if (f->n) {
            struct dmsg *d = &f->msgs[0];
            d->flags ^= MB_SEEN;
            d->modseq = ++f->modseq;
            dirty = true;
            store_notify_flags(acct_addr, "INBOX", d->uid, d->flags, d->modseq, NULL);
        }
        break;
    case 2: /* ... expunges the last one */
        if (f->n) {
            uint32_t uid = f->msgs[f->n - 1].uid;
            uint64_t ms = fmsg_expunge(f, f->n - 1);
            store_notify_expunge(acct_addr, "INBOX", uid, ms, NULL);
        }
        break;
    default: /* ... sets a keyword it just created on the middle one */
        for (int i = 0; i < MB_KEYWORDS_MAX && f->n; i++) {
            if (f->kw[i])
                continue;
            char name[16];
            snprintf(name, sizeof name, "$Ext%d", i);
            f->kw[i] = xstrdup(name);
            struct dmsg *d = &f->msgs[f->n / 2];
            d->flags |= MB_KEYWORD(i);
            d->modseq = ++f->modseq;
            dirty = true;
            store_notify_flags(acct_addr, "INBOX", d->uid, d->flags, d->modseq, NULL);
            break;
        }
        break;
    }
}

void store_double_free(void)
{
    account_free(&cur);
    account_free(&tmpl);
    char path[512];
    for (size_t i = 0; i < nfiles_written; i++) {
        snprintf(path, sizeof path, "%s/m%zu", files_dir, i);
        unlink(path);
    }
    files_truncate(0);
    nfiles_fixed = nfiles_written = 0;
}
