/* test_imap_parser.c: IMAP command reading (literals, bounds) and argument
 * parsing. */
#include <string.h>

#include "check.h"
#include "imap/parser.h"

static enum imap_read_result feed(struct imap_reader *r, const char *s, size_t *used)
{
    return imap_reader_feed(r, s, strlen(s), used);
}

TEST(reader_lines_and_literals)
{
    struct imap_reader r;
    imap_reader_init(&r, 100);
    size_t used, len;
    const char *in = "a1 NOOP\r\na2 LOGIN {5}\r\n";
    CHECK_INT_EQ(feed(&r, in, &used), IMAP_READ_COMMAND);
    const char *cmd = imap_reader_command(&r, &len);
    CHECK(len == 7 && memcmp(cmd, "a1 NOOP", 7) == 0);
    imap_reader_next(&r);
    CHECK_INT_EQ(imap_reader_feed(&r, in + used, strlen(in) - used, &used), IMAP_READ_CONTINUE);
    CHECK_INT_EQ(feed(&r, "alice {3+}\r\npw!\r\n", &used), IMAP_READ_COMMAND);
    cmd = imap_reader_command(&r, &len);
    CHECK_INT_EQ(len, strlen("a2 LOGIN {5}alice {3+}pw!"));
    CHECK(memcmp(cmd, "a2 LOGIN {5}alice {3+}pw!", len) == 0);
    imap_reader_next(&r);
    imap_reader_free(&r);
}

TEST(reader_bounds)
{
    struct imap_reader r;
    imap_reader_init(&r, 10);
    size_t used;
    CHECK_INT_EQ(feed(&r, "a APPEND x {11}\r\n", &used), IMAP_READ_ERROR);
    CHECK_STR_EQ(r.error, "Literal too large.");
    imap_reader_next(&r);
    /* a refused non-synchronising literal is skipped, then reading goes on */
    CHECK_INT_EQ(feed(&r, "b APPEND x {11+}\r\n", &used), IMAP_READ_ERROR);
    imap_reader_next(&r);
    CHECK_INT_EQ(feed(&r, "0123456789A\r\nc NOOP\r\n", &used), IMAP_READ_COMMAND);
    size_t len;
    const char *cmd = imap_reader_command(&r, &len);
    CHECK(len == 6 && memcmp(cmd, "c NOOP", 6) == 0);
    imap_reader_free(&r);
}

/* A refused command's tag is kept for a tagged BAD. An APPEND literal over
 * max_literal streams into the spool (not the command) when allowed; other
 * commands' literals are still refused. */
TEST(reader_ext_literal_and_error_tag)
{
    struct imap_reader r;
    struct spool sp;
    spool_init(&sp, "/tmp");
    sp.mem_max = 4; /* spills to a file at once */
    imap_reader_init(&r, 10);
    size_t used, len;
    CHECK_INT_EQ(feed(&r, "t1 LOGIN {25000000}\r\n", &used), IMAP_READ_ERROR);
    CHECK_STR_EQ(r.error_tag, "t1");
    imap_reader_next(&r);
    imap_reader_set_ext(&r, &sp, 100);
    CHECK_INT_EQ(feed(&r, "t2 SETMETADATA x {20}\r\n", &used), IMAP_READ_ERROR);
    CHECK_STR_EQ(r.error_tag, "t2");
    imap_reader_next(&r);
    CHECK_INT_EQ(feed(&r, "t3 APPEND INBOX (\\Seen) {101}\r\n", &used), IMAP_READ_ERROR);
    imap_reader_next(&r);
    CHECK_INT_EQ(feed(&r, "t4 APPEND INBOX {20}\r\n", &used), IMAP_READ_CONTINUE);
    CHECK_INT_EQ(feed(&r, "0123456789abcdefghij\r\n", &used), IMAP_READ_COMMAND);
    const char *cmd = imap_reader_command(&r, &len);
    CHECK(len == strlen("t4 APPEND INBOX {20}") && memcmp(cmd, "t4 APPEND INBOX {20}", len) == 0);
    CHECK(imap_reader_ext_marker(&r) == cmd + strlen("t4 APPEND INBOX "));
    CHECK_INT_EQ(sp.size, 20);
    CHECK(sp.fd >= 0); /* on disk, not in memory */
    const char *data;
    size_t n;
    CHECK_INT_EQ(spool_view(&sp, &data, &n), 0);
    CHECK(n == 20 && memcmp(data, "0123456789abcdefghij", 20) == 0);
    struct imap_args a;
    const char *err;
    CHECK_INT_EQ(imap_parse_args_ext(cmd + 10, len - 10, imap_reader_ext_marker(&r), &a, &err), 0);
    CHECK_INT_EQ(a.n, 2);
    CHECK(a.v[1].type == IMAP_ARG_LITERAL && a.v[1].ext && a.v[1].len == 0);
    imap_args_free(&a);
    imap_reader_next(&r);
    CHECK(imap_reader_ext_marker(&r) == NULL);
    spool_reset(&sp);
    imap_reader_free(&r);
}

TEST(parse_args)
{
    const char *text = "1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE)]<0.100>) "
                       "\"a \\\"q\\\"\" NIL {3}x y \\Seen";
    struct imap_args a;
    const char *err = NULL;
    CHECK_INT_EQ(imap_parse_args(text, strlen(text), &a, &err), 0);
    CHECK_INT_EQ(a.n, 6);
    CHECK_STR_EQ(a.v[0].str, "1:*");
    CHECK_INT_EQ(a.v[1].type, IMAP_ARG_LIST);
    CHECK_INT_EQ(a.v[1].n, 3);
    CHECK_STR_EQ(a.v[1].list[2].str, "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE)]<0.100>");
    CHECK_INT_EQ(a.v[2].type, IMAP_ARG_STRING);
    CHECK_STR_EQ(a.v[2].str, "a \"q\"");
    CHECK_INT_EQ(a.v[3].type, IMAP_ARG_NIL);
    CHECK(imap_arg_is_string(&a.v[3])); /* the atom NIL is also an astring */
    CHECK_STR_EQ(a.v[3].str, "NIL");
    CHECK_INT_EQ(a.v[4].type, IMAP_ARG_LITERAL);
    CHECK(a.v[4].len == 3 && memcmp(a.v[4].str, "x y", 3) == 0);
    CHECK(imap_arg_atom_eq(&a.v[5], "\\seen"));
    imap_args_free(&a);
}

TEST(parse_bracket_without_section)
{
    /* '[' is an atom character (RFC 3501 ATOM-CHAR); only a closed [...] is a
     * section that may hold spaces */
    const char *text = "a[b x[unclosed";
    struct imap_args a;
    const char *err = NULL;
    CHECK_INT_EQ(imap_parse_args(text, strlen(text), &a, &err), 0);
    CHECK_INT_EQ(a.n, 2);
    CHECK_INT_EQ(a.v[0].type, IMAP_ARG_ATOM);
    CHECK_STR_EQ(a.v[0].str, "a[b");
    CHECK_STR_EQ(a.v[1].str, "x[unclosed");
    imap_args_free(&a);
}

TEST(parse_errors)
{
    const char *bad[] = {"(a b", "a)", "\"unterminated", "{5}abc", "a\"b",
                         "\"bad \\q escape\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct imap_args a;
        const char *err = NULL;
        CHECK_INT_EQ(imap_parse_args(bad[i], strlen(bad[i]), &a, &err), -1);
        CHECK(err != NULL);
    }
    char deep[64];
    memset(deep, '(', sizeof deep);
    struct imap_args a;
    const char *err = NULL;
    CHECK_INT_EQ(imap_parse_args(deep, sizeof deep, &a, &err), -1);
}

TEST(split_command)
{
    char tag[32], name[32];
    const char *rest, *err;
    size_t rl;
    const char *c = "A001 uid fetch 1:* (FLAGS)";
    CHECK_INT_EQ(imap_split_command(c, strlen(c), tag, sizeof tag, name, sizeof name, &rest, &rl,
                                    &err), 0);
    CHECK_STR_EQ(tag, "A001");
    CHECK_STR_EQ(name, "UID");
    CHECK(rl == strlen("fetch 1:* (FLAGS)"));
    c = "+ NOOP";
    CHECK_INT_EQ(imap_split_command(c, strlen(c), tag, sizeof tag, name, sizeof name, &rest, &rl,
                                    &err), -1);
    c = "tagonly";
    CHECK_INT_EQ(imap_split_command(c, strlen(c), tag, sizeof tag, name, sizeof name, &rest, &rl,
                                    &err), -1);
}

int main(void)
{
    RUN(reader_lines_and_literals);
    RUN(reader_bounds);
    RUN(reader_ext_literal_and_error_tag);
    RUN(parse_args);
    RUN(parse_bracket_without_section);
    RUN(parse_errors);
    RUN(split_command);
    return check_report();
}
