/* uidlist.c: reads and writes Dovecot's dovecot-uidlist (maildir-uidlist.c
 * formats 1 and 3) so that UIDs survive index loss and a relay can move
 * between Dovecot and us. The parser is pure and bounded: it copies the
 * input once, stops at the first bad record (keeping the ones before it),
 * and rejects only a bad header. Also the account's UIDVALIDITY source. */
#include "store/index_int.h"
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Strict decimal uint32 from s[0..len): no sign, no overflow, non-empty. */
static int parse_u32(const char *s, size_t len, uint32_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 10)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 19)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static bool is_hex32(const char *s, size_t len)
{
    if (len != 32)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* Version 3 header fields after "3 ": V<uidvalidity> N<nextuid> G<guid>. */
static int parse_v3_header(struct uidlist *ul, const char *p, const char *end)
{
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        const char *tok = p;
        while (p < end && *p != ' ')
            p++;
        size_t vlen = (size_t)(p - tok) - 1;
        if (*tok == 'V' && parse_u32(tok + 1, vlen, &ul->uidvalidity) < 0)
            return -1;
        if (*tok == 'N' && parse_u32(tok + 1, vlen, &ul->nextuid) < 0)
            return -1;
        if (*tok == 'G' && is_hex32(tok + 1, vlen)) {
            memcpy(ul->guid, tok + 1, 32);
            ul->guid[32] = '\0';
        }
    }
    return 0;
}

static int parse_header(struct uidlist *ul, const char *p, const char *end)
{
    if (end - p < 2 || p[0] < '0' || p[0] > '9' || p[1] != ' ')
        return -1;
    ul->version = (unsigned)(p[0] - '0');
    p += 2;
    if (ul->version == 1) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (!sp || parse_u32(p, (size_t)(sp - p), &ul->uidvalidity) < 0 ||
            parse_u32(sp + 1, (size_t)(end - sp - 1), &ul->nextuid) < 0)
            return -1;
    } else if (ul->version == 3) {
        if (parse_v3_header(ul, p, end) < 0)
            return -1;
    } else {
        return -1;
    }
    return (ul->uidvalidity == 0 || ul->nextuid == 0) ? -1 : 0;
}

/* Extension fields of a v3 record: "<K><value> ..." up to ':'. Keys
 * must be upper-case letters; S and W are kept, others skipped. */
static const char *parse_exts(struct uidlist_rec *r, const char *p, const char *end)
{
    while (p < end && *p != ':') {
        const char *tok = p;
        while (p < end && *p != ' ')
            p++;
        if (*tok >= 'A' && *tok <= 'Z') {
            uint64_t v;
            size_t vlen = (size_t)(p - tok) - 1;
            if (*tok == 'S' && parse_u64(tok + 1, vlen, &v) == 0)
                r->size = v;
            if (*tok == 'W' && parse_u64(tok + 1, vlen, &v) == 0)
                r->vsize = v;
        }
        while (p < end && *p == ' ')
            p++;
    }
    if (p < end && *p == ':')
        p++;
    return p;
}

static int push_rec(struct uidlist *ul, const struct uidlist_rec *r)
{
    if (ul->n == ul->cap) {
        size_t cap = ul->cap ? ul->cap * 2 : 64;
        struct uidlist_rec *nr = realloc(ul->recs, cap * sizeof(*nr));
        if (!nr)
            return -1;
        ul->recs = nr;
        ul->cap = cap;
    }
    ul->recs[ul->n++] = *r;
    return 0;
}

/* One record line [p, end) of the copy in ul->text (end is writable: the
 * base name gets its NUL there). 0 ok, 1 bad line, -1 out of memory. */
static int parse_rec(struct uidlist *ul, char *p, char *end)
{
    struct uidlist_rec r = {0};
    char *q = p;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    if (parse_u32(p, (size_t)(q - p), &r.uid) < 0 || r.uid == 0 || r.uid == UINT32_MAX ||
        q == end || *q != ' ')
        return 1;
    if (ul->n > 0 && r.uid <= ul->recs[ul->n - 1].uid)
        return 1;
    if (ul->version == 1 && r.uid >= ul->nextuid)
        return 1;
    while (q < end && *q == ' ')
        q++;
    if (ul->version == 3)
        q = (char *)parse_exts(&r, q, end);
    char *colon = memchr(q, ':', (size_t)(end - q)); /* v1: full names with :2, */
    char *bend = colon ? colon : end;
    if (bend == q || (size_t)(bend - q) > LIM_MAILDIR_NAME || memchr(q, '/', (size_t)(bend - q)) ||
        memchr(q, '\0', (size_t)(bend - q)) || *q == '.')
        return 1;
    *bend = '\0';
    r.base_off = (uint32_t)(q - ul->text);
    return push_rec(ul, &r) < 0 ? -1 : 0;
}

int uidlist_parse(const char *data, size_t len, struct uidlist *out, const char **err)
{
    memset(out, 0, sizeof(*out));
    if (len > LIM_UIDLIST_BYTES) {
        *err = "dovecot-uidlist too large";
        return -1;
    }
    out->text = malloc(len + 1);
    if (!out->text) {
        *err = "out of memory";
        return -1;
    }
    memcpy(out->text, data, len);
    out->text[len] = '\0';
    char *p = out->text, *end = out->text + len;
    char *nl = memchr(p, '\n', len);
    char *hend = nl ? nl : end;
    if (parse_header(out, p, hend) < 0) {
        uidlist_free(out);
        *err = "dovecot-uidlist: bad header";
        return -1;
    }
    for (p = nl ? nl + 1 : end; p < end;) {
        nl = memchr(p, '\n', (size_t)(end - p));
        char *lend = nl ? nl : end;
        int rc = (lend == p) ? 0 : parse_rec(out, p, lend);
        if (rc < 0) {
            uidlist_free(out);
            *err = "out of memory";
            return -1;
        }
        if (rc > 0) {
            out->broken = true;
            break;
        }
        p = nl ? nl + 1 : end;
    }
    if (out->n > 0 && out->nextuid <= out->recs[out->n - 1].uid)
        out->nextuid = out->recs[out->n - 1].uid + 1;
    return 0;
}

void uidlist_free(struct uidlist *ul)
{
    free(ul->recs);
    free(ul->text);
    memset(ul, 0, sizeof(*ul));
}

int idx_read_file(const char *path, size_t max, struct buf *out, int *errno_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *errno_out = errno;
        return -1;
    }
    char tmp[16384];
    ssize_t n;
    int rc = 0;
    while ((n = read(fd, tmp, sizeof(tmp))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || out->len + (size_t)n > max || buf_append(out, tmp, (size_t)n) < 0) {
            *errno_out = n < 0 ? errno : EFBIG;
            rc = -1;
            break;
        }
    }
    close(fd);
    return rc;
}

int uidlist_load(const char *dir, struct uidlist *out, const char **err)
{
    struct buf path = {0}, data = {0};
    int rc, e = 0;
    memset(out, 0, sizeof(*out));
    if (buf_printf(&path, "%s/%s", dir, UIDLIST_NAME) < 0) {
        *err = "out of memory";
        return -1;
    }
    rc = idx_read_file(path.data, LIM_UIDLIST_BYTES, &data, &e);
    buf_free(&path);
    if (rc < 0) {
        buf_free(&data);
        if (e == ENOENT)
            return 1;
        *err = "dovecot-uidlist unreadable";
        return -1;
    }
    rc = uidlist_parse(data.data ? data.data : "", data.len, out, err);
    buf_free(&data);
    return rc;
}

int uidlist_format_header(struct buf *b, uint32_t uidvalidity, uint32_t nextuid,
                          const char *guid)
{
    return buf_printf(b, "3 V%u N%u G%s\n", uidvalidity, nextuid, guid);
}

int uidlist_format_rec(struct buf *b, uint32_t uid, const char *base, uint64_t size,
                       uint64_t vsize)
{
    int rc = buf_printf(b, "%u", uid);
    if (rc == 0 && vsize)
        rc = buf_printf(b, " W%llu", (unsigned long long)vsize);
    if (rc == 0 && size)
        rc = buf_printf(b, " S%llu", (unsigned long long)size);
    return rc == 0 ? buf_printf(b, " :%s\n", base) : -1;
}

int idx_write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
    /* The index files are caches of the Maildir: no directory fsync. */
    return fileio_write_atomic(dir, name, data, len, 0600, false);
}

int uidlist_write(const char *dir, const struct buf *b, const char **err)
{
    if (idx_write_atomic(dir, UIDLIST_NAME, b->data ? b->data : "", b->len) < 0) {
        *err = "cannot write dovecot-uidlist";
        return -1;
    }
    return 0;
}

uint32_t uidvalidity_next(const char *account_dir)
{
    struct buf path = {0}, data = {0};
    uint32_t last = 0, now = (uint32_t)time(NULL), next;
    int e;
    if (buf_printf(&path, "%s/dovecot-uidvalidity", account_dir) == 0 &&
        idx_read_file(path.data, 64, &data, &e) == 0 && data.len > 0) {
        char *endp;
        unsigned long v = strtoul(data.data, &endp, 16);
        if (endp != data.data && v <= UINT32_MAX)
            last = (uint32_t)v;
    }
    next = now > last ? now : last + 1;
    if (next == 0)
        next = 1;
    char text[16];
    int n = snprintf(text, sizeof(text), "%08x", next);
    (void)idx_write_atomic(account_dir, "dovecot-uidvalidity", text, (size_t)n);
    buf_free(&path);
    buf_free(&data);
    return next;
}
