/* index_int.h: private to src/store's UID index (mailbox.c, index.c,
 * uidlist.c, index_name.c). Not a public interface. */
#ifndef CM_STORE_INDEX_INT_H
#define CM_STORE_INDEX_INT_H

#include "core/limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* ---- dovecot-uidlist (uidlist.c) ---- */

#define UIDLIST_NAME "dovecot-uidlist"

struct uidlist_rec {
    uint32_t uid;
    uint32_t base_off; /* into uidlist.text, NUL-terminated base name */
    uint64_t size;     /* S<n> extension, 0 = absent */
    uint64_t vsize;    /* W<n> extension, 0 = absent */
};

struct uidlist {
    unsigned version;      /* 1 or 3 */
    uint32_t uidvalidity;
    uint32_t nextuid;      /* > every uid listed */
    char guid[33];         /* 32 hex digits, or "" */
    bool broken;           /* parsing stopped at a bad line; records before it kept */
    struct uidlist_rec *recs; /* strictly ascending uid */
    size_t n, cap;
    char *text;            /* owned copy of the file, bases point into it */
};

/* Parses a whole uidlist. 0 (maybe with ->broken), or -1 when the header
 * is unusable or memory ran out (*err set; *out is freed). Never aborts. */
int uidlist_parse(const char *data, size_t len, struct uidlist *out, const char **err);
void uidlist_free(struct uidlist *ul);
static inline const char *uidlist_base(const struct uidlist *ul, const struct uidlist_rec *r)
{
    return ul->text + r->base_off;
}
/* Reads <dir>/dovecot-uidlist: 0 parsed, 1 absent, -1 unreadable/corrupt. */
int uidlist_load(const char *dir, struct uidlist *out, const char **err);
/* Serialisation (version 3): header then one line per record. */
int uidlist_format_header(struct buf *b, uint32_t uidvalidity, uint32_t nextuid,
                          const char *guid);
int uidlist_format_rec(struct buf *b, uint32_t uid, const char *base, uint64_t size,
                       uint64_t vsize);
/* Atomically replaces <dir>/dovecot-uidlist with the bytes in b. */
int uidlist_write(const char *dir, const struct buf *b, const char **err);

/* ---- Maildir file names (index_name.c; the full module is mdname.c) ---- */

struct idxname {
    size_t base_len;    /* bytes before ':' (the whole name if none) */
    const char *info;   /* after ':' (e.g. "2,FS"), or NULL */
    uint32_t flags;     /* MB_* from a "2," info */
    uint64_t size;      /* ,S= in the base; 0 if absent */
    uint64_t vsize;     /* ,W= in the base; 0 if absent */
    int64_t secs;       /* leading "<secs>." timestamp, -1 if absent */
    uint32_t usecs;     /* ".M<usecs>", 0 if absent */
};
/* Parses a message file name; -1 for names that are not messages
 * (empty, starting with '.', containing '/', too long). */
int idxname_parse(const char *fname, struct idxname *out);
/* "2,<letters>" for flags, keeping unknown upper-case letters of old_info;
 * returns 0 or -1 if cap is too small. */
int idxname_info(const char *old_info, uint32_t flags, char *out, size_t cap);
/* A new unique Dovecot-style base "<secs>.M<usecs>P<pid>Q<n>.<host>,S=..,W=..". */
int idxname_generate(struct buf *out, uint64_t size, uint64_t vsize);

/* ---- Small files (uidlist.c) ---- */
/* Replaces <dir>/<name> with data atomically (unique temporary + rename). */
int idx_write_atomic(const char *dir, const char *name, const char *data, size_t len);
/* Appends the whole file (at most max bytes) to out; -1 with *errno_out. */
int idx_read_file(const char *path, size_t max, struct buf *out, int *errno_out);

/* ---- Account-wide UIDVALIDITY source (uidlist.c) ---- */
/* Next UIDVALIDITY for a new folder: max(now, last + 1), remembered in
 * <account>/dovecot-uidvalidity (hex, Dovecot's file). */
uint32_t uidvalidity_next(const char *account_dir);

/* ---- SQLite index (index.c) ---- */

struct idx;
struct idx_row {
    uint32_t uid;
    const char *base;   /* file name before ':' */
    bool in_cur;        /* cur/ (else new/) */
    const char *info;   /* after ':' or NULL */
    uint32_t flags;
    uint64_t modseq;
    uint32_t size, vsize, idate;
};
typedef int (*idx_row_fn)(void *ud, const struct idx_row *row);
typedef int (*idx_vanished_fn)(void *ud, uint32_t uid, uint64_t modseq);

/* Opens <dir>/chatmaild-index.sqlite. A file that is not a valid index
 * (garbage, truncated, wrong schema) is deleted and created afresh; then
 * *fresh is true and the caller rebuilds it. */
int idx_open(const char *dir, struct idx **out, bool *fresh, const char **err);
void idx_close(struct idx *ix);
/* Releases the SQLite connection (outside a transaction); the next use
 * opens it again without the integrity check of idx_open. */
void idx_suspend(struct idx *ix);
/* Deletes the database files of <dir>. */
void idx_unlink(const char *dir);
/* True once SQLite reported corruption; the caller rebuilds. */
bool idx_corrupt(const struct idx *ix);
int idx_begin(struct idx *ix);   /* BEGIN IMMEDIATE (waits on busy) */
int idx_commit(struct idx *ix);
void idx_rollback(struct idx *ix);
/* Meta values: 0 found, 1 absent, -1 error. */
int idx_meta_get(struct idx *ix, const char *key, int64_t *v);
int idx_meta_set(struct idx *ix, const char *key, int64_t v);
int idx_meta_get_text(struct idx *ix, const char *key, struct buf *out);
int idx_meta_set_text(struct idx *ix, const char *key, const char *v);
int idx_insert(struct idx *ix, const struct idx_row *row);
int idx_update_file(struct idx *ix, uint32_t uid, bool in_cur, const char *info,
                    uint32_t flags, uint64_t modseq);
/* Looks up uid; base/info are copied into strings. 0, 1 absent, -1 error. */
int idx_get(struct idx *ix, uint32_t uid, struct idx_row *row, struct buf *strings);
/* UID of the row with this base name: 0, 1 absent, -1 error. */
int idx_uid_of(struct idx *ix, const char *base, uint32_t *uid);
/* Removes uid and records it as vanished at modseq, keeping at most
 * MAILBOX_VANISHED_MAX such records (raising meta "vanished_floor"). */
int idx_expunge(struct idx *ix, uint32_t uid, uint64_t modseq);
/* Rows with modseq > since (0 = all), in UID order. A callback returning
 * non-zero stops the walk and is returned. */
int idx_each(struct idx *ix, uint64_t since, idx_row_fn fn, void *ud);
int idx_each_vanished(struct idx *ix, uint64_t since, idx_vanished_fn fn, void *ud);
int64_t idx_count(struct idx *ix);

/* ---- The mailbox object (mailbox.c, mailbox_sync.c) ---- */

struct mailbox_msg;
struct mailbox {
    char *account_dir;
    char *name;
    char *dir;                 /* folder directory */
    struct idx *ix;
    uint32_t uidvalidity;      /* view */
    uint32_t uidnext;          /* view */
    uint64_t modseq;           /* view HIGHESTMODSEQ */
    struct mailbox_msg *msgs;  /* view, UID order */
    size_t n, cap;
    char *keywords[26];
    struct buf scratch;        /* paths, reused */
    uint64_t quota_limit;      /* bytes; 0 = COPY unchecked (mailbox_set_quota) */
};

/* Full rescan of new/ and cur/ into the index; skipped when the directory
 * mtimes did not change, unless force. rebuild: the index is empty; set
 * UIDVALIDITY etc. from dovecot-uidlist (whose files keep their UIDs) or
 * anew, all in the same transaction. */
int mbsync_scan(struct mailbox *mb, bool rebuild, bool force, const char **err);
/* Allocates the next MODSEQ inside a transaction. */
int mbsync_next_modseq(struct mailbox *mb, uint64_t *modseq);
/* Adds n to meta uidlist_stale (inside a transaction). */
int mbsync_uidlist_stale(struct mailbox *mb, int64_t n);
/* <dir>/<cur|new>/<base>[:<info>] into out. */
int mbsync_file_path(const struct mailbox *mb, const struct idx_row *r, struct buf *out);

#endif
