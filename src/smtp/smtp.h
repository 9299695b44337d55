/* smtp.h: the SMTP module's public face: session handlers for the
 * listeners that core/net.c dispatches to SMTP, and the module's process
 * state (rate limiter, delivery workers, quota cache, spool and queue
 * directories). */
#ifndef CM_SMTP_SMTP_H
#define CM_SMTP_SMTP_H

#include "core/net.h"

struct config;

/* Submission (587 STARTTLS, 465, https port with ALPN "smtp") and MX (25). */
extern const struct session_ops smtp_submission_ops;
extern const struct session_ops smtp_mx_ops;

/* Creates <state_dir>/spool and <state_dir>/queue and the shared state the
 * submission sessions use. Call once before serving, on the loop thread;
 * cfg must outlive the module. Returns 0, or -1 with a reason in err. */
int smtp_init(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen);
/* Frees that state; call after the loop has finished (nothing in flight). */
void smtp_free(void);

#endif
