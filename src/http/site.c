/* site.c: the web site, built once at startup and then served from
 * memory (no disk access on the loop thread):
 *   www_folder = ""            the built-in pages: www/ templates rendered
 *                              with the configuration's values;
 *   www_folder = existing dir  its regular files, loaded as they are
 *                              (bounded; nothing outside the folder, even
 *                              through symlinks);
 *   www_folder = anything else no site (404), e.g. "disabled". */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/log.h"
#include "http/http.h"
#include "http/http_int.h"

struct page {
    char *name;        /* relative path, e.g. "index.html" */
    struct buf body;
};

static struct {
    bool ready, failed;
    struct page *pages;
    size_t n, cap;
    size_t bytes;
} site;

bool site_ready(void) { return site.ready; }

static struct page *add_page(const char *name)
{
    if (site.n == site.cap) {
        size_t cap = site.cap ? site.cap * 2 : 16;
        struct page *p = realloc(site.pages, cap * sizeof *p);
        if (!p)
            return NULL;
        site.pages = p;
        site.cap = cap;
    }
    struct page *p = &site.pages[site.n];
    memset(p, 0, sizeof *p);
    p->name = strdup(name);
    if (!p->name)
        return NULL;
    site.n++;
    return p;
}

const char *content_type_for(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"}, {".json", "application/json"},
        {".xml", "application/xml"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
        {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"}, {".gif", "image/gif"},
        {".webp", "image/webp"}, {".ico", "image/x-icon"}, {".pdf", "application/pdf"},
        {".woff2", "font/woff2"}, {".woff", "font/woff"}, {".md", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

static char *num(char *b, size_t n, long v)
{
    snprintf(b, n, "%ld", v);
    return b;
}

/* The variables every built-in page may use. */
static size_t page_vars(const struct config *c, struct tpl_var *v, char nb[][24], const char *invite_url,
                        const char *invite_qr)
{
    const char *unset = "(not given)";
    size_t n = 0;
    v[n++] = (struct tpl_var){"domain", c->mail_domain, false};
    v[n++] = (struct tpl_var){"send_rate", num(nb[0], 24, c->max_user_send_per_minute), false};
    v[n++] = (struct tpl_var){"mailbox_size", num(nb[1], 24, c->max_mailbox_size_mb), false};
    v[n++] = (struct tpl_var){"delete_mails_after", num(nb[2], 24, c->delete_mails_after), false};
    v[n++] = (struct tpl_var){"delete_large_after", num(nb[3], 24, c->delete_large_after), false};
    v[n++] = (struct tpl_var){"delete_inactive_days", num(nb[4], 24, c->delete_inactive_users_after), false};
    v[n++] = (struct tpl_var){"privacy_postal", c->privacy_postal && *c->privacy_postal ? c->privacy_postal : unset, false};
    v[n++] = (struct tpl_var){"privacy_mail", c->privacy_mail && *c->privacy_mail ? c->privacy_mail : unset, false};
    v[n++] = (struct tpl_var){"privacy_pdo", c->privacy_pdo && *c->privacy_pdo ? c->privacy_pdo : unset, false};
    v[n++] = (struct tpl_var){"privacy_supervisor", c->privacy_supervisor && *c->privacy_supervisor ? c->privacy_supervisor : unset, false};
    v[n++] = (struct tpl_var){"invite_url", invite_url, false};
    v[n++] = (struct tpl_var){"invite_qr", invite_qr, true};
    return n;
}

static int render_file(const char *name, struct tpl_var *v, size_t n, struct buf *out,
                       char *err, size_t errlen)
{
    const struct www_file *f = www_builtin_find(name);
    if (!f) {
        snprintf(err, errlen, "built-in %s missing", name);
        return -1;
    }
    char e[160] = "";
    if (tpl_render(f->data, f->len, v, n, out, e, sizeof e) < 0) {
        snprintf(err, errlen, "www/%s: %s", name, e[0] ? e : "out of memory");
        return -1;
    }
    return 0;
}

/* Renders content page `name` into the layout as page `name`. */
static int build_page(const char *name, const char *title, struct tpl_var *v, size_t n,
                      char *err, size_t errlen)
{
    struct buf content = {0};
    int rc = render_file(name, v, n, &content, err, errlen);
    struct tpl_var lv[20];
    memcpy(lv, v, n * sizeof *v);
    lv[n] = (struct tpl_var){"title", title, false};
    lv[n + 1] = (struct tpl_var){"content", content.data ? content.data : "", true};
    struct page *p = rc == 0 ? add_page(name) : NULL;
    if (rc == 0 && !p)
        snprintf(err, errlen, "out of memory");
    if (p)
        rc = render_file("layout.html", lv, n + 2, &p->body, err, errlen);
    buf_free(&content);
    return p ? rc : -1;
}

static int add_raw(const char *name)
{
    const struct www_file *f = www_builtin_find(name);
    struct page *p = f ? add_page(name) : NULL;
    return p && buf_append(&p->body, f->data, f->len) == 0 ? 0 : -1;
}

static int build_builtin(const struct config *c, char *err, size_t errlen)
{
    struct buf url = {0}, qr = {0}, invite = {0};
    char nb[5][24];
    struct tpl_var v[20];
    int rc = buf_printf(&url, "DCACCOUNT:https://%s", c->mail_domain_bare);
    if (c->https_port != 443)
        rc |= buf_printf(&url, ":%d", c->https_port);
    rc |= buf_append_str(&url, "/new");
    rc |= rc ? -1 : qr_svg(url.data, url.len, &qr);
    size_t n = page_vars(c, v, nb, url.data, qr.data);
    if (rc < 0)
        snprintf(err, errlen, "cannot make the invitation QR code");
    if (rc == 0)
        rc = render_file(c->tls_mode == TLS_MODE_SELF ? "invite-self.html" : "invite-acme.html",
                         v, n, &invite, err, errlen);
    v[n] = (struct tpl_var){"invite", invite.data ? invite.data : "", true};
    if (rc == 0)
        rc = build_page("index.html", "Home", v, n + 1, err, errlen);
    if (rc == 0)
        rc = build_page("info.html", "Info", v, n + 1, err, errlen);
    if (rc == 0)
        rc = build_page("privacy.html", "Privacy", v, n + 1, err, errlen);
    if (rc == 0 && (add_raw("robots.txt") < 0 || add_raw("style.css") < 0)) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    buf_free(&url);
    buf_free(&qr);
    buf_free(&invite);
    return rc;
}

/* Loads one regular file below root (already checked to stay inside). */
static void load_file(const char *path, const char *rel, off_t size)
{
    if (site.n >= LIM_HTTP_SITE_FILES || site.bytes + (size_t)size > LIM_HTTP_SITE_BYTES) {
        log_warn("www_folder: limit reached, %s not served", rel);
        return;
    }
    FILE *f = fopen(path, "rb");
    struct page *p = f ? add_page(rel) : NULL;
    if (p && (buf_reserve(&p->body, (size_t)size) < 0 ||
              fread(p->body.data, 1, (size_t)size, f) != (size_t)size)) {
        log_warn("www_folder: cannot read %s", rel);
        buf_free(&p->body);
        free(p->name);
        site.n--;
    } else if (p) {
        p->body.len = (size_t)size;
        p->body.data[size] = '\0';
        site.bytes += (size_t)size;
    }
    if (f)
        fclose(f);
}

static void load_dir(const char *root, const char *dir, const char *rel, int depth)
{
    DIR *d = depth <= LIM_HTTP_SITE_DEPTH ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue; /* ., .., and hidden files such as .git */
        char path[PATH_MAX], r[PATH_MAX], real[PATH_MAX];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= (int)sizeof r ||
            !realpath(path, real) || stat(real, &st) < 0)
            continue;
        size_t rl = strlen(root);
        if (strncmp(real, root, rl) != 0 || real[rl] != '/')
            continue; /* a symlink that leaves the folder */
        if (S_ISDIR(st.st_mode))
            load_dir(root, path, r, depth + 1);
        else if (S_ISREG(st.st_mode))
            load_file(real, r, st.st_size);
    }
    if (d)
        closedir(d);
}

int http_init(const struct config *c, char *err, size_t errlen)
{
    if (site.ready || site.failed)
        return site.ready ? 0 : -1;
    int rc = 0;
    const char *folder = c->www_folder ? c->www_folder : "";
    char root[PATH_MAX];
    if (!*folder) {
        rc = build_builtin(c, err, errlen);
    } else if (realpath(folder, root)) {
        load_dir(root, root, "", 0);
        log_info("www_folder %s: serving %zu files", folder, site.n);
    } else {
        log_info("www_folder %s does not exist: no web site", folder);
    }
    if (rc < 0) {
        http_cleanup();
        site.failed = true;
        return -1;
    }
    site.ready = true;
    return 0;
}

void http_cleanup(void)
{
    for (size_t i = 0; i < site.n; i++) {
        free(site.pages[i].name);
        buf_free(&site.pages[i].body);
    }
    free(site.pages);
    memset(&site, 0, sizeof site);
}

static const struct page *find_page(const char *name)
{
    for (size_t i = 0; i < site.n; i++)
        if (strcmp(site.pages[i].name, name) == 0)
            return &site.pages[i];
    return NULL;
}

/* Maps a URL path to a page name: percent-decoded, no "..", no empty or
 * hidden segments; "/" and ".../" get index.html. */
static const struct page *lookup(const char *path)
{
    struct buf name = {0};
    const struct page *p = NULL;
    if (path[0] != '/' || url_decode(path + 1, strlen(path + 1), false, 1024, &name) < 0)
        goto out;
    const char *s = name.data ? name.data : "";
    if (strstr(s, "//") || s[0] == '/' || s[0] == '.' || strstr(s, "/."))
        goto out;
    if (!*s || s[strlen(s) - 1] == '/') {
        if (buf_append_str(&name, "index.html") < 0)
            goto out;
        p = find_page(name.data);
    } else if (!(p = find_page(s)) && buf_append_str(&name, "/index.html") == 0) {
        p = find_page(name.data);
    }
out:
    buf_free(&name);
    return p;
}

bool site_serve(struct http_ctx *x)
{
    const struct page *p = lookup(x->path);
    if (!p)
        return false;
    http_respond(x, 200, content_type_for(p->name), "", p->body.data, p->body.len);
    return true;
}
