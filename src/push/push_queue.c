/* push_queue.c: the durable notification queue (see push.h): items in
 * memory mirror the files of <mailboxes_dir>/pending_notifications; a
 * one-shot timer (also used to defer work out of callbacks) sends what is
 * due, at most PUSH_INFLIGHT_MAX at once. Every file operation runs on
 * the slow worker pool (core/workpool.h), in batches of up to PUSH_BATCH,
 * one batch per kind at a time:
 *
 *   delivery  worker: the account's valid tokens (metadata.json, locked)
 *             loop: per token not pending (coalescing: P.pending counts
 *             the tokens of every item, in memory or on disk only) a new
 *             item
 *             worker: its file (.tmp-<random>; the batch made durable
 *             with one journal commit, renamed, the dir fsynced once;
 *             see write_work); writes wait for
 *             the start-up scan, which counts the files it finds
 *             loop: due now (an item older than 5 h is dropped instead)
 *   answer    200/410: worker: (410: the token out of metadata.json) the
 *             file removed; loop: the item freed. Otherwise the next try
 *             8^n s later, or dropped (file removed).
 *   scan      at start (after the privilege drop: from the first timer
 *             turn) and when items spilled to disk only: the files read
 *             back, .tmp and unparsable ones removed at start.
 *
 * Nothing on the loop is linear in the queue but the timer's pass over the
 * items in memory (at most PUSH_MEM_MAX): lookups go through hash sets.
 */
#include "push/push.h"
#include "push/push_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/curlm.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/limits.h"
#include "core/metrics.h"
#include "core/workpool.h"

enum item_state { IT_WRITING, IT_WAITING, IT_SENDING, IT_FINISHING };

struct item {
    char id[PUSH_ID_LEN + 1];
    char addr[STORE_ADDR_MAX + 1];
    int64_t start_ts;
    char *token;
    size_t token_len;
    uint64_t key;            /* push_key(token): in P.pending while the item exists */
    char tag[9];             /* for logs: never the token */
    unsigned attempts;
    uint64_t due_ms;         /* uv_now() of the next attempt */
    uint64_t t_deliv_ns;     /* uv_hrtime() of the delivery; 0 = read from disk */
    enum item_state st;
    bool spill;              /* on disk only: freed after its write */
    bool gone;               /* finishing after a 410: the token goes too */
    size_t slot;             /* index in P.items */
    struct item *qnext;      /* in a write or finish batch */
    int rc, err;             /* worker results */
};

/* A delivery whose tokens are looked up. */
struct tok_req {
    struct tok_req *next;
    char addr[STORE_ADDR_MAX + 1];
    uint64_t t_ns;
    struct buf toks;
    int rc;
};

struct iq {
    struct item *head, **tail;
};

enum job_kind { J_TOKENS, J_WRITE, J_FINISH, J_SCAN, J_KINDS };

/* One batch of work of one kind on the slow pool (at most one per kind at
 * a time): up to PUSH_BATCH lookups, writes or removals. */
struct job {
    struct workpool_job wj;
    enum job_kind kind;
    struct tok_req *reqs;    /* J_TOKENS */
    struct item *items;      /* J_WRITE, J_FINISH (linked by qnext) */
    int dir_err;             /* J_WRITE: fsync of the directory */
    /* J_SCAN */
    bool initial;
    size_t limit;
    unsigned gen;
    int rc;
    struct item **found;
    size_t n_found;
    bool more;
    long n_files;
    unsigned removed;
    uint64_t *keys;          /* initial: the keys of the files left on disk */
    size_t n_keys, cap_keys;
};

#define PUSH_BATCH 256

static struct {
    uv_loop_t *loop;
    const struct config *cfg;
    char *dir;
    double scale;
    struct curlm *curl;
    struct workpool *pool;
    uv_timer_t timer;
    bool started, stopping, scanned_initial, scanning;
    bool initial_done;       /* writes wait for the start-up scan (it counts the files) */
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    struct push_set pending; /* keys of every item in memory or on disk only */
    struct push_set ids;     /* push_id_key of the items in memory */
    struct item **items;     /* mem_max slots */
    size_t mem_max;          /* PUSH_MEM_MAX; tests: CM_PUSH_MEM_MAX */
    size_t n;
    unsigned inflight;
    bool busy[J_KINDS];
    unsigned jobs;           /* on the pool */
    struct tok_req *tq, **tq_tail;
    struct iq wq, fq;        /* to write, to finish */
    bool spilled;            /* files that are not in memory exist */
    unsigned spill_gen;
    struct push_set removed; /* push_id_key of items finished while a scan runs */
} P;

static void kick(void);
static void on_timer(uv_timer_t *t);

/* ------------------------------------------------------------ items */

/* The key of a token in P.pending: SipHash under a key chosen at start
 * (a token cannot be made to collide with another's on purpose). */
static uint64_t push_key(const char *tok, size_t len)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)tok, len, P.hkey);
    uint64_t k;
    memcpy(&k, h, sizeof k);
    return k;
}

/* An item's id (32 random hex digits) as a key: its first 16 digits. */
static uint64_t push_id_key(const char *id)
{
    uint64_t k = 0;
    for (int i = 0; i < 16 && id[i]; i++)
        k = k << 4 | (uint64_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
    return k;
}

static struct item *item_new(const char *addr, int64_t start_ts, const char *tok, size_t len)
{
    struct item *it = calloc(1, sizeof *it);
    if (!it || !(it->token = malloc(len + 1))) {
        free(it);
        return NULL;
    }
    memcpy(it->token, tok, len);
    it->token[len] = '\0';
    it->token_len = len;
    snprintf(it->addr, sizeof it->addr, "%s", addr);
    it->start_ts = start_ts;
    it->key = push_key(tok, len);
    push_token_tag(tok, len, it->tag);
    return it;
}

static void item_free(struct item *it)
{
    if (it) {
        free(it->token);
        free(it);
    }
}

/* A slot of P.items is free (P.n < P.mem_max); false: no memory for the
 * id's entry, the item stays out. */
static bool items_add(struct item *it)
{
    if (push_set_add(&P.ids, push_id_key(it->id)) < 0)
        return false;
    it->slot = P.n;
    P.items[P.n++] = it;
    return true;
}

static void items_remove(struct item *it)
{
    push_set_del(&P.ids, push_id_key(it->id));
    struct item *last = P.items[--P.n];
    P.items[it->slot] = last;
    last->slot = it->slot;
}

/* The item (in memory or not) is gone for good: its token is free again. */
static void item_gone(struct item *it)
{
    push_set_del(&P.pending, it->key);
    item_free(it);
}

static void iq_push(struct iq *q, struct item *it)
{
    it->qnext = NULL;
    *q->tail = it;
    q->tail = &it->qnext;
}

/* Up to PUSH_BATCH items off the queue, as a list. */
static struct item *iq_take(struct iq *q)
{
    struct item *head = q->head, **pp = &q->head;
    for (int k = 0; *pp && k < PUSH_BATCH; k++)
        pp = &(*pp)->qnext;
    q->head = *pp;
    *pp = NULL;
    if (!q->head)
        q->tail = &q->head;
    return head;
}

/* In memory already, or finished while the scan that found it ran? */
static bool id_known(const struct item *x)
{
    uint64_t k = push_id_key(x->id);
    return push_set_has(&P.ids, k) || push_set_has(&P.removed, k);
}

static void note_removed(const char *id)
{
    if (P.scanning)
        (void)push_set_add(&P.removed, push_id_key(id)); /* no memory: at worst one more try */
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ workers */

static int ensure_dir(void)
{
    if (mkdir(P.dir, 0700) == 0 || errno == EEXIST)
        return 0;
    if (errno != ENOENT || mkdir(P.cfg->mailboxes_dir, 0755) < 0)
        return errno == EEXIST && mkdir(P.dir, 0700) == 0 ? 0 : -1;
    return mkdir(P.dir, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static void tokens_work(struct job *j)
{
    for (struct tok_req *r = j->reqs; r; r = r->next)
        r->rc = store_md_get_tokens(P.cfg, r->addr, time(NULL), &r->toks);
}

/* <id>.tmp-<16 hex> (push_item_name_tmp): removed by the start-up scan if
 * a crash leaves it. */
#define TMP_NAME_MAX (PUSH_ID_LEN + 5 + 16 + 1)

static int write_tmp(int dfd, const struct item *it, struct buf *b, char *tmp)
{
    unsigned char rnd[8];
    char hex[sizeof rnd * 2 + 1];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(tmp, TMP_NAME_MAX, "%s.tmp-%s", it->id, hex);
    b->len = 0;
    if (push_item_format(it->addr, it->start_ts, it->token, b) < 0) {
        errno = ENOMEM;
        return -1;
    }
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int rc = fileio_write_all(fd, b->data, b->len);
    /* start its writeback now: the blocks of the whole batch are then
     * allocated in one journal transaction, which the first fdatasync
     * commits; the others find it committed */
    if (rc == 0 && sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) < 0)
        rc = -1;
    int e = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc < 0) {
        unlinkat(dfd, tmp, 0);
        errno = e;
    }
    return rc;
}

/* Durable: the fdatasync of a file whose writeback write_tmp started. */
static int sync_tmp(int dfd, const char *tmp)
{
    int fd = openat(dfd, tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    int rc = fdatasync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* The batch's files written under temporary names (writeback started for
 * all of them), each fdatasynced (the first one commits the journal
 * transaction that holds them all: one commit per batch, not one per file
 * as with a plain write-fsync-rename each, which in a burst of thousands
 * held the journal, and with it every delivery's fsync and the IDLE
 * latency of other users; syncfs, the other way to one commit, also
 * flushes everyone else's dirty data), renamed, and the directory fsynced
 * once, before any of them is sent. The files are reopened for the sync
 * rather than kept open: a batch must not hold PUSH_BATCH descriptors. */
static void write_work(struct job *j)
{
    int dfd = open(P.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT && ensure_dir() == 0)
        dfd = open(P.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    size_t n = 0;
    for (struct item *it = j->items; it; it = it->qnext)
        n++;
    char(*tmps)[TMP_NAME_MAX] = dfd >= 0 ? calloc(n, sizeof *tmps) : NULL;
    int e = dfd < 0 ? errno : ENOMEM;
    if (!tmps) {
        for (struct item *it = j->items; it; it = it->qnext) {
            it->rc = -1;
            it->err = e;
        }
        if (dfd >= 0)
            close(dfd);
        return;
    }
    struct buf b = {0};
    bool any = false;
    size_t k = 0;
    for (struct item *it = j->items; it; it = it->qnext, k++) {
        it->rc = write_tmp(dfd, it, &b, tmps[k]);
        it->err = it->rc < 0 ? errno : 0;
        any |= it->rc == 0;
    }
    buf_free(&b);
    k = 0;
    any = false;
    for (struct item *it = j->items; it; it = it->qnext, k++) {
        if (it->rc < 0)
            continue;
        if (sync_tmp(dfd, tmps[k]) < 0 || renameat(dfd, tmps[k], dfd, it->id) < 0) {
            it->rc = -1;
            it->err = errno;
            unlinkat(dfd, tmps[k], 0);
        }
        any |= it->rc == 0;
    }
    free(tmps);
    j->dir_err = any && fsync(dfd) < 0 ? errno : 0;
    close(dfd);
}

static void finish_work(struct job *j)
{
    char path[4096];
    for (struct item *it = j->items; it; it = it->qnext) {
        it->err = 0;
        errno = 0;
        if (it->gone && store_md_remove_token(P.cfg, it->addr, it->token, time(NULL)) < 0)
            it->err = errno ? errno : EIO;
        snprintf(path, sizeof path, "%s/%s", P.dir, it->id);
        it->rc = unlink(path) == 0 ? 0 : -errno;
    }
}

static struct item *read_item(int dfd, const char *name, bool *bad)
{
    *bad = false;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL; /* gone meanwhile */
    char *data = malloc(PUSH_FILE_MAX + 1);
    size_t len = 0;
    ssize_t r = 0;
    while (data && len <= PUSH_FILE_MAX &&
           (r = read(fd, data + len, PUSH_FILE_MAX + 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    struct push_item_data *d = data ? malloc(sizeof *d) : NULL;
    struct item *it = NULL;
    if (d && r >= 0 && len <= PUSH_FILE_MAX && push_item_parse(data, len, d) == 0) {
        it = item_new(d->addr, d->start_ts, d->token, d->token_len);
        if (it)
            memcpy(it->id, name, PUSH_ID_LEN + 1); /* push_item_name_ok: 32 characters */
    } else if (d && r >= 0) {
        *bad = true;
    }
    free(d);
    free(data);
    return it;
}

static void scan_work(struct job *j)
{
    if (j->initial)
        (void)ensure_dir();
    DIR *d = opendir(P.dir);
    if (!d) {
        j->rc = -errno;
        return;
    }
    j->found = calloc(j->limit ? j->limit : 1, sizeof *j->found);
    if (!j->found) {
        closedir(d);
        j->rc = -ENOMEM;
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (!push_item_name_ok(e->d_name)) {
            if (j->initial && unlinkat(dirfd(d), e->d_name, 0) == 0)
                j->removed++; /* .tmp of an interrupted write, or not an item */
            continue;
        }
        j->n_files++;
        if (j->n_found == j->limit) {
            j->more = true;
            if (!j->initial)
                break;
        }
        bool bad;
        struct item *it = read_item(dirfd(d), e->d_name, &bad);
        if (it && j->n_found < j->limit) {
            j->found[j->n_found++] = it;
        } else if (it) { /* stays on disk; its token counts as pending */
            if (j->n_keys == j->cap_keys) {
                size_t cap = j->cap_keys ? j->cap_keys * 2 : 1024;
                uint64_t *k = realloc(j->keys, cap * sizeof *k);
                if (k) {
                    j->keys = k;
                    j->cap_keys = cap;
                }
            }
            if (j->n_keys < j->cap_keys)
                j->keys[j->n_keys++] = it->key;
            item_free(it);
        }
        else if (bad && unlinkat(dirfd(d), e->d_name, 0) == 0) {
            j->removed++;
            j->n_files--;
        }
    }
    closedir(d);
}

static void job_work(struct workpool_job *wj)
{
    struct job *j = wj->data;
    switch (j->kind) {
    case J_TOKENS: tokens_work(j); break;
    case J_WRITE: write_work(j); break;
    case J_FINISH: finish_work(j); break;
    case J_SCAN: scan_work(j); break;
    case J_KINDS: break;
    }
}

/* ------------------------------------------------------------ loop side */

static void job_done(struct workpool_job *wj);

static int submit(struct job *j)
{
    j->wj.work = job_work;
    j->wj.done = job_done;
    j->wj.data = j;
    if (!P.pool || workpool_submit(P.pool, &j->wj) < 0)
        return -1;
    P.busy[j->kind] = true;
    P.jobs++;
    return 0;
}

static void drop_unwritten(struct item *list)
{
    while (list) {
        struct item *n = list->qnext;
        log_error("push: cannot queue the notification of %s (token %s)", list->addr, list->tag);
        if (!list->spill)
            items_remove(list);
        item_gone(list);
        list = n;
    }
}

/* The item's file goes (after a 410 with the token); then the item. */
static void finish(struct item *it, bool gone)
{
    it->st = IT_FINISHING;
    it->gone = gone;
    iq_push(&P.fq, it);
}

static void tokens_done(struct tok_req *r)
{
    if (r->rc < 0 || !r->toks.data)
        return; /* no account or no metadata.json: no tokens */
    int64_t now = time(NULL);
    char *save = NULL;
    for (char *t = strtok_r(r->toks.data, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        size_t len = strlen(t);
        bool clean = len > 0 && len <= STORE_TOKEN_MAX;
        for (size_t k = 0; clean && k < len; k++)
            clean = (unsigned char)t[k] >= 0x20 && t[k] != 0x7f; /* as the file format wants */
        if (!clean)
            continue;
        /* pending in memory or on disk only: the phone wakes anyway */
        if (push_set_has(&P.pending, push_key(t, len))) {
            metrics_inc(M_PUSH_COALESCED);
            continue;
        }
        struct item *it = item_new(r->addr, now, t, len);
        if (!it || push_set_add(&P.pending, it->key) < 0) {
            item_free(it);
            log_error("push: out of memory for a notification of %s", r->addr);
            return;
        }
        unsigned char rnd[PUSH_ID_LEN / 2];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(it->id, sizeof it->id, rnd, sizeof rnd);
        it->t_deliv_ns = r->t_ns;
        it->st = IT_WRITING;
        it->spill = P.n >= P.mem_max || !items_add(it);
        iq_push(&P.wq, it);
    }
}

static void write_done(struct job *j)
{
    if (j->dir_err)
        log_error("push: cannot fsync %s: %s", P.dir, strerror(j->dir_err));
    uint64_t now = uv_now(P.loop);
    for (struct item *it = j->items, *n; it; it = n) {
        n = it->qnext;
        if (it->rc < 0) {
            log_error("push: cannot write %s/%s: %s", P.dir, it->id, strerror(it->err));
            if (!it->spill)
                items_remove(it);
            item_gone(it);
            continue;
        }
        metrics_gauge_add(G_PUSH_QUEUE_LENGTH, 1);
        if (it->spill) { /* its key stays in P.pending until a scan loads it and it is done */
            P.spilled = true;
            P.spill_gen++;
            item_free(it);
            continue;
        }
        it->st = IT_WAITING;
        it->due_ms = now;
    }
}

static void finish_done(struct job *j)
{
    for (struct item *it = j->items, *n; it; it = n) {
        n = it->qnext;
        if (it->gone && it->err)
            log_error("push: cannot remove token %s of %s from metadata.json: %s", it->tag,
                      it->addr, strerror(it->err));
        if (it->rc == 0)
            metrics_gauge_add(G_PUSH_QUEUE_LENGTH, -1);
        else if (it->rc != -ENOENT)
            log_error("push: cannot remove %s/%s: %s", P.dir, it->id, strerror(-it->rc));
        note_removed(it->id);
        items_remove(it);
        item_gone(it);
    }
}

static void scan_done(struct job *j)
{
    P.scanning = false;
    if (j->rc < 0)
        log_error("push: cannot read %s: %s", P.dir, strerror(-j->rc));
    if (j->initial) {
        /* every file found counts as pending for its token (coalescing);
         * the writes waited for this */
        P.initial_done = true;
        bool nomem = false;
        for (size_t i = 0; i < j->n_keys; i++)
            nomem |= push_set_add(&P.pending, j->keys[i]) < 0;
        for (size_t i = 0; i < j->n_found; i++)
            nomem |= push_set_add(&P.pending, j->found[i]->key) < 0;
        if (nomem)
            log_error("push: out of memory: a token on disk may be notified twice");
        metrics_gauge_set(G_PUSH_QUEUE_LENGTH, j->n_files);
        if (j->n_files || j->removed)
            log_info("push: %ld pending notifications queued again, %u stale files removed",
                     j->n_files, j->removed);
    }
    bool more = j->more;
    uint64_t now = uv_now(P.loop);
    for (size_t i = 0; i < j->n_found; i++) {
        struct item *it = j->found[i];
        if (P.stopping || id_known(it)) {
            item_free(it);
        } else if (P.n >= P.mem_max || !items_add(it)) {
            more = true;
            item_free(it); /* stays on disk, its key in P.pending */
        } else {
            it->st = IT_WAITING;
            it->due_ms = now;
        }
    }
    free(j->found);
    free(j->keys);
    push_set_free(&P.removed);
    P.spilled = more || P.spill_gen != j->gen;
}

static void job_done(struct workpool_job *wj)
{
    struct job *j = wj->data;
    P.busy[j->kind] = false;
    P.jobs--;
    switch (j->kind) {
    case J_TOKENS:
        for (struct tok_req *r = j->reqs, *n; r; r = n) {
            n = r->next;
            if (!P.stopping)
                tokens_done(r);
            buf_free(&r->toks);
            free(r);
        }
        break;
    case J_WRITE: write_done(j); break;
    case J_FINISH: finish_done(j); break;
    case J_SCAN: scan_done(j); break;
    case J_KINDS: break;
    }
    free(j);
    kick();
}

static void start_scan(bool initial)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        P.initial_done |= initial; /* no count of the files: the writes go on */
        return;
    }
    j->kind = J_SCAN;
    j->initial = initial;
    j->limit = P.mem_max - P.n;
    j->gen = P.spill_gen;
    push_set_free(&P.removed);
    P.scanning = true;
    if (submit(j) < 0) {
        P.scanning = false;
        P.initial_done |= initial;
        free(j);
    }
}

/* Starts a batch of each kind that has work and none on the pool. */
static void dispatch(void)
{
    if (!P.busy[J_TOKENS] && P.tq) {
        struct job *j = calloc(1, sizeof *j);
        if (j) {
            j->kind = J_TOKENS;
            struct tok_req **pp = &P.tq;
            for (int k = 0; *pp && k < PUSH_BATCH; k++)
                pp = &(*pp)->next;
            j->reqs = P.tq;
            P.tq = *pp;
            *pp = NULL;
            if (!P.tq)
                P.tq_tail = &P.tq;
            if (submit(j) < 0) {
                for (struct tok_req *r = j->reqs, *n; r; r = n) {
                    n = r->next;
                    free(r);
                }
                free(j);
            }
        }
    }
    if (!P.busy[J_WRITE] && P.wq.head && P.initial_done) {
        struct job *j = calloc(1, sizeof *j);
        struct item *list = iq_take(&P.wq);
        if (!j || (j->kind = J_WRITE, j->items = list, submit(j) < 0)) {
            free(j);
            drop_unwritten(list);
        }
    }
    if (!P.busy[J_FINISH] && P.fq.head) {
        struct job *j = calloc(1, sizeof *j);
        if (j) {
            j->kind = J_FINISH;
            j->items = iq_take(&P.fq);
            if (submit(j) < 0) { /* the files stay: sent again after a restart */
                for (struct item *it = j->items, *n; it; it = n) {
                    n = it->qnext;
                    items_remove(it);
                    item_gone(it);
                }
                free(j);
            }
        }
    }
}

/* ------------------------------------------------------------ sending */

static void on_sent(void *ud, enum push_outcome o, long status)
{
    struct item *it = ud;
    P.inflight--;
    if (o == PUSH_CANCELLED) { /* stopping: the file stays */
        it->st = IT_WAITING;
        return;
    }
    if (it->attempts == 0 && it->t_deliv_ns)
        metrics_observe_push_us((uv_hrtime() - it->t_deliv_ns) / 1000);
    it->attempts++;
    if (o == PUSH_DONE) {
        log_debug("push: %s token %s notified", it->addr, it->tag);
        finish(it, false);
    } else if (o == PUSH_GONE) {
        log_info("push: %s token %s is gone (410): removed", it->addr, it->tag);
        finish(it, true);
    } else if (push_should_drop(it->attempts, it->start_ts, wall_ms(), P.scale)) {
        metrics_inc(M_PUSH_DROPS);
        log_info("push: %s token %s dropped after %u attempts (last status %ld)", it->addr,
                 it->tag, it->attempts, status);
        finish(it, false);
    } else {
        metrics_inc(M_PUSH_RETRIES);
        uint64_t delay = push_retry_delay_ms(it->attempts, P.scale);
        log_info("push: %s token %s: attempt %u failed (status %ld), next in %llu ms", it->addr,
                 it->tag, it->attempts, status, (unsigned long long)delay);
        it->st = IT_WAITING;
        uv_update_time(P.loop); /* from now, not from the start of this loop turn */
        it->due_ms = uv_now(P.loop) + delay;
    }
    kick();
}

static void pump(void)
{
    if (P.stopping)
        return;
    dispatch();
    if (!P.scanned_initial) {
        P.scanned_initial = true;
        start_scan(true);
    } else if (P.spilled && !P.scanning && P.n <= P.mem_max / 2) {
        start_scan(false);
    }
    uint64_t now = uv_now(P.loop), next = UINT64_MAX;
    int64_t wall = wall_ms();
    bool dropped = false; /* or: more to send on the next turn */
    bool opening = false;
    for (size_t i = 0; i < P.n; i++) {
        struct item *it = P.items[i];
        if (it->st != IT_WAITING)
            continue;
        if (it->due_ms > now) {
            next = it->due_ms < next ? it->due_ms : next;
            continue;
        }
        if (push_should_drop(it->attempts, it->start_ts, wall, P.scale)) {
            /* older than 5 h (e.g. a file found at start): no further try */
            metrics_inc(M_PUSH_DROPS);
            log_info("push: %s token %s dropped after %u attempts: older than %d s", it->addr,
                     it->tag, it->attempts, PUSH_MAX_AGE_S);
            finish(it, false);
            dropped = true;
            continue;
        }
        if (P.inflight >= PUSH_INFLIGHT_MAX)
            break; /* an answer kicks again */
        if (opening) {
            dropped = true; /* one more turn */
            break;
        }
        if (push_send(P.curl, P.cfg, it->token, it->token_len, on_sent, it)) {
            it->st = IT_SENDING;
            /* While fewer requests are in flight than connections may be
             * open, each one may open a connection, whose TLS set-up
             * (handshake, CA roots) runs on the loop: one per turn, so
             * that the first requests of a burst do not stall a turn with
             * PUSH_CONNECTIONS_MAX of them (320 ms seen in
             * test_push_scale). */
            opening = P.inflight++ < PUSH_CONNECTIONS_MAX;
        } else {
            it->due_ms = now + 1000; /* no memory: a second later */
            next = it->due_ms < next ? it->due_ms : next;
        }
    }
    if (dropped)
        kick(); /* their files go, or more are sent, on the next turn */
    else if (next != UINT64_MAX)
        uv_timer_start(&P.timer, on_timer, next - now, 0);
}

static void on_timer(uv_timer_t *t)
{
    (void)t;
    pump();
}

/* Runs pump on the next loop turn (never inside a callback of curl or of
 * a job). */
static void kick(void)
{
    if (P.started && !P.stopping)
        uv_timer_start(&P.timer, on_timer, 0, 0);
}

/* ------------------------------------------------------------ module */

int push_start(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen)
{
    memset(&P, 0, sizeof P);
    P.loop = loop;
    P.cfg = cfg;
    P.scale = push_time_scale(getenv("CM_PUSH_TIME_SCALE"));
    const char *mm = getenv("CM_PUSH_MEM_MAX"); /* test-only: the spill to disk */
    P.mem_max = mm && atol(mm) > 0 && atol(mm) < PUSH_MEM_MAX ? (size_t)atol(mm) : PUSH_MEM_MAX;
    struct buf b = {0};
    const char *why = "out of memory";
    if (buf_printf(&b, "%s/%s", cfg->mailboxes_dir, PUSH_DIR) < 0 ||
        !(P.items = calloc(P.mem_max, sizeof *P.items)) ||
        !(P.curl = curlm_start(loop, &why))) {
        snprintf(err, errlen, "push: %s", why);
        buf_free(&b);
        free(P.items);
        memset(&P, 0, sizeof P);
        return -1;
    }
    P.dir = buf_steal_str(&b);
    randombytes_buf(P.hkey, sizeof P.hkey);
    curlm_set_max_host_connections(P.curl, PUSH_CONNECTIONS_MAX);
    P.tq_tail = &P.tq;
    P.wq.tail = &P.wq.head;
    P.fq.tail = &P.fq.head;
    /* IMAP's slow pool (nice threads): libuv's own pool stays free for
     * deliveries, so a burst of notifications does not delay IDLE */
    P.pool = workpool_get(loop, LIM_IMAP_SLOW_WORKERS);
    if (!P.pool)
        log_warn("push: no worker pool: notifications are not sent");
    uv_timer_init(loop, &P.timer);
    P.started = true;
    if (P.scale != 1.0 || P.mem_max != PUSH_MEM_MAX)
        log_info("push: test settings: time scale %g, %zu items in memory", P.scale, P.mem_max);
    kick(); /* the start-up scan, once the loop runs (after the privilege drop) */
    return 0;
}

void push_delivered(const char *addr)
{
    if (!P.started || P.stopping)
        return;
    struct tok_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    snprintf(r->addr, sizeof r->addr, "%s", addr);
    r->t_ns = uv_hrtime();
    *P.tq_tail = r;
    P.tq_tail = &r->next;
    kick();
}

/* After push_stop: the timer keeps the loop alive until the batches on
 * the pool are back (they use P), then closes. */
static void on_drain(uv_timer_t *t)
{
    if (P.jobs == 0) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
    }
}

void push_stop(void)
{
    if (!P.started || P.stopping)
        return;
    P.stopping = true;
    curlm_stop(P.curl);
    uv_timer_stop(&P.timer);
    if (P.jobs)
        uv_timer_start(&P.timer, on_drain, 5, 5);
    else
        uv_close((uv_handle_t *)&P.timer, NULL);
}

void push_free(void)
{
    for (struct tok_req *r = P.tq, *n; r; r = n) {
        n = r->next;
        buf_free(&r->toks);
        free(r);
    }
    for (struct item *it = P.wq.head, *n; it; it = n) { /* spilled ones are only here */
        n = it->qnext;
        if (it->spill)
            item_free(it);
    }
    for (size_t i = 0; i < P.n; i++)
        item_free(P.items[i]);
    free(P.items);
    push_set_free(&P.pending);
    push_set_free(&P.ids);
    push_set_free(&P.removed);
    free(P.dir);
    memset(&P, 0, sizeof P);
}
