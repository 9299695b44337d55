/* test_dkim.c: src/dkim against the RFC examples (RFC 6376 §3.4.5 and
 * Appendix A, RFC 8463 Appendix A), its own signer, chunked input, the
 * refusals (l=, rsa-sha1, x=, revoked key, misaligned d=) and the verdict
 * texts, the key cache. */
#include "check.h"
#include "core/base64.h"
#include "dkim/dkim.h"
#include "dkim/dkim_int.h"

#include <openssl/pem.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CRLF "\r\n"

static const char rfc8463_msg[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;" CRLF
    " d=football.example.com; i=@football.example.com;" CRLF
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :" CRLF
    " subject : date : message-id : from : subject : date;" CRLF
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;" CRLF
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus" CRLF
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==" CRLF
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;" CRLF
    " d=football.example.com; i=@football.example.com;" CRLF
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :" CRLF
    " date : message-id : from : subject : date;" CRLF
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;" CRLF
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3" CRLF
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz" CRLF
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=" CRLF
    "From: Joe SixPack <joe@football.example.com>" CRLF
    "To: Suzie Q <suzie@shopping.example.net>" CRLF
    "Subject: Is dinner ready?" CRLF
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)" CRLF
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>" CRLF
    CRLF
    "Hi." CRLF
    CRLF
    "We lost the game.  Are you hungry yet?" CRLF
    CRLF
    "Joe." CRLF;

static const char rfc8463_ed_key[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rfc8463_rsa_key[] =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

/* RFC 6376 Appendix A.2 and the Appendix C public key. */
static const char rfc6376_msg[] =
    "DKIM-Signature: v=1; a=rsa-sha256; s=brisbane; d=example.com;" CRLF
    "      c=simple/simple; q=dns/txt; i=joe@football.example.com;" CRLF
    "      h=Received : From : To : Subject : Date : Message-ID;" CRLF
    "      bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;" CRLF
    "      b=AuUoFEfDxTDkHlLXSZEpZj79LICEps6eda7W3deTVFOk4yAUoqOB" CRLF
    "        4nujc7YopdG5dWLSdNg6xNAZpOPr+kHxt1IrE+NahM6L/LbvaHut" CRLF
    "        KVdkLLkpVaVVQPzeRDI009SO2Il5Lu7rDNH6mZckBdrIx0orEtZV" CRLF
    "        4bmp/YzhwvcubU4=;" CRLF
    "Received: from client1.football.example.com  [192.0.2.1]" CRLF
    "      by submitserver.example.com with SUBMISSION;" CRLF
    "      Fri, 11 Jul 2003 21:01:54 -0700 (PDT)" CRLF
    "From: Joe SixPack <joe@football.example.com>" CRLF
    "To: Suzie Q <suzie@shopping.example.net>" CRLF
    "Subject: Is dinner ready?" CRLF
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)" CRLF
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>" CRLF
    CRLF
    "Hi." CRLF
    CRLF
    "We lost the game. Are you hungry yet?" CRLF
    CRLF
    "Joe." CRLF;
static const char rfc6376_key[] =
    "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYt"
    "IxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhi"
    "tdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB";

struct keydef {
    const char *name;
    enum dkim_lookup status;
    const char *txt;
};

/* Runs a verifier over msg in chunks of `chunk` bytes (0 = all at once). */
static struct dkim_verifier *verify(const char *msg, size_t len, size_t chunk,
                                    const struct keydef *keys, size_t nkeys, int64_t now)
{
    struct dkim_verifier *v = dkim_verifier_new();
    for (size_t off = 0; off < len;) {
        size_t n = chunk && len - off > chunk ? chunk : len - off;
        dkim_verifier_feed(v, msg + off, n);
        off += n;
    }
    dkim_verifier_finish(v);
    for (size_t q = 0; q < dkim_verifier_nqueries(v); q++)
        for (size_t k = 0; k < nkeys; k++)
            if (strcmp(dkim_verifier_query(v, q), keys[k].name) == 0) {
                size_t l = keys[k].txt ? strlen(keys[k].txt) : 0;
                dkim_verifier_set_key(v, q, keys[k].status, &keys[k].txt, &l, keys[k].txt ? 1 : 0);
            }
    dkim_verifier_run(v, now);
    return v;
}

static const struct keydef rfc8463_keys[] = {
    {"brisbane._domainkey.football.example.com", DKIM_LOOKUP_FOUND, rfc8463_ed_key},
    {"test._domainkey.football.example.com", DKIM_LOOKUP_FOUND, rfc8463_rsa_key},
};

static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at)
        return NULL;
    size_t a = (size_t)(at - s), fl = strlen(from), tl = strlen(to), sl = strlen(s);
    char *out = malloc(sl - fl + tl + 1);
    memcpy(out, s, a);
    memcpy(out + a, to, tl);
    memcpy(out + a + tl, at + fl, sl - a - fl + 1);
    return out;
}

TEST(rfc8463_both_pass_any_chunking)
{
    size_t chunks[] = {0, 1, 2, 3, 7, 64, 1000};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        struct dkim_verifier *v =
            verify(rfc8463_msg, strlen(rfc8463_msg), chunks[c], rfc8463_keys, 2, 1600000000);
        CHECK_INT_EQ(dkim_verifier_nresults(v), 2);
        CHECK_INT_EQ(dkim_verifier_nqueries(v), 2);
        CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "pass");
        CHECK_STR_EQ(dkim_verifier_result(v, 1)->reason, "pass");
        CHECK_STR_EQ(dkim_verifier_result(v, 0)->domain, "football.example.com");
        struct dkim_verdict vd = dkim_verifier_verdict(v, "Football.Example.COM");
        CHECK_INT_EQ(vd.kind, DKIM_VERDICT_PASS);
        CHECK(vd.smtp_reply == NULL);
        /* d= must equal the From domain exactly: no subdomain alignment */
        vd = dkim_verifier_verdict(v, "example.com");
        CHECK_STR_EQ(vd.smtp_reply, "554 5.7.1 No valid DKIM signature found");
        vd = dkim_verifier_verdict(v, "sub.football.example.com");
        CHECK_INT_EQ(vd.kind, DKIM_VERDICT_INVALID);
        dkim_verifier_free(v);
    }
}

TEST(rfc8463_relaxed_tolerates_whitespace)
{
    char *m1 = replace(rfc8463_msg, "Subject: Is dinner ready?", "SUBJECT:   Is dinner\t ready?  ");
    char *m2 = replace(m1, "Are you hungry yet?", "Are   you hungry yet? \t");
    struct dkim_verifier *v = verify(m2, strlen(m2), 5, rfc8463_keys, 2, 1600000000);
    CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "pass");
    CHECK_STR_EQ(dkim_verifier_result(v, 1)->reason, "pass");
    dkim_verifier_free(v);
    free(m1);
    free(m2);
}

TEST(rfc8463_changed_body_or_header_fails)
{
    char *body = replace(rfc8463_msg, "We lost the game.", "We won the game.");
    struct dkim_verifier *v = verify(body, strlen(body), 0, rfc8463_keys, 2, 1600000000);
    CHECK_INT_EQ(dkim_verifier_result(v, 0)->status, DKIM_FAIL);
    CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "body hash mismatch");
    CHECK_STR_EQ(dkim_verifier_result(v, 1)->reason, "body hash mismatch");
    CHECK_STR_EQ(dkim_verifier_verdict(v, "football.example.com").smtp_reply,
                 DKIM_REPLY_INVALID);
    dkim_verifier_free(v);
    free(body);
    char *hdr = replace(rfc8463_msg, "Is dinner ready?", "Is dinner readz?");
    v = verify(hdr, strlen(hdr), 0, rfc8463_keys, 2, 1600000000);
    CHECK_INT_EQ(dkim_verifier_result(v, 0)->status, DKIM_FAIL);
    CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "signature did not verify");
    CHECK(dkim_verifier_result(v, 0)->crypto_failed);
    CHECK_STR_EQ(dkim_verifier_result(v, 1)->reason, "signature did not verify");
    dkim_verifier_free(v);
    free(hdr);
    /* a second From above the signed one: h= over-signs from */
    char *from = replace(rfc8463_msg, "From: Joe", "From: Bank <a@bank.example>" CRLF "From: Joe");
    v = verify(from, strlen(from), 0, rfc8463_keys, 2, 1600000000);
    CHECK_INT_EQ(dkim_verifier_result(v, 0)->status, DKIM_FAIL);
    dkim_verifier_free(v);
    free(from);
}

TEST(key_lookup_outcomes_and_verdicts)
{
    struct keydef temp[] = {
        {"brisbane._domainkey.football.example.com", DKIM_LOOKUP_TEMPFAIL, NULL},
        {"test._domainkey.football.example.com", DKIM_LOOKUP_NOKEY, NULL}};
    struct dkim_verifier *v = verify(rfc8463_msg, strlen(rfc8463_msg), 0, temp, 2, 1600000000);
    CHECK_INT_EQ(dkim_verifier_result(v, 0)->status, DKIM_TEMPERROR);
    CHECK_INT_EQ(dkim_verifier_result(v, 1)->status, DKIM_PERMERROR);
    CHECK_STR_EQ(dkim_verifier_result(v, 1)->reason, "no key record");
    struct dkim_verdict vd = dkim_verifier_verdict(v, "football.example.com");
    CHECK_INT_EQ(vd.kind, DKIM_VERDICT_TEMP);
    CHECK(strncmp(vd.smtp_reply, "451 4.7.5 ", 10) == 0);
    /* a temporary failure for another domain cannot make it pass: 554 */
    CHECK_INT_EQ(dkim_verifier_verdict(v, "other.example").kind, DKIM_VERDICT_INVALID);
    dkim_verifier_free(v);

    /* unanswered queries count as temporary */
    v = verify(rfc8463_msg, strlen(rfc8463_msg), 0, NULL, 0, 1600000000);
    CHECK_INT_EQ(dkim_verifier_verdict(v, "football.example.com").kind, DKIM_VERDICT_TEMP);
    dkim_verifier_free(v);

    /* revoked key */
    struct keydef revoked[] = {
        {"brisbane._domainkey.football.example.com", DKIM_LOOKUP_FOUND, "v=DKIM1; k=ed25519; p="},
        {"test._domainkey.football.example.com", DKIM_LOOKUP_FOUND, "v=DKIM1; p="}};
    v = verify(rfc8463_msg, strlen(rfc8463_msg), 0, revoked, 2, 1600000000);
    CHECK_INT_EQ(dkim_verifier_result(v, 0)->status, DKIM_PERMERROR);
    CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "key revoked");
    CHECK_STR_EQ(dkim_verifier_result(v, 1)->reason, "key revoked");
    CHECK_STR_EQ(dkim_verifier_verdict(v, "football.example.com").smtp_reply,
                 "554 5.7.1 No valid DKIM signature found");
    dkim_verifier_free(v);

    /* wrong key type: the RSA record for the Ed25519 signature */
    struct keydef swapped[] = {
        {"brisbane._domainkey.football.example.com", DKIM_LOOKUP_FOUND, rfc8463_rsa_key},
        {"test._domainkey.football.example.com", DKIM_LOOKUP_FOUND, rfc8463_ed_key}};
    v = verify(rfc8463_msg, strlen(rfc8463_msg), 0, swapped, 2, 1600000000);
    CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "key type does not match a=");
    CHECK_STR_EQ(dkim_verifier_result(v, 1)->reason, "key type does not match a=");
    dkim_verifier_free(v);
}

TEST(no_signature_and_address_literal)
{
    const char *msg = "From: a@b.example" CRLF "Subject: x" CRLF CRLF "hi" CRLF;
    struct dkim_verifier *v = verify(msg, strlen(msg), 0, NULL, 0, 0);
    CHECK_INT_EQ(dkim_verifier_nresults(v), 0);
    CHECK_STR_EQ(dkim_verifier_verdict(v, "b.example").smtp_reply,
                 "554 5.7.1 No DKIM signature found");
    CHECK_INT_EQ(dkim_verifier_verdict(v, "[192.0.2.1]").kind, DKIM_VERDICT_PASS);
    dkim_verifier_free(v);
    /* a message that is only a header block, without final CRLF */
    v = verify("From: a@b.example", 17, 0, NULL, 0, 0);
    CHECK_INT_EQ(dkim_verifier_verdict(v, "b.example").kind, DKIM_VERDICT_NONE);
    dkim_verifier_free(v);
    /* a header line without a colon: malformed, never a pass */
    const char *bad = "From: a@b.example" CRLF "garbage line" CRLF CRLF "x" CRLF;
    v = verify(bad, strlen(bad), 0, NULL, 0, 0);
    CHECK_INT_EQ(dkim_verifier_verdict(v, "b.example").kind, DKIM_VERDICT_INVALID);
    dkim_verifier_free(v);
}

TEST(refusals_l_sha1_expired)
{
    char *m = replace(rfc8463_msg, "t=1528637909; h=from : to :", "t=1528637909; x=1528640000; h=from : to :");
    struct dkim_verifier *v = verify(m, strlen(m), 0, rfc8463_keys, 2, 1528650000);
    CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "signature expired");
    CHECK_INT_EQ(dkim_verifier_result(v, 0)->status, DKIM_PERMERROR);
    CHECK_STR_EQ(dkim_verifier_result(v, 1)->reason, "pass"); /* the RSA one has no x= */
    dkim_verifier_free(v);
    free(m);
    m = replace(rfc8463_msg, "a=rsa-sha256", "a=rsa-sha1");
    v = verify(m, strlen(m), 0, rfc8463_keys, 2, 1600000000);
    CHECK_STR_EQ(dkim_verifier_result(v, 1)->reason, "rsa-sha1 not accepted");
    CHECK_INT_EQ(dkim_verifier_nqueries(v), 1); /* no lookup for a refused signature */
    dkim_verifier_free(v);
    free(m);
    m = replace(rfc8463_msg, "q=dns/txt; s=brisbane;", "q=dns/txt; l=20; s=brisbane;");
    v = verify(m, strlen(m), 0, rfc8463_keys, 2, 1600000000);
    CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "l= not accepted");
    CHECK_STR_EQ(dkim_verifier_result(v, 1)->reason, "pass");
    dkim_verifier_free(v);
    free(m);
}

TEST(rfc6376_appendix_a)
{
    /* The published example (with its indentation as printed, which is
     * what simple/simple hashes) verifies with the Appendix C key. Its
     * d= is example.com while From is football.example.com: under our
     * exact alignment rule it does not make the From domain pass. */
    struct keydef k[] = {{"brisbane._domainkey.example.com", DKIM_LOOKUP_FOUND, rfc6376_key}};
    struct dkim_verifier *v = verify(rfc6376_msg, strlen(rfc6376_msg), 3, k, 1, 1600000000);
    CHECK_INT_EQ(dkim_verifier_nresults(v), 1);
    CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "pass");
    CHECK_INT_EQ(dkim_verifier_verdict(v, "example.com").kind, DKIM_VERDICT_PASS);
    CHECK_STR_EQ(dkim_verifier_verdict(v, "football.example.com").smtp_reply, DKIM_REPLY_INVALID);
    dkim_verifier_free(v);
    /* one space less in the indentation breaks simple header canonicalisation */
    char *m = replace(rfc6376_msg, "      c=simple", "     c=simple");
    v = verify(m, strlen(m), 0, k, 1, 1600000000);
    CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "signature did not verify");
    dkim_verifier_free(v);
    free(m);

    /* body hash (simple) */
    const char *body = strstr(rfc6376_msg, CRLF CRLF) + 4;
    struct dkim_headers h = {0};
    size_t used = dkim_headers_feed(&h, rfc6376_msg, strlen(rfc6376_msg));
    CHECK(h.done);
    CHECK_INT_EQ(used, (size_t)(body - rfc6376_msg));
    CHECK_INT_EQ(h.n, 7);
    /* the signature itself, hashed by hand */
    const struct dkim_field *f = &h.f[0];
    const char *field = h.raw.data + f->off;
    const char *b = strstr(field, " b=") + 3, *semi = strchr(b, ';');
    char nob[1024];
    size_t a = (size_t)(b - field);
    memcpy(nob, field, a);
    memcpy(nob + a, semi, f->len - (size_t)(semi - field));
    size_t nob_len = f->len - (size_t)(semi - b);
    char hn[6][64] = {"received", "from", "to", "subject", "date", "message-id"};
    unsigned char digest[32];
    CHECK_INT_EQ(dkim_hash_headers(&h, (const char(*)[64])hn, 6, DKIM_CANON_SIMPLE, nob, nob_len,
                                   digest), 0);
    struct dkim_key key;
    const char *why = NULL;
    CHECK_INT_EQ(dkim_key_parse(rfc6376_key, strlen(rfc6376_key), &key, &why), 0);
    char b64[400];
    size_t bl = 0;
    for (const char *p = b; p < semi; p++)
        if (!dkim_is_wsp((unsigned char)*p))
            b64[bl++] = *p;
    unsigned char sig[256];
    long sl = base64_decode(b64, bl, sig, sizeof sig);
    CHECK_INT_EQ(sl, 128);
    CHECK_INT_EQ(dkim_crypto_verify(DKIM_ALG_RSA_SHA256, &key, digest, sig, (size_t)sl, &why), 1);
    dkim_headers_free(&h);
}

static void collect(void *ctx, const char *p, size_t n)
{
    buf_append(ctx, p, n);
}

static char *canon_body(enum dkim_canon c, const char *in, size_t len, size_t chunk)
{
    struct buf out = {0};
    struct dkim_bodycanon bc;
    dkim_bodycanon_init(&bc, c, collect, &out);
    for (size_t off = 0; off < len;) {
        size_t n = chunk && len - off > chunk ? chunk : len - off;
        dkim_bodycanon_feed(&bc, in + off, n);
        off += n;
    }
    dkim_bodycanon_finish(&bc);
    buf_append(&out, "", 1);
    return out.data;
}

TEST(rfc6376_3_4_5_canonicalisation_example)
{
    const char *h1 = "A: X" CRLF, *h2 = "B : Y\t" CRLF "\tZ  " CRLF;
    const char *body = " C " CRLF "D \t E" CRLF CRLF CRLF;
    struct buf o = {0};
    dkim_canon_header(DKIM_CANON_RELAXED, h1, strlen(h1), &o);
    dkim_canon_header(DKIM_CANON_RELAXED, h2, strlen(h2), &o);
    buf_append(&o, "", 1);
    CHECK_STR_EQ(o.data, "a:X" CRLF "b:Y Z" CRLF);
    buf_reset(&o);
    dkim_canon_header(DKIM_CANON_SIMPLE, h1, strlen(h1), &o);
    dkim_canon_header(DKIM_CANON_SIMPLE, h2, strlen(h2), &o);
    buf_append(&o, "", 1);
    CHECK_STR_EQ(o.data, "A: X" CRLF "B : Y\t" CRLF "\tZ  " CRLF);
    buf_free(&o);
    for (size_t chunk = 0; chunk < 6; chunk++) {
        char *r = canon_body(DKIM_CANON_RELAXED, body, strlen(body), chunk);
        CHECK_STR_EQ(r, " C" CRLF "D E" CRLF);
        free(r);
        char *s = canon_body(DKIM_CANON_SIMPLE, body, strlen(body), chunk);
        CHECK_STR_EQ(s, " C " CRLF "D \t E" CRLF);
        free(s);
    }
}

TEST(body_canon_edges)
{
    struct { enum dkim_canon c; const char *in, *out; } cases[] = {
        {DKIM_CANON_SIMPLE, "", CRLF},
        {DKIM_CANON_RELAXED, "", ""},
        {DKIM_CANON_SIMPLE, CRLF CRLF, CRLF},
        {DKIM_CANON_RELAXED, CRLF " \t" CRLF, ""},
        {DKIM_CANON_SIMPLE, "abc", "abc" CRLF},
        {DKIM_CANON_RELAXED, "abc", "abc" CRLF},
        {DKIM_CANON_RELAXED, "a  b", "a b" CRLF},
        {DKIM_CANON_SIMPLE, "a\rb" CRLF, "a\rb" CRLF},
        {DKIM_CANON_SIMPLE, "a\r", "a\r" CRLF},
        {DKIM_CANON_SIMPLE, "a\nb" CRLF, "a\nb" CRLF},
        {DKIM_CANON_RELAXED, "x" CRLF CRLF "y \r" CRLF CRLF, "x" CRLF CRLF "y \r" CRLF},
        {DKIM_CANON_RELAXED, " lead" CRLF, " lead" CRLF},
        {DKIM_CANON_SIMPLE, "x" CRLF " " CRLF CRLF, "x" CRLF " " CRLF},
        {DKIM_CANON_RELAXED, "\xc3\xa4 \xc3\xb6\t\t" CRLF, "\xc3\xa4 \xc3\xb6" CRLF},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t chunk = 0; chunk < 4; chunk++) {
            char *r = canon_body(cases[i].c, cases[i].in, strlen(cases[i].in), chunk);
            if (strcmp(r, cases[i].out) != 0)
                fprintf(stderr, "case %zu chunk %zu\n", i, chunk);
            CHECK_STR_EQ(r, cases[i].out);
            free(r);
        }
}

TEST(sig_parse_refusals)
{
    struct dkim_sig s;
    const char *why = NULL;
    const char *good = "v=1; a=rsa-sha256; d=Example.COM; s=sel; h=From:To; bh=AAAA; b=AAAA;";
    CHECK_INT_EQ(dkim_sig_parse(good, strlen(good), &s, &why), 0);
    CHECK_STR_EQ(s.domain, "example.com");
    CHECK_INT_EQ(s.n_hnames, 2);
    CHECK_STR_EQ(s.hnames[1], "to");
    CHECK_INT_EQ(s.hcanon, DKIM_CANON_SIMPLE);
    struct { const char *in, *why; } bad[] = {
        {"v=1; a=rsa-sha256; d=e.com; s=s; h=to; bh=AAAA; b=AAAA", "h= does not include From"},
        {"v=2; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA", "unsupported version"},
        {"v=1; a=rsa-md5; d=e.com; s=s; h=from; bh=AAAA; b=AAAA", "unknown algorithm"},
        {"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA", "missing b="},
        {"v=1; a=rsa-sha256; s=s; h=from; bh=AAAA; b=AAAA", "missing d="},
        {"v=1; v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA", "duplicate tag"},
        {"v=1;; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA", "empty tag-spec"},
        {"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AA!A", "bad base64 value"},
        {"v=1; a=rsa-sha256; d=e.com; i=x@other.com; s=s; h=from; bh=AAAA; b=AAAA",
         "i= is not within d="},
        {"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; c=fancy", "unknown canonicalization"},
        {"v=1; a=rsa-sha256; d=e..com; s=s; h=from; bh=AAAA; b=AAAA", "bad d="},
        {"v=1; a=rsa-sha256; d=e.com; s=s/x; h=from; bh=AAAA; b=AAAA", "bad s="},
        {"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; t=10; x=5", "x= before t="},
        {"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; q=http", "q= without dns/txt"},
        {"v=1; 1a=rsa-sha256", "bad tag name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        CHECK_INT_EQ(dkim_sig_parse(bad[i].in, strlen(bad[i].in), &s, &why), -1);
        CHECK_STR_EQ(why, bad[i].why);
    }
    const char *sub = "v=1; a=ed25519-sha256; c=relaxed; d=e.com; i=@mail.E.com; s=s; "
                      "h = from : to ; bh=AA\r\n AA; b=AA AA; l=10; z=x|y";
    CHECK_INT_EQ(dkim_sig_parse(sub, strlen(sub), &s, &why), 0);
    CHECK_INT_EQ(s.bcanon, DKIM_CANON_SIMPLE);
    CHECK_INT_EQ(s.hcanon, DKIM_CANON_RELAXED);
    CHECK(s.has_l && s.l == 10);
    CHECK_STR_EQ(s.auid_domain, "mail.e.com");
}

TEST(key_parse)
{
    struct dkim_key k;
    const char *why = NULL;
    CHECK_INT_EQ(dkim_key_parse(rfc8463_ed_key, strlen(rfc8463_ed_key), &k, &why), 0);
    CHECK_INT_EQ(k.type, DKIM_KEY_ED25519);
    CHECK_INT_EQ(k.pub_len, 32);
    const char *rev = "v=DKIM1; p=";
    CHECK_INT_EQ(dkim_key_parse(rev, strlen(rev), &k, &why), 0);
    CHECK(k.revoked);
    const char *ts = "k=rsa; t=y:s; p=AAAA; s=email:*; h=sha1:sha256; n=note";
    CHECK_INT_EQ(dkim_key_parse(ts, strlen(ts), &k, &why), 0);
    CHECK(k.testing && k.strict);
    struct { const char *in, *why; } bad[] = {
        {"k=rsa; v=DKIM1; p=AAAA", "v= is not DKIM1 as the first tag"},
        {"v=DKIM2; p=AAAA", "v= is not DKIM1 as the first tag"},
        {"k=dsa; p=AAAA", "unknown key type"},
        {"h=sha1; p=AAAA", "h= excludes sha256"},
        {"s=tlsrpt; p=AAAA", "s= excludes email"},
        {"v=DKIM1; k=rsa", "missing p="},
        {"p=AA*A", "bad base64 in p="},
        {"p=AAAA; p=AAAA", "duplicate tag"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        CHECK_INT_EQ(dkim_key_parse(bad[i].in, strlen(bad[i].in), &k, &why), -1);
        CHECK_STR_EQ(why, bad[i].why);
    }
}

static struct dkim_signkey *ed25519_key(const char *path)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    FILE *f = fopen(path, "w");
    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    EVP_PKEY_free(pk);
    const char *why;
    return dkim_signkey_load(path, false, NULL, &why);
}

static char *sign(const struct dkim_signkey *k, const char *msg, size_t chunk)
{
    const char *why = NULL;
    struct dkim_signer *s = dkim_signer_new(k, "relay.example", "opendkim", 1700000000, &why);
    for (size_t off = 0, len = strlen(msg); off < len;) {
        size_t n = chunk && len - off > chunk ? chunk : len - off;
        dkim_signer_feed(s, msg + off, n);
        off += n;
    }
    struct buf out = {0};
    if (dkim_signer_finish(s, &out, &why) < 0) {
        dkim_signer_free(s);
        return NULL;
    }
    dkim_signer_free(s);
    buf_append_str(&out, msg);
    buf_append(&out, "", 1);
    return out.data;
}

TEST(sign_then_verify_rsa_generated_and_ed25519)
{
    char dir[] = "/tmp/test_dkim_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], edpath[256];
    snprintf(path, sizeof path, "%s/keys/opendkim.private", dir);
    snprintf(edpath, sizeof edpath, "%s/ed.pem", dir);
    bool created = false;
    const char *why = NULL;
    struct dkim_signkey *k = dkim_signkey_load(path, true, &created, &why);
    CHECK(k != NULL && created);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    struct dkim_signkey *again = dkim_signkey_load(path, true, &created, &why);
    CHECK(again != NULL && !created);
    char *rec = dkim_signkey_dns_record(k);
    CHECK(strncmp(rec, "v=DKIM1;k=rsa;p=MIIBIjAN", 24) == 0);
    CHECK(strstr(rec, ";s=email;t=s") != NULL);
    struct dkim_signkey *ed = ed25519_key(edpath);
    CHECK(ed != NULL);
    char *edrec = dkim_signkey_dns_record(ed);
    CHECK(strncmp(edrec, "v=DKIM1;k=ed25519;p=", 20) == 0);

    const char *msg = "From: Alice <alice@relay.example>" CRLF "To: bob@other.example" CRLF
                      "Subject: =?utf-8?q?a_long_subject?= with several words that goes on and on"
                      CRLF "  and is folded" CRLF "Message-ID: <1@relay.example>" CRLF
                      "Content-Type: text/plain; charset=utf-8" CRLF CRLF
                      "\xc3\xa4\xc3\xb6 8-bit body  " CRLF CRLF "no final CRLF";
    const struct dkim_signkey *keys[] = {k, ed};
    const char *recs[] = {rec, edrec};
    for (int i = 0; i < 2; i++) {
        char *signed_msg = sign(keys[i], msg, i ? 3 : 0);
        CHECK(signed_msg != NULL);
        CHECK(strncmp(signed_msg, "DKIM-Signature: v=1; a=", 23) == 0);
        char *unfolded = strdup(signed_msg);
        size_t o = 0;
        for (size_t p = 0; unfolded[p]; p++) {
            if (strncmp(unfolded + p, CRLF "\t", 3) == 0)
                p += 3;
            unfolded[o++] = unfolded[p];
        }
        unfolded[o] = '\0';
        CHECK(strstr(unfolded, "c=relaxed/simple; d=relay.example;"));
        CHECK(strstr(unfolded, "s=opendkim; t=1700000000;"));
        CHECK(strstr(unfolded, "h=from:from:reply-to:subject:subject:date:to:to:cc:resent-date:"));
        CHECK(strstr(unfolded, "list-archive:autocrypt:content-type:message-id;"));
        free(unfolded);
        /* no line of the field is longer than 78 */
        const char *end = strstr(signed_msg, CRLF "From:");
        for (const char *p = signed_msg; p < end;) {
            const char *nl = strstr(p, CRLF);
            CHECK(nl - p <= 78);
            p = nl + 2;
        }
        struct keydef kd[] = {{"opendkim._domainkey.relay.example", DKIM_LOOKUP_FOUND, recs[i]}};
        struct dkim_verifier *v = verify(signed_msg, strlen(signed_msg), 11, kd, 1, 1700000001);
        CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "pass");
        CHECK_INT_EQ(dkim_verifier_verdict(v, "relay.example").kind, DKIM_VERDICT_PASS);
        CHECK_INT_EQ(dkim_verifier_verdict(v, "other.example").kind, DKIM_VERDICT_INVALID);
        dkim_verifier_free(v);
        /* simple body: one changed byte fails, a trailing empty line does not */
        char *tampered = replace(signed_msg, "8-bit body", "8-bit bodY");
        v = verify(tampered, strlen(tampered), 0, kd, 1, 1700000001);
        CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "body hash mismatch");
        dkim_verifier_free(v);
        free(tampered);
        /* an added To: is caught by over-signing */
        char *added = replace(signed_msg, "From: Alice", "To: eve@evil.example" CRLF "From: Alice");
        v = verify(added, strlen(added), 0, kd, 1, 1700000001);
        CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "signature did not verify");
        dkim_verifier_free(v);
        free(added);
        free(signed_msg);
    }
    free(rec);
    free(edrec);
    dkim_signkey_free(k);
    dkim_signkey_free(again);
    dkim_signkey_free(ed);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST(signer_refuses_bad_input)
{
    char dir[] = "/tmp/test_dkim_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/ed.pem", dir);
    struct dkim_signkey *ed = ed25519_key(path);
    const char *why = NULL;
    CHECK(dkim_signer_new(ed, "bad domain", "opendkim", 0, &why) == NULL);
    struct dkim_signer *s = dkim_signer_new(ed, "relay.example", "opendkim", 0, &why);
    const char *bad = "From: a@relay.example" CRLF "no colon here" CRLF CRLF "x";
    dkim_signer_feed(s, bad, strlen(bad));
    struct buf out = {0};
    CHECK_INT_EQ(dkim_signer_finish(s, &out, &why), -1);
    CHECK_INT_EQ(out.len, 0);
    dkim_signer_free(s);
    dkim_signkey_free(ed);
    const char *why2 = NULL;
    CHECK(dkim_signkey_load("/nonexistent/x.pem", false, NULL, &why2) == NULL);
    CHECK(why2 != NULL);
    unlink(path);
    rmdir(dir);
}

TEST(keycache_lru_ttl_drop)
{
    struct dkim_keycache *c = dkim_keycache_new(2);
    const char *t1 = "v=DKIM1; p=AAAA";
    size_t l1 = strlen(t1);
    struct dkim_keycache_entry e;
    CHECK_INT_EQ(dkim_keycache_put(c, "a._domainkey.x", 100, DKIM_LOOKUP_FOUND, &t1, &l1, 1), 0);
    CHECK_INT_EQ(dkim_keycache_put(c, "b._domainkey.x", 100, DKIM_LOOKUP_NOKEY, NULL, NULL, 0), 0);
    CHECK_INT_EQ(dkim_keycache_get(c, "A._DOMAINKEY.X", 50, &e), 1); /* a is now most recent */
    CHECK_INT_EQ(e.n, 1);
    CHECK(e.len[0] == l1 && memcmp(e.txt[0], t1, l1) == 0);
    CHECK_INT_EQ(dkim_keycache_put(c, "c._domainkey.x", 100, DKIM_LOOKUP_FOUND, &t1, &l1, 1), 0);
    CHECK_INT_EQ(dkim_keycache_size(c), 2);
    CHECK_INT_EQ(dkim_keycache_get(c, "b._domainkey.x", 50, &e), 0); /* evicted */
    CHECK_INT_EQ(dkim_keycache_get(c, "a._domainkey.x", 50, &e), 1);
    CHECK_INT_EQ(dkim_keycache_get(c, "a._domainkey.x", 100, &e), 0); /* expired */
    CHECK_INT_EQ(dkim_keycache_size(c), 1);
    dkim_keycache_drop(c, "c._domainkey.x");
    CHECK_INT_EQ(dkim_keycache_size(c), 0);
    CHECK_INT_EQ(dkim_keycache_put(c, "t", 100, DKIM_LOOKUP_TEMPFAIL, NULL, NULL, 0), 0);
    CHECK_INT_EQ(dkim_keycache_get(c, "t", 0, &e), 0); /* temporary failures are not cached */
    for (int i = 0; i < 1000; i++) {
        char n[32];
        snprintf(n, sizeof n, "k%d", i);
        dkim_keycache_put(c, n, 1000, DKIM_LOOKUP_FOUND, &t1, &l1, 1);
        CHECK(dkim_keycache_size(c) <= 2);
    }
    CHECK_INT_EQ(dkim_keycache_get(c, "k999", 0, &e), 1);
    CHECK_INT_EQ(dkim_keycache_get(c, "k998", 0, &e), 1);
    dkim_keycache_free(c);
}

TEST(header_block_bounded)
{
    /* a header block beyond DKIM_MAX_HEADER_BYTES: never a pass, no growth */
    struct buf m = {0};
    buf_append(&m, rfc8463_msg, (size_t)(strstr(rfc8463_msg, CRLF CRLF) + 2 - rfc8463_msg));
    const char *line = "X-Filler: 0123456789012345678901234567890123456789012345678901234567" CRLF;
    while (m.len < DKIM_MAX_HEADER_BYTES + 1000)
        buf_append(&m, line, strlen(line));
    buf_append_str(&m, CRLF "body" CRLF);
    struct dkim_verifier *v = verify(m.data, m.len, 4096, rfc8463_keys, 2, 1600000000);
    CHECK_INT_EQ(dkim_verifier_nresults(v), 0);
    CHECK_STR_EQ(dkim_verifier_verdict(v, "football.example.com").smtp_reply, DKIM_REPLY_INVALID);
    dkim_verifier_free(v);
    /* more DKIM-Signature fields than DKIM_MAX_SIGS: only the first ones count */
    struct buf many = {0};
    for (int i = 0; i < DKIM_MAX_SIGS + 3; i++)
        buf_append(&many, rfc8463_msg, (size_t)(strstr(rfc8463_msg, "DKIM-Signature: v=1; a=rsa") - rfc8463_msg));
    buf_append_str(&many, rfc8463_msg);
    v = verify(many.data, many.len, 0, rfc8463_keys, 2, 1600000000);
    CHECK_INT_EQ(dkim_verifier_nresults(v), DKIM_MAX_SIGS);
    CHECK_STR_EQ(dkim_verifier_result(v, 0)->reason, "pass");
    dkim_verifier_free(v);
    buf_free(&many);
    char dir[] = "/tmp/test_dkim_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/ed.pem", dir);
    struct dkim_signkey *ed = ed25519_key(path);
    const char *why = NULL;
    struct dkim_signer *s = dkim_signer_new(ed, "relay.example", "opendkim", 0, &why);
    int rc = 0;
    for (size_t off = 0; off < m.len && rc == 0; off += 1000)
        rc = dkim_signer_feed(s, m.data + off, m.len - off < 1000 ? m.len - off : 1000);
    CHECK_INT_EQ(rc, -1);
    struct buf out = {0};
    CHECK_INT_EQ(dkim_signer_finish(s, &out, &why), -1);
    CHECK_STR_EQ(why, "the header block is malformed or too large");
    buf_free(&out);
    dkim_signer_free(s);
    dkim_signkey_free(ed);
    unlink(path);
    rmdir(dir);
    buf_free(&m);
}

int main(void)
{
    RUN(rfc8463_both_pass_any_chunking);
    RUN(rfc8463_relaxed_tolerates_whitespace);
    RUN(rfc8463_changed_body_or_header_fails);
    RUN(key_lookup_outcomes_and_verdicts);
    RUN(no_signature_and_address_literal);
    RUN(refusals_l_sha1_expired);
    RUN(rfc6376_appendix_a);
    RUN(rfc6376_3_4_5_canonicalisation_example);
    RUN(body_canon_edges);
    RUN(sig_parse_refusals);
    RUN(key_parse);
    RUN(sign_then_verify_rsa_generated_and_ed25519);
    RUN(signer_refuses_bad_input);
    RUN(keycache_lru_ttl_drop);
    RUN(header_block_bounded);
    return check_report();
}
