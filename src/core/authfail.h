/* authfail.h: failed authentications (IMAP LOGIN/AUTHENTICATE, SMTP AUTH).
 *
 * Each failure is logged as exactly one line, for fail2ban:
 *   auth failed: proto=<imap|smtp> ip=<client address> user=<address>
 * at info level, the user as the session normalised it (characters outside
 * letters, digits and "@._+-" become '?', at most LIM_AUTH_FAIL_USER
 * bytes); never the password. The failure is answered only after a delay
 * (LIM_AUTH_FAIL_DELAY_MS, like Dovecot), on a loop timer, so no worker is
 * held; an address that fails more often than LIM_AUTH_FAIL_BURST at once
 * and then one per LIM_AUTH_FAIL_INTERVAL_MS (counted across all its
 * connections, in a GCRA table) waits LIM_AUTH_FAIL_PENALTY_MS instead.
 * Sessions close the connection after LIM_AUTH_FAILS failures. All calls
 * run on the loop thread. */
#ifndef CM_CORE_AUTHFAIL_H
#define CM_CORE_AUTHFAIL_H

struct authfail_wait;

/* Logs and counts one failure; returns the delay in ms before the client
 * may be told. */
unsigned authfail_record(const char *proto, const char *ip, const char *user);

/* Calls cb(ud) once, ms from now, on the loop. NULL if out of memory (then
 * the caller answers at once). */
struct authfail_wait *authfail_wait_start(unsigned ms, void (*cb)(void *ud), void *ud);
/* The waiter's owner is going away: cb is never called. */
void authfail_wait_cancel(struct authfail_wait *w);

#endif
