/* account_create.c: create-on-login (spec §2.4), the rules in order:
 *   1 nocreate file, 2 password length, 3 two parts at '@', 4 local-part
 *   length, 5 local-part characters, 6 system resources, 7 under the
 *   exclusive lock <maildir>/password.lock: re-check, write the password
 *   file atomically, create the empty enforceE2EEincoming flag.
 * The flag is written before the password file is renamed into place: the
 * rename is the moment the account exists, and it exists with its flag.
 * Logs "registration rejected: <reason>" and "Created address: <addr>". */
#include "store/accounts.h"
#include "store/accounts_int.h"

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int refuse(struct store_login_outcome *out, const char *reason)
{
    out->result = STORE_LOGIN_REFUSED;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
    log_warn("registration rejected: %s", reason);
    metrics_inc(M_REJECTED_REGISTRATIONS);
    return out->result;
}

static int try_again(struct store_login_outcome *out, const char *what)
{
    out->result = STORE_LOGIN_TRY_AGAIN;
    snprintf(out->reason, sizeof out->reason, "%s", what);
    log_error("account creation for %s failed: %s: %s", out->addr, what, strerror(errno));
    return out->result;
}

/* Length in code points, as Python's len() counts a str. */
static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Rules 1-6; returns 0 when creation may proceed. */
static int check_rules(const struct config *cfg, const char *addr, const char *password,
                       struct store_login_outcome *out)
{
    const char *why = NULL;
    char res[STORE_REASON_MAX];
    if (cfg->nocreate_file && *cfg->nocreate_file && access(cfg->nocreate_file, F_OK) == 0)
        return refuse(out, "account creation disabled by nocreate file");
    if ((long)utf8_length(password) < cfg->password_min_length)
        return refuse(out, "password too short");
    if (store_addr_check_new(cfg, addr, &why) < 0)
        return refuse(out, why);
    if (store_syslimits_check(cfg, res, sizeof res) != 0)
        return refuse(out, res);
    return 0;
}

/* Reads <dir>/password into hash ("" when missing or empty). */
static int read_existing(const char *dir, char *hash, size_t cap)
{
    char path[LIM_STORE_PATH];
    hash[0] = '\0';
    if (store_path(path, sizeof path, dir, "password") < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    long n = store_read_fd(fd, hash, cap);
    close(fd);
    if (n < 0)
        return -1;
    store_rstrip(hash);
    return 0;
}

static int create_flag(const char *dir)
{
    char path[LIM_STORE_PATH];
    if (store_path(path, sizeof path, dir, "enforceE2EEincoming") < 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    return close(fd);
}

/* Rule 7 under the lock. Fills existing with the hash of a concurrent
 * creation (then nothing is written), else creates the account. */
static int create_locked(const char *dir, const char *password, char *existing, size_t cap,
                         struct store_login_outcome *out)
{
    char hash[STORE_HASH_MAX];
    if (read_existing(dir, existing, cap) < 0)
        return try_again(out, "cannot read password file");
    if (existing[0])
        return 0;
    if (store_pw_hash(password, hash, sizeof hash) < 0)
        return try_again(out, "cannot hash password");
    if (create_flag(dir) < 0)
        return try_again(out, "cannot create enforceE2EEincoming");
    if (store_write_atomic(dir, "password", hash, strlen(hash), false) < 0)
        return try_again(out, "cannot write password file");
    out->created = true;
    out->result = STORE_LOGIN_OK;
    log_info("Created address: %s", out->addr);
    metrics_inc(M_CREATED_ACCOUNTS);
    metrics_inc(strncmp(out->addr, "ci-", 3) == 0 ? M_CREATED_CI_ACCOUNTS : M_CREATED_NONCI_ACCOUNTS);
    metrics_gauge_add(G_ACCOUNTS, 1);
    return 0;
}

/* Another login created the account meanwhile: check against its hash. */
static int verify_existing(const char *hash, const char *password,
                           struct store_login_outcome *out)
{
    int v = store_pw_verify(hash, password);
    if (v < 0)
        log_warn("unsupported password hash for %s", out->addr);
    out->result = v == 1 ? STORE_LOGIN_OK : STORE_LOGIN_WRONG_PASSWORD;
    return out->result;
}

int store_account_create(const struct config *cfg, const char *addr, const char *password,
                         struct store_login_outcome *out)
{
    char dir[LIM_STORE_PATH], lock[LIM_STORE_PATH], existing[LIM_STORE_PWFILE_MAX];
    out->created = false;
    out->reason[0] = '\0';
    if (addr != out->addr)
        snprintf(out->addr, sizeof out->addr, "%s", addr);
    if (check_rules(cfg, addr, password, out) != 0)
        return out->result;
    if (store_account_dir(cfg, addr, dir, sizeof dir) < 0 ||
        store_path(lock, sizeof lock, dir, "password.lock") < 0)
        return refuse(out, "invalid address");
    if (store_mkdir_p(dir, 0700) < 0)
        return try_again(out, "cannot create mailbox directory");
    int lfd = store_lock_open(lock, LIM_STORE_LOCK_TIMEOUT_MS);
    if (lfd < 0)
        return try_again(out, errno == ETIMEDOUT ? "lock timeout" : "cannot lock");
    out->result = STORE_LOGIN_TRY_AGAIN;
    int rc = create_locked(dir, password, existing, sizeof existing, out);
    store_lock_close(lfd);
    if (rc == 0 && !out->created)
        rc = verify_existing(existing, password, out);
    sodium_memzero(existing, sizeof existing);
    return out->result;
}
