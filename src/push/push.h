/* push.h: push notifications (federation facts §5): a delivery into a
 * mailbox wakes the recipient's phones. For every valid device token of
 * the recipient (metadata.json, set by IMAP SETMETADATA) one item is made
 * durable in <mailboxes_dir>/pending_notifications/<32 hex> (the upstream
 * relay's files: `addr\nstart_ts\ntoken`) and then sent as
 * `POST notification_url` with the raw token as the body and no
 * Content-Type, over one libcurl multi handle on the loop (HTTP/2, TLS
 * verified against the system roots plus tls_ca_file).
 *
 *   200       done (the file removed)
 *   410       the token is removed from the account's metadata.json, done
 *   otherwise retry 8^n s after the previous attempt (n = attempts so
 *             far); dropped after the fifth attempt or 5 h after delivery
 *
 * Coalescing (beyond upstream): while an item for a token is pending or in
 * flight, further deliveries to that token add nothing; the phone wakes
 * once and fetches everything.
 *
 * Bounded: at most PUSH_INFLIGHT_MAX requests at once and PUSH_MEM_MAX
 * items in memory; beyond that new items wait on disk only and are read
 * back by a scan once the memory queue has drained to half. Disk work
 * (token lookups, item files, metadata.json) runs in batches on the slow
 * worker pool (core/workpool.h, shared with IMAP SEARCH), never on libuv's
 * pool that deliveries use; the loop never waits for the disk or the
 * network.
 *
 * The test-only environment variable CM_PUSH_TIME_SCALE (0 < s <= 1)
 * multiplies the schedule's times (8 s, 64 s, ..., 5 h) so tests run it in
 * seconds; CM_PUSH_MEM_MAX (1 .. PUSH_MEM_MAX) lowers the in-memory bound
 * so tests see items wait on disk. Loop thread only. */
#ifndef CM_PUSH_PUSH_H
#define CM_PUSH_PUSH_H

#include <stddef.h>
#include <uv.h>

struct config;

/* Creates the directory, starts libcurl and the start-up scan (.tmp and
 * unparsable files removed, the rest queued at level 0). cfg must outlive
 * the module. 0, or -1 with a reason in err. */
int push_start(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen);
/* A message was delivered into addr's INBOX (normalised address). Looks
 * up the tokens and queues an item per token not already pending. A no-op
 * before push_start or after push_stop. */
void push_delivered(const char *addr);
/* Stops: requests in flight are cancelled (their items stay on disk and
 * are sent after the next start), the timer closed. */
void push_stop(void);
/* After the loop has finished. */
void push_free(void);

#endif
