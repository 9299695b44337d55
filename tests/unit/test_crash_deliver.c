/* test_crash_deliver.c: delivery survives SIGKILL at any moment.
 *
 * Each round forks a child that delivers messages in a loop (fsync on, two
 * recipients on one filesystem so hard links are exercised, gzip every
 * other round) and writes "<id> <name>" to a pipe only AFTER store_deliver
 * reported success. The parent kills it with SIGKILL after a random delay,
 * then checks: every reported id is in both mailboxes' new/ exactly once
 * and reads back byte for byte; every file in new/ (reported or not) is
 * complete; every mailbox directory opens. tmp/ leftovers are allowed. */
#include "check.h"

#include "core/buf.h"
#include "store/maildir.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 30
#define MAX_IDS 200000

static char base[256], boxes[2][300];
static unsigned char reported[MAX_IDS]; /* 1 = child said it was delivered */

/* The message for an id: a header naming it and a pseudo-random body. */
static void make_msg(int id, struct buf *b)
{
    buf_reset(b);
    buf_printf(b, "X-Id: %d\n\n", id);
    unsigned x = (unsigned)id * 2654435761u + 1;
    size_t n = (size_t)(id % 7) * 997 + 10;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        char c = (char)('a' + (x >> 16) % 26);
        buf_append(b, &c, 1);
    }
    buf_append(b, "\n", 1);
}

static void child(int wfd, int round)
{
    struct buf m = {0};
    struct store_opts o = {.compress = round % 2 == 1};
    char line[400];
    for (int i = 0;; i++) {
        int id = round * 5000 + i;
        if (i >= 5000)
            _exit(0);
        make_msg(id, &m);
        struct store_rcpt r[2] = {{.dir = boxes[0]}, {.dir = boxes[1]}};
        if (store_deliver(m.data, m.len, r, 2, &o) != 2)
            _exit(3);
        int n = snprintf(line, sizeof(line), "%d %s\n", id, r[0].name);
        if (write(wfd, line, (size_t)n) != n)
            _exit(4);
    }
}

/* Reads everything the (dead) child wrote; marks the ids. */
static void collect(int rfd)
{
    static char acc[1 << 20];
    size_t len = 0;
    ssize_t n;
    while ((n = read(rfd, acc + len, sizeof(acc) - 1 - len)) > 0)
        len += (size_t)n;
    acc[len] = '\0';
    for (char *l = acc, *nl; (nl = strchr(l, '\n')); l = nl + 1) {
        int id = atoi(l);
        if (id >= 0 && id < MAX_IDS)
            reported[id] = 1;
    }
}

/* Checks one mailbox; counts[id] += files found for id. */
static int check_box(const char *box, unsigned char *counts)
{
    char p[1024];
    static const char *const subs[] = {"cur", "tmp"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/%s", box, subs[i]);
        DIR *d = opendir(p);
        if (!d)
            return -1;
        closedir(d);
    }
    snprintf(p, sizeof(p), "%s/new", box);
    int dfd = open(p, O_RDONLY | O_DIRECTORY);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d)
        return -1;
    struct buf got = {0}, want = {0};
    int bad = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        buf_reset(&got);
        int id = -1;
        if (gz_read_file(dfd, de->d_name, &got, 1 << 20) < 0 || sscanf(got.data ? got.data : "", "X-Id: %d", &id) != 1 ||
            id < 0 || id >= MAX_IDS) {
            bad++;
            continue;
        }
        make_msg(id, &want);
        struct mdname mn;
        mdname_parse(de->d_name, strlen(de->d_name), &mn);
        if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0 || mn.size != want.len)
            bad++;
        counts[id]++;
    }
    closedir(d);
    buf_free(&got);
    buf_free(&want);
    return bad;
}

static int verify(void)
{
    static unsigned char counts[2][MAX_IDS];
    memset(counts, 0, sizeof(counts));
    int problems = 0;
    for (int b = 0; b < 2; b++) {
        int bad = check_box(boxes[b], counts[b]);
        if (bad != 0)
            fprintf(stderr, "mailbox %d: %d bad files\n", b, bad);
        problems += bad != 0;
    }
    for (int id = 0; id < MAX_IDS; id++)
        for (int b = 0; b < 2; b++)
            if (counts[b][id] > 1 || (reported[id] && counts[b][id] != 1)) {
                fprintf(stderr, "id %d in mailbox %d: %d copies\n", id, b, counts[b][id]);
                problems++;
            }
    return problems;
}

static int round_once(int round)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child(fds[1], round);
    }
    close(fds[1]);
    struct timespec ts = {0, (long)(5 + rand() % 150) * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    collect(fds[0]);
    close(fds[0]);
    return WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : -1;
}

TEST(sigkill_during_deliveries)
{
    snprintf(base, sizeof(base), "/tmp/test_crash.XXXXXX");
    if (!mkdtemp(base))
        abort();
    for (int b = 0; b < 2; b++) {
        /* The accounts exist before mail comes (their Maildirs are made
         * then, as a first login or an earlier delivery would): a kill
         * before the first delivery must not count as a broken mailbox. */
        snprintf(boxes[b], sizeof(boxes[b]), "%s/u%d@x", base, b);
        char p[1100];
        mkdir(boxes[b], 0700);
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/%s", boxes[b], (const char *[]){"cur", "new", "tmp"}[i]);
            mkdir(p, 0700);
        }
    }
    srand((unsigned)time(NULL));
    int delivered = 0;
    for (int round = 0; round < ROUNDS; round++) {
        CHECK_INT_EQ(round_once(round), 0);
        CHECK_INT_EQ(verify(), 0);
    }
    for (int id = 0; id < MAX_IDS; id++)
        delivered += reported[id];
    fprintf(stderr, "%d rounds, %d deliveries reported\n", ROUNDS, delivered);
    CHECK(delivered > 0);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "rm failed\n");
}

int main(void)
{
    RUN(sigkill_during_deliveries);
    return check_report();
}
