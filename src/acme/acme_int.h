/* acme_int.h: private to src/acme: keys, JWS (RFC 7515/8555 §6.2), the
 * JWK thumbprint (RFC 7638), the CSR and the tls-alpn-01 certificate. */
#ifndef CM_ACME_INT_H
#define CM_ACME_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct buf;

#define ACME_JWK_MAX 1400 /* an RSA-4096 JWK fits */

/* base64url without padding into out (NUL-terminated): length or -1. */
long acme_b64url(const unsigned char *in, size_t len, char *out, size_t cap);

/* A new ECDSA P-256 key, or NULL. */
EVP_PKEY *acme_key_new_ec(void);
/* Reads a PEM private key (EC P-256 or RSA), or NULL with a reason. */
EVP_PKEY *acme_key_read(const char *path, char *err, size_t errlen);
/* The key as PKCS#8 PEM into out. 0 or -1. */
int acme_key_pem(EVP_PKEY *k, struct buf *out);

/* The public JWK in RFC 7638's member order, and its thumbprint. */
int acme_jwk(EVP_PKEY *k, char *out, size_t cap);
int acme_thumbprint(const char *jwk, char *out, size_t cap);
/* token "." thumbprint */
int acme_key_authorization(const char *token, const char *thumb, char *out, size_t cap);

/* A flattened JWS for url: protected {alg, jwk or kid, nonce, url}, the
 * payload ("" = POST-as-GET) base64url-encoded, ES256 or RS256 by the key
 * type. Appended to out. 0 or -1. */
int acme_jws(EVP_PKEY *k, const char *jwk, const char *kid, const char *nonce, const char *url,
             const char *payload, struct buf *out);

/* DER CSR for names[0..n) (CN = names[0], SAN = all), signed by key,
 * base64url-encoded into out. 0 or -1. */
int acme_csr_b64(EVP_PKEY *key, const char *const *names, size_t n, struct buf *out);

/* RFC 8737 §3: a self-signed certificate for `name` with the critical
 * id-pe-acmeIdentifier extension holding SHA-256(key_authorization); *key
 * is a new P-256 key. 0 or -1. */
int acme_alpn_cert(const char *name, const char *key_authorization, X509 **cert,
                   EVP_PKEY **key);

/* notBefore/notAfter of the first certificate of a PEM file. 0 or -1. */
int acme_cert_times(const char *path, time_t *not_before, time_t *not_after);
/* Same for PEM text. */
int acme_cert_times_pem(const char *pem, size_t len, time_t *not_before, time_t *not_after);

/* When to renew a certificate valid from nb to na: at 2/3 of its lifetime
 * or 30 days before na, whichever comes first; the 30-day rule only counts
 * when it falls in the second half of the lifetime (short-lived certs). */
time_t acme_renew_at(time_t nb, time_t na);

#endif
