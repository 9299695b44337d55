/* outq_cli.c: `chatmaild-server -c FILE queue [flush]`: lists what is queued
 * (id, age, sender, and per recipient its state, attempts, next try and
 * last reply) from the files alone, so it works with or without a running
 * server; `flush` leaves OUTQ_FLUSH_FILE in the queue directory, which the
 * running server picks up within a second and retries everything. */
#include "smtp/outq.h"
#include "smtp/queue.h"
#include "smtp/smtp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"

#define CLI_ENVELOPE_MAX (512 * 1024)

static int read_head(const char *path, size_t max, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (buf_reserve(out, max) < 0) {
        close(fd);
        return -1;
    }
    ssize_t k;
    while (out->len < max && (k = read(fd, out->data + out->len, max - out->len)) != 0) {
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            break;
        out->len += (size_t)k;
    }
    close(fd);
    return 0;
}

static void span(char *out, size_t n, int64_t secs)
{
    if (secs < 0)
        secs = 0;
    if (secs < 120)
        snprintf(out, n, "%llds", (long long)secs);
    else if (secs < 7200)
        snprintf(out, n, "%lldm", (long long)(secs / 60));
    else
        snprintf(out, n, "%lldh%02lldm", (long long)(secs / 3600), (long long)(secs % 3600 / 60));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "queue: cannot open %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char **ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **x = realloc(ids, cap * sizeof *x);
            if (!x)
                break;
            ids = x;
        }
        if (!(ids[n] = strdup(de->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (n)
        qsort(ids, n, sizeof *ids, cmp_str);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        char path[8400], spath[8400];
        struct buf b = {0}, sb = {0};
        struct queue_envelope env;
        struct outq_state st = {0};
        snprintf(path, sizeof path, "%s/%s", dir, ids[i]);
        snprintf(spath, sizeof spath, "%s/.st-%s", dir, ids[i]);
        if (read_head(path, CLI_ENVELOPE_MAX, &b) < 0 ||
            queue_parse_envelope(b.data ? b.data : "", b.len, &env) < 0) {
            printf("%s  (unreadable or malformed)\n", ids[i]);
            buf_free(&b);
            free(ids[i]);
            continue;
        }
        if (read_head(spath, OUTQ_STATE_MAX, &sb) == 0 &&
            outq_state_parse(sb.data ? sb.data : "", sb.len, &st) < 0)
            memset(&st, 0, sizeof st);
        char age[32];
        span(age, sizeof age, now - env.arrival);
        printf("%s  age %s  from <%s>  %zu recipient%s\n", ids[i], age, env.mail_from,
               env.n_rcpts, env.n_rcpts == 1 ? "" : "s");
        for (size_t k = 0; k < env.n_rcpts; k++) {
            const struct outq_rstate *r = NULL;
            for (size_t j = 0; j < st.n && !r; j++)
                if (strcmp(st.r[j].addr, env.rcpts[k]) == 0)
                    r = &st.r[j];
            const char *s = !r || r->status == OUTQ_PENDING ? "pending"
                            : r->status == OUTQ_DELIVERED   ? "delivered"
                                                            : "failed";
            char next[32] = "now";
            if (r && r->status == OUTQ_PENDING && r->next_try > now)
                span(next, sizeof next, r->next_try - now), memmove(next + 3, next, strlen(next) + 1),
                    memcpy(next, "in ", 3);
            printf("  %s  %s  attempts %u  next try %s  last reply: %s\n", env.rcpts[k], s,
                   r ? r->attempts : 0, r && r->status != OUTQ_PENDING ? "-" : next,
                   r && r->last[0] ? r->last : "-");
        }
        outq_state_free(&st);
        queue_envelope_free(&env);
        buf_free(&b);
        buf_free(&sb);
        free(ids[i]);
    }
    free(ids);
    printf("%zu message%s queued\n", n, n == 1 ? "" : "s");
    return 0;
}

int outq_cli(const struct config *cfg, int argc, char **argv)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/queue", cfg->state_dir) >= (int)sizeof dir) {
        fprintf(stderr, "queue: state_dir too long\n");
        return 1;
    }
    if (argc == 0 || (argc == 1 && strcmp(argv[0], "list") == 0))
        return list(dir);
    if (argc == 1 && strcmp(argv[0], "flush") == 0) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, OUTQ_FLUSH_FILE);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            fprintf(stderr, "queue: cannot create %s: %s\n", path, strerror(errno));
            return 1;
        }
        close(fd);
        printf("queue: flush requested; the running server retries every message now\n");
        return 0;
    }
    fprintf(stderr, "usage: chatmaild-server -c FILE queue [list|flush]\n");
    return 2;
}

int smtp_queue_cli(const struct config *cfg, int argc, char **argv)
{
    return outq_cli(cfg, argc, argv);
}
