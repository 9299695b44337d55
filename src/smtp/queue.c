/* queue.c: durable outbound queue files (see queue.h). */
#include "smtp/queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/buf.h"
#include "core/fileio.h"
#include "core/metrics.h"

#define QUEUE_MAGIC "CHATMAILD-QUEUE 1\r\n"
#define QUEUE_HEADER_MAX (QUEUE_MAX_RCPTS * 330 + 1024)

static int envelope_text(struct buf *b, const char *from, const char *const *rcpts, size_t n)
{
    int rc = buf_append_str(b, QUEUE_MAGIC);
    rc |= buf_printf(b, "Mail-From: %s\r\nArrival: %lld\r\n", from ? from : "",
                     (long long)time(NULL));
    for (size_t i = 0; i < n; i++)
        rc |= buf_printf(b, "Rcpt-To: %s\r\n", rcpts[i]);
    rc |= buf_append_str(b, "\r\n");
    return rc ? -1 : 0;
}

int queue_write(const char *dir, const char *mail_from, const char *const *rcpts, size_t n_rcpts,
                const char *msg, size_t len, char id[QUEUE_ID_LEN])
{
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    snprintf(id, QUEUE_ID_LEN, "%lld.%02x%02x%02x%02x%02x%02x%02x%02x", (long long)time(NULL),
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    char tmp[4096], final[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.tmp-%s", dir, id) >= (int)sizeof tmp ||
        snprintf(final, sizeof final, "%s/%s", dir, id) >= (int)sizeof final) {
        errno = ENAMETOOLONG;
        return -1;
    }
    struct buf env = {0};
    if (envelope_text(&env, mail_from, rcpts, n_rcpts) < 0) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = -1;
    if (fd >= 0) {
        rc = fileio_write_all(fd, env.data, env.len) == 0 && fileio_write_all(fd, msg, len) == 0 &&
                     fsync(fd) == 0 ? 0 : -1;
        int e = errno;
        close(fd);
        errno = e;
        if (rc == 0 && (rc = rename(tmp, final)) == 0) {
            metrics_gauge_add(G_QUEUE_LENGTH, 1);
            rc = fileio_fsync_path(dir);
        }
        if (rc < 0) {
            e = errno;
            unlink(tmp);
            errno = e;
        }
    }
    buf_free(&env);
    return rc;
}

long queue_count(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.' && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN);
    closedir(d);
    return n;
}

int queue_remove(const char *dir, const char *id)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, id) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (unlink(path) == 0) {
        metrics_gauge_add(G_QUEUE_LENGTH, -1);
        return 0;
    }
    return errno == ENOENT ? 0 : -1;
}

/* ---------- async ---------- */

struct queue_req {
    uv_work_t work;
    const char *dir, *from;
    const char *const *rcpts;
    size_t n_rcpts;
    const char *msg;
    size_t len;
    int status;
    char id[QUEUE_ID_LEN];
    void (*cb)(void *ud, int status, const char *id);
    void *ud;
};

static void work_cb(uv_work_t *w)
{
    struct queue_req *q = w->data;
    q->status = queue_write(q->dir, q->from, q->rcpts, q->n_rcpts, q->msg, q->len, q->id) == 0
                    ? 0 : -errno;
}

static void after_cb(uv_work_t *w, int status)
{
    struct queue_req *q = w->data;
    q->cb(q->ud, status < 0 ? status : q->status, q->id);
    free(q);
}

int queue_write_async(uv_loop_t *loop, const char *dir, const char *mail_from,
                      const char *const *rcpts, size_t n_rcpts, const char *msg, size_t len,
                      void (*cb)(void *ud, int status, const char *id), void *ud)
{
    struct queue_req *q = calloc(1, sizeof *q);
    if (!q)
        return -1;
    *q = (struct queue_req){.dir = dir, .from = mail_from, .rcpts = rcpts, .n_rcpts = n_rcpts,
                            .msg = msg, .len = len, .cb = cb, .ud = ud};
    q->work.data = q;
    if (uv_queue_work(loop, &q->work, work_cb, after_cb) != 0) {
        free(q);
        return -1;
    }
    return 0;
}

/* ---------- parsing ---------- */

static char *dup_range(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int add_rcpt(struct queue_envelope *env, const char *v, size_t n)
{
    if (env->n_rcpts >= QUEUE_MAX_RCPTS)
        return -1;
    char **r = realloc(env->rcpts, (env->n_rcpts + 1) * sizeof *r);
    if (!r)
        return -1;
    env->rcpts = r;
    if (!(r[env->n_rcpts] = dup_range(v, n)))
        return -1;
    env->n_rcpts++;
    return 0;
}

static int parse_line(struct queue_envelope *env, const char *line, size_t n)
{
    static const char from[] = "Mail-From: ", rcpt[] = "Rcpt-To: ", arr[] = "Arrival: ";
    if (n >= sizeof from - 1 && memcmp(line, from, sizeof from - 1) == 0) {
        if (env->mail_from)
            return -1;
        env->mail_from = dup_range(line + sizeof from - 1, n - (sizeof from - 1));
        return env->mail_from ? 0 : -1;
    }
    if (n >= sizeof rcpt - 1 && memcmp(line, rcpt, sizeof rcpt - 1) == 0)
        return add_rcpt(env, line + sizeof rcpt - 1, n - (sizeof rcpt - 1));
    if (n >= sizeof arr - 1 && memcmp(line, arr, sizeof arr - 1) == 0) {
        char num[24];
        size_t k = n - (sizeof arr - 1);
        if (k == 0 || k >= sizeof num)
            return -1;
        memcpy(num, line + sizeof arr - 1, k);
        num[k] = '\0';
        char *end;
        env->arrival = strtoll(num, &end, 10);
        return *end == '\0' ? 0 : -1;
    }
    return -1;
}

int queue_parse_envelope(const char *data, size_t len, struct queue_envelope *env)
{
    memset(env, 0, sizeof *env);
    size_t m = sizeof QUEUE_MAGIC - 1;
    if (len < m || memcmp(data, QUEUE_MAGIC, m) != 0)
        return -1;
    size_t pos = m;
    while (pos < len && pos < QUEUE_HEADER_MAX) {
        const char *line = data + pos;
        const char *eol = memchr(line, '\n', len - pos);
        if (!eol || eol == line || eol[-1] != '\r')
            break;
        size_t n = (size_t)(eol - line) - 1;
        pos = (size_t)(eol - data) + 1;
        if (n == 0) { /* blank line: the message follows */
            if (!env->mail_from || env->n_rcpts == 0)
                break;
            env->body_offset = pos;
            return 0;
        }
        if (memchr(line, '\0', n) || parse_line(env, line, n) < 0)
            break;
    }
    queue_envelope_free(env);
    return -1;
}

void queue_envelope_free(struct queue_envelope *env)
{
    free(env->mail_from);
    for (size_t i = 0; i < env->n_rcpts; i++)
        free(env->rcpts[i]);
    free(env->rcpts);
    memset(env, 0, sizeof *env);
}
