/* index_name.c: the little of Dovecot's Maildir file-name grammar the UID
 * index needs: base/info split, ",S=" and ",W=" sizes, the "<secs>.M<usecs>"
 * timestamp, ":2,<flags>" letters, and generating a new unique name for
 * COPY. Pure except idxname_generate (clock, pid, host name). The full
 * module is mdname.c; the two are meant to be merged. */
#include "store/index_int.h"
#include "store/mailbox.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* Letter of each MB_* system flag bit, in bit order. */
static const char sys_letters[5] = {'S', 'R', 'F', 'T', 'D'};

static uint32_t letter_flag(char c)
{
    for (int i = 0; i < 5; i++)
        if (sys_letters[i] == c)
            return 1u << i;
    if (c >= 'a' && c <= 'z')
        return MB_KEYWORD(c - 'a');
    return 0;
}

/* Value of ",<key>=<digits>" inside base[0..len), 0 if absent. */
static uint64_t base_field(const char *base, size_t len, char key)
{
    for (size_t i = 0; i + 3 <= len; i++) {
        if (base[i] != ',' || base[i + 1] != key || base[i + 2] != '=')
            continue;
        uint64_t v = 0;
        size_t j = i + 3, start = j;
        while (j < len && base[j] >= '0' && base[j] <= '9' && j - start < 19)
            v = v * 10 + (uint64_t)(base[j++] - '0');
        if (j > start)
            return v;
    }
    return 0;
}

static void parse_stamp(const char *s, size_t len, struct idxname *out)
{
    size_t i = 0;
    int64_t secs = 0;
    while (i < len && i < 12 && s[i] >= '0' && s[i] <= '9')
        secs = secs * 10 + (s[i++] - '0');
    out->secs = -1;
    out->usecs = 0;
    if (i == 0 || i >= len || s[i] != '.')
        return;
    out->secs = secs;
    if (i + 1 < len && s[i + 1] == 'M') {
        uint32_t us = 0;
        for (size_t j = i + 2; j < len && j < i + 8 && s[j] >= '0' && s[j] <= '9'; j++)
            us = us * 10 + (uint32_t)(s[j] - '0');
        out->usecs = us;
    }
}

int idxname_parse(const char *fname, struct idxname *out)
{
    size_t len = strlen(fname);
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > LIM_MAILDIR_NAME || fname[0] == '.' || strchr(fname, '/') ||
        strchr(fname, '\n') || strchr(fname, '\r'))
        return -1;
    const char *colon = strchr(fname, ':');
    out->base_len = colon ? (size_t)(colon - fname) : len;
    if (out->base_len == 0)
        return -1;
    out->info = colon ? colon + 1 : NULL;
    if (out->info && out->info[0] == '2' && out->info[1] == ',')
        for (const char *p = out->info + 2; *p && *p != ','; p++)
            out->flags |= letter_flag(*p);
    out->size = base_field(fname, out->base_len, 'S');
    out->vsize = base_field(fname, out->base_len, 'W');
    parse_stamp(fname, out->base_len, out);
    return 0;
}

int idxname_info(const char *old_info, uint32_t flags, char *out, size_t cap)
{
    char letters[64];
    size_t n = 0;
    /* Unknown upper-case letters of the old info survive (Dovecot keeps
     * flags it does not know); everything is written in ASCII order. */
    if (old_info && old_info[0] == '2' && old_info[1] == ',')
        for (const char *p = old_info + 2; *p && *p != ',' && n < 26; p++)
            if (*p >= 'A' && *p <= 'Z' && !letter_flag(*p) && !memchr(letters, *p, n))
                letters[n++] = *p;
    for (int i = 0; i < 5; i++)
        if (flags & (1u << i))
            letters[n++] = sys_letters[i];
    for (int i = 0; i < MB_KEYWORDS_MAX; i++)
        if (flags & MB_KEYWORD(i))
            letters[n++] = (char)('a' + i);
    for (size_t i = 1; i < n; i++) /* insertion sort, n <= 57 */
        for (size_t j = i; j > 0 && letters[j - 1] > letters[j]; j--) {
            char t = letters[j];
            letters[j] = letters[j - 1];
            letters[j - 1] = t;
        }
    if (n + 3 > cap)
        return -1;
    out[0] = '2';
    out[1] = ',';
    memcpy(out + 2, letters, n);
    out[n + 2] = '\0';
    return 0;
}

int idxname_generate(struct buf *out, uint64_t size, uint64_t vsize)
{
    static unsigned counter;
    char host[64] = "localhost";
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (gethostname(host, sizeof(host) - 1) < 0)
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p; p++) /* characters with a meaning in names */
        if (*p == '/' || *p == ':' || *p == ',')
            *p = '_';
    unsigned q = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    int rc = buf_printf(out, "%lld.M%06ldP%dQ%u.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
                        (int)getpid(), q, host);
    if (rc == 0 && size)
        rc = buf_printf(out, ",S=%llu", (unsigned long long)size);
    if (rc == 0 && vsize)
        rc = buf_printf(out, ",W=%llu", (unsigned long long)vsize);
    return rc;
}
