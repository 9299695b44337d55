/* test_metadata.c: metadata.json (spec §4.2): the existing relay's format
 * read and written byte for byte, the legacy list forms, token validity
 * (90 days back, 60 s ahead), add/refresh/get/remove under the lock, a
 * corrupt file starting over from {}, and the bounds. */
#include "check.h"

#include "core/buf.h"
#include "core/config.h"
#include "store/accounts.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256], mboxes[300], acct_dir[400];
static struct config cfg;
static const char addr[] = "tokenuser@example.org";

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static long read_text(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t len = fread(out, 1, n - 1, f);
    fclose(f);
    out[len] = '\0';
    return (long)len;
}

static void md_path(char *out, size_t n)
{
    if (snprintf(out, n, "%s/metadata.json", acct_dir) >= (int)n)
        out[0] = '\0';
}

static void get(time_t now, char *out, size_t n)
{
    struct buf b = {0};
    out[0] = '\0';
    if (store_md_get_tokens(&cfg, addr, now, &b) == 0)
        snprintf(out, n, "%.*s", (int)b.len, b.data ? b.data : "");
    else
        snprintf(out, n, "(error)");
    buf_free(&b);
}

TEST(parse_existing_format)
{
    static const char text[] = "{\"devicetoken\": {\"1111\": 1700000000}}";
    struct store_tokens t;
    CHECK_INT_EQ(store_md_parse(text, strlen(text), 1700000100, &t), 0);
    CHECK_INT_EQ(t.n, 1);
    CHECK_STR_EQ(t.v[0].token, "1111");
    CHECK_INT_EQ(t.v[0].ts, 1700000000);
    struct buf b = {0};
    CHECK_INT_EQ(store_md_format(&t, &b), 0);
    CHECK(b.len == strlen(text) && memcmp(b.data, text, b.len) == 0);
    store_md_free(&t);
    buf_free(&b);

    static const char two[] = "{\"devicetoken\": {\"a\": 1, \"b\": 2}}";
    CHECK_INT_EQ(store_md_parse(two, strlen(two), 5, &t), 0);
    CHECK_INT_EQ(t.n, 2);
    CHECK_INT_EQ(store_md_format(&t, &b), 0);
    CHECK(b.len == strlen(two) && memcmp(b.data, two, b.len) == 0);
    store_md_free(&t);
    buf_free(&b);

    /* compact JSON, other keys, floats, duplicates (the last one wins) */
    static const char other[] =
        " {\"x\":[1,{\"y\":null,\"z\":[true,false,-2.5e3]}],\"devicetoken\":{\"a\":1.7e9,\"c\":\"bad\",\"a\":42}}\n";
    CHECK_INT_EQ(store_md_parse(other, strlen(other), 5, &t), 0);
    CHECK_INT_EQ(t.n, 1);
    CHECK_STR_EQ(t.v[0].token, "a");
    CHECK_INT_EQ(t.v[0].ts, 42);
    store_md_free(&t);
    CHECK_INT_EQ(store_md_parse("{}", 2, 5, &t), 0);
    CHECK_INT_EQ(t.n, 0);
    CHECK_INT_EQ(store_md_format(&t, &b), 0);
    CHECK_STR_EQ(b.data, "{\"devicetoken\": {}}");
    buf_free(&b);
}

TEST(parse_legacy_lists)
{
    struct store_tokens t;
    CHECK_INT_EQ(store_md_parse("[\"t1\",\"t2\"]", 11, 1700000000, &t), 1);
    CHECK_INT_EQ(t.n, 2);
    CHECK_STR_EQ(t.v[0].token, "t1");
    CHECK_STR_EQ(t.v[1].token, "t2");
    CHECK_INT_EQ(t.v[1].ts, 1700000000);
    store_md_free(&t);
    static const char inner[] = "{\"devicetoken\": [\"t1\", \"t2\", \"t1\"]}";
    CHECK_INT_EQ(store_md_parse(inner, strlen(inner), 7, &t), 1);
    CHECK_INT_EQ(t.n, 2);
    store_md_free(&t);
    CHECK_INT_EQ(store_md_parse("[]", 2, 7, &t), 1);
    CHECK_INT_EQ(t.n, 0);
}

TEST(parse_escapes_round_trip)
{
    static const char text[] =
        "{\"devicetoken\": {\"a\\\"b\\\\c\\/d\\u00e9\\ud83d\\ude00\\n\": 5, \"\\ud800x\": 6}}";
    struct store_tokens t;
    CHECK_INT_EQ(store_md_parse(text, strlen(text), 5, &t), 0);
    CHECK_INT_EQ(t.n, 2);
    CHECK_STR_EQ(t.v[0].token, "a\"b\\c/d\xc3\xa9\xf0\x9f\x98\x80\n");
    CHECK_STR_EQ(t.v[1].token, "\xef\xbf\xbdx"); /* lone surrogate: U+FFFD */
    struct buf b = {0};
    CHECK_INT_EQ(store_md_format(&t, &b), 0);
    struct store_tokens t2;
    CHECK_INT_EQ(store_md_parse(b.data, b.len, 5, &t2), 0);
    CHECK_INT_EQ(t2.n, 2);
    CHECK_STR_EQ(t2.v[0].token, t.v[0].token);
    store_md_free(&t);
    store_md_free(&t2);
    buf_free(&b);
}

TEST(parse_corrupt)
{
    static const char *bad[] = {
        "", "{", "null", "42", "\"x\"", "{\"devicetoken\": {\"a\": }}", "{\"devicetoken\": {\"a\": 1}} x",
        "{\"devicetoken\": {\"a\" 1}}", "[\"t1\",]", "{\"devicetoken\": {\"a\": 1,}}", "{\"a\":tru}",
        "{\"devicetoken\": {\"a\\x\": 1}}", "{\"devicetoken\": {\"a\nb\": 1}}", "{\"x\": \"\\u12\"}",
        "{\"devicetoken\": {\"a\": -}}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct store_tokens t;
        int rc = store_md_parse(bad[i], strlen(bad[i]), 5, &t);
        if (rc != -1)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK_INT_EQ(rc, -1);
        CHECK_INT_EQ(t.n, 0);
    }
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    struct store_tokens t;
    char obj[260];
    snprintf(obj, sizeof obj, "{\"x\": %.200s}", deep);
    CHECK_INT_EQ(store_md_parse(obj, strlen(obj), 5, &t), -1); /* nesting bound */
}

TEST(token_validity_window)
{
    int64_t now = 1700000000, day = 86400;
    struct store_tokens t = {0};
    CHECK_INT_EQ(store_md_set(&t, "old", 3, now - 90 * day), 0);
    CHECK_INT_EQ(store_md_set(&t, "almost-old", 10, now - 90 * day + 1), 0);
    CHECK_INT_EQ(store_md_set(&t, "now", 3, now), 0);
    CHECK_INT_EQ(store_md_set(&t, "soon", 4, now + 59), 0);
    CHECK_INT_EQ(store_md_set(&t, "future", 6, now + 60), 0);
    CHECK_INT_EQ(store_md_expire(&t, now), 2);
    CHECK_INT_EQ(t.n, 3);
    CHECK_STR_EQ(t.v[0].token, "almost-old");
    CHECK_STR_EQ(t.v[1].token, "now");
    CHECK_STR_EQ(t.v[2].token, "soon");
    store_md_free(&t);
}

TEST(token_cap)
{
    struct store_tokens t = {0};
    char tok[32];
    for (int i = 0; i < STORE_TOKENS_MAX + 44; i++) {
        snprintf(tok, sizeof tok, "tok%d", i);
        CHECK_INT_EQ(store_md_set(&t, tok, strlen(tok), 1000 + i), 0);
    }
    CHECK_INT_EQ(t.n, STORE_TOKENS_MAX);
    for (size_t i = 0; i < t.n; i++)
        CHECK(t.v[i].ts >= 1044); /* the oldest made room */
    store_md_free(&t);
}

TEST(file_add_get_remove)
{
    time_t now = 1700000000;
    char text[1024], path[512], expect[256];
    md_path(path, sizeof path);
    get(now, text, sizeof text);
    CHECK_STR_EQ(text, "");
    CHECK(access(path, F_OK) != 0); /* reading writes nothing */
    CHECK_INT_EQ(store_md_add_token(&cfg, addr, "t1", now), 0);
    CHECK_INT_EQ(store_md_add_token(&cfg, addr, "t2", now + 1), 0);
    get(now + 2, text, sizeof text);
    CHECK_STR_EQ(text, "t1 t2");
    read_text(path, text, sizeof text);
    snprintf(expect, sizeof expect, "{\"devicetoken\": {\"t1\": %ld, \"t2\": %ld}}", (long)now,
             (long)now + 1);
    CHECK_STR_EQ(text, expect);
    /* re-setting refreshes the timestamp */
    CHECK_INT_EQ(store_md_add_token(&cfg, addr, "t1", now + 100), 0);
    read_text(path, text, sizeof text);
    snprintf(expect, sizeof expect, "{\"devicetoken\": {\"t1\": %ld, \"t2\": %ld}}", (long)now + 100,
             (long)now + 1);
    CHECK_STR_EQ(text, expect);
    CHECK_INT_EQ(store_md_remove_token(&cfg, addr, "t1", now + 200), 0);
    get(now + 200, text, sizeof text);
    CHECK_STR_EQ(text, "t2");
    CHECK_INT_EQ(store_md_remove_token(&cfg, addr, "nonexisting", now + 200), 0);
    CHECK_INT_EQ(store_md_add_token(&cfg, addr, "t3", now + 300), 0);
    CHECK_INT_EQ(store_md_remove_token(&cfg, addr, NULL, now + 300), 0);
    get(now + 300, text, sizeof text);
    CHECK_STR_EQ(text, "");
    read_text(path, text, sizeof text);
    CHECK_STR_EQ(text, "{\"devicetoken\": {}}");
    /* tokens that cannot be stored faithfully are refused */
    CHECK_INT_EQ(store_md_add_token(&cfg, addr, "", now), -1);
    CHECK_INT_EQ(store_md_add_token(&cfg, addr, "a\nb", now), -1);
    char *huge = malloc(STORE_TOKEN_MAX + 2);
    memset(huge, 'x', STORE_TOKEN_MAX + 1);
    huge[STORE_TOKEN_MAX + 1] = '\0';
    CHECK_INT_EQ(store_md_add_token(&cfg, addr, huge, now), -1);
    huge[STORE_TOKEN_MAX] = '\0';
    CHECK_INT_EQ(store_md_add_token(&cfg, addr, huge, now), 0);
    CHECK_INT_EQ(store_md_remove_token(&cfg, addr, huge, now), 0);
    free(huge);
    /* a token with quotes and backslashes survives the file */
    CHECK_INT_EQ(store_md_add_token(&cfg, addr, "q\"b\\s", now), 0);
    get(now, text, sizeof text);
    CHECK_STR_EQ(text, "q\"b\\s");
    CHECK_INT_EQ(store_md_remove_token(&cfg, addr, NULL, now), 0);
    /* no tmp file left behind */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
}

TEST(file_existing_relay_and_expiry)
{
    char path[512], text[1024];
    md_path(path, sizeof path);
    write_text(path, "{\"devicetoken\": {\"1111\": 1700000000}}");
    get(1700000100, text, sizeof text);
    CHECK_STR_EQ(text, "1111");
    read_text(path, text, sizeof text);
    CHECK_STR_EQ(text, "{\"devicetoken\": {\"1111\": 1700000000}}"); /* untouched */
    /* 90 days later: purged on read, and from the file */
    get(1700000000 + 90 * 86400, text, sizeof text);
    CHECK_STR_EQ(text, "");
    read_text(path, text, sizeof text);
    CHECK_STR_EQ(text, "{\"devicetoken\": {}}");
}

TEST(file_legacy_list_converted)
{
    char path[512], text[1024];
    md_path(path, sizeof path);
    write_text(path, "[\"t1\", \"t2\"]");
    get(1700000000, text, sizeof text);
    CHECK_STR_EQ(text, "t1 t2");
    read_text(path, text, sizeof text);
    CHECK_STR_EQ(text, "{\"devicetoken\": {\"t1\": 1700000000, \"t2\": 1700000000}}");
}

TEST(file_corrupt_starts_over)
{
    char path[512], text[1024];
    md_path(path, sizeof path);
    write_text(path, "\x80\x04}q\x00.garbage");
    get(1700000000, text, sizeof text);
    CHECK_STR_EQ(text, "");
    CHECK_INT_EQ(store_md_add_token(&cfg, addr, "fresh", 1700000000), 0);
    read_text(path, text, sizeof text);
    CHECK_STR_EQ(text, "{\"devicetoken\": {\"fresh\": 1700000000}}");
}

TEST(no_account)
{
    struct buf b = {0};
    CHECK_INT_EQ(store_md_add_token(&cfg, "nobody123@example.org", "t", 5), -1);
    CHECK_INT_EQ(store_md_get_tokens(&cfg, "nobody123@example.org", 5, &b), -1);
    CHECK_INT_EQ(store_md_add_token(&cfg, "../../etc@example.org", "t", 5), -1);
    CHECK_INT_EQ(store_md_add_token(&cfg, "tokenuser@other.org", "t", 5), -1);
    buf_free(&b);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/cm-metadata-XXXXXX");
    if (!mkdtemp(root))
        return 1;
    snprintf(mboxes, sizeof mboxes, "%s/mail", root);
    snprintf(acct_dir, sizeof acct_dir, "%s/%s", mboxes, addr);
    mkdir(mboxes, 0700);
    mkdir(acct_dir, 0700);
    cfg.mail_domain = "example.org";
    cfg.mailboxes_dir = mboxes;
    RUN(parse_existing_format);
    RUN(parse_legacy_lists);
    RUN(parse_escapes_round_trip);
    RUN(parse_corrupt);
    RUN(token_validity_window);
    RUN(token_cap);
    RUN(file_add_get_remove);
    RUN(file_existing_relay_and_expiry);
    RUN(file_legacy_list_converted);
    RUN(file_corrupt_starts_over);
    RUN(no_account);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", root);
    return check_report();
}
