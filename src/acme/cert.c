/* cert.c: the certificate side of ACME: the CSR sent at finalize, the
 * RFC 8737 challenge certificate, validity dates and the renewal time. */
#include "acme/acme_int.h"

#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* "DNS:a,DNS:b,..." into out. */
static int san_list(const char *const *names, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(out + o, cap - o, "%sDNS:%s", i ? "," : "", names[i]);
        if (k < 0 || (size_t)k >= cap - o)
            return -1;
        o += (size_t)k;
    }
    return 0;
}

int acme_csr_b64(EVP_PKEY *key, const char *const *names, size_t n, struct buf *out)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *nm = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = NULL;
    unsigned char *der = NULL;
    char sans[1024];
    int r = -1;
    if (!req || !nm || !exts || n == 0 || san_list(names, n, sans, sizeof sans) < 0 ||
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)names[0], -1,
                                   -1, 0) != 1 ||
        X509_REQ_set_subject_name(req, nm) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
        !(san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans)) ||
        !sk_X509_EXTENSION_push(exts, san))
        goto out;
    san = NULL; /* owned by exts */
    if (X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto out;
    int len = i2d_X509_REQ(req, &der);
    if (len <= 0 || buf_reserve(out, (size_t)len * 4 / 3 + 4) < 0)
        goto out;
    long k = acme_b64url(der, (size_t)len, out->data + out->len, (size_t)len * 4 / 3 + 4);
    if (k < 0)
        goto out;
    out->len += (size_t)k;
    r = 0;
out:
    OPENSSL_free(der);
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(nm);
    X509_REQ_free(req);
    ERR_clear_error();
    return r;
}

int acme_alpn_cert(const char *name, const char *key_authorization, X509 **cert,
                   EVP_PKEY **key)
{
    *cert = NULL;
    *key = acme_key_new_ec();
    X509 *x = X509_new();
    X509_NAME *nm = X509_NAME_new();
    ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    X509_EXTENSION *ext = NULL, *san = NULL;
    unsigned char inner[34];
    unsigned int mdlen = 0;
    char sans[300];
    int r = -1;
    inner[0] = 0x04; /* the extension's value is itself an OCTET STRING (RFC 8737 §3) */
    inner[1] = 32;
    if (!*key || !x || !nm || !val || !oid ||
        EVP_Digest(key_authorization, strlen(key_authorization), inner + 2, &mdlen,
                   EVP_sha256(), NULL) != 1 || mdlen != 32 ||
        ASN1_OCTET_STRING_set(val, inner, sizeof inner) != 1 ||
        !(ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, val)) ||
        snprintf(sans, sizeof sans, "DNS:%s", name) >= (int)sizeof sans ||
        !(san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans)) ||
        X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(x, nm) != 1 || X509_set_issuer_name(x, nm) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400) || X509_set_pubkey(x, *key) != 1 ||
        X509_add_ext(x, san, -1) != 1 || X509_add_ext(x, ext, -1) != 1 ||
        X509_sign(x, *key, EVP_sha256()) <= 0)
        goto out;
    *cert = x;
    x = NULL;
    r = 0;
out:
    X509_free(x);
    X509_NAME_free(nm);
    ASN1_OCTET_STRING_free(val);
    ASN1_OBJECT_free(oid);
    X509_EXTENSION_free(ext);
    X509_EXTENSION_free(san);
    if (r < 0) {
        EVP_PKEY_free(*key);
        *key = NULL;
    }
    ERR_clear_error();
    return r;
}

static int x509_times(X509 *x, time_t *nb, time_t *na)
{
    struct tm a, b;
    if (!x || ASN1_TIME_to_tm(X509_get0_notBefore(x), &a) != 1 ||
        ASN1_TIME_to_tm(X509_get0_notAfter(x), &b) != 1)
        return -1;
    *nb = timegm(&a);
    *na = timegm(&b);
    return 0;
}

int acme_cert_times(const char *path, time_t *nb, time_t *na)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    int r = x509_times(x, nb, na);
    X509_free(x);
    ERR_clear_error();
    return r;
}

int acme_cert_times_pem(const char *pem, size_t len, time_t *nb, time_t *na)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    int r = x509_times(x, nb, na);
    X509_free(x);
    BIO_free(b);
    ERR_clear_error();
    return r;
}

time_t acme_renew_at(time_t nb, time_t na)
{
    time_t third = nb + (na - nb) * 2 / 3, month = na - 30 * 86400;
    /* a short-lived certificate (under 60 days) would be renewed at once
     * by the 30-day rule: then 2/3 alone counts */
    if (month < nb + (na - nb) / 2)
        return third;
    return third < month ? third : month;
}
