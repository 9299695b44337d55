/* smtp.h: the SMTP module's public face: session handlers for the
 * listeners that core/net.c dispatches to SMTP, the module's process
 * state (rate limiter, spool and queue directories) and the acceptance
 * pipeline every arriving message goes through. */
#ifndef CM_SMTP_SMTP_H
#define CM_SMTP_SMTP_H

#include "core/net.h"

struct config;

/* Submission (587 STARTTLS, 465, https port with ALPN "smtp") and MX (25). */
extern const struct session_ops smtp_submission_ops;
extern const struct session_ops smtp_mx_ops;

/* Creates <state_dir>/spool and <state_dir>/queue, the shared state the
 * SMTP sessions use and the DKIM resolver (core/dns with `dns_servers`,
 * key cache) of the pipeline. Call once before serving, on the loop thread;
 * cfg must outlive the module. Returns 0, or -1 with a reason in err. */
int smtp_init(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen);
/* Stops the DNS resolver of DKIM (its handles would keep the loop
 * alive); key lookups still pending end as temporary failures (451). Call
 * on the loop thread when the listeners are down. */
void smtp_stop(void);
/* Frees that state; call after the loop has finished (nothing in flight). */
void smtp_free(void);
/* `chatmaild-server -c FILE queue [list|flush]`: lists the outbound queue
 * from its files, or asks the running server to retry everything now.
 * Returns the exit code. */
int smtp_queue_cli(const struct config *cfg, int argc, char **argv);
/* <state_dir>/spool (made by smtp_init), where receivers spill large
 * messages (core/spool.h); NULL before smtp_init. */
const char *smtp_spool_dir(void);

/* ------------------------------------------------------------------
 * The acceptance pipeline (accept.c): what happens to a message after the
 * final dot, whichever way it arrived, independent of any session. A
 * session parses, spools, calls accept_message() and turns the result -
 * one outcome per recipient - into replies.
 *
 *   worker  the origin's checks: outgoing rules of src/filter for
 *           submission, incoming rules for MX and /mxdeliv;
 *   (MX and /mxdeliv) the DKIM stage: the message hashed on a worker, the
 *           key records fetched on the loop (c-ares, cached), the verdict
 *           on a worker: a valid signature with d= the From domain, else
 *           "554 5.7.1 No DKIM signature found" / "554 5.7.1 No valid DKIM
 *           signature found"; a key lookup that failed temporarily gives
 *           "451 4.7.5 ..."; address-literal From domains are exempt. It
 *           is built in: a caller only passes the origin;
 *   worker  every check registered for the origin (accept_add_check:
 *           DKIM signing plugs in there); then the privacy
 *           cleanup (submission: authclean for every copy; all origins:
 *           the delivery cleanup for the Maildir copy)
 *   loop    log lines and counters of the decision
 *   store   local recipients: durable delivery (store_deliver_async);
 *           remote recipients: the durable queue; both at once
 *   loop    watchers (IMAP IDLE, push) told of each delivered copy, then
 *           the callback with the result
 * Policy all_or_nothing: when any recipient fails, the copies made for the
 * others are taken back (store_undeliver, queue file removed) before the
 * callback, and they report ACCEPT_WITHDRAWN - except, with report_failed
 * (submission), permanent per-recipient failures next to stored copies:
 * those are reported to the sender by a delivery status notification.
 * ------------------------------------------------------------------ */
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "filter/filter.h"

#define ACCEPT_QUEUE_ID_LEN 40 /* = QUEUE_ID_LEN of the queue */

enum accept_origin {
    ACCEPT_SUBMISSION = 0, /* authenticated user on 465/587/ALPN smtp */
    ACCEPT_MX,             /* another MTA on port 25 */
    ACCEPT_MXDELIV,        /* another relay by HTTPS POST /mxdeliv */
    ACCEPT_ORIGINS
};
#define ACCEPT_ORIGIN_BIT(o) (1u << (o))

enum accept_rcpt_status {
    ACCEPT_NOT_TRIED = 0, /* the message was refused or cancelled as a whole */
    ACCEPT_DELIVERED,     /* durably in the local mailbox */
    ACCEPT_QUEUED,        /* durably in the outbound queue */
    ACCEPT_OVERQUOTA,     /* local mailbox full (permanent: 552 5.2.2) */
    ACCEPT_TEMPFAIL,      /* I/O or resources (451 4.3.0) */
    ACCEPT_WITHDRAWN,     /* was stored, taken back by all_or_nothing */
};

struct accept_rcpt_result {
    const char *addr;             /* as in the envelope */
    enum accept_rcpt_status status;
    int err;                      /* errno for ACCEPT_TEMPFAIL, 0 otherwise */
};

struct accept_result {
    int code;                      /* 0: see rcpts; else the whole message was
                                    * refused (500, 523, 451, 554 ...) */
    char reply[FILTER_REPLY_MAX];  /* that refusal's reply line */
    bool cancelled;                /* accept_cancel() came first: nothing stored */
    struct accept_rcpt_result *rcpts; /* envelope order (duplicates share) */
    size_t n_rcpts;
    bool queued;                   /* a queue file holds the remote recipients */
    bool reported;                 /* report_failed: the failed recipients are
                                    * in a report in the sender's INBOX, the
                                    * others stored */
    char queue_id[ACCEPT_QUEUE_ID_LEN]; /* its id */
};

struct accept_msg {
    enum accept_origin origin;
    const char *data;              /* unstuffed, CRLF; valid until the callback */
    size_t len;
    const char *mail_from;         /* "" for <> */
    const char *const *rcpts;      /* valid until the callback */
    const bool *local;             /* per recipient: an existing local account */
    size_t n_rcpts;
    bool all_or_nothing;
    /* with all_or_nothing: when some recipients fail permanently (a full
     * mailbox) and the others were stored, the others keep their copies
     * and a delivery status notification for the failed ones goes into
     * the sender's INBOX (mail_from is a local account: submission);
     * res->reported then says so */
    bool report_failed;
};

/* Runs on the loop thread; res and its strings live until it returns. */
typedef void (*accept_cb)(void *ud, const struct accept_result *res);
struct accept_job;

/* Starts the pipeline; cb is called exactly once, later (never from inside
 * this call). NULL when memory ran out (cb will not be called). */
struct accept_job *accept_message(const struct accept_msg *m, accept_cb cb, void *ud);
/* The sender went away: if nothing was stored yet, nothing will be; cb
 * still comes (with cancelled set when the cancel was in time). */
void accept_cancel(struct accept_job *j);

/* A check added to the pipeline for some origins (ACCEPT_ORIGIN_BIT mask),
 * run on a worker after the filter accepted, in the order added. It sees
 * the message as received and the filter's decision; it may refuse the
 * message (set code and reply, e.g. 554 for a DKIM failure) and may add
 * header lines (CRLF-terminated) to `prepend`, which go in front of the
 * copy queued for remote recipients (a DKIM-Signature). Returns 0, or -1
 * on an internal error (the message gets 451). Register before serving. */
struct accept_check {
    enum accept_origin origin;
    const char *data;
    size_t len;
    const char *mail_from;
    const char *const *rcpts;
    size_t n_rcpts;
    const struct filter_result *filter;
    struct buf *prepend;
    int code;                      /* out: 0 = pass */
    char reply[FILTER_REPLY_MAX];  /* out */
};
typedef int (*accept_check_fn)(void *ud, struct accept_check *c);
#define ACCEPT_MAX_CHECKS 8
/* 0, or -1 when ACCEPT_MAX_CHECKS are registered already. */
int accept_add_check(unsigned origins, accept_check_fn fn, void *ud);

#endif
