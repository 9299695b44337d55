/* tls_certgen.c: the certificate files behind core/tls.
 *
 * Loads a PEM certificate chain and its private key, with error messages
 * that name the file and the reason. Creates the self-signed certificate of
 * §13.4 when it does not exist yet: EC P-256, 36500 days, CN=<domain>, SANs
 * <domain>, www.<domain>, mta-sts.<domain> (or the address itself for an
 * IPv4 relay), CA:FALSE, EKU serverAuth+clientAuth. The key is written with
 * mode 0600 into a 0700 directory; both files are written atomically (temp
 * file, fsync, rename), the key first, so a certificate never lacks its key. */
#include "core/limits.h"
#include "core/tls_int.h"
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>


void tls_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The reason of the last OpenSSL error, or `fallback`; clears the queue. */
const char *tls_ossl_reason(const char *fallback)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());
    ERR_clear_error();
    return r ? r : fallback;
}

/* ---------- loading ---------- */

static BIO *open_file(const char *path, const char *what, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        tls_set_err(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    BIO *b = BIO_new_fp(f, BIO_CLOSE);
    if (!b) {
        fclose(f);
        tls_set_err(err, errlen, "cannot read %s %s: out of memory", what, path);
    }
    return b;
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

/* Reads the leaf and then intermediates until the end of the file. */
static int read_chain(BIO *b, struct tls_pair *p)
{
    p->leaf = PEM_read_bio_X509(b, NULL, no_password, NULL);
    p->chain = sk_X509_new_null();
    if (!p->leaf || !p->chain)
        return -1;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, no_password, NULL)) != NULL) {
        if (!sk_X509_push(p->chain, x)) {
            X509_free(x);
            return -1;
        }
    }
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error(); /* the normal end of the file */
        return 0;
    }
    return -1;
}

int tls_pair_load(struct tls_pair *p, const char *cert_path, const char *key_path, char *err,
                  size_t errlen)
{
    memset(p, 0, sizeof *p);
    ERR_clear_error();
    BIO *b = open_file(cert_path, "certificate", err, errlen);
    if (!b)
        return -1;
    int r = read_chain(b, p);
    BIO_free(b);
    if (r < 0) {
        tls_set_err(err, errlen, "cannot parse certificate %s: %s", cert_path,
                tls_ossl_reason("no certificate found"));
        goto fail;
    }
    b = open_file(key_path, "private key", err, errlen);
    if (!b)
        goto fail;
    p->key = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    BIO_free(b);
    if (!p->key) {
        tls_set_err(err, errlen, "cannot parse private key %s: %s", key_path,
                tls_ossl_reason("no private key found"));
        goto fail;
    }
    if (X509_check_private_key(p->leaf, p->key) != 1) {
        ERR_clear_error();
        tls_set_err(err, errlen, "certificate and key do not match: %s, %s", cert_path, key_path);
        goto fail;
    }
    return 0;
fail:
    tls_pair_free(p);
    return -1;
}

void tls_pair_free(struct tls_pair *p)
{
    X509_free(p->leaf);
    sk_X509_pop_free(p->chain, X509_free);
    EVP_PKEY_free(p->key);
    memset(p, 0, sizeof *p);
}

/* ---------- generating ---------- */

int tls_selfsigned_paths(const char *state_dir, char *cert, char *key, size_t len)
{
    int a = snprintf(cert, len, "%s/tls/selfsigned.crt", state_dir);
    int b = snprintf(key, len, "%s/tls/selfsigned.key", state_dir);
    return (a < 0 || b < 0 || (size_t)a >= len || (size_t)b >= len) ? -1 : 0;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e)
        return -1;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

/* Appends a DNS name (ip == NULL) or an IP address to gens. */
static int push_name(GENERAL_NAMES *gens, const char *dns, const char *ip)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (!gn)
        return -1;
    if (ip) {
        ASN1_OCTET_STRING *o = a2i_IPADDRESS(ip);
        if (!o)
            goto fail;
        GENERAL_NAME_set0_value(gn, GEN_IPADD, o);
    } else {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (!s)
            goto fail;
        GENERAL_NAME_set0_value(gn, GEN_DNS, s);
        if (!ASN1_STRING_set(s, dns, -1))
            goto fail;
    }
    if (sk_GENERAL_NAME_push(gens, gn))
        return 0;
fail:
    GENERAL_NAME_free(gn);
    return -1;
}

/* subjectAltName: the IPv4 address, or <d>, www.<d>, mta-sts.<d>. */
static int add_san(X509 *x, const char *domain, const char *ipv4)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return -1;
    int r = 0;
    if (ipv4) {
        r = push_name(gens, NULL, ipv4);
    } else {
        char www[LIM_TLS_NAME], sts[LIM_TLS_NAME];
        snprintf(www, sizeof www, "www.%s", domain);
        snprintf(sts, sizeof sts, "mta-sts.%s", domain);
        if (push_name(gens, domain, NULL) < 0 || push_name(gens, www, NULL) < 0 ||
            push_name(gens, sts, NULL) < 0)
            r = -1;
    }
    if (r == 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        r = -1;
    GENERAL_NAMES_free(gens);
    return r;
}

static int set_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    int ok = bn && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static X509 *build_cert(EVP_PKEY *key, const char *domain, const char *ipv4)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    const char *cn = ipv4 ? ipv4 : domain;
    X509_NAME *name = X509_get_subject_name(x);
    int ok = X509_set_version(x, X509_VERSION_3) && set_serial(x) == 0 &&
             X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
             X509_time_adj_ex(X509_getm_notAfter(x), LIM_SELFSIGNED_DAYS, 0, NULL) &&
             X509_set_pubkey(x, key) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                        -1, -1, 0) &&
             X509_set_issuer_name(x, name) &&
             add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
             add_ext(x, NID_key_usage, "critical,digitalSignature,keyAgreement") == 0 &&
             add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") == 0 &&
             add_ext(x, NID_subject_key_identifier, "hash") == 0 &&
             add_san(x, domain, ipv4) == 0 && X509_sign(x, key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Writes the PEM text held in `mem` to path via path.tmp + fsync + rename. */
static int write_atomic(const char *path, BIO *mem, mode_t mode, char *err, size_t errlen)
{
    char tmp[LIM_TLS_PATH + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char *data = NULL;
    long len = BIO_get_mem_data(mem, &data);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        tls_set_err(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    int r = (len > 0 && data) ? fileio_write_all(fd, data, (size_t)len) : -1;
    if (r == 0)
        r = fsync(fd);
    int saved = errno;
    if (close(fd) != 0 && r == 0) {
        r = -1;
        saved = errno;
    }
    if (r == 0 && rename(tmp, path) != 0) {
        r = -1;
        saved = errno;
    }
    if (r != 0) {
        tls_set_err(err, errlen, "cannot write %s: %s", path, strerror(saved));
        unlink(tmp);
    }
    return r;
}

static int make_dir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    tls_set_err(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
    return -1;
}

/* Creates <state_dir> and <state_dir>/tls when missing. */
static int make_dirs(const char *state_dir, char *err, size_t errlen)
{
    char dir[LIM_TLS_PATH];
    if (snprintf(dir, sizeof dir, "%s/tls", state_dir) >= (int)sizeof dir) {
        tls_set_err(err, errlen, "state_dir too long");
        return -1;
    }
    if (make_dir(state_dir, err, errlen) < 0 || make_dir(dir, err, errlen) < 0)
        return -1;
    return 0;
}

static int write_pair(const char *cert_path, const char *key_path, X509 *x, EVP_PKEY *key,
                      char *err, size_t errlen)
{
    BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    int r = -1;
    if (!kb || !cb || !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509(cb, x)) {
        tls_set_err(err, errlen, "cannot encode the self-signed certificate: %s",
                tls_ossl_reason("out of memory"));
    } else if (write_atomic(key_path, kb, 0600, err, errlen) == 0 &&
               write_atomic(cert_path, cb, 0644, err, errlen) == 0) {
        r = 0;
    }
    BIO_free(kb);
    BIO_free(cb);
    return r;
}

int tls_selfsigned_ensure(const char *state_dir, const char *cert_path, const char *key_path,
                          const char *domain, const char *ipv4, char *err, size_t errlen)
{
    if (access(cert_path, F_OK) == 0 && access(key_path, F_OK) == 0)
        return 0;
    if (strlen(cert_path) >= LIM_TLS_PATH || strlen(key_path) >= LIM_TLS_PATH) {
        tls_set_err(err, errlen, "state_dir too long");
        return -1;
    }
    if (make_dirs(state_dir, err, errlen) < 0)
        return -1;
    ERR_clear_error();
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = key ? build_cert(key, domain, ipv4) : NULL;
    int r = -1;
    if (!x)
        tls_set_err(err, errlen, "cannot create a self-signed certificate for %s: %s",
                ipv4 ? ipv4 : domain, tls_ossl_reason("unknown error"));
    else
        r = write_pair(cert_path, key_path, x, key, err, errlen);
    X509_free(x);
    EVP_PKEY_free(key);
    return r;
}
