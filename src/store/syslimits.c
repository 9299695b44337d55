/* syslimits.c: system resource checks before an account is created
 * (spec §2.4 rule 6): 1-minute load average, available memory, free disk
 * on the filesystem of mailboxes_dir, in that order. A value that cannot
 * be read is ignored (logged), the other checks still apply. Existing
 * accounts are never checked. */
#include "store/accounts.h"

#include "core/config.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#define SYSLIMITS_PATH_MAX 1024

static pthread_mutex_t paths_mu = PTHREAD_MUTEX_INITIALIZER;
static char loadavg_path[SYSLIMITS_PATH_MAX] = "/proc/loadavg";
static char meminfo_path[SYSLIMITS_PATH_MAX] = "/proc/meminfo";

void store_syslimits_set_paths(const char *loadavg, const char *meminfo)
{
    pthread_mutex_lock(&paths_mu);
    snprintf(loadavg_path, sizeof loadavg_path, "%s", loadavg ? loadavg : "/proc/loadavg");
    snprintf(meminfo_path, sizeof meminfo_path, "%s", meminfo ? meminfo : "/proc/meminfo");
    pthread_mutex_unlock(&paths_mu);
}

static void current_path(const char *src, char *dst)
{
    pthread_mutex_lock(&paths_mu);
    memcpy(dst, src, SYSLIMITS_PATH_MAX);
    pthread_mutex_unlock(&paths_mu);
}

/* Reads up to sz-1 bytes of a small file; returns bytes read or -1. */
static long read_small(const char *path, char *out, size_t sz)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(out, 1, sz - 1, f);
    fclose(f);
    out[n] = '\0';
    return (long)n;
}

static int read_load1(double *load)
{
    char path[SYSLIMITS_PATH_MAX], text[256];
    current_path(loadavg_path, path);
    if (read_small(path, text, sizeof text) <= 0)
        return -1;
    char *end;
    *load = strtod(text, &end);
    return (end == text || *load < 0) ? -1 : 0;
}

static int read_mem_available_mb(double *mb)
{
    char path[SYSLIMITS_PATH_MAX], text[8192];
    current_path(meminfo_path, path);
    if (read_small(path, text, sizeof text) <= 0)
        return -1;
    const char *p = strstr(text, "MemAvailable:");
    if (!p || (p != text && p[-1] != '\n'))
        return -1;
    char *end;
    double kb = strtod(p + strlen("MemAvailable:"), &end);
    if (end == p + strlen("MemAvailable:") || kb < 0)
        return -1;
    *mb = kb / 1024.0;
    return 0;
}

/* Free space of the filesystem that holds dir (or its nearest existing
 * parent, before the first account creates it). */
static int read_free_disk_mb(const char *dir, double *mb)
{
    struct statvfs sv;
    char path[SYSLIMITS_PATH_MAX];
    if (!dir || !*dir || strlen(dir) >= sizeof path)
        return -1;
    strcpy(path, dir);
    while (statvfs(path, &sv) != 0) {
        char *slash = strrchr(path, '/');
        if (!slash || errno != ENOENT || strcmp(path, "/") == 0)
            return -1;
        if (slash == path)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    *mb = (double)sv.f_bavail * (double)sv.f_frsize / (1024.0 * 1024.0);
    return 0;
}

int store_syslimits_check(const struct config *cfg, char *reason, size_t reasonsz)
{
    double v;
    if (read_load1(&v) < 0)
        log_warn("ignoring unreadable system limit: load average");
    else if (v > cfg->max_load_1m) {
        snprintf(reason, reasonsz, "load avg %.2f > %.2f", v, cfg->max_load_1m);
        return 1;
    }
    if (read_mem_available_mb(&v) < 0)
        log_warn("ignoring unreadable system limit: available memory");
    else if (v < (double)cfg->min_available_memory_mb) {
        snprintf(reason, reasonsz, "available memory %.0fM < %ldM", v,
                 cfg->min_available_memory_mb);
        return 1;
    }
    if (read_free_disk_mb(cfg->mailboxes_dir, &v) < 0)
        log_warn("ignoring unreadable system limit: free disk space");
    else if (v < (double)cfg->min_free_disk_space_mb) {
        snprintf(reason, reasonsz, "free disk %.0fM < %ldM", v, cfg->min_free_disk_space_mb);
        return 1;
    }
    return 0;
}
