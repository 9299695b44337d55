/* test_core.c: buf, lines, ipcount and the metrics rendering from src/core. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/buf.h"
#include "core/ipcount.h"
#include "core/lines.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/turncred.h"

TEST(buf_basic)
{
    struct buf b = {0};
    CHECK_INT_EQ(buf_append_str(&b, "hello"), 0);
    CHECK_INT_EQ(buf_printf(&b, " %d", 42), 0);
    CHECK_STR_EQ(b.data, "hello 42");
    buf_consume(&b, 6);
    CHECK_STR_EQ(b.data, "42");
    buf_consume(&b, 2);
    CHECK(b.data == NULL && b.cap == 0); /* empty owns no memory */
    buf_append(&b, "x", 1);
    char *s = buf_steal_str(&b);
    CHECK_STR_EQ(s, "x");
    free(s);
    CHECK(b.data == NULL);
}

TEST(lines_split)
{
    struct lines l = {.max = 16};
    const char *in = "ab\r\ncd\nef";
    const char *p = in, *line;
    size_t n = strlen(in), len;
    CHECK_INT_EQ(lines_next(&l, &p, &n, &line, &len), LINES_LINE);
    CHECK(len == 2 && memcmp(line, "ab", 2) == 0);
    CHECK_INT_EQ(lines_next(&l, &p, &n, &line, &len), LINES_LINE);
    CHECK(len == 2 && memcmp(line, "cd", 2) == 0);
    CHECK_INT_EQ(lines_next(&l, &p, &n, &line, &len), LINES_NONE);
    const char *in2 = "gh\r\n";
    p = in2;
    n = strlen(in2);
    CHECK_INT_EQ(lines_next(&l, &p, &n, &line, &len), LINES_LINE);
    CHECK(len == 4 && memcmp(line, "efgh", 4) == 0);
    CHECK_INT_EQ(lines_next(&l, &p, &n, &line, &len), LINES_NONE);
    lines_free(&l);
}

TEST(lines_too_long)
{
    struct lines l = {.max = 8};
    const char *in = "0123456789abcdef", *p = in, *line;
    size_t n = strlen(in), len;
    CHECK_INT_EQ(lines_next(&l, &p, &n, &line, &len), LINES_TOO_LONG);
    const char *in2 = "more\r\nok\r\n";
    p = in2;
    n = strlen(in2);
    /* the rest of the long line is skipped, the next line comes through */
    CHECK_INT_EQ(lines_next(&l, &p, &n, &line, &len), LINES_LINE);
    CHECK(len == 2 && memcmp(line, "ok", 2) == 0);
    lines_free(&l);
}

TEST(ipcount_counts)
{
    struct ipcount_table *t = ipcount_table_new();
    struct ipcount *a = ipcount_acquire(t, "127.0.0.1");
    struct ipcount *b = ipcount_acquire(t, "127.0.0.1");
    struct ipcount *c = ipcount_acquire(t, "::1");
    CHECK(a == b && a != c);
    ipcount_inc(a, 1);
    ipcount_inc(b, 1);
    CHECK_INT_EQ(ipcount_get(a, 1), 2);
    CHECK_INT_EQ(ipcount_get(c, 1), 0);
    ipcount_dec(t, a, 1);
    CHECK_INT_EQ(ipcount_get(b, 1), 1);
    ipcount_release(t, a);
    ipcount_release(t, b);
    ipcount_release(t, c);
    ipcount_table_free(t);
}

TEST(log_levels)
{
    enum log_level l;
    CHECK_INT_EQ(log_level_parse("warning", &l), 0);
    CHECK_INT_EQ(l, LOGL_WARN);
    CHECK_INT_EQ(log_level_parse("loud", &l), -1);
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* A labelled counter family has one HELP/TYPE pair and one line per
 * series, and each series moves alone. */
TEST(metrics_labelled_families)
{
    metrics_add(M_DKIM_TEMPERROR, 3);
    metrics_inc(M_INCOMING_REFUSED_DKIM);
    struct buf b = {0};
    CHECK_INT_EQ(metrics_render(&b), 0);
    CHECK_INT_EQ(count_of(b.data, "# TYPE dkim_verify counter\n"), 1);
    CHECK_INT_EQ(count_of(b.data, "# HELP dkim_verify "), 1);
    CHECK_INT_EQ(count_of(b.data, "# TYPE incoming_mail counter\n"), 1);
    CHECK(strstr(b.data, "\ndkim_verify{result=\"temperror\"} 3\n") != NULL);
    CHECK(strstr(b.data, "\ndkim_verify{result=\"pass\"} 0\n") != NULL);
    CHECK(strstr(b.data, "\nincoming_mail{result=\"dkim\"} 1\n") != NULL);
    CHECK(strstr(b.data, "\n# TYPE incoming_mailer_daemon_mail_count counter\n") != NULL);
    buf_free(&b);
}

/* chatmail-turn's algorithm; the vector from python3:
 * base64(hmac.new(b"north", b"1700432000", sha1).digest()) */
TEST(turncred_vector)
{
    char out[TURNCRED_MAX], small[12];
    CHECK(turncred_make(1700000000, out, sizeof out) == 0);
    CHECK_STR_EQ(out, "1700432000:6i3MOC5CcUjtk51HuMCT6nsg1eU=");
    CHECK(turncred_make(1700000000, small, sizeof small) == -1);
}

/* buf_vprintf: one pass into the room left, a second one after growing */
TEST(buf_printf_growth)
{
    struct buf b = {0};
    CHECK(buf_printf(&b, "%s", "") == 0 && b.len == 0);
    CHECK(buf_printf(&b, "%d-%s", 42, "x") == 0);
    CHECK_STR_EQ(b.data, "42-x");
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(buf_printf(&b, "<%s>", big) == 0);
    CHECK(b.len == 4 + 1 + 999 + 1 && b.data[b.len] == '\0' && b.data[4] == '<');
    CHECK(b.data[b.len - 1] == '>' && b.data[b.len - 2] == 'a');
    size_t cap = b.cap;
    buf_reset(&b);
    CHECK(buf_printf(&b, "%s", "again") == 0 && b.cap == cap);
    CHECK_STR_EQ(b.data, "again");
    buf_free(&b);
}

int main(void)
{
    RUN(turncred_vector);
    RUN(buf_printf_growth);
    RUN(buf_basic);
    RUN(lines_split);
    RUN(lines_too_long);
    RUN(ipcount_counts);
    RUN(log_levels);
    RUN(metrics_labelled_families);
    return check_report();
}
