/* test_uidlist.c: dovecot-uidlist parsing (versions 1 and 3, extension
 * fields, broken lines) and the version 3 writer. */
#include "check.h"
#include "store/index_int.h"

#include <stdlib.h>

static int parse(const char *s, struct uidlist *ul)
{
    const char *err = NULL;
    return uidlist_parse(s, strlen(s), ul, &err);
}

TEST(v3_header_and_extensions)
{
    struct uidlist ul;
    const char *s = "3 V1700000000 N20 G0123456789abcdef0123456789abcdef\n"
                    "5 W1234 S1200 :1690000000.M1P2Q3.host,S=1200,W=1234\n"
                    "9 :1690000001.M2P2Q3.host\n"
                    "12 P1 O2 :old:2,S\n";
    CHECK_INT_EQ(parse(s, &ul), 0);
    CHECK_INT_EQ(ul.version, 3);
    CHECK_INT_EQ(ul.uidvalidity, 1700000000u);
    CHECK_INT_EQ(ul.nextuid, 20);
    CHECK_STR_EQ(ul.guid, "0123456789abcdef0123456789abcdef");
    CHECK(!ul.broken);
    CHECK_INT_EQ(ul.n, 3);
    CHECK_INT_EQ(ul.recs[0].uid, 5);
    CHECK_INT_EQ(ul.recs[0].vsize, 1234);
    CHECK_INT_EQ(ul.recs[0].size, 1200);
    CHECK_STR_EQ(uidlist_base(&ul, &ul.recs[0]), "1690000000.M1P2Q3.host,S=1200,W=1234");
    CHECK_STR_EQ(uidlist_base(&ul, &ul.recs[1]), "1690000001.M2P2Q3.host");
    CHECK_STR_EQ(uidlist_base(&ul, &ul.recs[2]), "old");
    uidlist_free(&ul);
}

TEST(v1_format)
{
    struct uidlist ul;
    CHECK_INT_EQ(parse("1 1234 7\n3 a.b.c:2,S\n6 d.e\n", &ul), 0);
    CHECK_INT_EQ(ul.version, 1);
    CHECK_INT_EQ(ul.uidvalidity, 1234);
    CHECK_INT_EQ(ul.nextuid, 7);
    CHECK_INT_EQ(ul.n, 2);
    CHECK_STR_EQ(uidlist_base(&ul, &ul.recs[0]), "a.b.c");
    uidlist_free(&ul);
    /* v1 forbids uid >= next uid */
    CHECK_INT_EQ(parse("1 1234 5\n3 a\n6 b\n", &ul), 0);
    CHECK(ul.broken);
    CHECK_INT_EQ(ul.n, 1);
    uidlist_free(&ul);
}

TEST(bad_headers_rejected)
{
    struct uidlist ul;
    CHECK_INT_EQ(parse("", &ul), -1);
    CHECK_INT_EQ(parse("x\n", &ul), -1);
    CHECK_INT_EQ(parse("2 1 2\n", &ul), -1);
    CHECK_INT_EQ(parse("3 N5\n", &ul), -1);          /* no uidvalidity */
    CHECK_INT_EQ(parse("3 V0 N5\n", &ul), -1);
    CHECK_INT_EQ(parse("3 V99999999999 N5\n", &ul), -1);
    CHECK_INT_EQ(parse("1 5\n", &ul), -1);
    CHECK_INT_EQ(parse("3 V1 N1 Xfoo\n", &ul), 0);   /* unknown header keys ignored */
    uidlist_free(&ul);
}

TEST(broken_lines_keep_prefix)
{
    struct uidlist ul;
    CHECK_INT_EQ(parse("3 V1 N3\n1 :a\n5 :b\n4 :c\n7 :d\n", &ul), 0); /* unordered */
    CHECK(ul.broken);
    CHECK_INT_EQ(ul.n, 2);
    CHECK_INT_EQ(ul.nextuid, 6); /* raised above the highest listed uid */
    uidlist_free(&ul);
    CHECK_INT_EQ(parse("3 V1 N3\n1 :a/b\n", &ul), 0);
    CHECK(ul.broken);
    CHECK_INT_EQ(ul.n, 0);
    uidlist_free(&ul);
    CHECK_INT_EQ(parse("3 V1 N3\n0 :a\n", &ul), 0);
    CHECK(ul.broken);
    uidlist_free(&ul);
    CHECK_INT_EQ(parse("3 V1 N3\n1 S5\n", &ul), 0); /* no file name */
    CHECK(ul.broken);
    uidlist_free(&ul);
    CHECK_INT_EQ(parse("3 V1 N3\n\n2 :x", &ul), 0); /* empty line, no final newline */
    CHECK(!ul.broken);
    CHECK_INT_EQ(ul.n, 1);
    uidlist_free(&ul);
}

TEST(format_roundtrip)
{
    struct buf b = {0};
    struct uidlist ul;
    const char *err;
    CHECK_INT_EQ(uidlist_format_header(&b, 42, 10, "0123456789abcdef0123456789abcdef"), 0);
    CHECK_INT_EQ(uidlist_format_rec(&b, 3, "1.M1P1Q1.h,S=5", 0, 0), 0);
    CHECK_INT_EQ(uidlist_format_rec(&b, 7, "2.M1P1Q1.h", 100, 104), 0);
    CHECK_STR_EQ(b.data, "3 V42 N10 G0123456789abcdef0123456789abcdef\n"
                         "3 :1.M1P1Q1.h,S=5\n7 W104 S100 :2.M1P1Q1.h\n");
    CHECK_INT_EQ(uidlist_parse(b.data, b.len, &ul, &err), 0);
    CHECK_INT_EQ(ul.n, 2);
    CHECK_INT_EQ(ul.recs[1].size, 100);
    CHECK_INT_EQ(ul.recs[1].vsize, 104);
    uidlist_free(&ul);
    buf_free(&b);
}

TEST(embedded_nul_does_not_crash)
{
    struct uidlist ul;
    const char *err;
    const char s[] = "3 V1 N3\n1 :a\0b\n2 :c\n";
    CHECK_INT_EQ(uidlist_parse(s, sizeof(s) - 1, &ul, &err), 0);
    CHECK(ul.broken);
    CHECK_INT_EQ(ul.n, 0);
    uidlist_free(&ul);
}

int main(void)
{
    RUN(v3_header_and_extensions);
    RUN(v1_format);
    RUN(bad_headers_rejected);
    RUN(broken_lines_keep_prefix);
    RUN(format_roundtrip);
    RUN(embedded_nul_does_not_crash);
    return check_report();
}
