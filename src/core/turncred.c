/* turncred.c: TURN credentials as chatmail-turn computes them (turncred.h). */
#include "core/turncred.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "core/base64.h"

int turncred_make(int64_t now, char *out, size_t cap)
{
    char user[24];
    int ul = snprintf(user, sizeof user, "%lld", (long long)(now + TURNCRED_TTL_SECS));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    if (ul <= 0 || !HMAC(EVP_sha1(), TURNCRED_SECRET, (int)strlen(TURNCRED_SECRET),
                         (const unsigned char *)user, (size_t)ul, mac, &ml))
        return -1;
    char pass[40];
    if (base64_encode(mac, ml, pass, sizeof pass) < 0)
        return -1;
    int n = snprintf(out, cap, "%s:%s", user, pass);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}
