/* config.c: reads chatmail.ini with libinih and collects the raw values of
 * the [params] section; config_apply.c turns them into struct config.
 *
 * inih is driven through ini_parse_stream with an in-memory line reader
 * (what ini_parse_string does inside), so that we know which line every
 * handler call comes from. That lets us:
 *   - refuse lines longer than inih's line buffer instead of letting inih
 *     silently split them into two lines;
 *   - join indented continuation lines with "\n", as Python's iniconfig does
 *     (inih would hand them over as a second value for the same key);
 *   - name every line that is not `key = value`, a [section] or a comment.
 * Behaviour of Debian 12's inih (r55) that we keep and document:
 *   - `#` and `;` start a comment only at the start of a line; a `;` after
 *     whitespace also starts an inline comment; `#` inside a value is kept
 *     (iniconfig keeps both). `key: value` is accepted like `key = value`.
 *   - names and values are stripped; a duplicate key: the last one wins.
 * Keys outside [params] have no effect and are listed in `unused` as
 * "section.key" ("key" alone when it comes before any section header). */
#include "core/config.h"

#include "core/buf.h"
#include "core/config_int.h"
#include "core/limits.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


struct cfg_parse {
    const char *p;         /* unread text */
    size_t left;
    int lineno;            /* line just handed to inih */
    const char *line;      /* its text (not NUL-terminated) and length */
    size_t line_len;
    bool line_indented;    /* starts with whitespace and has content */
    bool line_content;     /* not blank, not a comment, not a [section] */
    bool line_handled;     /* inih called the handler for it */
    bool line_refused;     /* too long: hidden from inih */
    int first_bad_line;    /* first line finish_line reported, 0 = none */
    bool have_prev;        /* a key since the last [section] header */
    int prev_index;        /* cfg_keys index of that key (-1: not in [params]) */
    struct buf raw[CFG_MAX_KEYS]; /* raw value per cfg_keys entry */
    bool raw_set[CFG_MAX_KEYS];
    struct buf unused;
    size_t n_unused;
    bool oom;
    struct config_errors *errs;
};

void cfg_error(struct config_errors *errs, const char *key, const char *value,
               const char *fmt, ...)
{
    if (errs->n >= CONFIG_MAX_ERRORS)
        return;
    struct config_error *e = &errs->e[errs->n++];
    snprintf(e->key, sizeof e->key, "%s", key);
    size_t vl = strlen(value), max = sizeof e->value - 1;
    if (vl > max)
        snprintf(e->value, sizeof e->value, "%.*s...", (int)(max - 3), value);
    else
        memcpy(e->value, value, vl + 1);
    for (char *c = e->value; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
}

/* A line that should have produced a handler call but did not. */
static void finish_line(struct cfg_parse *st)
{
    if (!st->lineno || st->line_refused || !st->line_content || st->line_handled)
        return;
    char key[32], val[128];
    if (!st->first_bad_line)
        st->first_bad_line = st->lineno;
    snprintf(key, sizeof key, "line %d", st->lineno);
    size_t n = st->line_len < sizeof val - 1 ? st->line_len : sizeof val - 1;
    memcpy(val, st->line, n);
    val[n] = '\0';
    cfg_error(st->errs, key, val, "not a `key = value` line, a [section] or a # comment");
}

static void classify_line(struct cfg_parse *st, const char *s, size_t len)
{
    size_t i = 0;
    if (st->lineno == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        i = 3; /* UTF-8 BOM, skipped by inih */
    size_t start = i;
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    char c = i < len ? s[i] : '\0';
    /* the order of inih's checks: comment, continuation, [section], key */
    st->line_indented = i > start && c;
    st->line_content = c && c != ';' && c != '#';
    if (c == '[' && !(st->line_indented && st->have_prev)) {
        st->line_content = false;
        st->have_prev = false; /* inih forgets the previous key here */
    }
}

/* fgets-like reader over the text, one call per line. */
static char *read_line(char *str, int num, void *stream)
{
    struct cfg_parse *st = stream;
    finish_line(st);
    if (!st->left || num < 3)
        return NULL;
    const char *nl = memchr(st->p, '\n', st->left);
    size_t len = nl ? (size_t)(nl - st->p) + 1 : st->left;
    st->lineno++;
    st->line = st->p;
    st->line_len = nl ? len - 1 : len;
    st->line_handled = false;
    st->line_refused = len > (size_t)num - 1;
    st->p += len;
    st->left -= len;
    if (st->line_refused) {
        char key[32];
        snprintf(key, sizeof key, "line %d", st->lineno);
        cfg_error(st->errs, key, "", "line longer than %d characters", num - 2);
        st->line_content = false;
        memcpy(str, "\n", 2);
        return str;
    }
    classify_line(st, st->line, st->line_len);
    memcpy(str, st->line, len);
    str[len] = '\0';
    return str;
}

static void add_unused(struct cfg_parse *st, const char *section, const char *name)
{
    char full[128];
    snprintf(full, sizeof full, "%s%s%s", section, *section ? "." : "", name);
    for (char *c = full; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == ',')
            *c = '?';
    const char *p = st->unused.data;
    size_t fl = strlen(full);
    for (size_t i = 0; p && i < st->n_unused; i++) { /* already listed? */
        if (strncmp(p, full, fl) == 0 && (p[fl] == ',' || p[fl] == '\0'))
            return;
        p = strchr(p, ',');
        p = p ? p + 2 : NULL;
    }
    if (st->n_unused > LIM_CONFIG_UNUSED_NAMES)
        return;
    bool more = st->n_unused == LIM_CONFIG_UNUSED_NAMES;
    if (buf_printf(&st->unused, "%s%s", st->n_unused ? ", " : "", more ? "..." : full) < 0)
        st->oom = true;
    st->n_unused++;
}

/* Continuation lines append in amortised constant time (a file of many
 * continuation lines stays linear). */
static void store_value(struct cfg_parse *st, int idx, const char *value, bool continuation)
{
    struct buf *b = &st->raw[idx];
    if (!continuation || !st->raw_set[idx])
        buf_reset(b);
    st->raw_set[idx] = true;
    if (b->len && *value && buf_append_str(b, "\n") < 0)
        st->oom = true;
    if (buf_append_str(b, value) < 0)
        st->oom = true;
}

static int on_value(void *user, const char *section, const char *name, const char *value)
{
    struct cfg_parse *st = user;
    bool continuation = st->line_indented && st->have_prev;
    st->line_handled = true;
    st->have_prev = true;
    if (continuation) { /* inih passes the previous key's name again */
        if (st->prev_index >= 0)
            store_value(st, st->prev_index, value, true);
        return 1;
    }
    int idx = strcmp(section, "params") == 0 ? cfg_key_index(name) : -1;
    st->prev_index = idx;
    if (idx < 0)
        add_unused(st, strcmp(section, "params") == 0 ? "" : section, name);
    else
        store_value(st, idx, value, false);
    return 1;
}

int config_parse_string(const char *text, struct config *cfg, struct config_errors *errs,
                        bool probe_files)
{
    memset(cfg, 0, sizeof *cfg);
    errs->n = 0;
    struct cfg_parse st = {.p = text, .left = strlen(text), .prev_index = -1, .errs = errs};
    if (st.left > LIM_CONFIG_FILE) {
        cfg_error(errs, "-c", "", "configuration larger than %d bytes", LIM_CONFIG_FILE);
        return -1;
    }
    int rc = ini_parse_stream(read_line, &st, on_value, &st);
    if (rc > 0 && rc != st.first_bad_line) { /* e.g. an unterminated [section */
        char key[32];
        snprintf(key, sizeof key, "line %d", rc);
        cfg_error(errs, key, "", "not a valid line (unterminated [section]?)");
    } else if (rc < 0) {
        st.oom = true;
    }
    char *raw[CFG_MAX_KEYS] = {0};
    for (size_t i = 0; i < CFG_MAX_KEYS; i++)
        raw[i] = !st.raw_set[i] ? NULL : st.raw[i].data ? st.raw[i].data : "";
    cfg_apply(cfg, raw, probe_files, errs);
    cfg->unused = st.unused.len ? buf_steal_str(&st.unused) : NULL;
    buf_free(&st.unused);
    for (size_t i = 0; i < CFG_MAX_KEYS; i++)
        buf_free(&st.raw[i]);
    if (st.oom)
        cfg_error(errs, "-", "", "out of memory");
    return errs->n ? -1 : 0;
}

int config_load_file(const char *path, struct config *cfg, struct config_errors *errs)
{
    memset(cfg, 0, sizeof *cfg);
    errs->n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        cfg_error(errs, "-c", path, "cannot read: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    const char *why = !S_ISREG(sb.st_mode) ? "not a regular file"
                      : sb.st_size > LIM_CONFIG_FILE ? "larger than the limit (LIM_CONFIG_FILE)"
                                                     : NULL;
    char *text = why ? NULL : malloc(LIM_CONFIG_FILE + 1);
    size_t len = 0;
    while (text && len <= LIM_CONFIG_FILE) {
        ssize_t n = read(fd, text + len, LIM_CONFIG_FILE + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            why = strerror(errno);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!why && !text)
        why = "out of memory";
    else if (!why && len > LIM_CONFIG_FILE)
        why = "larger than the limit (LIM_CONFIG_FILE)";
    else if (!why && memchr(text, '\0', len))
        why = "contains a NUL byte";
    if (why) {
        cfg_error(errs, "-c", path, "cannot read: %s", why);
        free(text);
        return -1;
    }
    text[len] = '\0';
    int rc = config_parse_string(text, cfg, errs, true);
    free(text);
    return rc;
}

void config_free(struct config *cfg)
{
    char **strs[] = {
        &cfg->mail_domain, &cfg->mail_domain_bare, &cfg->ipv4_relay, &cfg->tls_cert_path,
        &cfg->tls_key_path, &cfg->www_folder, &cfg->acme_email, &cfg->iroh_relay,
        &cfg->privacy_postal, &cfg->privacy_mail, &cfg->privacy_pdo, &cfg->privacy_supervisor,
        &cfg->turn_socket_path, &cfg->mailboxes_dir, &cfg->state_dir, &cfg->dkim_key_path,
        &cfg->tls_ca_file, &cfg->nocreate_file, &cfg->notification_url,
        &cfg->iroh_relay_upstream, &cfg->run_as_user, &cfg->log_level, &cfg->unused,
        &cfg->metrics_allow, &cfg->acme_directory_url, &cfg->acme_challenge,
        &cfg->acme_acmetool_dir,
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    for (size_t i = 0; i < cfg->n_listen; i++)
        free(cfg->listen[i]);
    for (size_t i = 0; i < cfg->n_dns_servers; i++)
        free(cfg->dns_servers[i]);
    for (size_t i = 0; i < cfg->n_smtp_plaintext_domains; i++)
        free(cfg->smtp_plaintext_domains[i]);
    cfg->n_listen = cfg->n_dns_servers = cfg->n_smtp_plaintext_domains = 0;
}

bool config_smtp_plaintext_ok(const struct config *cfg, const char *domain)
{
    for (size_t i = 0; i < cfg->n_smtp_plaintext_domains; i++)
        if (strcasecmp(cfg->smtp_plaintext_domains[i], domain) == 0)
            return true;
    return false;
}
