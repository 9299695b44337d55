/* test_smtpc_reply.c: the outbound SMTP client's reply parser. */
#include <string.h>

#include "check.h"
#include "smtp/smtpc_reply.h"

static int feed_all(struct smtpc_reply_parser *p, const char *s, size_t *used)
{
    smtpc_reply_init(p);
    return smtpc_reply_feed(p, s, strlen(s), used);
}

TEST(single_line)
{
    struct smtpc_reply_parser p;
    size_t used;
    const char *s = "250 2.1.0 Ok sender\r\n220 next";
    CHECK_INT_EQ(feed_all(&p, s, &used), SMTPC_RP_DONE);
    CHECK_INT_EQ(used, strlen("250 2.1.0 Ok sender\r\n"));
    CHECK_INT_EQ(p.reply.code, 250);
    CHECK_STR_EQ(p.reply.enh, "2.1.0");
    CHECK_STR_EQ(p.reply.text, "Ok sender");
}

TEST(bare_code_and_lf)
{
    struct smtpc_reply_parser p;
    size_t used;
    CHECK_INT_EQ(feed_all(&p, "354\n", &used), SMTPC_RP_DONE);
    CHECK_INT_EQ(p.reply.code, 354);
    CHECK_STR_EQ(p.reply.text, "");
    CHECK_STR_EQ(p.reply.enh, "");
}

TEST(enh_class_must_match)
{
    struct smtpc_reply_parser p;
    size_t used;
    CHECK_INT_EQ(feed_all(&p, "550 2.1.1 odd\r\n", &used), SMTPC_RP_DONE);
    CHECK_STR_EQ(p.reply.enh, "");
    CHECK_STR_EQ(p.reply.text, "2.1.1 odd");
    CHECK_INT_EQ(feed_all(&p, "550 5.1.1234 x\r\n", &used), SMTPC_RP_DONE);
    CHECK_STR_EQ(p.reply.enh, "");
    CHECK_INT_EQ(feed_all(&p, "452 4.2.2\r\n", &used), SMTPC_RP_DONE);
    CHECK_STR_EQ(p.reply.enh, "4.2.2");
    CHECK_STR_EQ(p.reply.text, "");
}

TEST(multiline_ehlo_caps)
{
    struct smtpc_reply_parser p;
    size_t used;
    const char *s = "250-mx.example.org hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                    "250-starttls\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
    CHECK_INT_EQ(feed_all(&p, s, &used), SMTPC_RP_DONE);
    CHECK_INT_EQ(used, strlen(s));
    CHECK_INT_EQ(p.reply.code, 250);
    CHECK(p.caps.pipelining && p.caps.starttls && p.caps.size && p.caps.eightbitmime &&
          p.caps.smtputf8 && p.caps.chunking);
    CHECK_INT_EQ(p.caps.size_max, 10240000);
    CHECK(strncmp(p.reply.text, "mx.example.org hello PIPELINING", 31) == 0);
    /* the first line is the greeting, never a capability */
    CHECK_INT_EQ(feed_all(&p, "250 PIPELINING\r\n", &used), SMTPC_RP_DONE);
    CHECK(!p.caps.pipelining);
    CHECK_INT_EQ(feed_all(&p, "250-x\r\n250-SIZE\r\n250 STARTTLSX\r\n", &used), SMTPC_RP_DONE);
    CHECK(p.caps.size && p.caps.size_max == 0 && !p.caps.starttls);
}

TEST(byte_by_byte)
{
    const char *s = "250-a\r\n250-PIPELINING\r\n250 b\r\n550 5.1.1 no\r\n";
    struct smtpc_reply_parser p;
    smtpc_reply_init(&p);
    int done = 0, codes[2] = {0};
    for (size_t i = 0; s[i]; i++) {
        size_t used;
        int r = smtpc_reply_feed(&p, s + i, 1, &used);
        CHECK(r != SMTPC_RP_ERR);
        CHECK_INT_EQ(used, 1);
        if (r == SMTPC_RP_DONE) {
            if (done == 0)
                CHECK(p.caps.pipelining);
            codes[done++] = p.reply.code;
        }
    }
    CHECK_INT_EQ(done, 2);
    CHECK_INT_EQ(codes[0], 250);
    CHECK_INT_EQ(codes[1], 550);
    CHECK_STR_EQ(p.reply.enh, "5.1.1");
}

TEST(errors)
{
    struct smtpc_reply_parser p;
    size_t used;
    CHECK_INT_EQ(feed_all(&p, "250-a\r\n251 b\r\n", &used), SMTPC_RP_ERR);
    CHECK_INT_EQ(feed_all(&p, "hello\r\n", &used), SMTPC_RP_ERR);
    CHECK_INT_EQ(feed_all(&p, "199 x\r\n", &used), SMTPC_RP_ERR);
    CHECK_INT_EQ(feed_all(&p, "260 x\r\n", &used), SMTPC_RP_ERR);
    CHECK_INT_EQ(feed_all(&p, "25\r\n", &used), SMTPC_RP_ERR);
    CHECK_INT_EQ(feed_all(&p, "250x\r\n", &used), SMTPC_RP_ERR);
    char big[SMTPC_LINE_MAX + 10];
    memset(big, 'a', sizeof big);
    memcpy(big, "250 ", 4);
    smtpc_reply_init(&p);
    CHECK_INT_EQ(smtpc_reply_feed(&p, big, sizeof big, &used), SMTPC_RP_ERR);
    /* a line of exactly the limit is fine */
    smtpc_reply_init(&p);
    CHECK_INT_EQ(smtpc_reply_feed(&p, big, SMTPC_LINE_MAX - 1, &used), SMTPC_RP_MORE);
    CHECK_INT_EQ(smtpc_reply_feed(&p, "\n", 1, &used), SMTPC_RP_DONE);
    CHECK_INT_EQ(strlen(p.reply.text), sizeof p.reply.text - 1);
    /* too many lines */
    smtpc_reply_init(&p);
    int r = SMTPC_RP_MORE;
    for (int i = 0; i <= SMTPC_REPLY_LINES && r == SMTPC_RP_MORE; i++)
        r = smtpc_reply_feed(&p, "250-x\r\n", 7, &used);
    CHECK_INT_EQ(r, SMTPC_RP_ERR);
}

TEST(control_chars_masked)
{
    struct smtpc_reply_parser p;
    size_t used;
    CHECK_INT_EQ(feed_all(&p, "550 a\x01\x1b" "b\r\n", &used), SMTPC_RP_DONE);
    CHECK_STR_EQ(p.reply.text, "a??b");
}

int main(void)
{
    RUN(single_line);
    RUN(bare_code_and_lf);
    RUN(enh_class_must_match);
    RUN(multiline_ehlo_caps);
    RUN(byte_by_byte);
    RUN(errors);
    RUN(control_chars_masked);
    return check_report();
}
