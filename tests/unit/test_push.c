/* test_push.c: the push item file format and the retry schedule
 * (push/push_item.c, federation facts §5). */
#include "check.h"

#include <stdlib.h>

#include "push/push_int.h"

static struct push_item_data d;

TEST(item_roundtrip)
{
    const char *f = "bob@relay1.test\n1765000000\n8a0c6b1e5d2f";
    CHECK_INT_EQ(push_item_parse(f, strlen(f), &d), 0);
    CHECK_STR_EQ(d.addr, "bob@relay1.test");
    CHECK_INT_EQ(d.start_ts, 1765000000);
    CHECK_STR_EQ(d.token, "8a0c6b1e5d2f");
    CHECK_INT_EQ(d.token_len, 12);
    struct buf b = {0};
    CHECK_INT_EQ(push_item_format(d.addr, d.start_ts, d.token, &b), 0);
    CHECK(b.len == strlen(f) && memcmp(b.data, f, b.len) == 0);
    buf_free(&b);
    /* one trailing LF is tolerated */
    const char *g = "bob@relay1.test\n5\ntok\n";
    CHECK_INT_EQ(push_item_parse(g, strlen(g), &d), 0);
    CHECK_STR_EQ(d.token, "tok");
    CHECK_INT_EQ(d.start_ts, 5);
}

TEST(item_refusals)
{
    const char *bad[] = {
        "", "bob@relay1.test", "bob@relay1.test\n123", "bob@relay1.test\n123\n",
        "\n123\ntok", "bob\n123\ntok", "bob@relay1.test\n\ntok", "bob@relay1.test\n-5\ntok",
        "bob@relay1.test\n12a\ntok", "bob@relay1.test\n1234567890123456789\ntok",
        "bob@relay1.test\n1\nline1\nline2", "bob@re\tlay1.test\n1\ntok", "bob@relay1.test\n1\nt\x01k",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT_EQ(push_item_parse(bad[i], strlen(bad[i]), &d), -1);
    /* a NUL in the token */
    CHECK_INT_EQ(push_item_parse("a@b\n1\nt\0k", 9, &d), -1);
    /* bounds: the longest token passes, one more byte does not */
    size_t n = 8 + STORE_TOKEN_MAX + 1;
    char *big = malloc(n + 1);
    CHECK(big != NULL);
    memcpy(big, "a@b\n1\n", 6);
    memset(big + 6, 'x', STORE_TOKEN_MAX);
    CHECK_INT_EQ(push_item_parse(big, 6 + STORE_TOKEN_MAX, &d), 0);
    CHECK_INT_EQ(d.token_len, STORE_TOKEN_MAX);
    big[6 + STORE_TOKEN_MAX] = 'x';
    CHECK_INT_EQ(push_item_parse(big, 6 + STORE_TOKEN_MAX + 1, &d), -1);
    free(big);
}

TEST(names)
{
    CHECK(push_item_name_ok("0123456789abcdef0123456789abcdef"));
    CHECK(!push_item_name_ok("0123456789ABCDEF0123456789abcdef"));
    CHECK(!push_item_name_ok("0123456789abcdef0123456789abcde"));
    CHECK(!push_item_name_ok("0123456789abcdef0123456789abcdef0"));
    CHECK(!push_item_name_ok("0123456789abcdef0123456789abcdef.tmp"));
    CHECK(push_item_name_tmp("0123456789abcdef0123456789abcdef.tmp"));
    CHECK(push_item_name_tmp("0123456789abcdef0123456789abcdef.tmp-a1b2c3d4e5f60718"));
    CHECK(!push_item_name_tmp("0123456789abcdef0123456789abcdef"));
    char tag[9];
    push_token_tag("secret-token", 12, tag);
    CHECK_INT_EQ(strlen(tag), 8);
    CHECK(strstr("secret-token", tag) == NULL);
    char tag2[9];
    push_token_tag("secret-token", 12, tag2);
    CHECK_STR_EQ(tag, tag2);
}

TEST(schedule)
{
    /* attempts at 0, 8, 72, 584, 4680 s: waits 8^n after attempt n */
    CHECK_INT_EQ(push_retry_delay_ms(1, 1.0), 8000);
    CHECK_INT_EQ(push_retry_delay_ms(2, 1.0), 64000);
    CHECK_INT_EQ(push_retry_delay_ms(3, 1.0), 512000);
    CHECK_INT_EQ(push_retry_delay_ms(4, 1.0), 4096000);
    CHECK_INT_EQ(push_retry_delay_ms(1, 0.125), 1000);
    CHECK_INT_EQ(push_retry_delay_ms(1, 0.00001), 1); /* never 0 */
    int64_t start = 1765000000, now = start * 1000 + 10;
    for (unsigned a = 1; a < PUSH_ATTEMPTS_MAX; a++)
        CHECK(!push_should_drop(a, start, now, 1.0));
    CHECK(push_should_drop(PUSH_ATTEMPTS_MAX, start, now, 1.0));
    CHECK(!push_should_drop(4, start, now + (int64_t)PUSH_MAX_AGE_S * 1000 - 10, 1.0));
    CHECK(push_should_drop(1, start, now + (int64_t)PUSH_MAX_AGE_S * 1000, 1.0));
    CHECK(push_should_drop(1, start, start * 1000 + 36001, 0.002)); /* 5 h scaled = 36 s */
    CHECK(!push_should_drop(1, start, start * 1000 + 35000, 0.002));
}

TEST(time_scale)
{
    CHECK(push_time_scale(NULL) == 1.0);
    CHECK(push_time_scale("") == 1.0);
    CHECK(push_time_scale("0.125") == 0.125);
    CHECK(push_time_scale("1") == 1.0);
    CHECK(push_time_scale("0") == 1.0);
    CHECK(push_time_scale("-1") == 1.0);
    CHECK(push_time_scale("2") == 1.0);
    CHECK(push_time_scale("0.5x") == 1.0);
    CHECK(push_time_scale("nan") == 1.0);
}

TEST(pending_set)
{
    struct push_set s = {0};
    CHECK(!push_set_has(&s, 42));
    push_set_del(&s, 42); /* unknown: ignored, even on an empty set */
    CHECK_INT_EQ(push_set_add(&s, 42), 0);
    CHECK_INT_EQ(push_set_add(&s, 42), 0); /* two items of one token */
    CHECK_INT_EQ(push_set_add(&s, 0), 0);  /* 0 is a key like any other */
    CHECK(push_set_has(&s, 42) && push_set_has(&s, 0) && !push_set_has(&s, 43));
    CHECK_INT_EQ(push_set_size(&s), 2);
    push_set_del(&s, 42);
    CHECK(push_set_has(&s, 42)); /* one item left */
    push_set_del(&s, 42);
    CHECK(!push_set_has(&s, 42));
    push_set_del(&s, 0);
    CHECK_INT_EQ(push_set_size(&s), 0);
    /* against a plain array under random adds and deletes of clustering
     * keys (multiples of the table size probe the same slots) */
    enum { K = 3000 };
    static unsigned model[K];
    uint64_t x = 88172645463325252ull;
    for (int step = 0; step < 200000; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned k = (unsigned)(x % K);
        uint64_t key = (uint64_t)k * 4096;
        if ((x >> 40) % 3 != 0) {
            CHECK_INT_EQ(push_set_add(&s, key), 0);
            model[k]++;
        } else {
            push_set_del(&s, key);
            if (model[k])
                model[k]--;
        }
        if (step % 997 == 0) {
            size_t distinct = 0;
            for (unsigned i = 0; i < K; i++) {
                distinct += model[i] > 0;
                if (push_set_has(&s, (uint64_t)i * 4096) != (model[i] > 0))
                    CHECK(!"set and model differ");
            }
            CHECK_INT_EQ(push_set_size(&s), distinct);
        }
    }
    push_set_free(&s);
    CHECK(!push_set_has(&s, 0));
}

int main(void)
{
    RUN(item_roundtrip);
    RUN(item_refusals);
    RUN(names);
    RUN(schedule);
    RUN(time_scale);
    RUN(pending_set);
    return check_report();
}
