/* test_maildir.c: maildir file names, gzip and durable
 * delivery (single, several recipients by hard link, gzip, async). */
#include "check.h"

#include "core/buf.h"
#include "store/maildir.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <zlib.h>

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_maildir.XXXXXX");
    if (!mkdtemp(tmpdir))
        abort();
}

static void rm_rf(const char *p)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    if (system(cmd) != 0)
        fprintf(stderr, "rm failed\n");
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

TEST(mdname_parse_dovecot)
{
    const char *n = "1700000000.M123456P999Q7.relay,S=1234,W=1260:2,FSa";
    struct mdname mn;
    CHECK_INT_EQ(mdname_parse(n, strlen(n), &mn), 0);
    CHECK(mn.has_secs);
    CHECK_INT_EQ(mn.secs, 1700000000);
    CHECK(mn.has_size && mn.size == 1234);
    CHECK(mn.has_vsize && mn.vsize == 1260);
    CHECK(mn.has_info);
    CHECK_INT_EQ(mn.flags, MDF_FLAGGED | MDF_SEEN);
    CHECK_INT_EQ(mn.keywords, 1);
    CHECK_INT_EQ(mn.base_len, strlen("1700000000.M123456P999Q7.relay,S=1234,W=1260"));
    const char *plain = "12345.abc";
    CHECK_INT_EQ(mdname_parse(plain, strlen(plain), &mn), 0);
    CHECK(mn.has_secs && !mn.has_size && !mn.has_info);
    const char *nots = "abc.def,S=5";
    CHECK_INT_EQ(mdname_parse(nots, strlen(nots), &mn), 0);
    CHECK(!mn.has_secs && mn.has_size && mn.size == 5);
    CHECK_INT_EQ(mdname_parse("a/b", 3, &mn), -1);
    CHECK_INT_EQ(mdname_parse("..", 2, &mn), -1);
    CHECK_INT_EQ(mdname_parse("", 0, &mn), -1);
    CHECK_INT_EQ(mdname_parse("1.x\n", 4, &mn), -1);
    const char *big = "99999999999999999999999.x,S=99999999999999999999999";
    CHECK_INT_EQ(mdname_parse(big, strlen(big), &mn), 0);
    CHECK(!mn.has_secs && !mn.has_size);
}

TEST(mdname_make_and_flags)
{
    char out[MDNAME_MAX + 1], f[MDNAME_MAX + 1];
    int n = mdname_make(out, sizeof(out), 1700000000, 42, 77, 3, "h/o:s,t", 10, 12);
    CHECK_STR_EQ(out, "1700000000.M42P77Q3.h\\057o\\072s\\054t,S=10,W=12");
    CHECK_INT_EQ(n, (int)strlen(out));
    CHECK(mdname_set_flags(f, sizeof(f), out, MDF_SEEN | MDF_DRAFT | MDF_TRASHED, (1u << 2) | 1) > 0);
    CHECK_STR_EQ(strchr(f, ':'), ":2,DSTac");
    char g[MDNAME_MAX + 1];
    CHECK(mdname_set_flags(g, sizeof(g), f, MDF_REPLIED, 0) > 0);
    CHECK_STR_EQ(strchr(g, ':'), ":2,R");
    struct mdname mn;
    CHECK_INT_EQ(mdname_parse(f, strlen(f), &mn), 0);
    CHECK(mn.size == 10 && mn.vsize == 12 && mn.flags == (MDF_SEEN | MDF_DRAFT | MDF_TRASHED));
    CHECK_INT_EQ(mdname_make(out, 10, 1, 1, 1, 1, "h", 1, 1), -1);
    CHECK_INT_EQ(mdname_vsize("a\nb\r\nc\n", 7), 9);
    char a[MDNAME_MAX + 1], b[MDNAME_MAX + 1];
    mdname_new(a, sizeof(a), 1, 1);
    mdname_new(b, sizeof(b), 1, 1);
    CHECK(strcmp(a, b) != 0);
}

TEST(gzip_roundtrip_and_reader)
{
    struct buf z = {0}, plain = {0};
    char msg[5000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (char)('a' + i % 26);
    CHECK_INT_EQ(gz_compress(msg, sizeof(msg), &z), 0);
    CHECK(gz_is_gzip(z.data, z.len));
    CHECK_INT_EQ(gz_decompress(z.data, z.len, &plain, 1 << 20), 0);
    CHECK(plain.len == sizeof(msg) && memcmp(plain.data, msg, sizeof(msg)) == 0);
    buf_reset(&plain);
    CHECK_INT_EQ(gz_decompress(z.data, z.len - 5, &plain, 1 << 20), -1); /* truncated */
    CHECK_INT_EQ(gz_decompress(z.data, z.len, &plain, 100), -1);         /* over max */
    CHECK_INT_EQ(gz_decompress("\x1f\x8bxxxxxxxxxxxxx", 15, &plain, 100), -1);
    buf_free(&z);
    buf_free(&plain);
}

/* A file written by zlib's own gzip writer (as Dovecot's zlib plugin does). */
TEST(gzip_read_dovecot_style_file)
{
    make_tmpdir();
    char path[300];
    snprintf(path, sizeof(path), "%s/1700000000.M1P1Q1.h,S=21,W=22", tmpdir);
    gzFile g = gzopen(path, "wb");
    CHECK(g != NULL);
    gzputs(g, "Subject: hi\n\nhello!\n");
    gzputs(g, "x");
    gzclose(g);
    struct buf b = {0};
    CHECK_INT_EQ(gz_read_file(AT_FDCWD, path, &b, 1 << 20), 0);
    CHECK_INT_EQ(b.len, 21);
    CHECK(b.len == 21 && memcmp(b.data, "Subject: hi\n\nhello!\nx", 21) == 0);
    buf_free(&b);
    /* streaming, one byte at a time */
    struct gz_reader *r = gz_reader_open(open(path, O_RDONLY));
    char got[64];
    size_t n = 0;
    long k;
    while (n < sizeof(got) && (k = gz_reader_read(r, got + n, 1)) > 0)
        n += (size_t)k;
    CHECK_INT_EQ(n, 21);
    CHECK(memcmp(got, "Subject: hi\n\nhello!\nx", 21) == 0);
    gz_reader_close(r);
    /* a plain file passes through */
    snprintf(path, sizeof(path), "%s/plain", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("plain text", f);
    fclose(f);
    CHECK_INT_EQ(gz_read_file(AT_FDCWD, path, &b, 1 << 20), 0);
    CHECK(b.len == 10 && memcmp(b.data, "plain text", 10) == 0);
    r = gz_reader_open(open(path, O_RDONLY));
    CHECK_INT_EQ(gz_reader_read(r, got, sizeof(got)), 10);
    CHECK_INT_EQ(gz_reader_read(r, got, sizeof(got)), 0);
    gz_reader_close(r);
    buf_free(&b);
    rm_rf(tmpdir);
}

static const char test_msg[] = "From: a@x\r\nTo: b@x\r\n\r\nbody\r\n";

TEST(deliver_one)
{
    make_tmpdir();
    char acct[300], path[700];
    snprintf(acct, sizeof(acct), "%s/u1@x", tmpdir); /* not created yet: delivery makes it */
    struct store_rcpt r = {.dir = acct};
    struct store_opts o = {0};
    CHECK_INT_EQ(store_deliver(test_msg, strlen(test_msg), &r, 1, &o), 1);
    CHECK_INT_EQ(r.status, STORE_OK);
    snprintf(path, sizeof(path), "%s/new", acct);
    CHECK_INT_EQ(count_dir(path), 1);
    snprintf(path, sizeof(path), "%s/tmp", acct);
    CHECK_INT_EQ(count_dir(path), 0);
    struct mdname mn;
    CHECK_INT_EQ(mdname_parse(r.name, strlen(r.name), &mn), 0);
    CHECK(mn.has_secs && mn.size == strlen(test_msg) && mn.vsize == strlen(test_msg) && !mn.has_info);
    snprintf(path, sizeof(path), "%s/new/%s", acct, r.name);
    struct buf b = {0};
    CHECK_INT_EQ(gz_read_file(AT_FDCWD, path, &b, 1 << 20), 0);
    CHECK(b.len == strlen(test_msg) && memcmp(b.data, test_msg, b.len) == 0);
    buf_free(&b);
    rm_rf(tmpdir);
}

TEST(deliver_many_hardlinked_gzip)
{
    make_tmpdir();
    char dirs[4][300], path[2048];
    struct store_rcpt r[5];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 4; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/u%d@x", tmpdir, i);
        r[i].dir = dirs[i];
    }
    r[4].dir = dirs[1]; /* listed twice: one copy */
    struct store_opts o = {.compress = true};
    CHECK_INT_EQ(store_deliver(test_msg, strlen(test_msg), r, 5, &o), 5);
    for (int i = 0; i < 4; i++) {
        CHECK_INT_EQ(r[i].status, STORE_OK);
        CHECK_STR_EQ(r[i].name, r[0].name);
        snprintf(path, sizeof(path), "%s/new/%s", dirs[i], r[i].name);
        struct stat st;
        CHECK_INT_EQ(stat(path, &st), 0);
        CHECK_INT_EQ(st.st_nlink, 4); /* one inode, four links */
        struct buf b = {0};
        CHECK_INT_EQ(gz_read_file(AT_FDCWD, path, &b, 1 << 20), 0);
        CHECK(b.len == strlen(test_msg) && memcmp(b.data, test_msg, b.len) == 0);
        buf_free(&b);
        snprintf(path, sizeof(path), "%s/new", dirs[i]);
        CHECK_INT_EQ(count_dir(path), 1);
        snprintf(path, sizeof(path), "%s/tmp", dirs[i]);
        CHECK_INT_EQ(count_dir(path), 0);
    }
    CHECK_INT_EQ(r[4].status, STORE_OK);
    CHECK_STR_EQ(r[4].name, r[1].name);
    rm_rf(tmpdir);
}

TEST(deliver_failure_is_reported)
{
    make_tmpdir();
    char bad[300];
    snprintf(bad, sizeof(bad), "%s/file", tmpdir);
    FILE *f = fopen(bad, "w"); /* a file where a directory should be */
    fclose(f);
    char good[300];
    snprintf(good, sizeof(good), "%s/g@x", tmpdir);
    struct store_rcpt r[2] = {{.dir = bad}, {.dir = good}};
    struct store_opts o = {0};
    CHECK_INT_EQ(store_deliver("x\n", 2, r, 2, &o), 1);
    CHECK_INT_EQ(r[0].status, STORE_EIO);
    CHECK(r[0].err != 0);
    CHECK_INT_EQ(r[1].status, STORE_OK);
    rm_rf(tmpdir);
}

static int async_done;

static void on_delivered(void *ud, struct store_rcpt *r, size_t n)
{
    CHECK_INT_EQ(n, 1);
    CHECK_INT_EQ(r->status, STORE_OK);
    (*(int *)ud)++;
    async_done++;
}

TEST(deliver_async_batches)
{
    make_tmpdir();
    uv_loop_t loop;
    uv_loop_init(&loop);
    char acct[300], path[400];
    snprintf(acct, sizeof(acct), "%s/a@x", tmpdir);
    struct store_opts o = {0};
    struct store_async *a = store_async_new(&loop, &o, 2);
    enum { N = 50 };
    static struct store_rcpt r[N];
    int counts[N] = {0};
    async_done = 0;
    for (int i = 0; i < N; i++) {
        r[i] = (struct store_rcpt){.dir = acct};
        CHECK_INT_EQ(store_deliver_async(a, test_msg, strlen(test_msg), &r[i], 1, on_delivered,
                                         &counts[i]), 0);
    }
    CHECK_INT_EQ(store_async_inflight(a), N);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(async_done, N);
    for (int i = 0; i < N; i++)
        CHECK_INT_EQ(counts[i], 1);
    CHECK_INT_EQ(store_async_inflight(a), 0);
    store_async_free(a);
    uv_loop_close(&loop);
    snprintf(path, sizeof(path), "%s/new", acct);
    CHECK_INT_EQ(count_dir(path), N);
    rm_rf(tmpdir);
}

int main(void)
{
    RUN(mdname_parse_dovecot);
    RUN(mdname_make_and_flags);
    RUN(gzip_roundtrip_and_reader);
    RUN(gzip_read_dovecot_style_file);
    RUN(deliver_one);
    RUN(deliver_many_hardlinked_gzip);
    RUN(deliver_failure_is_reported);
    RUN(deliver_async_batches);
    return check_report();
}
