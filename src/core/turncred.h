/* turncred.h: TURN credentials computed in-process, as chatmail-turn
 * computes them (federation facts §8): username = the expiry time (now +
 * 5 days) as decimal unix time, password = base64(HMAC-SHA1(key "north",
 * username)). chatmail-turn's secret is a constant, so these are accepted
 * by a running chatmail-turn without asking its socket. */
#ifndef CM_CORE_TURNCRED_H
#define CM_CORE_TURNCRED_H

#include <stddef.h>
#include <stdint.h>

#define TURNCRED_TTL_SECS (5 * 86400)
#define TURNCRED_SECRET "north"
#define TURNCRED_MAX 64 /* "<username>:<password>" with its NUL */

/* Writes "<username>:<password>" for credentials valid until now + TTL.
 * 0, or -1 (cap too small or no HMAC). */
int turncred_make(int64_t now, char *out, size_t cap);

#endif
