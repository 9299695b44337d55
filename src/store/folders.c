/* folders.c: Maildir++ folders, as Dovecot lays them out for chatmail
 * (mail_location = maildir:<mailboxes_dir>/%u, separator '.'): INBOX is the
 * account directory itself, mailbox "A.B" lives in <account>/.A.B/. Names
 * are kept as the client sent them (IMAP modified UTF-7), like Dovecot.
 * Validation keeps every name inside the account directory. */
#include "store/maildir.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static bool is_inbox(const char *name)
{
    return strcasecmp(name, "INBOX") == 0;
}

int folder_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > FOLDER_NAME_MAX)
        return -1;
    if (name[0] == '.' || name[n - 1] == '.' || strstr(name, ".."))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c < 0x20 || c == 0x7f)
            return -1;
    }
    return 0;
}

int folder_path(char *out, size_t cap, const char *account_dir, const char *name)
{
    if (folder_name_valid(name) < 0)
        return -1;
    int n = is_inbox(name) ? snprintf(out, cap, "%s", account_dir)
                           : snprintf(out, cap, "%s/.%s", account_dir, name);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

int folder_name_from_dir(char *out, size_t cap, const char *entry)
{
    if (entry[0] != '.' || folder_name_valid(entry + 1) < 0 || is_inbox(entry + 1))
        return -1;
    int n = snprintf(out, cap, "%s", entry + 1);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

static int mkdir_ok(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int folder_create(const char *account_dir, const char *name)
{
    char dir[4096], sub[4200];
    if (folder_path(dir, sizeof(dir), account_dir, name) < 0) {
        errno = EINVAL;
        return -1;
    }
    if (mkdir_ok(dir) < 0)
        return -1;
    static const char *const subs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", dir, subs[i]);
        if (mkdir_ok(sub) < 0)
            return -1;
    }
    return 0;
}
