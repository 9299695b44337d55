/* metadata.c: push tokens in <mailboxes_dir>/<addr>/metadata.json
 * (spec §4.2; decision 10: SETMETADATA NIL removes tokens).
 *
 * Every access holds the exclusive lock metadata.json.lock, reads the file
 * (missing = no tokens; unreadable JSON = {} with the warning "corrupt
 * serialization state"), drops expired tokens, applies the change and, when
 * anything changed, writes metadata.json.tmp, fsyncs it and renames it over
 * metadata.json. Blocking: worker threads only. */
#include "core/limits.h"
#include "store/accounts.h"
#include "store/accounts_int.h"

#include "core/buf.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


enum md_op { MD_ADD, MD_GET, MD_REMOVE };

/* Reads and parses dir/metadata.json. Returns 1 when the content must be
 * rewritten (legacy or corrupt), 0 when not, -1 on I/O error. */
static int md_load(const char *dir, const char *addr, int64_t now, struct store_tokens *t)
{
    char path[LIM_STORE_PATH];
    t->v = NULL;
    t->n = 0;
    if (store_path(path, sizeof path, dir, "metadata.json") < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    char *text = malloc(LIM_METADATA_FILE + 1);
    long n = text ? store_read_fd(fd, text, LIM_METADATA_FILE + 1) : -1;
    close(fd);
    int rc = n < 0 ? -1 : store_md_parse(text, (size_t)n, now, t);
    free(text);
    if (rc < 0) {
        log_warn("metadata.json of %s: corrupt serialization state, starting from {}", addr);
        return 1;
    }
    return rc;
}

static int md_save(const char *dir, const struct store_tokens *t)
{
    struct buf b = {0};
    int rc = store_md_format(t, &b);
    if (rc == 0)
        rc = store_write_atomic(dir, "metadata.json", b.data, b.len, true);
    buf_free(&b);
    return rc;
}

/* Removes one token (or all when tok is NULL); returns how many. */
static size_t md_remove(struct store_tokens *t, const char *tok)
{
    size_t kept = 0, n0 = t->n;
    for (size_t i = 0; i < t->n; i++) {
        if (!tok || strcmp(t->v[i].token, tok) == 0)
            free(t->v[i].token);
        else
            t->v[kept++] = t->v[i];
    }
    t->n = kept;
    return n0 - kept;
}

static int md_join(const struct store_tokens *t, struct buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        if (i > 0)
            rc = buf_append(out, " ", 1);
        if (rc == 0)
            rc = buf_append_str(out, t->v[i].token);
    }
    return rc;
}

static bool token_acceptable(const char *tok)
{
    size_t n = strnlen(tok, STORE_TOKEN_MAX + 1);
    if (n == 0 || n > STORE_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)tok[i] < 0x20 || tok[i] == 0x7f)
            return false;
    return true;
}

static int md_apply(const char *dir, const char *addr, enum md_op op, const char *tok,
                    int64_t now, struct buf *out)
{
    struct store_tokens t;
    int dirty = md_load(dir, addr, now, &t);
    if (dirty < 0) {
        log_error("cannot read metadata.json of %s: %s", addr, strerror(errno));
        return -1;
    }
    if (store_md_expire(&t, now) > 0)
        dirty = 1;
    int rc = 0;
    if (op == MD_ADD)
        rc = store_md_set(&t, tok, strlen(tok), now) == 0 ? 1 : -1;
    else if (op == MD_REMOVE)
        rc = md_remove(&t, tok) > 0 ? 1 : 0;
    else
        rc = md_join(&t, out);
    if (rc > 0)
        dirty = 1;
    if (rc >= 0 && dirty && md_save(dir, &t) < 0) {
        log_error("cannot write metadata.json of %s: %s", addr, strerror(errno));
        rc = -1;
    }
    store_md_free(&t);
    return rc < 0 ? -1 : 0;
}

static int md_locked(const struct config *cfg, const char *addr, enum md_op op,
                     const char *tok, time_t now, struct buf *out)
{
    char dir[LIM_STORE_PATH], lock[LIM_STORE_PATH];
    struct stat st;
    if (store_account_dir(cfg, addr, dir, sizeof dir - sizeof "/metadata.json.lock") < 0 ||
        stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
        store_path(lock, sizeof lock, dir, "metadata.json.lock") < 0)
        return -1;
    int fd = store_lock_open(lock, LIM_STORE_LOCK_TIMEOUT_MS);
    if (fd < 0) {
        log_error("cannot lock metadata.json of %s: %s", addr, strerror(errno));
        return -1;
    }
    int rc = md_apply(dir, addr, op, tok, (int64_t)now, out);
    store_lock_close(fd);
    return rc;
}

int store_md_add_token(const struct config *cfg, const char *addr, const char *token,
                       time_t now)
{
    if (!token || !token_acceptable(token))
        return -1;
    return md_locked(cfg, addr, MD_ADD, token, now, NULL);
}

int store_md_get_tokens(const struct config *cfg, const char *addr, time_t now,
                        struct buf *out)
{
    return md_locked(cfg, addr, MD_GET, NULL, now, out);
}

int store_md_remove_token(const struct config *cfg, const char *addr, const char *token,
                          time_t now)
{
    return md_locked(cfg, addr, MD_REMOVE, token, now, NULL);
}
