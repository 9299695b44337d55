/* mailbox.h: one Maildir folder as IMAP sees it (UIDs, flags, MODSEQ), the
 * folder list of an account, and the per-account change registry.
 *
 * The Maildir is the truth, the index is a cache.
 *  - Index: <folder dir>/chatmaild-index.sqlite (+ -wal/-shm), next to
 *    Dovecot's own dovecot-uidlist, outside cur/ new/ tmp/. Living in the
 *    maildir means account deletion/expiry removes it, a relay moves as one
 *    directory tree, and Dovecot ignores the unknown file. WAL mode,
 *    synchronous=NORMAL: durability comes from the Maildir files.
 *  - A missing, truncated or garbage index is deleted and rebuilt on open.
 *    UIDs are then taken from dovecot-uidlist (which we keep writing in
 *    Dovecot's version 3 format, lazily: on close and every
 *    MAILBOX_UIDLIST_BATCH changes), so UIDVALIDITY stays. Only when neither
 *    exists does the folder get a new UIDVALIDITY (strictly larger than any
 *    earlier one of the account, via <account>/dovecot-uidvalidity).
 *  - A dovecot-uidlist newer than the index (other UIDVALIDITY, or higher
 *    next UID: Dovecot ran on this tree after us) wins: the index is rebuilt
 *    from it. This is also the takeover path from an existing Dovecot relay.
 *  - Files added, renamed or removed behind our back are found on the next
 *    mailbox_sync() (cheap when the mtimes of new/ and cur/ did not change).
 *  - Files stay where they are: new/ is not moved to cur/ on SELECT; a flag
 *    change renames the file to cur/<base>:2,<flags>.
 *
 * Threads: a struct mailbox is used by one thread at a time (any thread:
 * the functions that do file I/O - open, sync, set_flags, expunge, append,
 * copy - may run on a libuv worker). Several mailbox objects may be open on
 * the same folder at once, in any threads; they share state through the
 * SQLite file (transactions, busy timeout). The watch registry (store_watch,
 * store_unwatch, store_notify*) belongs to the loop thread only.
 *
 * Memory: a selected folder costs 32 bytes per message in the view; file
 * names stay in SQLite and are fetched on demand (mailbox_msg_path). */
#ifndef CM_STORE_MAILBOX_H
#define CM_STORE_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Message flags: IMAP system flags, then keywords 0..25 (Maildir letters
 * a..z, names in the folder's dovecot-keywords file). */
#define MB_SEEN      (1u << 0) /* S */
#define MB_ANSWERED  (1u << 1) /* R */
#define MB_FLAGGED   (1u << 2) /* F */
#define MB_DELETED   (1u << 3) /* T */
#define MB_DRAFT     (1u << 4) /* D */
#define MB_SYSTEM_FLAGS 0x1fu
#define MB_KEYWORD(i) (1u << (5 + (i)))  /* i in 0..25 */
#define MB_KEYWORDS_MAX 26
#define MB_ALL_FLAGS 0x7fffffffu

#define MAILBOX_INDEX_NAME "chatmaild-index.sqlite"
#define MAILBOX_UIDLIST_BATCH 64 /* uidlist rewritten after this many changes */
#define MAILBOX_VANISHED_MAX 10000 /* expunged UIDs remembered for QRESYNC */
#define MAILBOX_NAME_MAX 200 /* bytes of an IMAP folder name */

struct mailbox;

/* One message of the view, in UID order. */
struct mailbox_msg {
    uint32_t uid;
    uint32_t flags;
    uint64_t modseq;
    uint32_t size;  /* S= (uncompressed octets), else the file size */
    uint32_t vsize; /* W= (RFC822.SIZE, CRLF), else size */
    uint32_t idate; /* internal date, unix seconds (name timestamp / mtime) */
    uint32_t pad_;
};

/* Opens the folder `name` ("INBOX" or a Maildir++ name such as "Sent",
 * "A.B") of the account directory, creating cur/ new/ tmp/ and the index
 * if missing (the folder itself must exist, except INBOX), and syncs with
 * the directory. Returns 0, or -1 with *err set
 * (a static string). */
int mailbox_open(const char *account_dir, const char *name, struct mailbox **out,
                 const char **err);
/* Writes dovecot-uidlist if it is behind, closes the index, frees. */
void mailbox_close(struct mailbox *mb);
/* Lets go of everything the view does not need - the SQLite connection
 * (~100-200 KiB with its caches and WAL map) and scratch buffers - until the
 * next call that needs them, which reopens the index. For idle sessions:
 * an IDLE connection then costs its view (32 bytes a message) only. */
void mailbox_suspend(struct mailbox *mb);

/* Scans new/ and cur/ (skipped when both directory mtimes are unchanged
 * and force is false) and brings the index up to date: new files get UIDs
 * in delivery order, vanished files are expunged, renamed files update
 * their flags. The view is NOT changed: call mailbox_refresh(). */
int mailbox_sync(struct mailbox *mb, bool force, const char **err);

enum mailbox_change_kind { MB_CHANGE_EXPUNGE, MB_CHANGE_FLAGS, MB_CHANGE_APPEND };
struct mailbox_change {
    enum mailbox_change_kind kind;
    uint32_t uid;
    uint32_t seq;   /* 1-based; for EXPUNGE the number before removal */
    uint32_t flags;
    uint64_t modseq;
};
typedef void (*mailbox_change_fn)(void *ud, const struct mailbox_change *ch);
/* Applies the index changes made since the last refresh (by this or any
 * other mailbox object of the folder) to the view, reporting each one:
 * expunges first (in UID order), then flag changes, then appends. */
int mailbox_refresh(struct mailbox *mb, mailbox_change_fn fn, void *ud, const char **err);

/* The view. */
size_t mailbox_count(const struct mailbox *mb);
const struct mailbox_msg *mailbox_msgs(const struct mailbox *mb); /* UID order */
const struct mailbox_msg *mailbox_find(const struct mailbox *mb, uint32_t uid,
                                       uint32_t *seq_out);
uint32_t mailbox_uidvalidity(const struct mailbox *mb);
uint32_t mailbox_uidnext(const struct mailbox *mb);
uint64_t mailbox_highestmodseq(const struct mailbox *mb);
const char *mailbox_name(const struct mailbox *mb);

/* Full path of the message file into `out` (reset first). When the indexed
 * file is gone it resyncs once and retries. 0, or -1 (expunged / error). */
int mailbox_msg_path(struct mailbox *mb, uint32_t uid, struct buf *out);

enum mailbox_flag_op { MB_FLAGS_SET, MB_FLAGS_ADD, MB_FLAGS_REMOVE };
/* Changes the flags of uid (renaming the file into cur/ with :2,<flags>)
 * and bumps MODSEQ when they change. unchangedsince (CONDSTORE, 0 = none):
 * when the message's modseq is higher nothing happens and 1 is returned.
 * Returns 0 with *flags_out and *modseq_out (current values, also when nothing
 * changed), 1 (UNCHANGEDSINCE failed), or -1 (no such message / error). The
 * view is updated; mailbox_refresh() will not report this change again. */
int mailbox_set_flags(struct mailbox *mb, uint32_t uid, enum mailbox_flag_op op,
                      uint32_t flags, uint64_t unchangedsince, uint32_t *flags_out,
                      uint64_t *modseq_out, const char **err);

/* Unlinks the message file and records the uid as vanished with a new
 * MODSEQ. The view keeps the message until mailbox_refresh() reports it.
 * Returns 0 (*modseq_out set), or -1 (no such message / error). */
int mailbox_expunge(struct mailbox *mb, uint32_t uid, uint64_t *modseq_out,
                    const char **err);

/* Fast path after a delivery or APPEND: `fname` was just renamed into
 * new/ (in_cur false) or cur/ of this folder. It gets the next UID without
 * a rescan. *uid_out and *modseq_out are set. The view is not changed. */
int mailbox_append_file(struct mailbox *mb, bool in_cur, const char *fname,
                        uint32_t *uid_out, uint64_t *modseq_out, const char **err);

/* COPY/MOVE: hard-links (or copies) the message into dst's cur/ under a new
 * Dovecot-style name with the same flags, sizes and mtime (internal date),
 * and indexes it there. Move expunges the source afterwards. *dst_uid set
 * on success. A copy counts against the account's quota (the shared quota
 * cache): with a limit set on dst (mailbox_set_quota) it is refused with
 * MAILBOX_EQUOTA (*err = QUOTA_REASON, nothing written) when it would take
 * the account over it; a MOVE within one account adds nothing and is not
 * refused. Otherwise -1 on error. */
#define MAILBOX_EQUOTA (-2)
void mailbox_set_quota(struct mailbox *mb, uint64_t limit_bytes);
int mailbox_copy(struct mailbox *src, uint32_t uid, struct mailbox *dst,
                 uint32_t *dst_uid, const char **err);
int mailbox_move(struct mailbox *src, uint32_t uid, struct mailbox *dst,
                 uint32_t *dst_uid, const char **err);

/* Expunged UIDs with modseq > since, ascending, into a malloc'd array
 * (*uids, caller frees). *complete is false when the bounded history does
 * not reach back to `since` (the caller must then treat every UID it knows
 * and we do not list as vanished). */
int mailbox_vanished_since(struct mailbox *mb, uint64_t since, uint32_t **uids,
                           size_t *n, bool *complete, const char **err);

/* \Recent (RFC 3501 2.3.2): a message is recent in the first session that
 * sees it. The index keeps a watermark (meta "recent_uid"): UIDs at or above
 * it are not yet claimed. *first is the watermark; with claim, the UIDs
 * from it up to the view's UIDNEXT become this caller's (the watermark
 * moves to UIDNEXT). A lost watermark makes nothing recent; a rebuilt
 * index starts it at dovecot-uidlist's next UID. 0, or -1 with *err. */
int mailbox_recent(struct mailbox *mb, bool claim, uint32_t *first, const char **err);

/* Keywords: index of `name` (0..25) in the folder's dovecot-keywords,
 * adding it there when create is true and there is room; -1 otherwise. */
int mailbox_keyword_index(struct mailbox *mb, const char *name, bool create);
const char *mailbox_keyword_name(const struct mailbox *mb, int idx); /* or NULL */

/* Writes dovecot-uidlist now if the index has changes it lacks. */
int mailbox_flush_uidlist(struct mailbox *mb, const char **err);

/* ---- Folders of an account (Maildir++: "INBOX" is the account dir,
 * "A.B" is <account>/.A.B; '.' is the hierarchy separator). ---- */

/* A valid name: 1..MAILBOX_NAME_MAX bytes, no '/', no control bytes, no
 * empty hierarchy level, does not start with '~'. "INBOX" is any case. */
bool folder_name_valid(const char *name);
/* <account>/ for INBOX, <account>/.<name> otherwise, into out. */
int folder_path(const char *account_dir, const char *name, struct buf *out);
/* 0, or -1 with *err (exists / invalid / I/O). */
int folder_create(const char *account_dir, const char *name, const char **err);
/* Removes the folder directory (not its children, not INBOX). */
int folder_delete(const char *account_dir, const char *name, const char **err);
/* Renames a folder and its children (A -> B moves A.x to B.x). */
int folder_rename(const char *account_dir, const char *from, const char *to,
                  const char **err);
/* All folders, "INBOX" first then sorted; a malloc'd NULL-terminated array
 * of malloc'd strings (free with folder_list_free). */
int folder_list(const char *account_dir, char ***names, const char **err);
void folder_list_free(char **names);
/* The `subscriptions` file, in Dovecot's version 2 format. */
int folder_subscribe(const char *account_dir, const char *name, bool on, const char **err);
int folder_subscriptions(const char *account_dir, char ***names, const char **err);

/* ---- Change registry (loop thread only) ---- */

enum store_event_kind { STORE_EV_APPEND, STORE_EV_FLAGS, STORE_EV_EXPUNGE };
struct store_watch;
struct store_event {
    enum store_event_kind kind;
    const char *account;
    const char *folder;
    uint32_t uid;
    uint32_t flags;   /* APPEND, FLAGS */
    uint64_t modseq;
    const struct store_watch *origin; /* the watcher that caused it, or NULL */
};
typedef void (*store_watch_fn)(void *ud, const struct store_event *ev);

/* Registers cb for changes of `folder` of `account` (folder NULL = every
 * folder). Returns a handle, or NULL when out of memory. */
struct store_watch *store_watch(const char *account, const char *folder,
                                store_watch_fn cb, void *ud);
/* Safe at any time, also from inside a callback (any watcher). */
void store_unwatch(struct store_watch *w);
/* Calls every matching watcher synchronously, before returning. Watchers
 * added during a notification are not called for it; removed ones are not
 * called after their removal. */
void store_notify(const struct store_event *ev);
void store_notify_append(const char *account, const char *folder, uint32_t uid,
                         uint32_t flags, uint64_t modseq, const struct store_watch *origin);
void store_notify_flags(const char *account, const char *folder, uint32_t uid,
                        uint32_t flags, uint64_t modseq, const struct store_watch *origin);
void store_notify_expunge(const char *account, const char *folder, uint32_t uid,
                          uint64_t modseq, const struct store_watch *origin);
/* Number of live watchers (for tests and metrics). */
size_t store_watch_count(void);

#endif
