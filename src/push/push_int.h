/* push_int.h: private to src/push: the item file format and schedule
 * (push_item.c, sans-I/O: the fuzzer and unit tests drive them), the
 * in-memory queue (push_queue.c) and the sender (push_send.c). */
#ifndef CM_PUSH_PUSH_INT_H
#define CM_PUSH_PUSH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/accounts.h"

#define PUSH_DIR "pending_notifications"
#define PUSH_ID_LEN 32            /* hex characters of an item's name (uuid4().hex) */
#define PUSH_ATTEMPTS_MAX 5       /* dropped after the fifth attempt */
#define PUSH_MAX_AGE_S (5 * 3600) /* ... or 5 h after the delivery */
#define PUSH_INFLIGHT_MAX 64      /* requests at once */
/* Connections to an HTTP/1.1 server (HTTP/2 needs one). At most 4: curl's
 * connection cache keeps 4 x (transfers in the multi) connections, so with
 * 8 allowed, every lull in a burst closed some that the next requests
 * opened again, and each new connection costs the loop thread a TLS
 * handshake plus a load of the CA roots (30-60 ms: 28-45 connections in
 * test_push_scale's burst, 4 now). */
#define PUSH_CONNECTIONS_MAX 4
#define PUSH_MEM_MAX 4096         /* items in memory; the rest wait on disk */
#define PUSH_FILE_MAX (STORE_ADDR_MAX + 1 + 20 + 1 + STORE_TOKEN_MAX + 1)
#define PUSH_TIMEOUT_MS 60000     /* one request */
#define PUSH_CONNECT_TIMEOUT_MS 10000

/* ---------------------------------------------------------------- items */

struct push_item_data {
    char addr[STORE_ADDR_MAX + 1];
    int64_t start_ts;             /* unix seconds of the delivery */
    char token[STORE_TOKEN_MAX + 1];
    size_t token_len;
};

/* Parses an item file: `addr\nstart_ts\ntoken` (upstream's split("\n", 2):
 * the token is the rest; one trailing LF is tolerated). The address has an
 * '@', no control characters and at most STORE_ADDR_MAX bytes; start_ts is
 * decimal digits; the token is 1..STORE_TOKEN_MAX bytes without control
 * characters. 0, or -1 (unparsable). */
int push_item_parse(const char *data, size_t len, struct push_item_data *out);
/* The file text of an item. 0, or -1 (no memory). */
int push_item_format(const char *addr, int64_t start_ts, const char *token, struct buf *out);
/* Is name an item's (PUSH_ID_LEN lowercase hex)? */
bool push_item_name_ok(const char *name);
/* Is name a temporary of an interrupted write (ends in .tmp, or the
 * fileio_write_atomic form <name>.tmp-<random>)? */
bool push_item_name_tmp(const char *name);
/* A short, stable identification of a token for logs (never the token):
 * 8 hex characters of a hash, NUL-terminated. */
void push_token_tag(const char *token, size_t len, char out[9]);
uint64_t push_token_hash(const char *token, size_t len);

/* ---------------------------------------------------------------- pending tokens */

/* A counted set of 64-bit keys (keyed hashes of the tokens of every item
 * pending in memory or on disk only): coalescing asks it in O(1) whatever
 * the queue's length, and items that wait on disk keep only 12 bytes here.
 * Zero-initialised = empty. */
struct push_set_slot;
struct push_set {
    struct push_set_slot *slots;
    size_t cap, used;
};
/* One more item with key. 0, or -1 (no memory; the set unchanged). */
int push_set_add(struct push_set *s, uint64_t key);
bool push_set_has(const struct push_set *s, uint64_t key);
/* One item with key fewer (the key leaves at zero; unknown keys ignored). */
void push_set_del(struct push_set *s, uint64_t key);
/* Distinct keys. */
size_t push_set_size(const struct push_set *s);
void push_set_free(struct push_set *s);

/* ---------------------------------------------------------------- schedule */

/* Milliseconds between attempt `attempts` (1 = the first attempt failed)
 * and the next: 8^attempts s, times scale. */
uint64_t push_retry_delay_ms(unsigned attempts, double scale);
/* After a failed attempt: drop the item? (attempts >= PUSH_ATTEMPTS_MAX, or
 * more than PUSH_MAX_AGE_S * scale seconds since start_ts.) now_ms and the
 * start are wall-clock. */
bool push_should_drop(unsigned attempts, int64_t start_ts, int64_t now_ms, double scale);
/* CM_PUSH_TIME_SCALE's value: a number in (0, 1], else 1. */
double push_time_scale(const char *env);

/* ---------------------------------------------------------------- sender */

enum push_outcome { PUSH_DONE, PUSH_GONE, PUSH_RETRY, PUSH_CANCELLED };

struct curlm;
struct config;
struct curlm_req;
/* Starts the POST of token to cfg->notification_url; done(ud, outcome,
 * status) runs once, later, on the loop (not when NULL is returned). The
 * token must stay valid until then. Counts push_requests by status. */
struct curlm_req *push_send(struct curlm *m, const struct config *cfg, const char *token,
                            size_t token_len,
                            void (*done)(void *ud, enum push_outcome o, long status), void *ud);

#endif
