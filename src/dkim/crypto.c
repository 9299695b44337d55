/* crypto.c: the OpenSSL side of DKIM: RSASSA-PKCS1-v1_5 with SHA-256
 * (1024..4096-bit keys) and Ed25519 over the SHA-256 header digest
 * (RFC 8463 §3: PureEdDSA of the hash). */
#include "dkim/dkim_int.h"

#include <openssl/rsa.h>
#include <openssl/x509.h>

/* p= of an RSA key: SubjectPublicKeyInfo (what everyone publishes) or a
 * bare RSAPublicKey (what RFC 6376 §3.6.1 literally says). */
static EVP_PKEY *rsa_pubkey(const struct dkim_key *key)
{
    const unsigned char *p = key->pub;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)key->pub_len);
    if (pk && (p != key->pub + key->pub_len || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    if (!pk) {
        p = key->pub;
        pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)key->pub_len);
        if (pk && p != key->pub + key->pub_len) {
            EVP_PKEY_free(pk);
            return NULL;
        }
    }
    return pk;
}

static int verify_rsa(const struct dkim_key *key, const unsigned char digest[32],
                      const unsigned char *sig, size_t sig_len, const char **why)
{
    EVP_PKEY *pk = rsa_pubkey(key);
    if (!pk) {
        *why = "RSA key does not parse";
        return -1;
    }
    int bits = EVP_PKEY_get_bits(pk);
    if (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS) {
        EVP_PKEY_free(pk);
        *why = bits < DKIM_RSA_MIN_BITS ? "RSA key shorter than 1024 bits"
                                        : "RSA key longer than 4096 bits";
        return -1;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    int ok = ctx && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return ok ? 1 : 0;
}

static int verify_ed25519(const struct dkim_key *key, const unsigned char digest[32],
                          const unsigned char *sig, size_t sig_len, const char **why)
{
    if (key->pub_len != 32) {
        *why = "Ed25519 key is not 32 bytes";
        return -1;
    }
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key->pub, 32);
    if (!pk) {
        *why = "Ed25519 key does not parse";
        return -1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && sig_len == 64 && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, digest, 32) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return ok ? 1 : 0;
}

int dkim_crypto_verify(enum dkim_alg alg, const struct dkim_key *key,
                       const unsigned char digest[32], const unsigned char *sig,
                       size_t sig_len, const char **why)
{
    if (alg == DKIM_ALG_ED25519_SHA256) {
        if (key->type != DKIM_KEY_ED25519) {
            *why = "key type does not match a=";
            return -1;
        }
        return verify_ed25519(key, digest, sig, sig_len, why);
    }
    if (alg != DKIM_ALG_RSA_SHA256 || key->type != DKIM_KEY_RSA) {
        *why = "key type does not match a=";
        return -1;
    }
    return verify_rsa(key, digest, sig, sig_len, why);
}

int dkim_crypto_sign(EVP_PKEY *pkey, const unsigned char digest[32], unsigned char *out,
                     size_t *out_len)
{
    size_t cap = *out_len;
    int ok;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestSign(md, out, out_len, digest, 32) == 1;
        EVP_MD_CTX_free(md);
    } else {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
        ok = ctx && EVP_PKEY_sign_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_sign(ctx, NULL, out_len, digest, 32) == 1 && *out_len <= cap &&
             EVP_PKEY_sign(ctx, out, out_len, digest, 32) == 1;
        EVP_PKEY_CTX_free(ctx);
    }
    return ok ? 0 : -1;
}
