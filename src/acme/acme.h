/* acme.h: the in-process ACME client (RFC 8555) of the ACME TLS mode.
 *
 * On the loop thread, over core/curlm.c: an account (ES256 key in
 * <state_dir>/acme/account.key, or acmetool's account key reused with
 * onlyReturnExisting), one order for <d>, mta-sts.<d> and www.<d>, each
 * authorisation answered by http-01 (the http port's
 * /.well-known/acme-challenge/ hook) or tls-alpn-01 (acme-tls/1 on the https
 * port) in the preference order of `acme_challenge` among what the server
 * offers, finalize with a CSR for a new P-256 key, the chain stored under
 * <state_dir>/acme/live/ (privkey 0600, fullchain) and swapped into the TLS
 * contexts (open connections keep theirs). Renewal at 2/3 of the lifetime
 * or 30 days before expiry, whichever is first; a failed order is retried
 * with backoff while the old certificate stays. State: the log and the
 * acme_* metrics. */
#ifndef CM_ACME_ACME_H
#define CM_ACME_ACME_H

#include <stddef.h>
#include <uv.h>

struct acme;
struct config;
struct tls_server;

/* Starts the client (ACME mode only; cfg may be freed afterwards). The
 * first order starts on the next loop turns when no certificate of ours is
 * served, else at its renewal time. 0, or -1 with a reason in err. */
int acme_start(struct acme **out, uv_loop_t *loop, const struct config *cfg,
               struct tls_server *ts, char *err, size_t errlen);
/* Ends requests and timers; the memory goes once libuv closed them. */
void acme_stop(struct acme *a);

#endif
