/* cmd_metadata.c: GETMETADATA / SETMETADATA (RFC 5464) with exactly the
 * keys of spec §4.2:
 *   /private/devicetoken   SET adds a push token of the address (any
 *                          mailbox); GET gives the valid tokens joined by
 *                          spaces; SET NIL removes the tokens this session
 *                          set, or - when it set none - every token of the
 *                          address (decision 10).
 *   /shared/vendor/deltachat/irohrelay          iroh_relay (NIL when empty)
 *   /shared/vendor/deltachat/turn               "<mail_domain>:3478:<user>:<pw>"
 *                          from chatmail-turn's socket (IMAP_ACT_TURN on the
 *                          loop, 5 s timeout; NIL on failure)
 *   /shared/vendor/deltachat/maxsmtprecipients  1000
 *   /shared/vendor/deltachat/appversions        config/appversions.json
 *                          compacted to one line: $CM_APPVERSIONS_FILE,
 *                          else <bindir>/../share/chatmaild-server/ beside
 *                          the running binary (CM_DATA_DIR_FROM_BIN), else
 *                          the configured data dir (CM_DATA_DIR); never
 *                          the source tree
 *   /shared/admin          mailto:<privacy_mail>
 *   anything else          NIL
 * Runs on a worker (metadata.json is blocking file I/O). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <limits.h>
#include <unistd.h>

#include "core/config.h"
#include "core/limits.h"
#include "core/turncred.h"
#include "imap/session_int.h"
#include "store/store.h"

#define MD_TOKEN_KEY "/private/devicetoken"
#define MD_TURN_KEY "/shared/vendor/deltachat/turn"
#define MD_APPVERSIONS_MAX (64 * 1024)
#ifndef CM_DATA_DIR
#define CM_DATA_DIR "/usr/local/share/chatmaild-server"
#endif
#ifndef CM_DATA_DIR_FROM_BIN
#define CM_DATA_DIR_FROM_BIN "../share/chatmaild-server"
#endif

/* The JSON text without whitespace outside strings. */
static int compact_json(const char *p, size_t n, struct buf *out)
{
    bool str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (str) {
            if (ch == '\\' && i + 1 < n) {
                buf_append(out, &p[i], 2);
                i++;
                continue;
            }
            str = ch != '"';
        } else if (ch == '"') {
            str = true;
        } else if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
            continue;
        }
        if ((unsigned char)ch < 0x20)
            return -1;
        buf_append(out, &ch, 1);
    }
    return str || out->len == 0 || out->data[0] != '{' ? -1 : 0;
}

/* <directory of the running binary>/CM_DATA_DIR_FROM_BIN/appversions.json
 * into path; false when /proc/self/exe cannot be read. */
static bool beside_binary(char *path, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = '\0';
    int len = snprintf(path, size, "%s/" CM_DATA_DIR_FROM_BIN "/appversions.json", exe);
    return len > 0 && (size_t)len < size;
}

static int read_appversions(struct buf *out)
{
    char near[PATH_MAX + 64];
    const char *paths[] = {getenv("CM_APPVERSIONS_FILE"),
                           beside_binary(near, sizeof near) ? near : NULL,
                           CM_DATA_DIR "/appversions.json"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        FILE *f = paths[i] ? fopen(paths[i], "re") : NULL;
        if (!f)
            continue;
        char *text = malloc(MD_APPVERSIONS_MAX);
        size_t n = text ? fread(text, 1, MD_APPVERSIONS_MAX, f) : 0;
        fclose(f);
        int rc = n > 0 && n < MD_APPVERSIONS_MAX ? compact_json(text, n, out) : -1;
        free(text);
        if (rc == 0)
            return 0;
        buf_reset(out);
    }
    return -1;
}

/* Value of a non-TURN entry into v; false = NIL. */
static bool entry_value(struct imap_session *s, const char *key, struct buf *v)
{
    const struct config *cfg = s->cfg;
    if (strcasecmp(key, MD_TOKEN_KEY) == 0)
        return store_md_get_tokens(cfg, s->user, time(NULL), v) == 0 && v->len > 0;
    if (strcasecmp(key, "/shared/vendor/deltachat/irohrelay") == 0)
        return cfg->iroh_relay && *cfg->iroh_relay && buf_append_str(v, cfg->iroh_relay) == 0;
    if (strcasecmp(key, "/shared/vendor/deltachat/maxsmtprecipients") == 0)
        return buf_append_str(v, "1000") == 0;
    if (strcasecmp(key, "/shared/vendor/deltachat/appversions") == 0)
        return read_appversions(v) == 0;
    if (strcasecmp(key, "/shared/admin") == 0)
        return cfg->privacy_mail && *cfg->privacy_mail &&
               buf_printf(v, "mailto:%s", cfg->privacy_mail) == 0;
    return false;
}

static void write_entry(struct buf *b, const char *key, const struct buf *v, bool have)
{
    if (b->len && b->data[b->len - 1] != '(')
        buf_append(b, " ", 1);
    imap_write_astring(b, key, strlen(key));
    buf_append(b, " ", 1);
    imap_write_nstring(b, have ? (v->data ? v->data : "") : NULL, v->len);
}

enum imap_cmd_result imap_cmd_getmetadata(struct imap_session *s, struct imap_cmd *c)
{
    size_t i = 0;
    if (i < c->n && c->a[i].type == IMAP_ARG_LIST)
        i++; /* (MAXSIZE n) / (DEPTH x): values are small and there is no hierarchy */
    const char *mbox = i < c->n ? imap_mailbox_arg(&c->a[i]) : NULL;
    if (!mbox || i + 2 != c->n)
        return imap_bad(s, c, "Invalid arguments.");
    const struct imap_arg *e = &c->a[i + 1];
    const struct imap_arg *keys = e->type == IMAP_ARG_LIST ? e->list : e;
    size_t nk = e->type == IMAP_ARG_LIST ? e->n : 1;
    struct buf b = {0};
    bool turn = false;
    buf_append_str(&b, "* METADATA ");
    imap_write_astring(&b, mbox, strlen(mbox));
    buf_append_str(&b, " (");
    for (size_t k = 0; k < nk; k++) {
        if (!imap_arg_is_string(&keys[k]) || keys[k].str[0] != '/') {
            buf_free(&b);
            return imap_bad(s, c, "Invalid entry name.");
        }
        if (strcasecmp(keys[k].str, MD_TURN_KEY) == 0 && *mbox == '\0') {
            turn = true;
            continue;
        }
        struct buf v = {0};
        bool have = (keys[k].str[1] == 'p' || *mbox == '\0') && entry_value(s, keys[k].str, &v);
        write_entry(&b, keys[k].str, &v, have);
        buf_free(&v);
    }
    if (turn && s->cfg->turn_socket_path && *s->cfg->turn_socket_path) {
        s->turn_pending = buf_steal_str(&b);
        return s->turn_pending ? CMD_ASYNC : imap_no(s, c, "Out of memory.");
    }
    if (turn) { /* no socket configured: chatmail-turn's credentials, computed here */
        char cred[TURNCRED_MAX];
        struct buf v = {0};
        bool have = turncred_make((int64_t)time(NULL), cred, sizeof cred) == 0 &&
                    buf_printf(&v, "%s:3478:%s", s->cfg->mail_domain, cred) == 0;
        write_entry(&b, MD_TURN_KEY, &v, have);
        buf_free(&v);
    }
    imap_out(s, "%.*s)\r\n", (int)b.len, b.data);
    buf_free(&b);
    return imap_ok(s, c, "Getmetadata completed.");
}

/* The TURN socket answered "<user>:<password>\n" (line) or failed (NULL). */
void imap_metadata_turn_done(struct imap_session *s, const char *line)
{
    struct buf b = {0}, v = {0};
    buf_append_str(&b, s->turn_pending ? s->turn_pending : "* METADATA \"\" (");
    free(s->turn_pending);
    s->turn_pending = NULL;
    size_t n = line ? strcspn(line, "\r\n") : 0;
    bool have = n > 0 && memchr(line, ':', n) &&
                buf_printf(&v, "%s:3478:%.*s", s->cfg->mail_domain, (int)n, line) == 0;
    write_entry(&b, MD_TURN_KEY, &v, have);
    imap_out(s, "%.*s)\r\n", (int)b.len, b.data);
    buf_free(&b);
    buf_free(&v);
    imap_ok(s, s->cur, "Getmetadata completed.");
}

static int remember_token(struct imap_session *s, const char *tok)
{
    for (size_t i = 0; i < s->n_tokens; i++)
        if (strcmp(s->tokens[i], tok) == 0)
            return 0;
    char **v = realloc(s->tokens, (s->n_tokens + 1) * sizeof *v);
    if (!v)
        return -1;
    s->tokens = v;
    if (!(v[s->n_tokens] = strdup(tok)))
        return -1;
    s->n_tokens++;
    return 0;
}

static int remove_tokens(struct imap_session *s)
{
    time_t now = time(NULL);
    if (s->n_tokens == 0)
        return store_md_remove_token(s->cfg, s->user, NULL, now);
    int rc = 0;
    for (size_t i = 0; i < s->n_tokens; i++) {
        rc |= store_md_remove_token(s->cfg, s->user, s->tokens[i], now);
        free(s->tokens[i]);
    }
    s->n_tokens = 0;
    return rc;
}

static int set_entry(struct imap_session *s, const struct imap_arg *k, const struct imap_arg *v)
{
    if (strcasecmp(k->str, MD_TOKEN_KEY) != 0)
        return 0; /* other entries are accepted and not kept (spec §4.2) */
    if (v->type == IMAP_ARG_NIL)
        return remove_tokens(s);
    if (!imap_arg_is_string(v) || v->len == 0 || v->len > STORE_TOKEN_MAX ||
        memchr(v->str, '\0', v->len) || memchr(v->str, ' ', v->len))
        return -2;
    bool known = false;
    for (size_t i = 0; i < s->n_tokens; i++)
        known |= strcmp(s->tokens[i], v->str) == 0;
    if (!known && s->n_tokens >= LIM_IMAP_TOKENS)
        return -3; /* the session's list is bounded: a device has one token */
    if (store_md_add_token(s->cfg, s->user, v->str, time(NULL)) < 0)
        return -1;
    return remember_token(s, v->str);
}

enum imap_cmd_result imap_cmd_setmetadata(struct imap_session *s, struct imap_cmd *c)
{
    const char *mbox = c->n == 2 ? imap_mailbox_arg(&c->a[0]) : NULL;
    if (!mbox || c->a[1].type != IMAP_ARG_LIST || c->a[1].n % 2 || c->a[1].n == 0)
        return imap_bad(s, c, "Invalid arguments.");
    const struct imap_arg *l = c->a[1].list;
    for (size_t i = 0; i < c->a[1].n; i += 2) {
        if (!imap_arg_is_string(&l[i]) || l[i].str[0] != '/')
            return imap_bad(s, c, "Invalid entry name.");
        if (strncasecmp(l[i].str, "/private/", 9) != 0 || *mbox == '\0')
            return imap_no(s, c, "[PERMISSIONS] Permission denied.");
        int rc = set_entry(s, &l[i], &l[i + 1]);
        if (rc == -2)
            return imap_bad(s, c, "Invalid value.");
        if (rc == -3)
            return imap_no(s, c, "[LIMIT] Too many device tokens in one session.");
        if (rc < 0)
            return imap_no(s, c, "Internal error occurred. Refer to server log for more information.");
    }
    return imap_ok(s, c, "Setmetadata completed.");
}
