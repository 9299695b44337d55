/* mxdeliv.h: private to src/http: POST /mxdeliv, mail from another relay
 * over HTTPS (federation facts §2).
 *
 * Sans-I/O part (mxdeliv_parse.c), what the fuzzer drives:
 *   mxdeliv_envelope()  X-MAIL-FROM / X-MAIL-TO headers -> envelope, or the
 *                       HTTP status and SMTP reply line that refuse it;
 *   mxdeliv_body_*      the body as it streams in: size limit, CRLF-only
 *                       lines, bounded line length, a final CRLF added.
 * I/O part (mxdeliv.c): the request's spool, the recipient existence check
 * on a worker, the acceptance pipeline (origin ACCEPT_MXDELIV), the answer:
 *   200 "250 OK"; 400 + the SMTP line of a refusal; 413 "552 5.3.4 ...";
 *   503 + the 4xx line of a temporary failure. One unknown recipient
 *   refuses the whole request (nothing is delivered). */
#ifndef CM_HTTP_MXDELIV_H
#define CM_HTTP_MXDELIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter/filter.h"
#include "http/request.h"

struct config;

#define MXDELIV_ADDR_MAX 256 /* RFC 5321 path limit, brackets excluded */

/* True for "/mxdeliv" and "/mxdeliv/" (query ignored). */
bool mxdeliv_path(const struct http_request *q);

struct mxdeliv_env {
    int status;                    /* 0, or the HTTP status refusing it (400) */
    char reply[FILTER_REPLY_MAX];  /* with status: the SMTP reply line */
    char mail_from[MXDELIV_ADDR_MAX + 1]; /* "" = null sender */
    char (*rcpt)[MXDELIV_ADDR_MAX + 1];   /* as sent (the pipeline normalises) */
    char (*account)[MXDELIV_ADDR_MAX + 1]; /* the local account (user+tag -> user) */
    size_t n_rcpts;
};

/* Reads the envelope from q's headers for a relay whose domain is
 * cfg->mail_domain: X-MAIL-FROM absent or empty = null sender, one
 * X-MAIL-TO per recipient (1 to LIM_SMTP_RCPT), each @mail_domain.
 * Returns env->status: 0, 400 (reply set), or 503 (out of memory). */
int mxdeliv_envelope(const struct http_request *q, const struct config *cfg,
                     struct mxdeliv_env *env);
void mxdeliv_env_free(struct mxdeliv_env *env);

/* The body decoder. sink gets the accepted bytes; it is not called again
 * after an error or once max is crossed (input is still counted, so the
 * answer can wait for the end of the body). */
struct mxdeliv_body {
    uint64_t size, max;
    size_t line_len;
    bool cr;            /* the last byte was a CR */
    bool too_big, bare_lf, bare_cr, line_too_long, sink_failed;
    int (*sink)(void *ctx, const char *p, size_t n);
    void *ctx;
};
void mxdeliv_body_init(struct mxdeliv_body *b, uint64_t max,
                       int (*sink)(void *ctx, const char *p, size_t n), void *ctx);
void mxdeliv_body_feed(struct mxdeliv_body *b, const char *p, size_t n);
/* The end of the body: a missing final CRLF is added. Then 0 (the message
 * may go on), or the HTTP status with the SMTP line in reply: 413 too big,
 * 400 framing, 503 spool failure. */
int mxdeliv_body_finish(struct mxdeliv_body *b, char *reply, size_t cap);

/* ------------------------------------------------------------ mxdeliv.c */

struct mxdeliv;
/* The answer: status and body text (a line without CRLF). */
typedef void (*mxdeliv_done_fn)(void *ud, int status, const char *text);

/* Starts a request whose headers are complete (POST /mxdeliv): reads the
 * envelope and, when it is good, checks on a worker that each recipient
 * has an account while the body streams in. NULL when memory ran out. */
struct mxdeliv *mxdeliv_start(const struct config *cfg, const struct http_request *q);
/* The reader's body sink (struct mxdeliv * as ctx). */
int mxdeliv_sink(void *m, const char *p, size_t n);
/* True when the client asked for 100-continue and the request can still
 * succeed (an early refusal is answered at the end of the body). */
bool mxdeliv_want_continue(const struct mxdeliv *m, const struct http_request *q);
/* The body is complete: done is called once with the answer, maybe before
 * this returns. */
void mxdeliv_finish(struct mxdeliv *m, mxdeliv_done_fn done, void *ud);
/* The connection is gone or the request is over: done will not be called;
 * a message in the pipeline is cancelled if still in time. m is freed as
 * soon as nothing refers to it. */
void mxdeliv_release(struct mxdeliv *m);
/* Counts one answered /mxdeliv request by status (metrics). */
void mxdeliv_count(int status);

#endif
