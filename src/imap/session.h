/* session.h: the IMAP server session as a sans-I/O state machine. Bytes
 * in (imap_session_input), reply bytes out (imap_session_out), and at most
 * one pending action that the I/O owner (session_io.c) performs before it
 * resumes the machine. No socket, timer or thread inside.
 *
 * Owner loop:
 *   s = imap_session_new(cfg, tls, wake, ud);   greeting is in the output
 *   on bytes:   imap_session_input(s, p, n)      (buffered while an action runs)
 *   then:       write and buf_consume() imap_session_out(s); look at
 *               imap_session_action(s):
 *     IMAP_ACT_LOGIN     store_login_async(imap_session_login_user/password),
 *                        then imap_session_resume_login(s, result)
 *     IMAP_ACT_WORK      run imap_session_work(s) on a worker thread, then
 *                        imap_session_resume_work(s) on the loop; when the
 *                        action is still WORK afterwards (a long FETCH), wait
 *                        until the output drained and run it again
 *     IMAP_ACT_STARTTLS  flush, handshake, imap_session_resume_starttls(s)
 *     IMAP_ACT_TURN      fetch credentials from the TURN socket, then
 *                        imap_session_resume_turn(s, line or NULL)
 *     IMAP_ACT_COMPRESS  flush the OK, then deflate output / inflate input
 *                        from here on; imap_session_resume(s)
 *     IMAP_ACT_CLOSE     flush and close; terminal
 *   wake(ud) is called when the machine wrote output outside of a call from
 *   the owner (an IDLE update from a store watcher).
 *
 * Threads, the rule: a worker run gets the session with the action
 * IMAP_ACT_WORK set by the loop and returns its outcome as a value
 * (imap_session_work's result); only the loop thread changes the action,
 * the input buffer, the mode and the watch, in imap_session_resume_work().
 * While IMAP_ACT_WORK is set, imap_session_input only buffers (nothing is
 * parsed or run), imap_session_shutdown/timeout only note, and store
 * watcher callbacks only note the change. The worker touches the command,
 * the selected mailbox and the output; the owner reads the output only
 * after the worker returned (uv's after_work orders the two).
 *
 * Slow work: SEARCH (whose cost grows with the mailbox and the keys) runs
 * on a separate pool of LIM_IMAP_SLOW_WORKERS threads, bounded per command
 * by LIM_IMAP_SEARCH_KEYS keys and LIM_IMAP_SEARCH_SCAN bytes scanned
 * (NO [LIMIT] beyond), and stops between messages when its client went
 * away (imap_session_cancel). Logins, SMTP, deliveries and the other IMAP
 * commands keep libuv's pool.
 *
 * Threads: commands that touch many files run in imap_session_work() on a
 * worker (SELECT, FETCH, STORE, SEARCH, EXPUNGE, CLOSE, COPY, MOVE, APPEND,
 * STATUS, LIST, CREATE/DELETE/RENAME, quota and metadata.json). Commands
 * without disk I/O, and the IDLE update (one SQLite read of the changes)
 * run on the loop. Store notifications caused by a command are queued by
 * the worker and sent from imap_session_resume_work() on the loop. */
#ifndef CM_IMAP_SESSION_H
#define CM_IMAP_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

struct config;
struct imap_session;

enum imap_action_kind {
    IMAP_ACT_NONE = 0,
    IMAP_ACT_LOGIN,
    IMAP_ACT_WORK,
    IMAP_ACT_STARTTLS,
    IMAP_ACT_TURN,
    IMAP_ACT_COMPRESS,
    IMAP_ACT_CLOSE,
};

/* tls: the transport is already encrypted (993, ALPN imap). */
struct imap_session *imap_session_new(const struct config *cfg, bool tls,
                                      void (*wake)(void *ud), void *ud);
void imap_session_free(struct imap_session *s);

void imap_session_input(struct imap_session *s, const char *p, size_t n);
struct buf *imap_session_out(struct imap_session *s);
enum imap_action_kind imap_session_action(const struct imap_session *s);
/* True while the owner should read from the peer. */
bool imap_session_want_read(const struct imap_session *s);
/* The timer the owner should arm now (ms): pre-login, autologout, or the
 * IDLE keepalive interval. */
unsigned imap_session_timeout_ms(const struct imap_session *s);
/* The timer fired: keepalive in IDLE, else BYE and IMAP_ACT_CLOSE. */
void imap_session_timeout(struct imap_session *s);
/* Server shutdown: BYE and IMAP_ACT_CLOSE (deferred while an action runs). */
void imap_session_shutdown(struct imap_session *s);
bool imap_session_idling(const struct imap_session *s);
/* Logged in (the owner's pre-login deadline no longer applies). */
bool imap_session_authenticated(const struct imap_session *s);
bool imap_session_compress_active(const struct imap_session *s);

const char *imap_session_login_user(const struct imap_session *s);
const char *imap_session_login_password(const struct imap_session *s);
/* result: enum store_login_result. Wipes the password. The owner answers a
 * failure only after core/authfail's delay; the LIM_AUTH_FAILS-th failure
 * of a connection ends it with BYE. */
void imap_session_resume_login(struct imap_session *s, int result);
/* What a worker run of the current command produced. */
enum imap_work_result {
    IMAP_WORK_DONE,  /* tagged reply written */
    IMAP_WORK_MORE,  /* a long FETCH: run again once the output drained */
    IMAP_WORK_ASYNC, /* wants the TURN credentials (IMAP_ACT_TURN) */
};
/* Worker thread: runs the command; changes none of the loop's fields. */
enum imap_work_result imap_session_work(struct imap_session *s);
/* Loop thread: applies the worker's result, then goes on with the input
 * that was buffered meanwhile. */
void imap_session_resume_work(struct imap_session *s, enum imap_work_result r);
/* The pending work is slow, client-controlled work (SEARCH): the owner runs
 * it on the separate slow pool (core/workpool.h), not on libuv's pool. */
bool imap_session_work_slow(const struct imap_session *s);
/* The client went away: running or queued work stops at its next check
 * (any thread; the session itself is freed only after the work returned). */
void imap_session_cancel(struct imap_session *s);
void imap_session_resume_starttls(struct imap_session *s);
void imap_session_resume_turn(struct imap_session *s, const char *line);
void imap_session_resume(struct imap_session *s);
/* Input that arrived during an action (after COMPRESS: still compressed). */
struct buf *imap_session_pending_input(struct imap_session *s);

/* Bytes the session holds while idle (struct, buffers, selected view),
 * for the memory benchmark. */
size_t imap_session_footprint(const struct imap_session *s);
/* A session that has sat in IDLE for a while lets go of its selected
 * folder's index connection (store's mailbox_suspend); the next change or
 * command reopens it. Returns true when the session is idle in IDLE. */
bool imap_session_hibernate(struct imap_session *s);

#endif
