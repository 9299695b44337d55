/* account.c: which ACME account key the client uses: ours
 * (<state_dir>/acme/account.key), else acmetool's (reused with newAccount
 * onlyReturnExisting so a CAA accounturi bound to it keeps working), else a
 * new ES256 key written once with mode 0600. */
#include "acme/acme_client_int.h"

#include "core/fileio.h"
#include "core/log.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* acmetool's account key (accounts/<dir>/privkey, or one level deeper). */
static bool acmetool_key(struct acme *a, char *path, size_t cap)
{
    const char *pats[] = {"/accounts/*/privkey", "/accounts/*/*/privkey"};
    for (size_t i = 0; i < 2; i++) {
        char pat[1024];
        glob_t g;
        if (snprintf(pat, sizeof pat, "%s%s", a->acmetool_dir, pats[i]) >= (int)sizeof pat)
            return false;
        if (glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
            snprintf(path, cap, "%s", g.gl_pathv[0]);
            globfree(&g);
            return true;
        }
        globfree(&g);
    }
    return false;
}

/* Our account key, else acmetool's (reused with onlyReturnExisting), else a
 * new one written to <state_dir>/acme/account.key. */
int acme_account_load(struct acme *a, char *err, size_t errlen)
{
    char own[4096], dir[4096], other[1024];
    if (snprintf(dir, sizeof dir, "%s/acme", a->state_dir) >= (int)sizeof dir ||
        snprintf(own, sizeof own, "%s/account.key", dir) >= (int)sizeof own) {
        snprintf(err, errlen, "state_dir too long");
        return -1;
    }
    if (mkdir_p(a->state_dir) < 0 || mkdir_p(dir) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (access(own, F_OK) == 0) {
        if (!(a->acct = acme_key_read(own, err, errlen)))
            return -1;
        snprintf(a->acct_from, sizeof a->acct_from, "%s", own);
    } else if (acmetool_key(a, other, sizeof other)) {
        if (!(a->acct = acme_key_read(other, err, errlen)))
            return -1;
        a->only_existing = true;
        snprintf(a->acct_from, sizeof a->acct_from, "%s (acmetool's)", other);
    } else {
        struct buf pem = {0};
        if (!(a->acct = acme_key_new_ec()) || acme_key_pem(a->acct, &pem) < 0 ||
            fileio_write_atomic(dir, "account.key", pem.data, pem.len, 0600, true) < 0) {
            snprintf(err, errlen, "cannot create %s: %s", own, strerror(errno));
            buf_free(&pem);
            return -1;
        }
        buf_free(&pem);
        snprintf(a->acct_from, sizeof a->acct_from, "%s", own);
        log_info("ACME: created account key %s", own);
    }
    if (acme_jwk(a->acct, a->jwk, sizeof a->jwk) < 0 ||
        acme_thumbprint(a->jwk, a->thumb, sizeof a->thumb) < 0) {
        snprintf(err, errlen, "cannot use the account key %s", a->acct_from);
        return -1;
    }
    return 0;
}
