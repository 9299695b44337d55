/* password.c: Dovecot password scheme strings (spec §2.5).
 *
 * Verifies what existing relays wrote ({SHA512-CRYPT}$6$...) and the other
 * crypt(3) schemes through libcrypt's crypt_rn, argon2 through libsodium,
 * and plain text; new hashes are {ARGON2ID} in libsodium's string format,
 * which is exactly what Dovecot 2.3's ARGON2ID scheme stores and reads.
 * Comparisons are constant-time: both sides are hashed with BLAKE2b and
 * the digests compared with sodium_memcmp. Argon2 runs are bounded to
 * LIM_PW_ARGON2_PARALLEL at once so that memory use stays bounded. */
#include "core/limits.h"
#include "store/accounts.h"

#include "core/log.h"

#include <crypt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/* Cost of new hashes: OWASP's argon2id recommendation (19 MiB, 2 passes,
 * one lane). Chatmail clients make up long random passwords, so this
 * guards a leaked password file well, and a first login costs ~25 ms and
 * 19 MiB of one worker instead of libsodium's INTERACTIVE 75 ms and 64 MiB. */
#define ARGON2_OPS 2ULL
#define ARGON2_MEM (19u << 20)

static unsigned long long argon2_ops = ARGON2_OPS;
static size_t argon2_mem = ARGON2_MEM;
static pthread_mutex_t argon2_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t argon2_cv = PTHREAD_COND_INITIALIZER;
static int argon2_running;

void store_pw_set_argon2_limits(unsigned long long opslimit, size_t memlimit)
{
    pthread_mutex_lock(&argon2_mu);
    if (opslimit)
        argon2_ops = opslimit;
    if (memlimit)
        argon2_mem = memlimit;
    pthread_mutex_unlock(&argon2_mu);
}

static void argon2_enter(void)
{
    pthread_mutex_lock(&argon2_mu);
    while (argon2_running >= LIM_PW_ARGON2_PARALLEL)
        pthread_cond_wait(&argon2_cv, &argon2_mu);
    argon2_running++;
    pthread_mutex_unlock(&argon2_mu);
}

static void argon2_leave(void)
{
    pthread_mutex_lock(&argon2_mu);
    argon2_running--;
    pthread_cond_signal(&argon2_cv);
    pthread_mutex_unlock(&argon2_mu);
}

/* Constant-time equality of two byte strings of any lengths. */
static int ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    unsigned char da[32], db[32];
    crypto_generichash(da, sizeof da, a, alen, NULL, 0);
    crypto_generichash(db, sizeof db, b, blen, NULL, 0);
    return sodium_memcmp(da, db, sizeof da) == 0 && alen == blen;
}

static int verify_crypt(const char *setting, const char *prefix, const char *password)
{
    if (prefix && strncmp(setting, prefix, strlen(prefix)) != 0)
        return -1;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return -1;
    int rc = -1;
    const char *out = crypt_rn(password, setting, cd, (int)sizeof *cd);
    if (out && out[0] != '*')
        rc = ct_equal(out, strlen(out), setting, strlen(setting));
    sodium_memzero(cd, sizeof *cd);
    free(cd);
    return rc;
}

static int verify_argon2(const char *str, const char *prefix, const char *password)
{
    if (strncmp(str, prefix, strlen(prefix)) != 0 || strlen(str) >= crypto_pwhash_STRBYTES)
        return -1;
    char copy[crypto_pwhash_STRBYTES] = {0};
    memcpy(copy, str, strlen(str));
    argon2_enter();
    int rc = crypto_pwhash_str_verify(copy, password, strlen(password));
    argon2_leave();
    return rc == 0 ? 1 : 0;
}

static const struct {
    const char *name;
    const char *prefix; /* what the hash must start with */
    int kind;           /* 0 crypt, 1 argon2, 2 plain */
} schemes[] = {
    {"SHA512-CRYPT", "$6$", 0}, {"SHA256-CRYPT", "$5$", 0}, {"BLF-CRYPT", "$2", 0},
    {"MD5-CRYPT", "$1$", 0},    {"CRYPT", NULL, 0},         {"ARGON2ID", "$argon2id$", 1},
    {"ARGON2I", "$argon2i$", 1}, {"PLAIN", NULL, 2},        {"CLEAR", NULL, 2},
    {"CLEARTEXT", NULL, 2},
};

int store_pw_verify(const char *stored, const char *password)
{
    if (!stored || !password || sodium_init() < 0)
        return -1;
    const char *rest = stored;
    int kind = 2;
    const char *prefix = NULL;
    if (stored[0] == '{') {
        const char *end = strchr(stored, '}');
        if (!end)
            return -1;
        size_t n = (size_t)(end - stored - 1);
        kind = -1;
        for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
            if (strlen(schemes[i].name) == n && strncasecmp(stored + 1, schemes[i].name, n) == 0) {
                kind = schemes[i].kind;
                prefix = schemes[i].prefix;
            }
        }
        if (kind < 0)
            return -1;
        rest = end + 1;
    }
    if (kind == 0)
        return verify_crypt(rest, prefix, password);
    if (kind == 1)
        return verify_argon2(rest, prefix, password);
    return ct_equal(rest, strlen(rest), password, strlen(password));
}

int store_pw_hash(const char *password, char *out, size_t outsz)
{
    static const char tag[] = "{ARGON2ID}";
    char h[crypto_pwhash_STRBYTES];
    if (sodium_init() < 0 || outsz < sizeof tag - 1 + sizeof h)
        return -1;
    pthread_mutex_lock(&argon2_mu);
    unsigned long long ops = argon2_ops;
    size_t mem = argon2_mem;
    pthread_mutex_unlock(&argon2_mu);
    argon2_enter();
    int rc = crypto_pwhash_str_alg(h, password, strlen(password), ops, mem,
                                   crypto_pwhash_ALG_ARGON2ID13);
    argon2_leave();
    if (rc != 0) {
        log_error("password hashing failed (out of memory?)");
        return -1;
    }
    memcpy(out, tag, sizeof tag - 1);
    memcpy(out + sizeof tag - 1, h, strlen(h) + 1);
    return 0;
}
