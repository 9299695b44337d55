/* test_queue.c: durable queue files and the spool. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "core/spool.h"
#include "smtp/queue.h"

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    fstat(fd, &st);
    char *p = malloc((size_t)st.st_size + 1);
    ssize_t r = read(fd, p, (size_t)st.st_size);
    *len = r > 0 ? (size_t)r : 0;
    close(fd);
    return p;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' || strncmp(e->d_name, ".tmp", 4) == 0)
            n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

TEST(write_and_parse)
{
    char dir[] = "/tmp/cmq-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *rcpts[] = {"bob@example.org", "carol@example.net"};
    const char msg[] = "From: a@b\r\n\r\nhello\r\n";
    char id[QUEUE_ID_LEN];
    CHECK_INT_EQ(queue_write(dir, "alice@relay1.test", rcpts, 2, msg, sizeof msg - 1, id), 0);
    CHECK_INT_EQ(count_entries(dir), 1); /* no temporary file left */
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, id);
    size_t len = 0;
    char *data = read_file(path, &len);
    struct queue_envelope env;
    CHECK_INT_EQ(queue_parse_envelope(data, len, &env), 0);
    CHECK_STR_EQ(env.mail_from, "alice@relay1.test");
    CHECK_INT_EQ(env.n_rcpts, 2);
    CHECK_STR_EQ(env.rcpts[1], "carol@example.net");
    CHECK(env.arrival > 1700000000);
    CHECK(len - env.body_offset == sizeof msg - 1);
    CHECK(memcmp(data + env.body_offset, msg, sizeof msg - 1) == 0);
    queue_envelope_free(&env);
    free(data);
    unlink(path);
    rmdir(dir);
}

TEST(parse_rejects)
{
    struct queue_envelope env;
    const char *bad[] = {
        "",
        "CHATMAILD-QUEUE 1\r\nMail-From: a\r\n\r\n",             /* no recipient */
        "CHATMAILD-QUEUE 1\r\nRcpt-To: b\r\n\r\n",               /* no sender line */
        "CHATMAILD-QUEUE 1\r\nMail-From: a\r\nRcpt-To: b\r\n",   /* no blank line */
        "CHATMAILD-QUEUE 1\r\nMail-From: a\nRcpt-To: b\r\n\r\n", /* bare LF */
        "CHATMAILD-QUEUE 1\r\nMail-From: a\r\nRcpt-To: b\r\nX: y\r\n\r\n",
        "CHATMAILD-QUEUE 1\r\nMail-From: a\r\nArrival: 12x\r\nRcpt-To: b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT_EQ(queue_parse_envelope(bad[i], strlen(bad[i]), &env), -1);
    const char *ok = "CHATMAILD-QUEUE 1\r\nMail-From: \r\nRcpt-To: b@c\r\n\r\nx";
    CHECK_INT_EQ(queue_parse_envelope(ok, strlen(ok), &env), 0);
    CHECK_STR_EQ(env.mail_from, ""); /* null sender */
    queue_envelope_free(&env);
}

static int async_status = 99;
static void async_done(void *ud, int status, const char *id)
{
    (void)ud;
    (void)id;
    async_status = status;
}

TEST(async_write)
{
    char dir[] = "/tmp/cmq-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *rcpts[] = {"x@y"};
    CHECK_INT_EQ(queue_write_async(&loop, dir, "a@b", rcpts, 1, "m\r\n", 3, async_done, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    CHECK_INT_EQ(async_status, 0);
    CHECK_INT_EQ(count_entries(dir), 1);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT_EQ(system(cmd), 0);
}

TEST(spool_spills)
{
    struct spool s;
    spool_init(&s, "/tmp");
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 300; i++) /* 1.2 MiB: past the memory limit */
        CHECK_INT_EQ(spool_append(&s, chunk, sizeof chunk), 0);
    CHECK(s.fd >= 0);
    const char *data;
    size_t len;
    CHECK_INT_EQ(spool_view(&s, &data, &len), 0);
    CHECK_INT_EQ(len, 300 * 4096);
    CHECK(data[0] == 'x' && data[len - 1] == 'x');
    spool_reset(&s);
    CHECK(s.fd < 0 && s.size == 0);
    CHECK_INT_EQ(spool_append(&s, "ab", 2), 0);
    CHECK_INT_EQ(spool_view(&s, &data, &len), 0);
    CHECK(len == 2 && memcmp(data, "ab", 2) == 0);
    spool_reset(&s);
}

int main(void)
{
    RUN(write_and_parse);
    RUN(parse_rejects);
    RUN(async_write);
    RUN(spool_spills);
    return check_report();
}
