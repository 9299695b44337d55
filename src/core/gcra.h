/* gcra.h: a keyed rate limiter (Generic Cell Rate Algorithm, the "leaky
 * bucket as a meter" of nginx's limit_req with nodelay). Each key may make
 * `burst` + 1 requests at once and then one per interval.
 *
 * Pure: the caller passes monotonic time in nanoseconds; no clock and no
 * I/O inside. Keys are stored as keyed 64-bit hashes in a fixed-size table
 * (bounded memory); entries whose bucket has drained are dropped when room
 * is needed. When the table is full of live entries, new keys are refused
 * (fail closed) until some drain. */
#ifndef CM_CORE_GCRA_H
#define CM_CORE_GCRA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gcra;

/* interval_ns: time per request at the sustained rate (1e9 / rate);
 * burst: extra requests allowed at once; max_keys: table capacity.
 * Returns NULL when memory is exhausted or an argument is 0. */
struct gcra *gcra_new(uint64_t interval_ns, unsigned burst, size_t max_keys);
void gcra_free(struct gcra *g);

/* Counts one request of `key` at time now_ns. true = allowed; false =
 * refused, and *retry_ns (if not NULL) says how long until one would be
 * allowed. */
bool gcra_allow(struct gcra *g, const void *key, size_t keylen, uint64_t now_ns,
                uint64_t *retry_ns);

/* Live entries in the table (for tests and metrics). */
size_t gcra_size(const struct gcra *g);

#endif
