/* test_filter_packets.c: the OpenPGP packet walker and the armour check on
 * hand-built byte strings (every length form, partial chains, legacy
 * headers, truncations), one-shot and fed byte by byte. */
#include "check.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "filter/filter.h"
#include "filter/filter_int.h"

struct pcase {
    const char *name;
    const char *bytes; /* hex */
    bool ok;
};

static const struct pcase pcases[] = {
    {"new 1-octet PKESK + SEIPD", "c1 02 aa bb d2 01 cc", true},
    {"two PKESK + SEIPD", "c1 01 aa c1 01 bb d2 02 cc dd", true},
    {"SKESK + SEIPD", "c3 01 aa d2 01 cc", true},
    {"SEIPD alone", "d2 01 cc", true},
    {"SEIPD zero-length body", "d2 00", true},
    {"new 5-octet length", "c1 ff 00 00 00 02 aa bb d2 ff 00 00 00 01 cc", true},
    {"partial 1+2 then final", "d2 e0 aa e1 bb cc 01 dd", true},
    {"partial then zero final", "d2 e0 aa 00", true},
    {"partial chain ends without final length", "d2 e0 aa e1 bb cc", false},
    {"partial chunk runs past end", "d2 e3 aa bb", false},
    {"partial 2^30 runs past end", "d2 fe aa", false},
    {"legacy 1-octet PKESK", "84 02 aa bb d2 01 cc", true},
    {"legacy 2-octet PKESK", "85 00 02 aa bb d2 01 cc", true},
    {"legacy 4-octet PKESK", "86 00 00 00 02 aa bb d2 01 cc", true},
    {"legacy SKESK", "8c 01 aa d2 01 cc", true},
    {"legacy indeterminate", "87 aa bb d2 01 cc", false},
    {"legacy tag 9 (SED) last", "84 01 aa a4 01 bb", false},
    {"legacy 2-octet truncated", "85 00", false},
    {"new 2-octet truncated", "d2 c5", false},
    {"new 5-octet truncated", "d2 ff 00 00", false},
    {"header only", "d2", false},
    {"empty", "", false},
    {"only PKESK", "c1 01 aa", false},
    {"SEIPD then PKESK", "d2 01 cc c1 01 aa", false},
    {"SEIPD twice", "d2 01 cc d2 01 cc", false},
    {"literal data (tag 11)", "cb 03 62 00 00", false},
    {"AEAD packet (tag 20)", "c1 01 aa d4 01 cc", false},
    {"bit 7 clear", "41 01 aa d2 01 cc", false},
    {"body past end", "d2 05 aa bb", false},
    {"trailing byte after SEIPD", "d2 01 cc 00", false},
};

static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    unsigned v;
    int used;
    while (sscanf(s, " %2x%n", &v, &used) == 1) {
        out[n++] = (uint8_t)v;
        s += used;
    }
    return n;
}

TEST(packet_table)
{
    uint8_t b[64];
    for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
        size_t n = unhex(pcases[i].bytes, b);
        bool got = filter_pgp_packets_ok(b, n);
        struct pgp_walk w;
        pgp_walk_init(&w);
        for (size_t k = 0; k < n; k++)
            pgp_walk_feed(&w, b + k, 1);
        bool streamed = pgp_walk_finish(&w);
        if (got != pcases[i].ok || streamed != pcases[i].ok)
            fprintf(stderr, "case '%s': got %d streamed %d\n", pcases[i].name, got, streamed);
        CHECK(got == pcases[i].ok);
        CHECK(streamed == pcases[i].ok);
    }
}

TEST(two_octet_lengths)
{
    /* 192 and 8383 are the two-octet bounds; 1723 is c5 fb. */
    static const struct { uint8_t o1, o2; size_t len; } forms[] = {
        {0xc0, 0x00, 192}, {0xc5, 0xfb, 1723}, {0xdf, 0xff, 8383}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = 3 + forms[i].len;
        uint8_t *b = calloc(1, n + 1);
        CHECK(b != NULL);
        if (!b)
            return;
        b[0] = 0xd2;
        b[1] = forms[i].o1;
        b[2] = forms[i].o2;
        CHECK(filter_pgp_packets_ok(b, n));
        CHECK(!filter_pgp_packets_ok(b, n - 1));
        CHECK(!filter_pgp_packets_ok(b, n + 1));
        free(b);
    }
}

TEST(partial_chain_512)
{
    /* 3 x 512-octet partial chunks (e9) and a 10-octet final length. */
    size_t n = 1 + 3 * 513 + 1 + 10;
    uint8_t *b = calloc(1, n);
    CHECK(b != NULL);
    if (!b)
        return;
    size_t o = 0;
    b[o++] = 0xd2;
    for (int i = 0; i < 3; i++) {
        b[o++] = 0xe9;
        o += 512;
    }
    b[o++] = 10;
    o += 10;
    CHECK_INT_EQ(o, n);
    CHECK(filter_pgp_packets_ok(b, n));
    CHECK(!filter_pgp_packets_ok(b, n - 1));
    free(b);
}

#define BEGIN "-----BEGIN PGP MESSAGE-----\r\n"
#define END "-----END PGP MESSAGE-----\r\n"

struct acase {
    const char *text;
    bool out_ok, in_ok;
};

/* 0gEA = d2 01 00 (SEIPD, 1 octet); 0gA= = d2 00 (SEIPD, empty) */
static const struct acase acases[] = {
    {BEGIN "\r\n0gEA\r\n" END, true, true},
    {BEGIN "\r\n0gEA\r\n=AAAA\r\n" END, true, true},
    {BEGIN "0gEA\r\n" END, true, true}, /* blank line missing: tolerated */
    {BEGIN "\r\n0gA=\r\n" END, true, true},
    {BEGIN "\r\n0gA=\r\n=hcfh\r\n" END, true, true},
    {BEGIN "\r\n0g\r\nA=\r\n" END, true, true}, /* base64 split across lines */
    {BEGIN "\r\n0gEA\r\n" END "\r\n\r\n", true, true},
    {BEGIN "\r\n0gEA\r\n-----END PGP MESSAGE-----", true, true},
    {BEGIN "\r\n\r\n0gEA\r\n\r\n" END, true, true},
    {BEGIN "Version: GnuPG v2\r\n\r\n0gEA\r\n" END, false, true},
    {BEGIN "Comment: x\r\nCharset: utf-8\r\n\r\n0gEA\r\n" END, false, true},
    {BEGIN "Version: x\r\n0gEA\r\n" END, false, true},
    {BEGIN "\r\nVersion: x\r\n0gEA\r\n" END, false, false}, /* header after blank */
    {BEGIN "\r\n0gEA\r\n=AAAA\r\n0gEA\r\n" END, false, false}, /* data after CRC */
    {BEGIN "\r\n0gEA\r\n=AAAAA\r\n" END, false, false},
    {BEGIN "\r\n0gEA\r\n=AA\r\n" END, false, false},
    {BEGIN "\r\n0gA\r\n" END, false, false},   /* padding missing */
    {BEGIN "\r\n0gB=\r\n" END, false, false},  /* non-zero trailing bits */
    {BEGIN "\r\n0g==\r\n" END, false, false},  /* d2 alone: truncated */
    {BEGIN "\r\n0gA=0gA=\r\n" END, false, false},
    {BEGIN "\r\n0g*A\r\n" END, false, false},
    {BEGIN "\r\n0gEA \r\n" END, false, false},
    {BEGIN "\r\n0gEA-----END PGP MESSAGE-----\r\n", false, false},
    {BEGIN "\r\n0gEA\r\n" END " ", false, false},
    {BEGIN "\r\n0gEA\r\n" END "x\r\n", false, false},
    {BEGIN "\r\n0gEA\r\n", false, false},
    {BEGIN "\r\n" END, false, false},
    {BEGIN END, false, false},
    {"-----BEGIN PGP MESSAGE-----\n\n0gEA\n-----END PGP MESSAGE-----\n", false, false},
    {" " BEGIN "\r\n0gEA\r\n" END, false, false},
    {"-----BEGIN PGP SIGNATURE-----\r\n\r\n0gEA\r\n" END, false, false},
    {"", false, false},
};

TEST(armor_table)
{
    for (size_t i = 0; i < sizeof acases / sizeof acases[0]; i++) {
        const char *t = acases[i].text;
        bool o = filter_armor_ok(t, strlen(t), FILTER_OUTGOING);
        bool in = filter_armor_ok(t, strlen(t), FILTER_INCOMING);
        if (o != acases[i].out_ok || in != acases[i].in_ok)
            fprintf(stderr, "armor case %zu: out %d in %d\n", i, o, in);
        CHECK(o == acases[i].out_ok);
        CHECK(in == acases[i].in_ok);
    }
    CHECK(!filter_armor_ok(NULL, 0, FILTER_INCOMING));
}

int main(void)
{
    RUN(packet_table);
    RUN(two_octet_lengths);
    RUN(partial_chain_512);
    RUN(armor_table);
    return check_report();
}
