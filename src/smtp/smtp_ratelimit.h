/* smtp_ratelimit.h: per-sender send rate limit, GCRA as in filtermail
 * (spec §3.5, §5.3): max_user_send_per_minute sustained (one token per
 * 60/N s), bursts of max_user_send_burst_size, one token per mail
 * transaction, keyed by the ASCII-lower-cased sender address.
 *
 * Pure: times are monotonic nanoseconds passed in by the caller. The key
 * table is bounded (max_keys); keys that have fully recovered are dropped
 * incrementally after successful checks, and when the table is full the
 * least-limited key is evicted (which can only make a limit more lenient,
 * never refuse an unknown sender). The decision replicates the GCRA of the
 * Rust governor crate used by filtermail (new keys start at now + T, tau =
 * T * burst): exactly `burst` transactions pass at once, then one per
 * emission interval T. One deliberate difference: a known key whose TAT is
 * less than one interval ahead is treated as new, so a sender who has fully
 * recovered gets exactly `burst` again whether or not its key was already
 * collected (governor would allow burst + 1 then). */
#ifndef CM_SMTP_RATELIMIT_H
#define CM_SMTP_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_RATELIMIT_REPLY_MAX 400

struct smtp_ratelimit;

/* per_minute, burst >= 1 (smaller values are raised to 1); max_keys >= 1.
 * Returns NULL when out of memory. */
struct smtp_ratelimit *smtp_ratelimit_new(long per_minute, long burst, size_t max_keys);
void smtp_ratelimit_free(struct smtp_ratelimit *rl);

/* Takes one token for sender at now_ns. Returns 0 when allowed; 1 when
 * limited, with *until_ns the earliest instant a retry can pass. */
int smtp_ratelimit_check(struct smtp_ratelimit *rl, const char *sender, uint64_t now_ns,
                         uint64_t *until_ns);

/* Number of keys currently held (for tests and metrics). */
size_t smtp_ratelimit_keys(const struct smtp_ratelimit *rl);

/* The spec §3.5 reply without CRLF: "450 4.7.1: Too much mail from <addr>,
 * rate-limited until <instant>", where <instant> is the monotonic time in
 * seconds with millisecond precision ("12.345s"), our rendering of the
 * library's instant. */
void smtp_ratelimit_reply(char *out, size_t cap, const char *sender, uint64_t until_ns);

#endif
