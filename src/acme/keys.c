/* keys.c: account and certificate keys, base64url, JWK and thumbprint. */
#include "acme/acme_int.h"

#include "core/base64.h"
#include "core/buf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

long acme_b64url(const unsigned char *in, size_t len, char *out, size_t cap)
{
    long n = base64_encode(in, len, out, cap);
    if (n < 0)
        return -1;
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (long i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return n;
}

EVP_PKEY *acme_key_new_ec(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ERR_clear_error();
    return k;
}

EVP_PKEY *acme_key_read(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (!k) {
        snprintf(err, errlen, "%s: not a PEM private key", path);
        return NULL;
    }
    int id = EVP_PKEY_get_base_id(k);
    char grp[32] = "";
    if (id == EVP_PKEY_EC)
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof grp, NULL);
    if (!(id == EVP_PKEY_RSA && EVP_PKEY_get_bits(k) >= 2048) &&
        !(id == EVP_PKEY_EC && strcmp(grp, "prime256v1") == 0)) {
        snprintf(err, errlen, "%s: only EC P-256 and RSA (2048 bits or more) keys are usable",
                 path);
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

int acme_key_pem(EVP_PKEY *k, struct buf *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    int r = -1;
    if (b && PEM_write_bio_PKCS8PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1) {
        long n = BIO_get_mem_data(b, &p);
        r = n > 0 ? buf_append(out, p, (size_t)n) : -1;
    }
    BIO_free(b);
    ERR_clear_error();
    return r;
}

static int bn_b64(EVP_PKEY *k, const char *param, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    unsigned char raw[1024];
    int r = -1;
    if (EVP_PKEY_get_bn_param(k, param, &bn) == 1 && BN_num_bytes(bn) <= (int)sizeof raw) {
        int n = BN_bn2bin(bn, raw);
        r = acme_b64url(raw, (size_t)n, out, cap) < 0 ? -1 : 0;
    }
    BN_free(bn);
    return r;
}

int acme_jwk(EVP_PKEY *k, char *out, size_t cap)
{
    int n = -1;
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
        unsigned char pub[65];
        size_t len = 0;
        char x[64], y[64];
        if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub,
                                            &len) != 1 || len != 65 || pub[0] != 4 ||
            acme_b64url(pub + 1, 32, x, sizeof x) < 0 || acme_b64url(pub + 33, 32, y, sizeof y) < 0)
            return ERR_clear_error(), -1;
        n = snprintf(out, cap, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    } else {
        char e[32], nn[700];
        if (bn_b64(k, OSSL_PKEY_PARAM_RSA_E, e, sizeof e) < 0 ||
            bn_b64(k, OSSL_PKEY_PARAM_RSA_N, nn, sizeof nn) < 0)
            return ERR_clear_error(), -1;
        n = snprintf(out, cap, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e, nn);
    }
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int acme_thumbprint(const char *jwk, char *out, size_t cap)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(jwk, strlen(jwk), md, &mdlen, EVP_sha256(), NULL) != 1)
        return -1;
    return acme_b64url(md, mdlen, out, cap) < 0 ? -1 : 0;
}

int acme_key_authorization(const char *token, const char *thumb, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s.%s", token, thumb);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}
