/* smtpc.h: the outbound SMTP client: one transaction (all recipients of
 * one message for one destination) per delivery, to one MX host; a
 * connection whose transaction ended healthy stays open for a few seconds
 * and carries the next delivery to the same host, port and TLS mode
 * (smtpc.c has the bounds).
 *
 * TLS (spec federation-push-acme.md §3): STARTTLS is required and the
 * certificate verified against the system roots plus tls_ca_file
 * (SMTPC_TLS_VERIFY); for `_`-prefixed domains and IP literals any
 * certificate is accepted, but STARTTLS is still required
 * (SMTPC_TLS_ANY_CERT); for the smtp_plaintext_domains the session uses
 * STARTTLS when offered, without verification, and plaintext otherwise
 * (SMTPC_TLS_PLAIN_OK). PIPELINING when offered.
 *
 * The queue runner decides the mode, resolves the MX and retries; this
 * layer only reports what the server said. */
#ifndef CM_SMTP_SMTPC_H
#define CM_SMTP_SMTPC_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "smtp/smtpc_proto.h"
#include "smtp/smtpc_reply.h"

enum smtpc_tls { SMTPC_TLS_VERIFY, SMTPC_TLS_ANY_CERT, SMTPC_TLS_PLAIN_OK };

struct smtpc_job {
    const char *host;               /* MX host name: SNI, certificate name, logs */
    struct sockaddr_storage addr;   /* with port (25 in production; tests use others) */
    enum smtpc_tls tls;             /* PLAIN_OK: STARTTLS when offered, plaintext when not */
    const char *helo;               /* mail_domain */
    const char *mail_from;          /* "" = null sender */
    const char *const *rcpts;
    size_t n_rcpts;
    const char *msg;                /* the whole message, CRLF lines, already DKIM-signed */
    size_t len;
    unsigned connect_timeout_ms, io_timeout_ms; /* 0: 30 s and 300 s */
};

/* struct smtpc_reply (smtpc_reply.h): { int code; char enh[16]; char text[256]; } */

struct smtpc_result {
    /* SMTPC_OK (0): the transaction ran and rcpt[] says each outcome (the
     * RCPT reply when it failed, else the reply to the end of data).
     * Otherwise no recipient got a final answer: SMTPC_E_CONNECT, _TLS
     * (handshake/verification failed or STARTTLS missing when required),
     * _IO, _TIMEOUT, _PROTO (garbled replies), _REFUSED (greeting, EHLO or
     * MAIL refused, or 421 before MAIL was accepted: `session` holds that
     * reply). */
    int status;
    const char *why;                /* static text for logs */
    struct smtpc_reply session;     /* code 0 when there is none */
    struct smtpc_reply *rcpt;       /* n_rcpts entries, valid when status == 0 */
    bool tls;                       /* the session ran over TLS */
    bool tls_resumed;               /* ... resuming an earlier TLS session to host */
    bool reused;                    /* ran on a connection an earlier delivery opened */
};

typedef void (*smtpc_cb)(void *ud, const struct smtpc_result *r);

struct smtpc_client; /* per process: the TLS client context */

/* ca_file: extra trust anchors (tls_ca_file), or NULL. 0 or -1 with err. */
int smtpc_client_new(struct smtpc_client **out, uv_loop_t *loop, const char *ca_file, char *err,
                     size_t errlen);
/* Stops what is in flight (as smtpc_client_stop) and frees the client once
 * the last connection has closed. */
void smtpc_client_free(struct smtpc_client *c);
/* Starts one delivery. Returns 0: cb runs exactly once, on the loop thread,
 * never before this returns; the job's strings and message stay valid until
 * then. Returns -1 (no cb) for a job that cannot be sent (no recipients, an
 * address or helo with control characters, spaces or angle brackets, an
 * address family other than IPv4/IPv6), out of memory, or a stopped
 * client. */
int smtpc_deliver(struct smtpc_client *c, const struct smtpc_job *job, smtpc_cb cb, void *ud);
/* Cancels in-flight deliveries: their cb runs with SMTPC_E_IO "stopping". */
void smtpc_client_stop(struct smtpc_client *c);
/* Deliveries whose cb has not run yet. */
unsigned smtpc_in_flight(const struct smtpc_client *c);
/* Connections kept open for the next delivery to their host. */
unsigned smtpc_idle_count(const struct smtpc_client *c);
/* "ok", "connect", "tls", "io", "timeout", "proto", "refused" */
const char *smtpc_status_name(int status);

#endif
