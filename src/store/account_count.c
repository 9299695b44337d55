/* account_count.c: how many accounts the mail tree holds, for the
 * `accounts` gauge. Counted once at start (one readdir of mailboxes_dir and
 * one faccessat per entry); account creation and expiry keep the gauge
 * current afterwards. */
#include "store/accounts.h"

#include "core/config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

long store_count_accounts(const struct config *cfg)
{
    if (!cfg->mailboxes_dir)
        return 0;
    DIR *d = opendir(cfg->mailboxes_dir);
    if (!d)
        return 0; /* not created yet: no accounts */
    long n = 0;
    char rel[STORE_ADDR_MAX + sizeof "/password"];
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strchr(de->d_name, '@') || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
            continue;
        if (snprintf(rel, sizeof rel, "%s/password", de->d_name) >= (int)sizeof rel)
            continue;
        n += faccessat(dirfd(d), rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
    }
    closedir(d);
    return n;
}
