/* accept_int.h: private to src/smtp: starting and stopping the acceptance
 * pipeline (accept.c), whose public part is in smtp/smtp.h. */
#ifndef CM_SMTP_ACCEPT_INT_H
#define CM_SMTP_ACCEPT_INT_H

#include <uv.h>

struct config;

/* Creates the store's delivery engine for the pipeline (workers on the
 * loop's pool, the process-wide quota cache). queue_dir must outlive the
 * pipeline. 0, or -1 (out of memory). */
int accept_init(uv_loop_t *loop, const struct config *cfg, const char *queue_dir);
/* After the loop has finished (nothing in flight). */
void accept_free(void);

#endif
