/* quota_trim.c: chatmail-quota-expire, exactly as §5.2 describes it.
 * Candidates are the files of the top-level cur/ and new/ whose names look
 * like <digits>.<...>,S=<digits>; they go oldest first by (name time, S=
 * size, relative path) while the sum of their S= sizes is over the target,
 * and the walk stops at the first message whose name time is within 24 h of
 * now. A dry run only counts (spec decision 7: the trim obeys dry-run). */
#include "store/maildir.h"

#include "core/log.h"
#include "core/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct trim_file {
    int64_t secs;
    uint64_t size;
    char rel[4 + MDNAME_MAX + 1]; /* "cur/<name>" */
};

struct trim_list {
    struct trim_file *v;
    size_t n, cap;
};

static int add_file(struct trim_list *l, const char *sub, const char *name)
{
    struct mdname mn;
    if (mdname_parse(name, strlen(name), &mn) < 0 || !mn.has_secs || !mn.has_size)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        struct trim_file *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    struct trim_file *f = &l->v[l->n++];
    f->secs = mn.secs;
    f->size = mn.size;
    snprintf(f->rel, sizeof(f->rel), "%s/%s", sub, name);
    return 0;
}

static int collect(int afd, const char *sub, struct trim_list *l)
{
    int dfd = openat(afd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? 0 : -1;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN))
            rc = add_file(l, sub, de->d_name);
    closedir(d);
    return rc;
}

static int cmp_trim(const void *a, const void *b)
{
    const struct quota_trim_item *x = a, *y = b;
    if (x->secs != y->secs)
        return x->secs < y->secs ? -1 : 1;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    return strcmp(x->rel, y->rel);
}

size_t quota_trim_pick(struct quota_trim_item *v, size_t n, uint64_t target, int64_t now)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i].size;
    if (sum <= target)
        return 0;
    qsort(v, n, sizeof(*v), cmp_trim);
    size_t k = 0;
    while (k < n && sum > target && v[k].secs <= now - QUOTA_TRIM_PROTECT_SECS)
        sum -= v[k++].size;
    return k;
}

static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    const char *s = path + n;
    while (s > path && s[-1] != '/')
        s--;
    return s;
}

static void remove_oldest(int afd, struct trim_list *l, uint64_t target, int64_t now,
                          bool dry_run, struct quota_trim_result *res)
{
    struct quota_trim_item *items = malloc((l->n ? l->n : 1) * sizeof(*items));
    if (!items)
        return;
    for (size_t i = 0; i < l->n; i++)
        items[i] = (struct quota_trim_item){l->v[i].secs, l->v[i].size, l->v[i].rel, i};
    size_t k = quota_trim_pick(items, l->n, target, now);
    for (size_t i = 0; i < k; i++) {
        /* gone already (ENOENT): whoever removed it gave its quota back */
        if (!dry_run && unlinkat(afd, items[i].rel, 0) < 0)
            continue;
        res->removed++;
        res->bytes += items[i].size;
    }
    free(items);
}

int quota_trim(struct quota_cache *qc, const char *account_dir, uint64_t target, int64_t now,
               bool dry_run, struct quota_trim_result *res)
{
    memset(res, 0, sizeof(*res));
    int afd = open(account_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (afd < 0)
        return -1;
    struct trim_list l = {0};
    int rc = collect(afd, "cur", &l) == 0 && collect(afd, "new", &l) == 0 ? 0 : -1;
    if (rc == 0)
        remove_oldest(afd, &l, target, now, dry_run, res);
    free(l.v);
    if (res->removed && !dry_run) {
        unlinkat(afd, "maildirsize", 0);
        if (qc)
            quota_adjust(qc, account_dir, -(int64_t)res->bytes);
        log_info("quota-expire: removed %u message(s) from %s", res->removed,
                 base_name(account_dir));
        metrics_inc(M_QUOTA_EXPIRE_RUNS);
        metrics_add(M_QUOTA_EXPIRE_REMOVED_FILES, res->removed);
    } else if (res->removed) {
        log_info("quota-expire: dry run, would remove %u message(s) from %s", res->removed,
                 base_name(account_dir));
    }
    close(afd);
    return rc;
}
