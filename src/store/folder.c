/* folder.c: the folders of an account in Dovecot's Maildir++ layout: INBOX
 * is the account directory itself, folder "A.B" is <account>/.A.B with its
 * own cur/ new/ tmp/ ('.' is the IMAP hierarchy separator), and the
 * `subscriptions` file in Dovecot's version 2 format ("V\t2\n\n", then one
 * name a line with the separator written as a tab). Names are stored as
 * the client sends them (modified UTF-7), like Dovecot does. */
#include "core/limits.h"
#include "store/index_int.h"
#include "store/mailbox.h"
#include "store/maildir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUBS_FILE "subscriptions"
#define SUBS_HEADER "V\t2\n\n"
#define TRASH_PREFIX "..chatmaild-deleting."

static bool is_inbox(const char *name) { return strcasecmp(name, "INBOX") == 0; }

bool folder_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > MAILBOX_NAME_MAX || name[0] == '~' || name[0] == '.' ||
        name[len - 1] == '.' || strstr(name, ".."))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return false;
    }
    return true;
}

int folder_path(const char *account_dir, const char *name, struct buf *out)
{
    buf_reset(out);
    if (!folder_name_valid(name))
        return -1;
    if (is_inbox(name))
        return buf_append_str(out, account_dir);
    return buf_printf(out, "%s/.%s", account_dir, name);
}

static int make_maildir(const char *dir)
{
    struct buf p = {0};
    static const char *const sub[] = {"cur", "new", "tmp"};
    int rc = mkdir(dir, 0700);
    for (int i = 0; rc == 0 && i < 3; i++) {
        buf_reset(&p);
        rc = buf_printf(&p, "%s/%s", dir, sub[i]) == 0 ? mkdir(p.data, 0700) : -1;
    }
    buf_free(&p);
    return rc;
}

int folder_create(const char *account_dir, const char *name, const char **err)
{
    struct buf dir = {0};
    int rc = -1;
    if (is_inbox(name) || folder_path(account_dir, name, &dir) < 0) {
        *err = is_inbox(name) ? "mailbox already exists" : "invalid mailbox name";
    } else if (make_maildir(dir.data) < 0) {
        *err = errno == EEXIST ? "mailbox already exists" : "cannot create mailbox";
    } else {
        rc = 0;
    }
    buf_free(&dir);
    return rc;
}

static int remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
    struct dirent *de;
    struct buf p = {0};
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        buf_reset(&p);
        if (buf_printf(&p, "%s/%s", path, de->d_name) < 0 || remove_tree(p.data) < 0)
            rc = -1;
    }
    closedir(d);
    buf_free(&p);
    return rc == 0 && rmdir(path) == 0 ? 0 : -1;
}

int folder_delete(const char *account_dir, const char *name, const char **err)
{
    struct buf dir = {0}, trash = {0};
    int rc = -1;
    *err = "cannot delete mailbox";
    if (is_inbox(name) || folder_path(account_dir, name, &dir) < 0) {
        *err = is_inbox(name) ? "INBOX cannot be deleted" : "invalid mailbox name";
        goto out;
    }
    /* Renamed away first so that it vanishes from listings at once. */
    static unsigned counter;
    if (buf_printf(&trash, "%s/" TRASH_PREFIX "%d.%u", account_dir, (int)getpid(),
                   __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED)) < 0)
        goto out;
    if (rename(dir.data, trash.data) < 0) {
        if (errno == ENOENT)
            *err = "mailbox does not exist";
        goto out;
    }
    rc = remove_tree(trash.data);
    quota_changed_unknown(account_dir); /* its messages no longer count */
    (void)folder_subscribe(account_dir, name, false, err);
out:
    buf_free(&dir);
    buf_free(&trash);
    return rc;
}

static int rename_one(const char *account_dir, const char *from, const char *to)
{
    struct buf a = {0}, b = {0};
    int rc = -1;
    if (buf_printf(&a, "%s/.%s", account_dir, from) == 0 &&
        buf_printf(&b, "%s/.%s", account_dir, to) == 0)
        rc = rename(a.data, b.data);
    buf_free(&a);
    buf_free(&b);
    return rc;
}

int folder_rename(const char *account_dir, const char *from, const char *to, const char **err)
{
    char **names = NULL;
    struct buf nn = {0}, dst = {0};
    size_t flen = strlen(from ? from : "");
    int rc = -1;
    *err = "cannot rename mailbox";
    if (!folder_name_valid(from) || !folder_name_valid(to) || is_inbox(from) || is_inbox(to)) {
        *err = "invalid mailbox name";
        return -1;
    }
    if (folder_path(account_dir, to, &dst) < 0 || access(dst.data, F_OK) == 0) {
        *err = "mailbox already exists";
        goto out;
    }
    /* The children are listed before the parent moves: renaming A to A.B
     * would otherwise find A.B itself among A's children (A.B.B). */
    if (folder_list(account_dir, &names, err) < 0 || rename_one(account_dir, from, to) < 0)
        goto out;
    rc = 0;
    for (size_t i = 0; names[i]; i++) { /* children: from.x -> to.x */
        if (strncmp(names[i], from, flen) != 0 || names[i][flen] != '.')
            continue;
        buf_reset(&nn);
        if (buf_printf(&nn, "%s%s", to, names[i] + flen) < 0 || !folder_name_valid(nn.data) ||
            rename_one(account_dir, names[i], nn.data) < 0)
            rc = -1;
    }
out:
    folder_list_free(names);
    buf_free(&nn);
    buf_free(&dst);
    return rc;
}

static int names_push(char ***v, size_t *n, size_t *cap, const char *s)
{
    if (*n + 1 >= *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **nv = realloc(*v, nc * sizeof(**v));
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    if (!((*v)[*n] = strdup(s)))
        return -1;
    (*v)[++*n] = NULL;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int folder_list(const char *account_dir, char ***names, const char **err)
{
    char **v = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(account_dir);
    *names = NULL;
    if (!d || names_push(&v, &n, &cap, "INBOX") < 0) {
        if (d)
            closedir(d);
        *err = "cannot list mailboxes";
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && n < LIM_FOLDERS && (de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (nm[0] != '.' || nm[1] == '.' || nm[1] == '\0' || !folder_name_valid(nm + 1))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), nm, &st, 0) == 0 && S_ISDIR(st.st_mode))
            rc = names_push(&v, &n, &cap, nm + 1);
    }
    closedir(d);
    if (rc < 0) {
        folder_list_free(v);
        *err = "out of memory";
        return -1;
    }
    qsort(v + 1, n - 1, sizeof(*v), cmp_str);
    *names = v;
    return 0;
}

void folder_list_free(char **names)
{
    if (!names)
        return;
    for (size_t i = 0; names[i]; i++)
        free(names[i]);
    free(names);
}

/* Subscriptions file lines to names (version 2: tabs are separators). */
static int subs_parse(char *data, char ***names)
{
    char **v = calloc(1, sizeof(*v)); /* an empty list is {NULL} */
    size_t n = 0, cap = 1;
    char *p = data;
    if (!v)
        return -1;
    if (strncmp(p, SUBS_HEADER, strlen(SUBS_HEADER)) == 0)
        p += strlen(SUBS_HEADER);
    char *save = NULL;
    for (char *line = strtok_r(p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        for (char *t = line; *t; t++)
            if (*t == '\t')
                *t = '.';
        if (folder_name_valid(line) && names_push(&v, &n, &cap, line) < 0) {
            folder_list_free(v);
            return -1;
        }
    }
    *names = v;
    return 0;
}

int folder_subscriptions(const char *account_dir, char ***names, const char **err)
{
    struct buf path = {0}, data = {0};
    int e = 0, rc = -1;
    *names = NULL;
    if (buf_printf(&path, "%s/%s", account_dir, SUBS_FILE) == 0) {
        if (idx_read_file(path.data, LIM_SUBS_FILE, &data, &e) == 0 || e == ENOENT)
            rc = buf_append(&data, "", 1) == 0 ? subs_parse(data.data, names) : -1;
    }
    if (rc < 0)
        *err = "cannot read subscriptions";
    buf_free(&path);
    buf_free(&data);
    return rc;
}

int folder_subscribe(const char *account_dir, const char *name, bool on, const char **err)
{
    char **cur = NULL;
    struct buf out = {0};
    bool found = false;
    int rc = -1;
    if (!folder_name_valid(name)) {
        *err = "invalid mailbox name";
        return -1;
    }
    if (is_inbox(name))
        name = "INBOX";
    if (folder_subscriptions(account_dir, &cur, err) < 0)
        return -1;
    if (buf_append_str(&out, SUBS_HEADER) < 0)
        goto out;
    for (size_t i = 0; cur[i]; i++) {
        if (strcmp(cur[i], name) == 0) {
            found = true;
            if (!on)
                continue;
        }
        for (char *t = cur[i]; *t; t++)
            if (*t == '.')
                *t = '\t';
        if (buf_printf(&out, "%s\n", cur[i]) < 0)
            goto out;
    }
    if (on && !found) {
        size_t at = out.len;
        if (buf_printf(&out, "%s\n", name) < 0)
            goto out;
        for (size_t i = at; i < out.len; i++)
            if (out.data[i] == '.')
                out.data[i] = '\t';
    }
    rc = found == on ? 0 : idx_write_atomic(account_dir, SUBS_FILE, out.data, out.len);
    if (rc < 0)
        *err = "cannot write subscriptions";
out:
    folder_list_free(cur);
    buf_free(&out);
    return rc;
}
