/* submission_int.h: private to submission.c (the session owner, for
 * submission and for port 25) and submit_message.c (the end of DATA,
 * handed to the acceptance pipeline): the per-connection state and
 * the module state made by smtp_init. Loop thread only, except where a
 * field says a worker reads it. */
#ifndef CM_SMTP_SUBMISSION_INT_H
#define CM_SMTP_SUBMISSION_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "core/authfail.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/spool.h"
#include "filter/filter.h"
#include "smtp/smtp.h"
#include "smtp/smtp_session.h"
#include "store/store.h"

struct config;
struct conn;

/* Module state (smtp_init). */
struct smtp_module {
    uv_loop_t *loop;
    const struct config *cfg;
    struct smtp_ratelimit *ratelimit;
    char *spool_dir, *queue_dir;
    uint64_t msg_counter; /* for queue ids of local-only messages */
};
extern struct smtp_module smtp_mod;

/* One message between MESSAGE_DONE and its final reply: what the
 * acceptance pipeline reads until its callback. */
struct submit_msg {
    struct accept_job *job;     /* NULL until started */
    const char **rcpts;         /* envelope recipients (the session's strings) */
    bool *local;                /* rcpts[i] is an existing local account */
};

/* One SMTP connection (submission, or MX on port 25 when mx is set).
 * Freed when the connection is gone AND no asynchronous work refers to it
 * any more (busy == 0). */
struct sub {
    struct conn *c;
    struct smtp_session *ss;
    bool mx;                       /* port 25: SMTP_MODE_MX, origin ACCEPT_MX */
    struct spool spool;
    struct store_login_req *login; /* pending AUTH, or NULL */
    unsigned busy;                 /* callbacks still to come */
    bool gone;                     /* closed() was called */
    bool acting;                   /* the pending action is being performed */
    bool transport;                /* ...by net.c (TLS handshake): hands off the timer */
    bool closing;                  /* conn_close was called: no more actions */
    bool shutdown;                 /* say 421 once the message in flight is answered */
    struct submit_msg *msg;
    /* absolute deadlines (uv_now ms; 0 = not running): the next complete
     * command after our last reply, and the end of the DATA/BDAT bytes */
    uint64_t cmd_deadline, txn_deadline;
    struct authfail_wait *authwait; /* a failed AUTH waiting to be answered */
    unsigned auth_fails;           /* on this connection */
    char auth_user[LIM_AUTH_FAIL_USER + 1]; /* for the failure's log line */
};

/* submission.c: drives the session after an asynchronous step finished
 * (writes output, performs the next action). Frees s when it is gone and
 * idle; returns false then. */
bool sub_continue(struct sub *s);
/* Reference counting for asynchronous work: sub_hold before starting it,
 * sub_release in its completion (returns false when s was freed). */
void sub_hold(struct sub *s);
bool sub_release(struct sub *s);

/* submit_message.c: handles SMTP_ACT_MESSAGE_DONE: hands the message to
 * the acceptance pipeline and resumes the session with the final reply. */
void submit_message_start(struct sub *s, const struct smtp_envelope *env);
/* The connection went away: the pipeline stores nothing if still in time. */
void submit_message_cancel(struct submit_msg *m);
/* Frees what a message holds (the session is gone or done). */
void submit_message_free(struct submit_msg *m);

#endif
