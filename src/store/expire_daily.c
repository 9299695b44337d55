/* expire_daily.c: runs the expiry pass (expire.c) from the command line
 * (`chatmaild-server -c FILE expire [--remove|--dry-run] [--days N] [-v]`:
 * reports only unless --remove, like chatmail's chatmail-expire) and every
 * day in-process at a set local time, on libuv's worker pool in batches of
 * EXPIRE_BATCH mailboxes so the loop thread never waits. Also formats the
 * fsreport gauges (§5.5) for the metrics endpoint. */
#include "store/maildir.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define EXPIRE_BATCH 500 /* mailboxes per worker job */

static void params_from_config(struct expire_params *p, const struct config *cfg, int64_t now)
{
    memset(p, 0, sizeof(*p));
    p->mailboxes_dir = cfg->mailboxes_dir;
    p->delete_mails_after = cfg->delete_mails_after;
    p->delete_large_after = cfg->delete_large_after;
    p->delete_inactive_users_after = cfg->delete_inactive_users_after;
    p->max_mailbox_size_mb = cfg->max_mailbox_size_mb;
    p->now = now;
}

static int parse_days(const char *s, long *days)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 100000)
        return -1;
    *days = v;
    return 0;
}

int expire_cli(const struct config *cfg, int argc, char **argv)
{
    bool remove = false, dry = false, verbose = false;
    long days = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--remove")) {
            remove = true;
        } else if (!strcmp(argv[i], "--dry-run")) {
            dry = true; /* the default, said explicitly */
        } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
            verbose = true;
        } else if (!strcmp(argv[i], "--days") && i + 1 < argc && parse_days(argv[i + 1], &days) == 0) {
            i++;
        } else {
            fprintf(stderr, "usage: chatmaild-server -c FILE expire [--remove|--dry-run] [--days N] [-v]\n");
            return 2;
        }
    }
    if (remove && dry) {
        fprintf(stderr, "expire: --remove and --dry-run contradict each other\n"
                        "usage: chatmaild-server -c FILE expire [--remove|--dry-run] [--days N] [-v]\n");
        return 2;
    }
    struct expire_params p;
    params_from_config(&p, cfg, (int64_t)time(NULL) - (int64_t)days * 86400);
    p.dry_run = !remove;
    p.verbose = verbose;
    struct expire_stats st;
    char err[512], line[256];
    if (expire_run_all(&p, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "expire: %s\n", err);
        return 1;
    }
    expire_summary(&st, line, sizeof(line));
    printf("%s\n", line);
    return 0;
}

/* ------------------------------------------------------------ fsreport */

int fsreport_format(const struct fsreport *f, struct buf *out)
{
    int rc = 0;
    rc |= buf_printf(out, "# TYPE chatmail_storage_bytes gauge\n");
    rc |= buf_printf(out, "chatmail_storage_bytes{kind=\"messages\"} %llu\n",
                     (unsigned long long)f->bytes_messages);
    rc |= buf_printf(out, "chatmail_storage_bytes{kind=\"extra\"} %llu\n",
                     (unsigned long long)f->bytes_extra);
    rc |= buf_printf(out, "chatmail_storage_bytes{kind=\"total\"} %llu\n",
                     (unsigned long long)(f->bytes_messages + f->bytes_extra));
    rc |= buf_printf(out, "# TYPE chatmail_messages_bytes gauge\n");
    for (int t = 0; t < FSREPORT_NSIZES; t++)
        rc |= buf_printf(out, "chatmail_messages_bytes{min_size=\"%llu\"} %llu\n",
                         (unsigned long long)fsreport_sizes[t], (unsigned long long)f->msg_bytes[t]);
    rc |= buf_printf(out, "# TYPE chatmail_messages_count gauge\n");
    for (int t = 0; t < FSREPORT_NSIZES; t++)
        rc |= buf_printf(out, "chatmail_messages_count{min_size=\"%llu\"} %llu\n",
                         (unsigned long long)fsreport_sizes[t], (unsigned long long)f->msg_count[t]);
    rc |= buf_printf(out, "# TYPE chatmail_accounts gauge\n");
    rc |= buf_printf(out, "chatmail_accounts{kind=\"all\"} %llu\nchatmail_accounts{kind=\"ci\"} %llu\n"
                          "chatmail_accounts{kind=\"user\"} %llu\n",
                     (unsigned long long)f->accounts_all, (unsigned long long)f->accounts_ci,
                     (unsigned long long)f->accounts_user);
    rc |= buf_printf(out, "# TYPE chatmail_accounts_active gauge\n");
    for (int d = 0; d < FSREPORT_NDAYS; d++)
        rc |= buf_printf(out, "chatmail_accounts_active{days=\"%d\"} %llu\n", fsreport_days[d],
                         (unsigned long long)f->active[d]);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------ daily schedule */

struct expire_daily {
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_work_t work;
    const struct config *cfg;
    struct quota_cache *qc;
    int hour, minute;
    struct expire_run *run; /* owned by the worker while `busy` */
    char err[256];
    int more;
    bool busy, stopping, have_report;
    struct fsreport report;
};

/* Milliseconds from now until the next hh:mm local time. */
static uint64_t ms_until(int hour, int minute)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    time_t next = mktime(&tm);
    if (next <= now) {
        tm.tm_mday += 1;
        tm.tm_isdst = -1;
        next = mktime(&tm);
    }
    return (uint64_t)(next - now) * 1000;
}

static void on_timer(uv_timer_t *t);

static void arm(struct expire_daily *d)
{
    uv_timer_start(&d->timer, on_timer, ms_until(d->hour, d->minute), 0);
}

static void step_work(uv_work_t *w)
{
    struct expire_daily *d = w->data;
    if (!d->run) {
        struct expire_params p;
        params_from_config(&p, d->cfg, (int64_t)time(NULL));
        p.quota = d->qc;
        d->run = expire_begin(&p, d->err, sizeof(d->err));
        d->more = d->run ? 1 : -1;
        return;
    }
    d->more = expire_step(d->run, EXPIRE_BATCH);
}

static void free_daily(uv_handle_t *h)
{
    free(h->data);
}

static void step_done(uv_work_t *w, int status)
{
    struct expire_daily *d = w->data;
    if (d->more < 0) {
        log_error("expire: %s", d->err);
    } else if (d->more > 0 && !d->stopping) {
        uv_queue_work(d->loop, &d->work, step_work, step_done);
        return;
    } else {
        struct expire_stats st;
        char line[256];
        expire_end(d->run, &st);
        expire_summary(&st, line, sizeof(line));
        log_info("%s", line);
        d->report = st.fs;
        d->have_report = true;
    }
    d->run = NULL;
    d->busy = false;
    if (d->stopping)
        uv_close((uv_handle_t *)&d->timer, free_daily);
    else
        arm(d);
}

void expire_daily_run_now(struct expire_daily *d)
{
    if (!d->stopping)
        on_timer(&d->timer);
}

static void on_timer(uv_timer_t *t)
{
    struct expire_daily *d = t->data;
    if (d->busy)
        return;
    d->busy = true;
    if (uv_queue_work(d->loop, &d->work, step_work, step_done) != 0) {
        d->busy = false;
        arm(d);
    }
}

struct expire_daily *expire_daily_start(uv_loop_t *loop, const struct config *cfg, int hour,
                                        int minute, struct quota_cache *qc)
{
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || !cfg->mailboxes_dir)
        return NULL;
    struct expire_daily *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->loop = loop;
    d->cfg = cfg;
    d->qc = qc;
    d->hour = hour;
    d->minute = minute;
    d->work.data = d;
    d->timer.data = d;
    uv_timer_init(loop, &d->timer);
    arm(d);
    return d;
}

bool expire_daily_report(const struct expire_daily *d, struct fsreport *out)
{
    if (d->have_report)
        *out = d->report;
    return d->have_report;
}

void expire_daily_stop(struct expire_daily *d)
{
    if (!d)
        return;
    d->stopping = true;
    uv_timer_stop(&d->timer);
    if (!d->busy)
        uv_close((uv_handle_t *)&d->timer, free_daily);
}
