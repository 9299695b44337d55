/* jws.c: the flattened JWS of every ACME POST (RFC 8555 §6.2): ES256
 * (the DER ECDSA signature converted to the raw r || s form of RFC 7518
 * §3.4) or RS256 for an RSA account key taken over from acmetool. */
#include "acme/acme_int.h"

#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/ecdsa.h>
#include <openssl/err.h>

/* base64url of s appended to out. */
static int put_b64(struct buf *out, const unsigned char *s, size_t n)
{
    size_t cap = (n + 2) / 3 * 4 + 1;
    if (buf_reserve(out, cap) < 0)
        return -1;
    long k = acme_b64url(s, n, out->data + out->len, cap);
    if (k < 0)
        return -1;
    out->len += (size_t)k;
    return 0;
}

/* Signs the input; the signature in JWS form into sig (cap 512). */
static long sign(EVP_PKEY *k, const char *in, size_t n, unsigned char *sig, size_t cap)
{
    bool ec = EVP_PKEY_get_base_id(k) == EVP_PKEY_EC;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[1024];
    size_t dlen = sizeof der;
    long r = -1;
    if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
        EVP_DigestSign(md, der, &dlen, (const unsigned char *)in, n) == 1) {
        if (!ec) {
            if (dlen <= cap) {
                memcpy(sig, der, dlen);
                r = (long)dlen;
            }
        } else {
            const unsigned char *p = der;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
            const BIGNUM *br, *bs;
            if (es && cap >= 64) {
                ECDSA_SIG_get0(es, &br, &bs);
                if (BN_bn2binpad(br, sig, 32) == 32 && BN_bn2binpad(bs, sig + 32, 32) == 32)
                    r = 64;
            }
            ECDSA_SIG_free(es);
        }
    }
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return r;
}

/* A value the server gave (URL, nonce) that goes into the protected
 * header as is: nothing that would end or escape the JSON string. */
static bool plain(const char *s)
{
    for (; s && *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return false;
    return true;
}

int acme_jws(EVP_PKEY *k, const char *jwk, const char *kid, const char *nonce, const char *url,
             const char *payload, struct buf *out)
{
    bool ec = EVP_PKEY_get_base_id(k) == EVP_PKEY_EC;
    struct buf prot = {0}, input = {0};
    int r = -1;
    if (!plain(kid) || !plain(nonce) || !plain(url))
        return -1;
    if (buf_printf(&prot, "{\"alg\":\"%s\",", ec ? "ES256" : "RS256") < 0 ||
        (kid ? buf_printf(&prot, "\"kid\":\"%s\",", kid) : buf_printf(&prot, "\"jwk\":%s,", jwk)) < 0 ||
        buf_printf(&prot, "\"nonce\":\"%s\",\"url\":\"%s\"}", nonce, url) < 0)
        goto out;
    if (put_b64(&input, (const unsigned char *)prot.data, prot.len) < 0 ||
        buf_append(&input, ".", 1) < 0 ||
        put_b64(&input, (const unsigned char *)payload, strlen(payload)) < 0)
        goto out;
    unsigned char sig[1024];
    long slen = sign(k, input.data, input.len, sig, sizeof sig);
    const char *dot = memchr(input.data, '.', input.len);
    size_t plen = (size_t)(dot - input.data);
    if (slen < 0 || buf_append_str(out, "{\"protected\":\"") < 0 ||
        buf_append(out, input.data, plen) < 0 || buf_append_str(out, "\",\"payload\":\"") < 0 ||
        buf_append(out, dot + 1, input.len - plen - 1) < 0 ||
        buf_append_str(out, "\",\"signature\":\"") < 0 || put_b64(out, sig, (size_t)slen) < 0 ||
        buf_append_str(out, "\"}") < 0)
        goto out;
    r = 0;
out:
    buf_free(&prot);
    buf_free(&input);
    return r;
}
