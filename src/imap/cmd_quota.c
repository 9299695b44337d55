/* cmd_quota.c: GETQUOTAROOT and GETQUOTA (RFC 2087): one root "User quota"
 * for every mailbox, STORAGE in KiB: usage is the sum of S= sizes of the
 * account (store's quota_scan), the limit max_mailbox_size. Worker thread.
 * (This file includes store/maildir.h, so not store/mailbox.h.) */
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "imap/session_int.h"
#include "store/store.h"

int imap_quota_usage(struct imap_session *s, uint64_t *used, uint64_t *limit)
{
    const char *dir = imap_account_dir(s);
    *limit = quota_limit_bytes(s->cfg->max_mailbox_size_mb);
    return dir ? quota_scan(dir, used) : -1;
}

static int write_quota(struct imap_session *s)
{
    uint64_t used = 0, limit = 0;
    if (imap_quota_usage(s, &used, &limit) < 0)
        return -1;
    imap_out(s, "* QUOTA \"User quota\" (STORAGE %llu %llu)\r\n",
             (unsigned long long)(used / 1024), (unsigned long long)(limit / 1024));
    return 0;
}

#define QUOTA_ERR "Internal error occurred. Refer to server log for more information."

enum imap_cmd_result imap_cmd_getquotaroot(struct imap_session *s, struct imap_cmd *c)
{
    const char *name = c->n == 1 ? imap_mailbox_arg(&c->a[0]) : NULL;
    if (!name)
        return imap_bad(s, c, "Invalid arguments.");
    imap_out(s, "* QUOTAROOT ");
    imap_write_quoted_or_literal(&s->out, name, strlen(name));
    imap_out(s, " \"User quota\"\r\n");
    if (write_quota(s) < 0)
        return imap_no(s, c, QUOTA_ERR);
    return imap_ok(s, c, "Getquotaroot completed.");
}

enum imap_cmd_result imap_cmd_getquota(struct imap_session *s, struct imap_cmd *c)
{
    if (c->n != 1 || !imap_arg_is_string(&c->a[0]))
        return imap_bad(s, c, "Invalid arguments.");
    if (strcmp(c->a[0].str, "User quota") != 0)
        return imap_no(s, c, "Quota root does not exist.");
    if (write_quota(s) < 0)
        return imap_no(s, c, QUOTA_ERR);
    return imap_ok(s, c, "Getquota completed.");
}
