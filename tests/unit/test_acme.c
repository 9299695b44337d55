/* test_acme.c: the ACME client's sans-I/O parts: the bounded JSON reader,
 * base64url, the JWK thumbprint (RFC 7638 §3.1 vector), the ES256 JWS
 * (signature verified), the CSR, the tls-alpn-01 certificate (RFC 8737
 * extension) and the renewal time. */
#include "check.h"

#include "acme/acme_int.h"
#include "acme/acme_json.h"
#include "core/buf.h"

#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static struct ajson_tok toks[256];

static int parse(struct ajson *j, const char *s)
{
    return ajson_parse(j, s, strlen(s), toks, 256);
}

TEST(json_lookup)
{
    struct ajson j;
    const char *doc = " {\"status\" : \"pending\", \"identifier\":{\"type\":\"dns\",\"value\":"
                      "\"relay1.test\"},\"challenges\":[{\"type\":\"http-01\",\"token\":\"t1\"},"
                      "{\"type\":\"tls-alpn-01\",\"token\":\"t2\",\"n\":[1,2.5e3,-0.1,true,false,"
                      "null]}],\"status\":\"dup\"} ";
    CHECK_INT_EQ(parse(&j, doc), 0);
    char out[64];
    CHECK_INT_EQ(ajson_get_str(&j, 0, "status", out, sizeof out), 7);
    CHECK_STR_EQ(out, "pending"); /* the first of repeated members */
    CHECK(ajson_str_is(&j, ajson_get(&j, 0, "identifier"), "value", "relay1.test"));
    int chs = ajson_get(&j, 0, "challenges");
    CHECK(ajson_str_is(&j, ajson_at(&j, chs, 1), "type", "tls-alpn-01"));
    CHECK(ajson_str_is(&j, ajson_at(&j, chs, 1), "token", "t2"));
    CHECK_INT_EQ(ajson_at(&j, chs, 2), -1);
    CHECK_INT_EQ(ajson_get(&j, 0, "nothing"), -1);
    CHECK_INT_EQ(ajson_get(&j, chs, "type"), -1);  /* not an object */
    CHECK_INT_EQ(ajson_get_str(&j, 0, "challenges", out, sizeof out), -1); /* not a string */
    CHECK_INT_EQ(ajson_get_str(&j, 0, "status", out, 7), -1); /* does not fit */
}

TEST(json_escapes)
{
    struct ajson j;
    char out[64];
    CHECK_INT_EQ(parse(&j, "[\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\"]"), 0);
    CHECK_INT_EQ(ajson_str(&j, ajson_at(&j, 0, 0), out, sizeof out), 14);
    CHECK_STR_EQ(out, "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80");
    CHECK_INT_EQ(parse(&j, "[\"\\ud83d\"]"), 0); /* tokenises, but a lone surrogate */
    CHECK_INT_EQ(ajson_str(&j, 1, out, sizeof out), -1);
    CHECK_INT_EQ(parse(&j, "[\"\\u0000\"]"), 0);
    CHECK_INT_EQ(ajson_str(&j, 1, out, sizeof out), -1);
}

TEST(json_refused)
{
    struct ajson j;
    const char *bad[] = {"", " ", "{", "}", "[1,]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}",
                         "[01]", "[1.]", "[-]", "[1e]", "\"\\x\"", "\"a", "\"\x01\"", "tru",
                         "[1] 2", "[\"\\u12g4\"]", "nul", "{\"a\":1 \"b\":2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse(&j, bad[i]) != -1) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
            CHECK(0);
        }
    char deep[64] = "", deeper[64] = "";
    for (int i = 0; i < ACME_JSON_DEPTH; i++)
        strcat(deep, "[");
    for (int i = 0; i < ACME_JSON_DEPTH; i++)
        strcat(deep, "]");
    CHECK_INT_EQ(parse(&j, deep), 0);
    for (int i = 0; i <= ACME_JSON_DEPTH; i++)
        strcat(deeper, "[");
    for (int i = 0; i <= ACME_JSON_DEPTH; i++)
        strcat(deeper, "]");
    CHECK_INT_EQ(parse(&j, deeper), -1);
    CHECK_INT_EQ(ajson_parse(&j, "[1,2,3]", 7, toks, 3), -1); /* 4 tokens needed */
    CHECK_INT_EQ(ajson_parse(&j, "[1,2,3]", 7, toks, 4), 0);
}

TEST(thumbprint_rfc7638)
{
    const char *jwk =
        "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhW"
        "x4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yB"
        "XArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQv"
        "RL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF"
        "44-csFCur-kEgU8awapJzKnqDKgw\"}";
    char t[64];
    CHECK_INT_EQ(acme_thumbprint(jwk, t, sizeof t), 0);
    CHECK_STR_EQ(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    char b[16];
    CHECK_INT_EQ(acme_b64url((const unsigned char *)"\xfb\xff", 2, b, sizeof b), 3);
    CHECK_STR_EQ(b, "-_8");
}

/* base64url decoding for the checks below */
static size_t unb64url(const char *s, size_t n, unsigned char *out)
{
    char tmp[2048] = "";
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof tmp - 4; i++)
        tmp[k++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (k % 4)
        tmp[k++] = '=';
    int len = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)k);
    return (size_t)len - (n % 4 == 2 ? 2 : n % 4 == 3 ? 1 : 0);
}

static const char *member(const char *json, const char *key, size_t *len)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    *len = (size_t)(strchr(p, '"') - p);
    return p;
}

TEST(jws_es256_verifies)
{
    EVP_PKEY *k = acme_key_new_ec();
    char jwk[ACME_JWK_MAX];
    CHECK(k != NULL);
    CHECK_INT_EQ(acme_jwk(k, jwk, sizeof jwk), 0);
    CHECK(strncmp(jwk, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", 31) == 0);
    struct buf out = {0};
    CHECK_INT_EQ(acme_jws(k, jwk, NULL, "nonce1", "https://a/new-acct", "{\"x\":1}", &out), 0);
    CHECK_INT_EQ(buf_append(&out, "", 1), 0);
    size_t pl, yl, sl;
    const char *prot = member(out.data, "protected", &pl);
    const char *payload = member(out.data, "payload", &yl);
    const char *sig = member(out.data, "signature", &sl);
    CHECK(prot && payload && sig);
    unsigned char raw[600], rs[100];
    size_t n = unb64url(prot, pl, raw);
    raw[n] = 0;
    CHECK(strstr((char *)raw, "\"alg\":\"ES256\"") && strstr((char *)raw, "\"nonce\":\"nonce1\"") &&
          strstr((char *)raw, "\"url\":\"https://a/new-acct\"") && strstr((char *)raw, jwk));
    n = unb64url(payload, yl, raw);
    CHECK(n == 7 && memcmp(raw, "{\"x\":1}", 7) == 0);
    CHECK_INT_EQ(unb64url(sig, sl, rs), 64);
    /* r || s back to DER, verified over "protected.payload" */
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL));
    unsigned char *der = NULL;
    int dl = i2d_ECDSA_SIG(es, &der);
    char input[1200];
    snprintf(input, sizeof input, "%.*s.%.*s", (int)pl, prot, (int)yl, payload);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CHECK(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1);
    CHECK(EVP_DigestVerify(md, der, (size_t)dl, (unsigned char *)input, strlen(input)) == 1);
    input[0] ^= 1;
    CHECK(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1);
    CHECK(EVP_DigestVerify(md, der, (size_t)dl, (unsigned char *)input, strlen(input)) != 1);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    /* with a kid instead of the JWK, and POST-as-GET */
    buf_reset(&out);
    CHECK_INT_EQ(acme_jws(k, jwk, "https://a/acct/1", "n2", "https://a/o", "", &out), 0);
    CHECK_INT_EQ(buf_append(&out, "", 1), 0);
    prot = member(out.data, "protected", &pl);
    n = unb64url(prot, pl, raw);
    raw[n] = 0;
    CHECK(strstr((char *)raw, "\"kid\":\"https://a/acct/1\"") && !strstr((char *)raw, "jwk"));
    CHECK(strstr(out.data, "\"payload\":\"\"") != NULL);
    /* server-given values that would break out of the header's strings */
    CHECK_INT_EQ(acme_jws(k, jwk, "https://a/\",\"x\":\"1", "n", "https://a/o", "", &out), -1);
    CHECK_INT_EQ(acme_jws(k, jwk, NULL, "n\\", "https://a/o", "", &out), -1);
    CHECK_INT_EQ(acme_jws(k, jwk, NULL, "n", "https://a/\n", "", &out), -1);
    buf_free(&out);
    EVP_PKEY_free(k);
}

TEST(csr_and_alpn_cert)
{
    EVP_PKEY *k = acme_key_new_ec();
    const char *names[] = {"relay1.test", "mta-sts.relay1.test", "www.relay1.test"};
    struct buf b = {0};
    CHECK_INT_EQ(acme_csr_b64(k, names, 3, &b), 0);
    unsigned char der[2048];
    size_t n = unb64url(b.data, b.len, der);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)n);
    CHECK(req != NULL && X509_REQ_verify(req, k) == 1);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gn = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    CHECK_INT_EQ(sk_GENERAL_NAME_num(gn), 3);
    GENERAL_NAMES_free(gn);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    buf_free(&b);
    EVP_PKEY_free(k);

    X509 *c = NULL;
    EVP_PKEY *ck = NULL;
    CHECK_INT_EQ(acme_alpn_cert("www.relay1.test", "tok.thumb", &c, &ck), 0);
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    int idx = X509_get_ext_by_OBJ(c, oid, -1);
    CHECK(idx >= 0);
    X509_EXTENSION *e = X509_get_ext(c, idx);
    CHECK(X509_EXTENSION_get_critical(e) == 1);
    ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(e);
    unsigned char want[34] = {0x04, 0x20};
    EVP_Digest("tok.thumb", 9, want + 2, NULL, EVP_sha256(), NULL);
    CHECK(ASN1_STRING_length(v) == 34 && memcmp(ASN1_STRING_get0_data(v), want, 34) == 0);
    CHECK(X509_check_host(c, "www.relay1.test", 0, 0, NULL) == 1);
    CHECK(X509_check_private_key(c, ck) == 1);
    ASN1_OBJECT_free(oid);
    X509_free(c);
    EVP_PKEY_free(ck);
}

TEST(renewal_time)
{
    /* 90 days: 30 days before expiry (day 60) equals 2/3 */
    CHECK_INT_EQ(acme_renew_at(0, 90 * 86400), 60 * 86400);
    /* 200 days: 30 days before (day 170) comes after 2/3 (day 133) */
    CHECK_INT_EQ(acme_renew_at(0, 200 * 86400), 400 * 86400 / 3);
    /* 80 days: 30 days before (day 50) comes first */
    CHECK_INT_EQ(acme_renew_at(0, 80 * 86400), 50 * 86400);
    /* short-lived: 2/3 alone (6 days -> day 4; 30 s -> 20 s) */
    CHECK_INT_EQ(acme_renew_at(1000, 1000 + 6 * 86400), 1000 + 4 * 86400);
    CHECK_INT_EQ(acme_renew_at(100, 130), 120);
}

int main(void)
{
    RUN(json_lookup);
    RUN(json_escapes);
    RUN(json_refused);
    RUN(thumbprint_rfc7638);
    RUN(jws_es256_verifies);
    RUN(csr_and_alpn_cert);
    RUN(renewal_time);
    return check_report();
}
