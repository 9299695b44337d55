/* check.h: a minimal unit-test harness for ctest.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_STR_EQ(a, "b"); CHECK_INT_EQ(n, 3); }
 *   int main(void) { RUN(name); ...; return check_report(); }
 *
 * Prints each failure with file:line and ends with "N passed, M failed". */
#ifndef CM_TEST_CHECK_H
#define CM_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures_in_test;
static int check_tests_passed, check_tests_failed;

#define TEST(name) static void test_##name(void)

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures_in_test++;                                              \
        }                                                                          \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                         \
    do {                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);           \
        if (check_a_ != check_b_) {                                                \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,   \
                    __LINE__, #a, #b, check_a_, check_b_);                         \
            check_failures_in_test++;                                              \
        }                                                                          \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                         \
    do {                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                              \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {          \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, \
                    __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",            \
                    check_b_ ? check_b_ : "(null)");                               \
            check_failures_in_test++;                                              \
        }                                                                          \
    } while (0)

#define RUN(name)                                                                  \
    do {                                                                           \
        check_failures_in_test = 0;                                                \
        test_##name();                                                             \
        if (check_failures_in_test) {                                              \
            check_tests_failed++;                                                  \
            fprintf(stderr, "FAIL %s\n", #name);                                   \
        } else {                                                                   \
            check_tests_passed++;                                                  \
        }                                                                          \
    } while (0)

static inline int check_report(void)
{
    printf("%d passed, %d failed\n", check_tests_passed, check_tests_failed);
    return check_tests_failed ? 1 : 0;
}

#endif
