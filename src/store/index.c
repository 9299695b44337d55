/* index.c: the SQLite cache behind a mailbox: one row per message (UID,
 * file base name, new/cur, info, flags, modseq, sizes, internal date), the
 * bounded list of expunged UIDs for QRESYNC, and a key/value meta table
 * (UIDVALIDITY, next UID, HIGHESTMODSEQ, ...). WAL, synchronous=NORMAL:
 * it can always be rebuilt from the Maildir, so a file that fails to open
 * or check is deleted and recreated. Statements are prepared once. */
#include "store/index_int.h"
#include "store/sqlheap.h"
#include "store/mailbox.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDX_SCHEMA_VERSION 1
#define IDX_BUSY_MS 5000

enum idx_stmt {
    ST_META_GET, ST_META_SET, ST_INSERT, ST_UPDATE_FILE, ST_GET, ST_UID_OF, ST_DELETE,
    ST_VANISH, ST_VANISH_COUNT, ST_VANISH_PRUNE_AT, ST_VANISH_PRUNE, ST_EACH,
    ST_EACH_VANISHED, ST_COUNT, ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST__N
};

static const char *const stmt_sql[ST__N] = {
    [ST_META_GET] = "SELECT v FROM meta WHERE k=?1",
    [ST_META_SET] = "INSERT OR REPLACE INTO meta(k,v) VALUES(?1,?2)",
    [ST_INSERT] = "INSERT INTO msg(uid,base,cur,info,flags,modseq,size,vsize,idate)"
                  " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [ST_UPDATE_FILE] = "UPDATE msg SET cur=?2, info=?3, flags=?4, modseq=?5 WHERE uid=?1",
    [ST_GET] = "SELECT uid,base,cur,info,flags,modseq,size,vsize,idate FROM msg WHERE uid=?1",
    [ST_UID_OF] = "SELECT uid FROM msg WHERE base=?1",
    [ST_DELETE] = "DELETE FROM msg WHERE uid=?1",
    [ST_VANISH] = "INSERT OR REPLACE INTO vanished(uid,modseq) VALUES(?1,?2)",
    [ST_VANISH_COUNT] = "SELECT count(*) FROM vanished",
    [ST_VANISH_PRUNE_AT] = "SELECT modseq FROM vanished ORDER BY modseq DESC LIMIT 1 OFFSET ?1",
    [ST_VANISH_PRUNE] = "DELETE FROM vanished WHERE modseq <= ?1",
    [ST_EACH] = "SELECT uid,base,cur,info,flags,modseq,size,vsize,idate FROM msg"
                " WHERE modseq > ?1 ORDER BY uid",
    [ST_EACH_VANISHED] = "SELECT uid,modseq FROM vanished WHERE modseq > ?1 ORDER BY uid",
    [ST_COUNT] = "SELECT count(*) FROM msg",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v);"
    "CREATE TABLE IF NOT EXISTS msg(uid INTEGER PRIMARY KEY, base TEXT NOT NULL UNIQUE,"
    " cur INTEGER NOT NULL, info TEXT, flags INTEGER NOT NULL, modseq INTEGER NOT NULL,"
    " size INTEGER NOT NULL, vsize INTEGER NOT NULL, idate INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS msg_modseq ON msg(modseq);"
    "CREATE TABLE IF NOT EXISTS vanished(uid INTEGER PRIMARY KEY, modseq INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS vanished_modseq ON vanished(modseq);";

struct idx {
    sqlite3 *db;               /* NULL while suspended */
    sqlite3_stmt *st[ST__N];
    char *path;
    bool corrupt;
};

static int idx_reopen(struct idx *ix);

static int note(struct idx *ix, int rc)
{
    int prim = rc & 0xff;
    if (prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB)
        ix->corrupt = true;
    return rc;
}

static sqlite3_stmt *stmt(struct idx *ix, enum idx_stmt s)
{
    if (!ix->db && idx_reopen(ix) < 0)
        return NULL;
    if (!ix->st[s] &&
        note(ix, sqlite3_prepare_v3(ix->db, stmt_sql[s], -1, SQLITE_PREPARE_PERSISTENT,
                                    &ix->st[s], NULL)) != SQLITE_OK)
        return NULL;
    sqlite3_reset(ix->st[s]);
    sqlite3_clear_bindings(ix->st[s]);
    return ix->st[s];
}

/* Steps a statement that returns no row; 0 or -1. */
static int run(struct idx *ix, sqlite3_stmt *s)
{
    if (!s)
        return -1;
    int rc = note(ix, sqlite3_step(s));
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void path_of(struct buf *b, const char *dir, const char *suffix)
{
    buf_reset(b);
    buf_printf(b, "%s/%s%s", dir, MAILBOX_INDEX_NAME, suffix);
}

void idx_unlink(const char *dir)
{
    struct buf b = {0};
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        path_of(&b, dir, sfx[i]);
        if (b.data)
            unlink(b.data);
    }
    buf_free(&b);
}

/* True when the opened file is a sound index of our schema. */
static bool idx_check(struct idx *ix, bool *empty)
{
    sqlite3_stmt *s = NULL;
    bool ok = false;
    *empty = false;
    if (sqlite3_prepare_v2(ix->db, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK)
        return false;
    if (sqlite3_step(s) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        ok = t && strcmp((const char *)t, "ok") == 0;
    }
    sqlite3_finalize(s);
    if (!ok || sqlite3_exec(ix->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
        return false;
    int64_t v;
    int rc = idx_meta_get(ix, "schema", &v);
    if (rc == 1) {
        *empty = true;
        return idx_meta_set(ix, "schema", IDX_SCHEMA_VERSION) == 0;
    }
    return rc == 0 && v == IDX_SCHEMA_VERSION && !ix->corrupt;
}

/* A selected folder keeps its connection while the session is active:
 * keep it small. SQLite's defaults give every connection a 120 KiB
 * lookaside arena and a 20-page bulk page-cache allocation up front (about
 * 210 KiB in all); both are off, before SQLite initialises, and the page
 * cache is a few pages - the index of a chatmail inbox is a handful of
 * pages, and the OS page cache holds the file. */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
    (void)sqlheap_install(); /* pages freed at hibernation go back whole */
    sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
}

static void idx_tune(sqlite3 *db)
{
    sqlite3_exec(db, "PRAGMA cache_size=4;", NULL, NULL, NULL);
}

static int idx_try_open(const char *path, struct idx *ix, bool *empty)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    pthread_once(&sqlite_once, sqlite_setup);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600); /* sqlite would make it 0644 */
    if (fd >= 0)
        close(fd);
    if (sqlite3_open_v2(path, &ix->db, flags, NULL) != SQLITE_OK)
        return -1;
    idx_tune(ix->db);
    sqlite3_busy_timeout(ix->db, IDX_BUSY_MS);
    if (sqlite3_exec(ix->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK)
        return -1;
    return idx_check(ix, empty) ? 0 : -1;
}

static void idx_close_db(struct idx *ix)
{
    for (int i = 0; i < ST__N; i++) {
        sqlite3_finalize(ix->st[i]);
        ix->st[i] = NULL;
    }
    sqlite3_close(ix->db);
    ix->db = NULL;
    ix->corrupt = false;
}

int idx_open(const char *dir, struct idx **out, bool *fresh, const char **err)
{
    struct idx *ix = calloc(1, sizeof(*ix));
    struct buf path = {0};
    bool empty = false;
    path_of(&path, dir, "");
    if (!ix || !path.data) {
        free(ix);
        buf_free(&path);
        *err = "out of memory";
        return -1;
    }
    *fresh = false;
    if (idx_try_open(path.data, ix, &empty) < 0) {
        idx_close_db(ix);
        idx_unlink(dir);
        *fresh = true;
        if (idx_try_open(path.data, ix, &empty) < 0) {
            idx_close_db(ix);
            free(ix);
            buf_free(&path);
            *err = "cannot create the mailbox index";
            return -1;
        }
    }
    ix->path = buf_steal_str(&path);
    *fresh = *fresh || empty;
    *out = ix;
    return 0;
}

/* Opens the checked index file again after idx_suspend: no integrity check
 * and no schema step (they ran at idx_open); a file that vanished or went
 * bad meanwhile marks the index corrupt, so the caller rebuilds it. */
static int idx_reopen(struct idx *ix)
{
    if (!ix->path ||
        sqlite3_open_v2(ix->path, &ix->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK) {
        sqlite3_close(ix->db);
        ix->db = NULL;
        ix->corrupt = true;
        return -1;
    }
    idx_tune(ix->db);
    sqlite3_busy_timeout(ix->db, IDX_BUSY_MS);
    if (note(ix, sqlite3_exec(ix->db, "PRAGMA synchronous=NORMAL;", NULL, NULL, NULL)) !=
        SQLITE_OK) {
        idx_close_db(ix);
        ix->corrupt = true;
        return -1;
    }
    return 0;
}

void idx_suspend(struct idx *ix)
{
    if (ix && ix->db && sqlite3_get_autocommit(ix->db))
        idx_close_db(ix);
}

void idx_close(struct idx *ix)
{
    if (!ix)
        return;
    idx_close_db(ix);
    free(ix->path);
    free(ix);
}

bool idx_corrupt(const struct idx *ix) { return ix->corrupt; }
int idx_begin(struct idx *ix) { return run(ix, stmt(ix, ST_BEGIN)); }
int idx_commit(struct idx *ix) { return run(ix, stmt(ix, ST_COMMIT)); }
void idx_rollback(struct idx *ix)
{
    if (ix->db && !sqlite3_get_autocommit(ix->db))
        (void)run(ix, stmt(ix, ST_ROLLBACK));
}

int idx_meta_get(struct idx *ix, const char *key, int64_t *v)
{
    sqlite3_stmt *s = stmt(ix, ST_META_GET);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = note(ix, sqlite3_step(s));
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
}

int idx_meta_set(struct idx *ix, const char *key, int64_t v)
{
    sqlite3_stmt *s = stmt(ix, ST_META_SET);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, v);
    return run(ix, s);
}

int idx_meta_get_text(struct idx *ix, const char *key, struct buf *out)
{
    sqlite3_stmt *s = stmt(ix, ST_META_GET);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = note(ix, sqlite3_step(s)), ret = rc == SQLITE_DONE ? 1 : -1;
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        buf_reset(out);
        ret = t && buf_append_str(out, (const char *)t) == 0 ? 0 : -1;
    }
    sqlite3_reset(s);
    return ret;
}

int idx_meta_set_text(struct idx *ix, const char *key, const char *v)
{
    sqlite3_stmt *s = stmt(ix, ST_META_SET);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, v, -1, SQLITE_STATIC);
    return run(ix, s);
}

int idx_insert(struct idx *ix, const struct idx_row *r)
{
    sqlite3_stmt *s = stmt(ix, ST_INSERT);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, r->uid);
    sqlite3_bind_text(s, 2, r->base, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, r->in_cur);
    if (r->info)
        sqlite3_bind_text(s, 4, r->info, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, r->flags);
    sqlite3_bind_int64(s, 6, (int64_t)r->modseq);
    sqlite3_bind_int64(s, 7, r->size);
    sqlite3_bind_int64(s, 8, r->vsize);
    sqlite3_bind_int64(s, 9, r->idate);
    return run(ix, s);
}

int idx_update_file(struct idx *ix, uint32_t uid, bool in_cur, const char *info,
                    uint32_t flags, uint64_t modseq)
{
    sqlite3_stmt *s = stmt(ix, ST_UPDATE_FILE);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, uid);
    sqlite3_bind_int(s, 2, in_cur);
    if (info)
        sqlite3_bind_text(s, 3, info, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, flags);
    sqlite3_bind_int64(s, 5, (int64_t)modseq);
    return run(ix, s);
}

/* Fills row from the current result of s; base/info point into s. */
static void row_of(sqlite3_stmt *s, struct idx_row *r)
{
    r->uid = (uint32_t)sqlite3_column_int64(s, 0);
    r->base = (const char *)sqlite3_column_text(s, 1);
    r->in_cur = sqlite3_column_int(s, 2) != 0;
    r->info = (const char *)sqlite3_column_text(s, 3);
    r->flags = (uint32_t)sqlite3_column_int64(s, 4);
    r->modseq = (uint64_t)sqlite3_column_int64(s, 5);
    r->size = (uint32_t)sqlite3_column_int64(s, 6);
    r->vsize = (uint32_t)sqlite3_column_int64(s, 7);
    r->idate = (uint32_t)sqlite3_column_int64(s, 8);
    if (!r->base)
        r->base = "";
}

int idx_get(struct idx *ix, uint32_t uid, struct idx_row *row, struct buf *strings)
{
    sqlite3_stmt *s = stmt(ix, ST_GET);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, uid);
    int rc = note(ix, sqlite3_step(s)), ret = rc == SQLITE_DONE ? 1 : -1;
    if (rc == SQLITE_ROW) {
        row_of(s, row);
        size_t blen = strlen(row->base) + 1;
        bool has_info = row->info != NULL;
        buf_reset(strings);
        if (buf_append(strings, row->base, blen) == 0 &&
            (!has_info || buf_append(strings, row->info, strlen(row->info) + 1) == 0)) {
            row->base = strings->data;
            row->info = has_info ? strings->data + blen : NULL;
            ret = 0;
        }
    }
    sqlite3_reset(s);
    return ret;
}

int idx_uid_of(struct idx *ix, const char *base, uint32_t *uid)
{
    sqlite3_stmt *s = stmt(ix, ST_UID_OF);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, base, -1, SQLITE_STATIC);
    int rc = note(ix, sqlite3_step(s));
    if (rc == SQLITE_ROW)
        *uid = (uint32_t)sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
}

static int prune_vanished(struct idx *ix)
{
    sqlite3_stmt *s = stmt(ix, ST_VANISH_PRUNE_AT);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, MAILBOX_VANISHED_MAX);
    int rc = note(ix, sqlite3_step(s));
    int64_t at = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : -1;
    s = stmt(ix, ST_VANISH_PRUNE);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, at);
    if (run(ix, s) < 0)
        return -1;
    int64_t floor = 0;
    if (idx_meta_get(ix, "vanished_floor", &floor) < 0)
        return -1;
    return at > floor ? idx_meta_set(ix, "vanished_floor", at) : 0;
}

int idx_expunge(struct idx *ix, uint32_t uid, uint64_t modseq)
{
    sqlite3_stmt *s = stmt(ix, ST_DELETE);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, uid);
    if (run(ix, s) < 0 || !(s = stmt(ix, ST_VANISH)))
        return -1;
    sqlite3_bind_int64(s, 1, uid);
    sqlite3_bind_int64(s, 2, (int64_t)modseq);
    return run(ix, s) < 0 ? -1 : prune_vanished(ix);
}

int idx_each(struct idx *ix, uint64_t since, idx_row_fn fn, void *ud)
{
    sqlite3_stmt *s = stmt(ix, ST_EACH);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, (int64_t)since);
    int rc, ret = 0;
    while ((rc = note(ix, sqlite3_step(s))) == SQLITE_ROW) {
        struct idx_row r;
        row_of(s, &r);
        if ((ret = fn(ud, &r)) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = -1;
    sqlite3_reset(s);
    return ret;
}

int idx_each_vanished(struct idx *ix, uint64_t since, idx_vanished_fn fn, void *ud)
{
    sqlite3_stmt *s = stmt(ix, ST_EACH_VANISHED);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, (int64_t)since);
    int rc, ret = 0;
    while ((rc = note(ix, sqlite3_step(s))) == SQLITE_ROW) {
        uint32_t uid = (uint32_t)sqlite3_column_int64(s, 0);
        if ((ret = fn(ud, uid, (uint64_t)sqlite3_column_int64(s, 1))) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = -1;
    sqlite3_reset(s);
    return ret;
}

int64_t idx_count(struct idx *ix)
{
    sqlite3_stmt *s = stmt(ix, ST_COUNT);
    if (!s)
        return -1;
    int64_t n = note(ix, sqlite3_step(s)) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    return n;
}
