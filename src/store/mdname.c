/* mdname.c: Dovecot maildir file names.
 *
 *   <secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize>:2,<flags>
 *
 * Parsing is a pure function over the name's bytes (fuzzed by
 * fuzz/fuzz_mdname.c); it never fails on odd but harmless names, it only
 * reports what it found. Creation escapes the host name as Dovecot does and
 * writes the flag letters in ASCII order (DFPRST, then keywords a-z). */
#include "store/maildir.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static const char md_flag_letters[] = "DFPRST";

/* Reads decimal digits at p[*i..n); 0 when at least one digit, no overflow. */
static int read_u64(const char *p, size_t n, size_t *i, uint64_t *out)
{
    size_t j = *i;
    uint64_t v = 0;
    while (j < n && p[j] >= '0' && p[j] <= '9') {
        unsigned d = (unsigned)(p[j] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        j++;
    }
    if (j == *i)
        return -1;
    *i = j;
    *out = v;
    return 0;
}

/* The ",S=" / ",W=" fields of the base name. */
static void parse_fields(const char *p, size_t base, struct mdname *out)
{
    for (size_t i = 0; i + 3 <= base; i++) {
        if (p[i] != ',' || p[i + 2] != '=')
            continue;
        size_t j = i + 3;
        uint64_t v;
        if (read_u64(p, base, &j, &v) < 0 || (j < base && p[j] != ','))
            continue;
        if (p[i + 1] == 'S' && !out->has_size) {
            out->has_size = true;
            out->size = v;
        } else if (p[i + 1] == 'W' && !out->has_vsize) {
            out->has_vsize = true;
            out->vsize = v;
        }
    }
}

static void parse_info(const char *p, size_t n, struct mdname *out)
{
    for (size_t i = 0; i < n; i++) {
        const char *f = p[i] ? strchr(md_flag_letters, p[i]) : NULL;
        if (f)
            out->flags |= 1u << (f - md_flag_letters);
        else if (p[i] >= 'a' && p[i] <= 'z')
            out->keywords |= 1u << (p[i] - 'a');
    }
}

int mdname_parse(const char *name, size_t len, struct mdname *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > MDNAME_MAX)
        return -1;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return -1;
    for (size_t i = 0; i < len; i++)
        if (name[i] == '/' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return -1;
    const char *colon = memchr(name, ':', len);
    size_t base = colon ? (size_t)(colon - name) : len;
    out->base_len = base;
    size_t i = 0;
    uint64_t secs;
    if (read_u64(name, base, &i, &secs) == 0 && i < base && name[i] == '.' &&
        secs <= (uint64_t)INT64_MAX) {
        out->has_secs = true;
        out->secs = (int64_t)secs;
        uint64_t us;
        size_t j = i + 2;
        if (i + 1 < base && name[i + 1] == 'M' && read_u64(name, base, &j, &us) == 0 &&
            us < 1000000)
            out->usecs = (uint32_t)us;
    }
    parse_fields(name, base, out);
    if (colon && len - base >= 3 && name[base + 1] == '2' && name[base + 2] == ',') {
        out->has_info = true;
        parse_info(name + base + 3, len - base - 3, out);
    }
    return 0;
}

/* Appends the host escaped like Dovecot (plus ','): returns new length or -1. */
static int put_host(char *out, size_t cap, size_t at, const char *host)
{
    for (const char *h = host; *h; h++) {
        const char *esc = *h == '/' ? "\\057" : *h == ':' ? "\\072" : *h == ',' ? "\\054" : NULL;
        size_t n = esc ? 4 : 1;
        if (at + n >= cap)
            return -1;
        if (esc)
            memcpy(out + at, esc, 4);
        else
            out[at] = *h;
        at += n;
    }
    out[at] = '\0';
    return (int)at;
}

int mdname_make(char *out, size_t cap, int64_t secs, long usecs, long pid, unsigned long q,
                const char *host, uint64_t size, uint64_t vsize)
{
    if (cap > MDNAME_MAX + 1)
        cap = MDNAME_MAX + 1;
    int n = snprintf(out, cap, "%lld.M%ldP%ldQ%lu.", (long long)secs, usecs, pid, q);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    n = put_host(out, cap, (size_t)n, host && *host ? host : "localhost");
    if (n < 0)
        return -1;
    int m = snprintf(out + n, cap - (size_t)n, ",S=%llu,W=%llu", (unsigned long long)size,
                     (unsigned long long)vsize);
    if (m < 0 || (size_t)m >= cap - (size_t)n)
        return -1;
    return n + m;
}

int mdname_set_flags(char *out, size_t cap, const char *name, unsigned flags, uint32_t keywords)
{
    const char *colon = strchr(name, ':');
    size_t base = colon ? (size_t)(colon - name) : strlen(name);
    if (base + 3 >= cap || base > MDNAME_MAX)
        return -1;
    memmove(out, name, base);
    size_t at = base;
    out[at++] = ':';
    out[at++] = '2';
    out[at++] = ',';
    for (int i = 0; md_flag_letters[i]; i++)
        if (flags & (1u << i)) {
            if (at + 1 >= cap)
                return -1;
            out[at++] = md_flag_letters[i];
        }
    for (int i = 0; i < 26; i++)
        if (keywords & (1u << i)) {
            if (at + 1 >= cap)
                return -1;
            out[at++] = (char)('a' + i);
        }
    if (at > MDNAME_MAX)
        return -1;
    out[at] = '\0';
    return (int)at;
}

static atomic_ulong mdname_counter;
static pthread_once_t mdname_host_once = PTHREAD_ONCE_INIT;
static char mdname_host[128];

static void mdname_host_init(void)
{
    if (gethostname(mdname_host, sizeof(mdname_host)) != 0)
        strcpy(mdname_host, "localhost");
    mdname_host[sizeof(mdname_host) - 1] = '\0';
    char *dot = strchr(mdname_host, '.');
    if (dot && dot != mdname_host)
        *dot = '\0'; /* Dovecot uses the short name */
}

int mdname_new(char *out, size_t cap, uint64_t size, uint64_t vsize)
{
    pthread_once(&mdname_host_once, mdname_host_init);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned long q = atomic_fetch_add(&mdname_counter, 1) + 1;
    return mdname_make(out, cap, (int64_t)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), q,
                       mdname_host, size, vsize);
}

uint64_t mdname_vsize(const void *msg, size_t len)
{
    const char *p = msg;
    uint64_t v = len;
    for (size_t i = 0; i < len; i++)
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            v++;
    return v;
}
