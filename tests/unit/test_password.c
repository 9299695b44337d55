/* test_password.c: Dovecot password schemes (spec §2.5): SHA512-CRYPT as
 * written by existing relays, other crypt schemes, plain, argon2 as
 * Dovecot 2.3 stores it, and the {ARGON2ID} strings we create. */
#include "check.h"

#include "store/accounts.h"

#include <time.h>

/* openssl passwd -6 -salt saltsaltsaltsalt 'correct horse' */
static const char sha512_a[] =
    "{SHA512-CRYPT}$6$saltsaltsaltsalt$GkzgkzVbauGAKXpOTbypQEKy/9yJWVjcvXvDw7CxoJjnJ1.w.g1rV8bhCVTpHrRrO/h6b3DAwPN3y5qmHXZ1R1";
/* openssl passwd -6 -salt 'Zq/9.abc' 'ümlaut-pw9' */
static const char sha512_b[] =
    "{SHA512-CRYPT}$6$Zq/9.abc$nF/r5CfEJ4DjB3.BNn3UDoXfbxkITBbbqM221mIV2tvZwwt5LJ3MpHhMaIJHue6IjwqCPoJfQBtZDMjiKMEvg1";
/* openssl passwd -5 -salt abcdefgh 'p4ssw0rd!x' */
static const char sha256_a[] = "{SHA256-CRYPT}$5$abcdefgh$DiR4AlGUA/Dl3q7U8FlGIKLcT45jCidN7m7gEWl7ge6";
/* python crypt.crypt('blowfish-pw1', mksalt(METHOD_BLOWFISH, rounds=16)) */
static const char bcrypt_a[] = "{BLF-CRYPT}$2b$04$APeJ5vyQbyPyrdsEEVkW3./kF.Xydc8b74hQSOtm9i0ZbdApoxsZq";
/* libsodium crypto_pwhash_str_alg, INTERACTIVE limits: what Dovecot's
 * `doveadm pw -s ARGON2ID` stores */
static const char argon2id_a[] =
    "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$fhB/uDM/DRgtov7UmHFKVQ$G+W8zH47uqzdgK6Dq2NFmi7Ud0G1wyGb8mwdd1QLcYI";
static const char argon2i_a[] =
    "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$koZyzTaaUIPWtvMHL3+BRA$QXSWESYQIt1WBs5pihiqu7GgU+gORtBSl+oZp06md7E";

TEST(sha512_crypt_vectors)
{
    CHECK_INT_EQ(store_pw_verify(sha512_a, "correct horse"), 1);
    CHECK_INT_EQ(store_pw_verify(sha512_a, "correct horsE"), 0);
    CHECK_INT_EQ(store_pw_verify(sha512_a, ""), 0);
    CHECK_INT_EQ(store_pw_verify(sha512_b, "ümlaut-pw9"), 1);
    CHECK_INT_EQ(store_pw_verify(sha512_b, "umlaut-pw9"), 0);
    /* scheme names are case-insensitive in Dovecot */
    CHECK_INT_EQ(store_pw_verify("{sha512-crypt}$6$saltsaltsaltsalt$GkzgkzVbauGAKXpOTbypQEKy/9yJWVjcvXvDw7CxoJjnJ1.w.g1rV8bhCVTpHrRrO/h6b3DAwPN3y5qmHXZ1R1", "correct horse"), 1);
    /* a hash that does not fit its scheme is refused, not matched */
    CHECK_INT_EQ(store_pw_verify("{SHA512-CRYPT}$5$abcdefgh$DiR4AlGUA/Dl3q7U8FlGIKLcT45jCidN7m7gEWl7ge6", "p4ssw0rd!x"), -1);
    /* a corrupted hash blocks the account */
    CHECK(store_pw_verify("{SHA512-CRYPT}$6$saltsaltsaltsalt$Gkzgkz", "correct horse") != 1);
    CHECK(store_pw_verify("{SHA512-CRYPT}garbage", "correct horse") != 1);
}

TEST(other_crypt_schemes)
{
    CHECK_INT_EQ(store_pw_verify(sha256_a, "p4ssw0rd!x"), 1);
    CHECK_INT_EQ(store_pw_verify(sha256_a, "p4ssw0rd!"), 0);
    CHECK_INT_EQ(store_pw_verify(bcrypt_a, "blowfish-pw1"), 1);
    CHECK_INT_EQ(store_pw_verify(bcrypt_a, "blowfish-pw2"), 0);
    CHECK_INT_EQ(store_pw_verify("{CRYPT}$6$saltsaltsaltsalt$GkzgkzVbauGAKXpOTbypQEKy/9yJWVjcvXvDw7CxoJjnJ1.w.g1rV8bhCVTpHrRrO/h6b3DAwPN3y5qmHXZ1R1", "correct horse"), 1);
}

TEST(plain_schemes)
{
    CHECK_INT_EQ(store_pw_verify("{PLAIN}secret-pw", "secret-pw"), 1);
    CHECK_INT_EQ(store_pw_verify("{PLAIN}secret-pw", "secret-p"), 0);
    CHECK_INT_EQ(store_pw_verify("{CLEAR}secret-pw", "secret-pw"), 1);
    CHECK_INT_EQ(store_pw_verify("{CLEARTEXT}", ""), 1);
    /* default_pass_scheme = plain: no {SCHEME} means plain text */
    CHECK_INT_EQ(store_pw_verify("secret-pw", "secret-pw"), 1);
    CHECK_INT_EQ(store_pw_verify("secret-pw", "secret-pw "), 0);
    CHECK_INT_EQ(store_pw_verify("{NOSUCH}abc", "abc"), -1);
    CHECK_INT_EQ(store_pw_verify("{PLAIN", "{PLAIN"), -1);
    CHECK_INT_EQ(store_pw_verify(NULL, "x"), -1);
}

TEST(argon2_dovecot_strings)
{
    CHECK_INT_EQ(store_pw_verify(argon2id_a, "dovecot-pw-1"), 1);
    CHECK_INT_EQ(store_pw_verify(argon2id_a, "dovecot-pw-2"), 0);
    CHECK_INT_EQ(store_pw_verify(argon2i_a, "argon2i-pw-1"), 1);
    CHECK_INT_EQ(store_pw_verify(argon2i_a, "argon2i-pw-2"), 0);
    /* scheme and string must agree */
    CHECK_INT_EQ(store_pw_verify("{ARGON2I}$argon2id$v=19$m=65536,t=2,p=1$fhB/uDM/DRgtov7UmHFKVQ$G+W8zH47uqzdgK6Dq2NFmi7Ud0G1wyGb8mwdd1QLcYI", "dovecot-pw-1"), -1);
    CHECK(store_pw_verify("{ARGON2ID}$argon2id$v=19$m=65536", "dovecot-pw-1") != 1);
}

static double ms_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

TEST(argon2id_round_trip)
{
    char h[STORE_HASH_MAX];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT_EQ(store_pw_hash("a fresh password", h, sizeof h), 0);
    double hash_ms = ms_since(&t0);
    const char *want = "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$";
    CHECK(strncmp(h, want, strlen(want)) == 0);
    CHECK(strchr(h, '\n') == NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT_EQ(store_pw_verify(h, "a fresh password"), 1);
    double verify_ms = ms_since(&t0);
    CHECK_INT_EQ(store_pw_verify(h, "a fresh passworD"), 0);
    printf("argon2id (t=2, m=19 MiB): hash %.1f ms, verify %.1f ms\n", hash_ms, verify_ms);
    char h2[STORE_HASH_MAX];
    CHECK_INT_EQ(store_pw_hash("a fresh password", h2, sizeof h2), 0);
    CHECK(strcmp(h, h2) != 0); /* random salt */
    CHECK_INT_EQ(store_pw_hash("x", h2, 20), -1); /* no room */
    store_pw_set_argon2_limits(1, 8192);
    CHECK_INT_EQ(store_pw_hash("cheap", h2, sizeof h2), 0);
    CHECK(strncmp(h2, "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$", 37) == 0);
    CHECK_INT_EQ(store_pw_verify(h2, "cheap"), 1);
}

int main(void)
{
    RUN(sha512_crypt_vectors);
    RUN(other_crypt_schemes);
    RUN(plain_schemes);
    RUN(argon2_dovecot_strings);
    RUN(argon2id_round_trip);
    return check_report();
}
