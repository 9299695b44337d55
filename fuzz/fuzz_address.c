/* fuzz_address.c: login-name normalisation, recipient mapping (user+tag)
 * and the creation rules. What store_addr_normalize_n or
 * store_addr_recipient accepts must be safe as one path component under
 * mailboxes_dir and belong to our domain. */
#include "core/config.h"
#include "store/accounts.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.mail_domain = "example.org";
    cfg.mailboxes_dir = "/nonexistent/mail";
    cfg.username_min_length = 1;
    cfg.username_max_length = 64;
    char in[STORE_ADDR_MAX + 2], rcpt[STORE_ADDR_MAX + 1];
    size_t k = size < sizeof in - 1 ? size : sizeof in - 1;
    memcpy(in, data, k);
    in[k] = '\0';
    const char *rwhy = NULL;
    if (store_addr_recipient(&cfg, in, rcpt, sizeof rcpt, &rwhy) == 0) {
        size_t m = strlen(rcpt);
        if (m > STORE_ADDR_MAX || strchr(rcpt, '/') || strchr(rcpt, '+') || strstr(rcpt, "..") ||
            rcpt[0] == '.' || m < 13 || strcmp(rcpt + m - 12, "@example.org") != 0)
            abort();
    } else if (!rwhy) {
        abort();
    }
    char out[STORE_ADDR_MAX + 1];
    const char *why = NULL;
    if (store_addr_normalize_n(&cfg, (const char *)data, size, out, sizeof out, &why) < 0) {
        if (!why || out[0] != '\0')
            abort();
        return 0;
    }
    size_t n = strlen(out);
    if (n != size || n > STORE_ADDR_MAX || strchr(out, '/') || strstr(out, "..") || out[0] == '.' ||
        n < 13 || strcmp(out + n - 12, "@example.org") != 0)
        abort();
    for (size_t i = 0; i < n; i++)
        if (out[i] >= 'A' && out[i] <= 'Z')
            abort();
    if (store_addr_check_new(&cfg, out, &why) == 0) {
        const char *at = strchr(out, '@');
        if (!at || strchr(at + 1, '@') || strcasecmp(at + 1, "example.org") != 0)
            abort();
    }
    char dir[512];
    if (store_account_dir(&cfg, out, dir, sizeof dir) != 0)
        abort();
    return 0;
}
