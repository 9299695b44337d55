/* fuzz_dkim_key.c: the key record parser (<s>._domainkey.<d> TXT), and the
 * public key decoding behind it (SubjectPublicKeyInfo / RSAPublicKey DER,
 * raw Ed25519) with a signature check that must never pass. */
#include "dkim/dkim.h"
#include "dkim/dkim_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dkim_key k;
    const char *why = NULL;
    if (size > 8192)
        return 0;
    if (dkim_key_parse((const char *)data, size, &k, &why) < 0) {
        if (!why)
            abort();
        return 0;
    }
    if (k.revoked != (k.pub_len == 0) || k.pub_len > DKIM_MAX_KEY_BYTES)
        abort();
    if (k.revoked)
        return 0;
    unsigned char digest[32] = {1, 2, 3}, sig[64] = {0};
    enum dkim_alg alg = k.type == DKIM_KEY_ED25519 ? DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256;
    int r = dkim_crypto_verify(alg, &k, digest, sig, sizeof sig, &why);
    if (r == 1 || (r < 0 && !why))
        abort();
    return 0;
}
