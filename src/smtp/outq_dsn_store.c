/* outq_dsn_store.c: a delivery status notification built (outq_dsn_build)
 * and stored in the INBOX of the local sender: the queue runner's reports
 * and the acceptance pipeline's per-recipient ones (accept_report.c).
 * Worker thread (file I/O). */
#include "smtp/outq.h"

#include "core/config.h"
#include "store/store.h"

int outq_dsn_store(const struct config *cfg, struct quota_cache *quota, const char *sender,
                   char *account, size_t account_len, const struct outq_dsn_rcpt *r, size_t n,
                   const char *headers, size_t headers_len, int64_t arrival, int64_t now,
                   bool expired)
{
    char dir[4096];
    const char *why = NULL;
    if (!sender[0] || store_addr_recipient(cfg, sender, account, account_len, &why) < 0 ||
        !store_account_exists(cfg, account) ||
        store_account_dir(cfg, account, dir, sizeof dir) < 0)
        return -1;
    struct buf dsn = {0};
    int rc = -2;
    if (outq_dsn_build(&dsn, cfg->mail_domain, account, r, n, headers, headers_len, arrival, now,
                       expired) == 0) {
        struct store_rcpt sr = {.dir = dir};
        struct store_opts o = {.quota = quota, .compress = cfg->store_compress};
        /* a report is small and must arrive: no quota refusal */
        store_deliver(dsn.data, dsn.len, &sr, 1, &o);
        rc = sr.status == STORE_OK ? 0 : -2;
    }
    buf_free(&dsn);
    return rc;
}
