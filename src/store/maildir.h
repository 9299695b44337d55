/* maildir.h: the Maildir store as the rest of the server sees it (to be
 * folded into store/store.h): Dovecot-compatible file names, durable
 * delivery (tmp/ -> fsync -> new/ -> fsync dir, only then success), gzip
 * read/write (Dovecot `zlib_save = gz`), Maildir++ folders, the per-account
 * quota with Dovecot's refusal text and the 75 % -> 70 % oldest-first trim,
 * and the daily expiry pass (spec §2.7, §5.1, §5.2, §5.5).
 *
 * Everything here that touches the disk blocks: call it on a worker thread
 * (store_deliver_async and expire_daily do that for the loop). All
 * functions are thread-safe; the quota cache has its own lock. */
#ifndef CM_STORE_MAILDIR_H
#define CM_STORE_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
typedef struct uv_loop_s uv_loop_t;

/* ------------------------------------------------------------------ names */

#define MDNAME_MAX 255 /* longest file name we create or accept */

/* System flags, in the letter order of the ":2," suffix (ASCII order). */
enum md_flag {
    MDF_DRAFT = 1 << 0,    /* D */
    MDF_FLAGGED = 1 << 1,  /* F */
    MDF_PASSED = 1 << 2,   /* P */
    MDF_REPLIED = 1 << 3,  /* R */
    MDF_SEEN = 1 << 4,     /* S */
    MDF_TRASHED = 1 << 5,  /* T */
};

struct mdname {
    bool has_secs;    /* name starts with <digits>. */
    int64_t secs;     /* delivery time from the name */
    uint32_t usecs;   /* ".M<usecs>" after the seconds, 0 if absent */
    bool has_size;
    uint64_t size;    /* ,S=: uncompressed size (read by quota and expiry) */
    bool has_vsize;
    uint64_t vsize;   /* ,W=: size with CRLF line ends (IMAP RFC822.SIZE) */
    bool has_info;    /* ":2," present */
    unsigned flags;   /* enum md_flag bits */
    uint32_t keywords; /* bit i = keyword letter 'a'+i */
    size_t base_len;  /* length of the unique part before ":" */
};

/* Parses a maildir file name. Returns 0, or -1 when the name is empty,
 * longer than MDNAME_MAX, "." / "..", or has '/' or a control byte. */
int mdname_parse(const char *name, size_t len, struct mdname *out);
/* Writes `<secs>.M<usecs>P<pid>Q<q>.<host>,S=<size>,W=<vsize>` (host with
 * '/', ':' and ',' escaped as \057 \072 \054, as Dovecot does). Returns the
 * length, or -1 when it does not fit in cap. */
int mdname_make(char *out, size_t cap, int64_t secs, long usecs, long pid, unsigned long q,
                const char *host, uint64_t size, uint64_t vsize);
/* `name` with its ":2,<flags>" suffix replaced by the given flags (letters
 * DFPRST then keywords a-z). Returns the length or -1. */
int mdname_set_flags(char *out, size_t cap, const char *name, unsigned flags, uint32_t keywords);
/* A fresh unique base name for a message of size/vsize, now. */
int mdname_new(char *out, size_t cap, uint64_t size, uint64_t vsize);
/* Size with every bare LF counted as CRLF. */
uint64_t mdname_vsize(const void *msg, size_t len);

/* ------------------------------------------------------------------ gzip */

#define GZ_READ_MAX ((size_t)256 * 1024 * 1024) /* refuse to inflate beyond */

bool gz_is_gzip(const void *p, size_t n);
/* gzip-compresses p into out (appending). 0 or -1. */
int gz_compress(const void *p, size_t n, struct buf *out);
/* Appends the uncompressed bytes of a gzip stream (concatenated members are
 * read too). Returns 0, or -1 when corrupt, truncated or over max. */
int gz_decompress(const void *p, size_t n, struct buf *out, size_t max);
/* Reads a message file (relative to dirfd, or absolute) into out,
 * decompressing when it starts with the gzip magic. 0 or -1 (errno set). */
int gz_read_file(int dirfd, const char *path, struct buf *out, size_t max);

/* Streaming reader over an open fd: gives the message bytes whether the
 * file is plain or gzip. */
struct gz_reader;
struct gz_reader *gz_reader_open(int fd); /* takes the fd; NULL on ENOMEM */
/* Reads up to n bytes; returns the count, 0 at the end, -1 on error. */
long gz_reader_read(struct gz_reader *r, void *p, size_t n);
void gz_reader_close(struct gz_reader *r); /* closes the fd */

/* Folders (Maildir++ ".Name" directories) are in store/mailbox.h. */

/* ------------------------------------------------------------------ quota */

#define QUOTA_REASON "Quota exceeded (mailbox for user is full)"
#define QUOTA_TRIM_TRIGGER_PCT 75 /* Dovecot quota_warning = storage=75% */
#define QUOTA_TRIM_TARGET_PCT 70  /* chatmail-quota-expire target */
#define QUOTA_TRIM_PROTECT_SECS 86400 /* never trims mail younger than this */

struct quota_cache;
struct quota_cache *quota_cache_new(void);
void quota_cache_free(struct quota_cache *qc);
/* The process-wide cache that delivery, IMAP and expiry share, so that what
 * one removes the others see (created on first use; NULL if out of memory).
 * quota_cache_shared_free() releases it at exit. */
struct quota_cache *quota_cache_shared(void);
void quota_cache_shared_free(void);
/* Sum of S= sizes (st_size without S=) in cur/ and new/ of the account's
 * INBOX and every .Folder. Uncached. 0 or -1. */
int quota_scan(const char *account_dir, uint64_t *bytes);
/* Usage from the cache (one scan on first use). 0 or -1. */
int quota_usage(struct quota_cache *qc, const char *account_dir, uint64_t *bytes);
/* Adds size to the usage when usage + size <= limit (limit 0 = none).
 * Returns 0, 1 when over quota (nothing reserved), -1 on error. */
int quota_reserve(struct quota_cache *qc, const char *account_dir, uint64_t size,
                  uint64_t limit);
/* Adds delta (negative after deletes or a failed delivery). */
void quota_adjust(struct quota_cache *qc, const char *account_dir, int64_t delta);
void quota_forget(struct quota_cache *qc, const char *account_dir);
/* Called by store for every change it makes to an account's messages
 * outside delivery (expunge, COPY/MOVE, APPEND, undo): adjusts the shared
 * cache when it exists. _unknown drops the entry (next use scans), for
 * changes whose size store cannot tell (files gone behind our back, a
 * folder removed). */
void quota_changed(const char *account_dir, int64_t delta);
void quota_changed_unknown(const char *account_dir);
/* Quota in bytes from max_mailbox_size in MB, and the trim target:
 * floor(mb * 70 / 100) MB, as chatmail-quota-expire is called. */
uint64_t quota_limit_bytes(long max_mailbox_size_mb);
uint64_t quota_trim_target_bytes(long max_mailbox_size_mb);

struct quota_trim_result {
    unsigned removed;    /* messages removed (or, dry run, that would be) */
    uint64_t bytes;      /* their S= sizes */
};
/* §5.2 trim: files of the top-level cur/ and new/ named <digits>.<...>,S=<n>,
 * oldest first by (name time, size, name); removes while their S= sum is
 * over target, stopping at the first message younger than 24 h before
 * `now`. Deletes maildirsize when anything went and logs
 * "quota-expire: removed N message(s) from <mailbox-name>". dry_run removes
 * nothing. qc (may be NULL) is adjusted. 0 or -1. */
int quota_trim(struct quota_cache *qc, const char *account_dir, uint64_t target, int64_t now,
               bool dry_run, struct quota_trim_result *res);

/* The trim's choice, shared with expiry: sorts v oldest first and returns
 * how many of the first entries go. */
struct quota_trim_item {
    int64_t secs;    /* from the name */
    uint64_t size;   /* S= */
    const char *rel; /* "cur/<name>": the last sort key */
    size_t idx;      /* caller's */
};
size_t quota_trim_pick(struct quota_trim_item *v, size_t n, uint64_t target, int64_t now);

/* After a delivery: when the account's usage is over 75 % of the limit,
 * trims it to 70 % (one trim per account at a time). Returns the number of
 * messages removed, or -1. */
int quota_after_delivery(struct quota_cache *qc, const char *account_dir,
                         long max_mailbox_size_mb, int64_t now);

/* --------------------------------------------------------------- delivery */

enum store_status {
    STORE_OK = 0,
    STORE_EQUOTA,  /* refuse with QUOTA_REASON (552 5.2.2 / IMAP NO [OVERQUOTA]) */
    STORE_EIO,     /* temporary failure: 451 4.3.0; err holds errno */
};

struct store_rcpt {
    const char *dir;     /* Maildir to deliver into (account dir = INBOX) */
    const char *account; /* account dir charged for quota; NULL = dir */
    enum store_status status; /* out */
    int err;             /* out: errno when STORE_EIO */
    char name[MDNAME_MAX + 1]; /* out: file name in <dir>/new/ */
};

struct store_opts {
    bool compress;          /* write gzip (Dovecot zlib_save = gz) */
    bool no_fsync;          /* tests/benchmarks only: skip fsync */
    struct quota_cache *quota; /* NULL = no quota */
    long max_mailbox_size_mb;  /* 0 = unlimited */
};

/* One message to n recipients, synchronously. Each recipient gets one
 * durable copy (one written file hard-linked into the others on the same
 * filesystem). A recipient's status is STORE_OK only when its new/ entry
 * and the data are on disk. Missing cur/ new/ tmp/ are created. Returns
 * the number of recipients delivered. */
size_t store_deliver(const void *msg, size_t len, struct store_rcpt *r, size_t n,
                     const struct store_opts *o);

/* IMAP APPEND of msg into the open folder mb of account_dir, written like a
 * delivery (quota reserved, gzip when o->compress, tmp/ -> fsync -> cur/
 * when flags (MB_* bits) are given, else new/ -> fsync of that directory),
 * mtime = idate when > 0, then indexed: *uid_out and *modseq_out are set
 * (uid 0 when indexing failed: the durable file gets its UID on the next
 * sync). STORE_EQUOTA when over quota (nothing written), STORE_EIO with
 * *err_out = errno. Worker thread. */
struct mailbox;
enum store_status store_append(struct mailbox *mb, const char *account_dir, const void *msg,
                               size_t len, uint32_t flags, int64_t idate,
                               const struct store_opts *o, uint32_t *uid_out,
                               uint64_t *modseq_out, int *err_out);
/* The same with the message in the file fd (len bytes from offset 0), read
 * in chunks: not for o->compress (map the file and use store_append). */
enum store_status store_append_fd(struct mailbox *mb, const char *account_dir, int fd,
                                  size_t len, uint32_t flags, int64_t idate,
                                  const struct store_opts *o, uint32_t *uid_out,
                                  uint64_t *modseq_out, int *err_out);

/* Takes back the local copies that store_deliver made of a message that
 * will not be acknowledged after all (another part of the transaction
 * failed): every r[i] with status STORE_OK loses its new/ file and its
 * quota charge. Returns the number of files that could not be removed
 * (logged). Worker thread. */
size_t store_undeliver(const struct store_rcpt *r, size_t n, const struct store_opts *o);

/* Several messages at once: files are written and fsynced one by one, then
 * renamed, then each distinct new/ directory is fsynced once. */
struct store_job {
    const void *msg;
    size_t len;
    struct store_rcpt *r;
    size_t n;
};
void store_deliver_batch(struct store_job *jobs, size_t njobs, const struct store_opts *o);

/* Asynchronous delivery for the loop thread. msg and r stay owned by the
 * caller and must live until cb, which runs on the loop thread (where the
 * caller wakes IDLE sessions and answers 250). Jobs submitted while all
 * workers are busy are delivered together in one batch (shared dir fsyncs). */
#define STORE_ASYNC_MAX_PENDING 4096 /* queued jobs; beyond: -1 (answer 4xx) */
#define STORE_ASYNC_MAX_BATCH 64

struct store_async;
typedef void (*store_deliver_cb)(void *ud, struct store_rcpt *r, size_t n);
struct store_async *store_async_new(uv_loop_t *loop, const struct store_opts *o,
                                    unsigned max_workers);
int store_deliver_async(struct store_async *a, const void *msg, size_t len,
                        struct store_rcpt *r, size_t n, store_deliver_cb cb, void *ud);
/* Jobs per batch, 1..STORE_ASYNC_MAX_BATCH (default the maximum; 1 turns
 * batching off, for measurements). */
void store_async_set_max_batch(struct store_async *a, unsigned n);
/* Jobs queued or running. */
size_t store_async_inflight(const struct store_async *a);
/* Frees once nothing is in flight (callbacks still run before). */
void store_async_free(struct store_async *a);

/* ----------------------------------------------------------------- expiry */

#define EXPIRE_LARGE_BYTES 200000          /* §5.1 "large" message */
#define EXPIRE_TMP_SECS (36 * 3600)        /* stale tmp/ files (Dovecot) */
#define FSREPORT_NSIZES 7
#define FSREPORT_NDAYS 7

struct expire_params {
    const char *mailboxes_dir;
    long delete_mails_after;          /* days */
    long delete_large_after;          /* days */
    long delete_inactive_users_after; /* days */
    long max_mailbox_size_mb;         /* 0 = no quota trim */
    bool dry_run;                     /* deletes nothing, trim included */
    int64_t now;                      /* seconds; already minus --days */
    bool verbose;                     /* log each removal */
    struct quota_cache *quota;        /* adjusted for removals; may be NULL */
};

/* §5.5 fsreport gauges, of what is on disk after the pass. */
struct fsreport {
    uint64_t bytes_messages, bytes_extra;  /* total = sum */
    uint64_t msg_bytes[FSREPORT_NSIZES];   /* messages with size >= threshold */
    uint64_t msg_count[FSREPORT_NSIZES];
    uint64_t accounts_all, accounts_ci, accounts_user;
    uint64_t active[FSREPORT_NDAYS];       /* non-ci, last login within D days */
    int64_t computed_at;                   /* params.now */
};
extern const uint64_t fsreport_sizes[FSREPORT_NSIZES]; /* 0 ... 10485760 */
extern const int fsreport_days[FSREPORT_NDAYS];       /* 1 ... 150 */

struct expire_stats {
    uint64_t mailboxes, removed_mailboxes;
    uint64_t files, removed_files;
    double seconds;
    struct fsreport fs;
};

struct expire_run;
/* Opens mailboxes_dir. NULL with err on failure. */
struct expire_run *expire_begin(const struct expire_params *p, char *err, size_t errlen);
/* Processes up to max_mailboxes entries. 1 = more to do, 0 = done. */
int expire_step(struct expire_run *x, size_t max_mailboxes);
/* Final numbers; frees x. */
void expire_end(struct expire_run *x, struct expire_stats *out);
/* The whole pass at once. 0 or -1 (err). */
int expire_run_all(const struct expire_params *p, struct expire_stats *out, char *err,
                   size_t errlen);
/* "Removed X out of Y mailboxes and Z out of W files in existing mailboxes
 * in S seconds". Returns the length. */
int expire_summary(const struct expire_stats *s, char *out, size_t cap);
/* Prometheus text of the fsreport gauges (appended). 0 or -1. */
int fsreport_format(const struct fsreport *f, struct buf *out);

/* `chatmaild-server -c FILE expire [--remove|--dry-run] [--days N]`: argv
 * holds the words after "expire". Deletes only with --remove; prints the
 * summary on stdout either way; returns the process exit code. */
struct config;
int expire_cli(const struct config *cfg, int argc, char **argv);

/* Runs the pass every day at hh:mm local time on a worker, in batches,
 * publishing the gauges. Returns NULL on error. */
struct expire_daily;
struct expire_daily *expire_daily_start(uv_loop_t *loop, const struct config *cfg, int hour,
                                        int minute, struct quota_cache *qc);
/* Latest gauges (loop thread); false before the first pass finished. */
bool expire_daily_report(const struct expire_daily *d, struct fsreport *out);
/* Starts a pass now unless one is running (SIGUSR1); the daily time stays. */
void expire_daily_run_now(struct expire_daily *d);
/* Stops the timer; a running pass finishes and is freed afterwards. */
void expire_daily_stop(struct expire_daily *d);

#endif
