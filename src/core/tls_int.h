/* tls_int.h: private to core/tls*.c. The certificate files behind the
 * server contexts: loading a PEM chain + key pair with messages that name
 * the file and the reason, and creating the self-signed pair of §13.4. */
#ifndef CM_CORE_TLS_INTERNAL_H
#define CM_CORE_TLS_INTERNAL_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* A certificate (leaf), the rest of its chain (possibly empty) and its key. */
struct tls_pair {
    X509 *leaf;
    STACK_OF(X509) *chain;
    EVP_PKEY *key;
};

/* Reads cert_path (leaf first, then any intermediates) and key_path and
 * checks that they belong together. Returns 0, or -1 with a reason in err
 * ("cannot read certificate /path: No such file or directory",
 * "certificate and key do not match: ...", ...). */
int tls_pair_load(struct tls_pair *p, const char *cert_path, const char *key_path, char *err,
                  size_t errlen);
void tls_pair_free(struct tls_pair *p);

/* The self-signed files under <state_dir>/tls/: "selfsigned.crt" and
 * "selfsigned.key". Returns 0, or -1 when a path does not fit. */
int tls_selfsigned_paths(const char *state_dir, char *cert, char *key, size_t len);

/* Makes sure cert_path and key_path exist: when either is missing, creates
 * the directories (0700), generates an EC P-256 key and a certificate for
 * `domain` (or for the IPv4 address `ipv4` when not NULL), and writes both
 * atomically (key 0600, then certificate). Existing files are left alone.
 * Returns 0, or -1 with a reason in err. */
int tls_selfsigned_ensure(const char *state_dir, const char *cert_path, const char *key_path,
                          const char *domain, const char *ipv4, char *err, size_t errlen);

/* Formats an error message into err (when given). */
void tls_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The reason of the last OpenSSL error, or `fallback`; clears the queue. */
const char *tls_ossl_reason(const char *fallback);

#endif
