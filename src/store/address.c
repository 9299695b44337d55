/* address.c: login names and account addresses (spec §2.1, §2.3, §2.4).
 *
 * Every address that becomes a path under mailboxes_dir passes
 * store_addr_normalize first: Dovecot's username characters only (so no
 * '/', '\\', NUL or space), lower-cased, our domain, no "..", no leading
 * '.', one path component of bounded length. A recipient address passes
 * store_addr_recipient, which first drops a "+tag" from the local part. */
#include "store/accounts.h"

#include "store/accounts_int.h"

#include "core/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Dovecot auth_username_chars after lower-casing: a-z 0-9 . - _ @ [ ] */
static bool login_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_' || c == '@' || c == '[' || c == ']';
}

static int domain_suffix_ok(const struct config *cfg, const char *addr, size_t len)
{
    const char *dom = cfg->mail_domain;
    if (!dom || !*dom)
        return -1;
    size_t dlen = strlen(dom);
    if (len < dlen + 2) /* at least one local-part byte and '@' */
        return -1;
    if (addr[len - dlen - 1] != '@')
        return -1;
    return strncasecmp(addr + len - dlen, dom, dlen) == 0 ? 0 : -1;
}

int store_addr_normalize_n(const struct config *cfg, const char *login, size_t len,
                           char *out, size_t outsz, const char **reason)
{
    const char *why = NULL;
    if (len == 0)
        why = "empty address";
    else if (len > STORE_ADDR_MAX || len >= outsz)
        why = "address too long";
    for (size_t i = 0; !why && i < len; i++) {
        unsigned char c = (unsigned char)login[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (!login_char_ok(c))
            why = "invalid character in address";
        else
            out[i] = (char)c;
    }
    if (!why) {
        out[len] = '\0';
        if (out[0] == '.' || out[0] == '@')
            why = "address starts with '.' or '@'";
        else if (strstr(out, ".."))
            why = "address contains \"..\"";
        else if (domain_suffix_ok(cfg, out, len) < 0)
            why = "not an address of this domain";
    }
    if (why) {
        if (outsz)
            out[0] = '\0';
        if (reason)
            *reason = why;
        return -1;
    }
    return 0;
}

int store_addr_normalize(const struct config *cfg, const char *login, char *out,
                         size_t outsz, const char **reason)
{
    if (!login) {
        if (reason)
            *reason = "empty address";
        return -1;
    }
    return store_addr_normalize_n(cfg, login, strnlen(login, STORE_ADDR_MAX + 1), out,
                                  outsz, reason);
}

int store_addr_recipient(const struct config *cfg, const char *addr, char *out, size_t outsz,
                         const char **reason)
{
    size_t len = addr ? strnlen(addr, STORE_ADDR_MAX + 1) : 0;
    const char *at = addr ? memrchr(addr, '@', len) : NULL;
    const char *plus = at ? memchr(addr, '+', (size_t)(at - addr)) : NULL;
    if (!plus || plus == addr) /* no tag, or nothing before it: as it is */
        return addr ? store_addr_normalize_n(cfg, addr, len, out, outsz, reason)
                    : store_addr_normalize(cfg, addr, out, outsz, reason);
    char user[STORE_ADDR_MAX + 1];
    size_t head = (size_t)(plus - addr), tail = len - (size_t)(at - addr);
    if (len > STORE_ADDR_MAX) {
        if (outsz)
            out[0] = '\0';
        if (reason)
            *reason = "address too long";
        return -1;
    }
    memcpy(user, addr, head);
    memcpy(user + head, at, tail);
    return store_addr_normalize_n(cfg, user, head + tail, out, outsz, reason);
}

static bool localpart_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

int store_addr_check_new(const struct config *cfg, const char *addr, const char **reason)
{
    const char *at = strchr(addr, '@');
    const char *why = NULL;
    if (!at || strchr(at + 1, '@'))
        why = "address must have exactly one '@'";
    else {
        long n = (long)(at - addr);
        if (n < cfg->username_min_length || n > cfg->username_max_length)
            why = "local part length out of range";
        for (const char *p = addr; !why && p < at; p++)
            if (!localpart_char_ok((unsigned char)*p))
                why = "invalid character in local part";
    }
    if (why && reason)
        *reason = why;
    return why ? -1 : 0;
}

int store_account_dir(const struct config *cfg, const char *addr, char *out, size_t outsz)
{
    char norm[STORE_ADDR_MAX + 1];
    if (!cfg->mailboxes_dir || store_addr_normalize(cfg, addr, norm, sizeof norm, NULL) < 0)
        return -1;
    int n = snprintf(out, outsz, "%s/%s", cfg->mailboxes_dir, norm);
    return (n < 0 || (size_t)n >= outsz) ? -1 : 0;
}

bool store_account_exists(const struct config *cfg, const char *addr)
{
    char dir[LIM_STORE_PATH], path[LIM_STORE_PATH];
    if (store_account_dir(cfg, addr, dir, sizeof dir) < 0)
        return false;
    if (store_path(path, sizeof path, dir, "password") < 0)
        return false;
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

bool store_account_enforces_e2ee(const struct config *cfg, const char *addr)
{
    char dir[LIM_STORE_PATH], path[LIM_STORE_PATH];
    if (store_account_dir(cfg, addr, dir, sizeof dir) < 0 ||
        store_path(path, sizeof path, dir, "enforceE2EEincoming") < 0)
        return true;
    return access(path, F_OK) == 0 || errno != ENOENT;
}
