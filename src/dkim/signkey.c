/* signkey.c: the DKIM signing key: loaded from a PEM file (PKCS#1 or
 * PKCS#8, RSA or Ed25519), generated once when missing (2048-bit RSA,
 * mode 0600), and the TXT record that publishes it. */
#include "core/base64.h"
#include "core/fileio.h"
#include "dkim/dkim_int.h"

#include <errno.h>
#include <libgen.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct dkim_signkey {
    EVP_PKEY *pkey;
};

EVP_PKEY *dkim_signkey_pkey(const struct dkim_signkey *k)
{
    return k->pkey;
}

static int generate(const char *path, const char **why)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    BIO *mem = BIO_new(BIO_s_mem());
    char *dir = strdup(path), *base = strdup(path);
    int rc = -1;
    if (!pk || !mem || !dir || !base ||
        PEM_write_bio_PrivateKey(mem, pk, NULL, NULL, 0, NULL, NULL) != 1) {
        *why = "cannot generate an RSA key";
        goto out;
    }
    char *d = dirname(dir), *b = basename(base);
    if (mkdir(d, 0700) < 0 && errno != EEXIST) {
        *why = "cannot create the key directory";
        goto out;
    }
    char *data;
    long len = BIO_get_mem_data(mem, &data);
    if (fileio_write_atomic(d, b, data, (size_t)len, 0600, true) < 0) {
        *why = "cannot write the key file";
        goto out;
    }
    rc = 0;
out:
    free(dir);
    free(base);
    BIO_free(mem);
    EVP_PKEY_free(pk);
    return rc;
}

struct dkim_signkey *dkim_signkey_load(const char *path, bool create, bool *created,
                                       const char **why)
{
    if (created)
        *created = false;
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT && create) {
        if (generate(path, why) < 0)
            return NULL;
        if (created)
            *created = true;
        f = fopen(path, "r");
    }
    if (!f) {
        *why = "cannot open the key file";
        return NULL;
    }
    EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!pk) {
        *why = "the key file holds no PEM private key";
        return NULL;
    }
    int id = EVP_PKEY_get_base_id(pk);
    int bits = EVP_PKEY_get_bits(pk);
    if (id != EVP_PKEY_ED25519 &&
        (id != EVP_PKEY_RSA || bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS)) {
        EVP_PKEY_free(pk);
        *why = "the key is neither RSA (1024..4096 bits) nor Ed25519";
        return NULL;
    }
    struct dkim_signkey *k = calloc(1, sizeof *k);
    if (!k) {
        EVP_PKEY_free(pk);
        *why = "out of memory";
        return NULL;
    }
    k->pkey = pk;
    return k;
}

void dkim_signkey_free(struct dkim_signkey *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

char *dkim_signkey_dns_record(const struct dkim_signkey *k)
{
    unsigned char raw[DKIM_MAX_KEY_BYTES];
    size_t len = sizeof raw;
    bool ed = EVP_PKEY_get_base_id(k->pkey) == EVP_PKEY_ED25519;
    if (ed) {
        if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &len) != 1)
            return NULL;
    } else {
        int n = i2d_PUBKEY(k->pkey, NULL);
        unsigned char *p = raw;
        if (n <= 0 || (size_t)n > sizeof raw || i2d_PUBKEY(k->pkey, &p) != n)
            return NULL;
        len = (size_t)n;
    }
    char b64[2 * DKIM_MAX_KEY_BYTES];
    if (base64_encode(raw, len, b64, sizeof b64) < 0)
        return NULL;
    size_t cap = strlen(b64) + 64;
    char *out = malloc(cap);
    if (out)
        snprintf(out, cap, "v=DKIM1;k=%s;p=%s;s=email;t=s", ed ? "ed25519" : "rsa", b64);
    return out;
}
