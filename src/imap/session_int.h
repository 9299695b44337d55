/* session_int.h: the IMAP session's private state and the helpers shared
 * by the command files (cmd_*.c). Not for use outside src/imap. */
#ifndef CM_IMAP_SESSION_INT_H
#define CM_IMAP_SESSION_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "imap/parser.h"
#include "imap/seqset.h"
#include "imap/session.h"

struct config;
struct mailbox;
struct store_watch;

#define IMAP_TAG_MAX 64
#define IMAP_NAME_MAX 32
#define IMAP_NOTES_MAX 8 /* distinct (kind, folder) notifications per command */

enum imap_state { IS_NOTAUTH, IS_AUTH, IS_SELECTED, IS_LOGOUT };
enum imap_mode { IM_CMD, IM_IDLE, IM_AUTH_CONT, IM_CLOSED };

/* What a command handler returns. */
enum imap_cmd_result {
    CMD_DONE,  /* tagged reply written */
    CMD_MORE,  /* worker commands: call again after the output drained */
    CMD_ASYNC, /* an action (LOGIN, TURN, ...) was set; resumed later */
};

struct imap_session;
struct imap_cmd;
typedef enum imap_cmd_result (*imap_cmd_fn)(struct imap_session *s, struct imap_cmd *c);

/* Command flags. */
#define CF_NOTAUTH  0x01 /* allowed before login */
#define CF_AUTH     0x02 /* needs login */
#define CF_SELECTED 0x04 /* needs a selected mailbox */
#define CF_WORKER   0x08 /* runs in imap_session_work() */
#define CF_NOEXPUNGE 0x10 /* no EXPUNGE updates before its tagged reply */
#define CF_SNAPSHOT 0x20  /* its untagged replies are the state: no updates after them */
#define CF_SLOW     0x40  /* client-controlled cost: runs on the slow pool */
#define CF_ANY (CF_NOTAUTH | CF_AUTH)

struct imap_cmd_def {
    const char *name;
    imap_cmd_fn fn;
    unsigned flags;
};

/* The running command. */
struct imap_cmd {
    char tag[IMAP_TAG_MAX];
    char name[IMAP_NAME_MAX];
    const struct imap_cmd_def *def;
    bool uid;                 /* UID FETCH/STORE/SEARCH/COPY/MOVE/EXPUNGE */
    struct imap_args args;
    const struct imap_arg *a; /* arguments after the name (and after UID X) */
    size_t n;
    void *state;              /* per-command progress (FETCH continuation) */
    void (*free_state)(void *state);
};

/* A store notification queued by a worker command. */
struct imap_note {
    uint8_t kind; /* enum store_event_kind */
    uint32_t uid, flags;
    uint64_t modseq;
    char *folder;
};

struct imap_session {
    const struct config *cfg;
    struct imap_reader rd;
    struct spool append_spool; /* the message of the APPEND being read (after login) */
    char *spool_dir;           /* <state_dir>/spool, where it spills */
    struct buf out;
    struct buf in; /* input that arrived while an action ran */
    struct imap_cmd *cur;
    char *user;        /* account address after login */
    char *account_dir;
    struct mailbox *mb;
    struct seqset recent;   /* UIDs of mb that are \Recent in this session */
    uint32_t recent_next;   /* mb's UIDNEXT when \Recent was last claimed */
    uint32_t kw_announced;  /* keyword slots the last FLAGS response named */
    struct store_watch *watch;
    char *watch_folder; /* folder the watch is for (loop side) */
    char *login_user, *login_pass;
    char *turn_pending; /* GETMETADATA reply prefix waiting for TURN */
    char **tokens;     /* device tokens this session set */
    size_t n_tokens;
    struct imap_note notes[IMAP_NOTES_MAX];
    uint8_t n_notes;
    uint8_t act;       /* enum imap_action_kind */
    uint8_t state;     /* enum imap_state */
    uint8_t mode;      /* enum imap_mode */
    uint8_t errors;
    uint8_t auth_fails; /* failed LOGIN/AUTHENTICATE (issue 16) */
    bool tls, readonly, condstore, qresync, compress, busy, shutdown_pending;
    bool watch_update; /* the selected folder changed: re-register the watch */
    bool changed;      /* a watcher reported a change while busy */
    atomic_bool cancelled; /* the client went away: work stops at its next check */
    void (*wake)(void *ud);
    void *wake_ud;
};

/* ---- output (imap_write.c) ---- */
void imap_out(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_out_raw(struct imap_session *s, const void *p, size_t n);
/* astring / nstring output: atom when safe, quoted when printable, else literal. */
void imap_write_astring(struct buf *b, const char *p, size_t n);
void imap_write_nstring(struct buf *b, const char *p, size_t n); /* NULL p = NIL */
void imap_write_quoted_or_literal(struct buf *b, const char *p, size_t n);
/* flags: MB_* bits, plus IMAP_FLAG_RECENT for \Recent. */
void imap_write_flags(struct buf *b, const struct mailbox *mb, uint32_t flags);
#define IMAP_FLAG_RECENT (1u << 31) /* not a stored flag (MB_ALL_FLAGS) */

/* ---- replies (session.c) ---- */
/* Untagged updates of the selected mailbox, then "<tag> <status> <text>". */
void imap_tagged(struct imap_session *s, struct imap_cmd *c, const char *status,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
enum imap_cmd_result imap_ok(struct imap_session *s, struct imap_cmd *c, const char *text);
enum imap_cmd_result imap_no(struct imap_session *s, struct imap_cmd *c, const char *text);
enum imap_cmd_result imap_bad(struct imap_session *s, struct imap_cmd *c, const char *reason);
/* Reports the changes since the last refresh: EXISTS, EXPUNGE/VANISHED,
 * FETCH FLAGS. expunges=false defers nothing: it is only called when
 * EXPUNGE responses are allowed. */
void imap_updates(struct imap_session *s);
void imap_capabilities(const struct imap_session *s, struct buf *b);
/* Queues a store notification for the loop (worker side). */
void imap_note(struct imap_session *s, int kind, const char *folder, uint32_t uid,
               uint32_t flags, uint64_t modseq);
void imap_close_mailbox(struct imap_session *s);
/* "INBOX" for any case of it, else name as is; NULL when not a string. */
const char *imap_mailbox_arg(const struct imap_arg *a);
/* Flag list or single flag to MB_* bits; -1 on an unknown system flag. */
int imap_parse_flags(struct imap_session *s, const struct imap_arg *a, size_t n, bool create,
                     uint32_t *flags);

/* ---- command families ---- */
enum imap_cmd_result imap_cmd_capability(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_noop(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_logout(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_id(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_enable(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_namespace(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_compress(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_starttls(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_login(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_authenticate(struct imap_session *s, struct imap_cmd *c);
void imap_auth_continue(struct imap_session *s, const char *line, size_t len);
enum imap_cmd_result imap_cmd_select(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_close(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_unselect(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_expunge(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_fetch(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_store(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_search(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_copy(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_append(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_list(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_status(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_create(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_delete(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_rename(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_getmetadata(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_setmetadata(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_getquotaroot(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_getquota(struct imap_session *s, struct imap_cmd *c);
enum imap_cmd_result imap_cmd_idle(struct imap_session *s, struct imap_cmd *c);
void imap_idle_done(struct imap_session *s, const char *line, size_t len);
/* Store watcher callback (loop thread). */
struct store_event;
void imap_idle_event(void *ud, const struct store_event *ev);
void imap_metadata_turn_done(struct imap_session *s, const char *line);

/* <mailboxes_dir>/<addr>, computed once (NULL on error). */
const char *imap_account_dir(struct imap_session *s);
/* Sequence set argument against the view ('*' = highest seq or UID). */
struct seqset;
int imap_parse_msgset(struct imap_session *s, const struct imap_arg *a, bool uid,
                      struct seqset *out);
/* ---- \Recent and keyword announcements (cmd_select.c) ---- */
/* Claims the UIDs no session has seen yet as \Recent here (read-only:
 * only notes them); after SELECT and whenever the view grew. */
void imap_recent_update(struct imap_session *s);
bool imap_recent(const struct imap_session *s, uint32_t uid);
size_t imap_recent_count(const struct imap_session *s);
/* flags of a message of the view for output (with IMAP_FLAG_RECENT). */
uint32_t imap_msg_flags(const struct imap_session *s, uint32_t uid, uint32_t flags);
/* Untagged FLAGS and PERMANENTFLAGS when the folder has keywords the last
 * FLAGS response did not name (RFC 3501 7.2.6). */
void imap_flags_update(struct imap_session *s);

/* Quota usage and limit in bytes of the logged-in account (worker). */
int imap_quota_usage(struct imap_session *s, uint64_t *used, uint64_t *limit);

#endif
