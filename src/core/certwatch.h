/* certwatch.h: the TLS certificate and key files watched on the loop; a
 * change (a renewal by acmetool or certbot, an operator's copy, a symlink
 * swapped) reloads them into the server's TLS contexts - new connections
 * get the new certificate, open ones keep theirs - as SIGHUP does. Only
 * for certificates we do not make ourselves (tls_mode acme or external).
 *
 * How: inotify through uv_fs_event on the files' directories (at once)
 * and uv_fs_poll on the paths (a symlink swapped above the directory);
 * either arms a short timer, which compares the files' identity (device,
 * inode, size, mtime, following symlinks) with what was loaded and
 * reloads when it differs. A half-written pair that does not load keeps
 * the old certificate and is tried again (CERTWATCH_RETRIES times, once a
 * second). */
#ifndef CM_CORE_CERTWATCH_H
#define CM_CORE_CERTWATCH_H

#include <uv.h>

#include "core/config.h"
#include "core/tls.h"

#define CERTWATCH_SETTLE_MS 100  /* after the last event: a copy has ended */
#define CERTWATCH_POLL_MS 1000
#define CERTWATCH_RETRIES 10

struct certwatch;

/* NULL when nothing is to be watched (self-signed mode) or the handles
 * could not be set up (logged); the server runs on either way. */
struct certwatch *certwatch_start(uv_loop_t *loop, const struct config *cfg,
                                  struct tls_server *ts);
/* Closes the handles (the loop can end); the memory goes with the last. */
void certwatch_stop(struct certwatch *w);
/* Reloads done since the start. */
unsigned certwatch_reloads(const struct certwatch *w);

#endif
