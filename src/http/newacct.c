/* newacct.c: the credentials /new hands out (spec §9.3): nothing is
 * stored, the account is created when the client first logs in with them.
 * Randomness comes from libsodium's CSPRNG. */
#include <sodium.h>
#include <string.h>

#include "core/config.h"
#include "http/http_int.h"

static const char user_alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
/* ASCII letters, digits and punctuation (Python's string.ascii_letters +
 * digits + punctuation). */
static const char pw_alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                  "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

static int random_string(struct buf *out, const char *alphabet, long n)
{
    uint32_t k = (uint32_t)strlen(alphabet);
    for (long i = 0; i < n; i++) {
        char c = alphabet[randombytes_uniform(k)];
        if (buf_append(out, &c, 1) < 0)
            return -1;
    }
    return 0;
}

int newacct_credentials(const struct config *cfg, struct buf *email, struct buf *password)
{
    if (sodium_init() < 0)
        return -1;
    long ulen = cfg->username_max_length > 0 ? cfg->username_max_length : 9;
    long plen = (cfg->password_min_length > 0 ? cfg->password_min_length : 9) + 3;
    if (ulen > 64)
        ulen = 64;
    if (plen > 256)
        plen = 256;
    if (random_string(email, user_alphabet, ulen) < 0 ||
        buf_printf(email, "@%s", cfg->mail_domain) < 0)
        return -1;
    return random_string(password, pw_alphabet, plen);
}

int newacct_dclogin(const struct config *cfg, const char *email, const char *password,
                    struct buf *out)
{
    int rc = buf_append_str(out, "dclogin:");
    rc |= url_encode(out, email, "@[]");
    rc |= buf_append_str(out, "?p=");
    rc |= url_encode(out, password, "");
    rc |= buf_append_str(out, "&v=1");
    if (cfg->ipv4_relay)
        rc |= buf_printf(out, "&ih=%s&sh=%s", cfg->ipv4_relay, cfg->ipv4_relay);
    rc |= buf_append_str(out, "&ic=3");
    return rc ? -1 : 0;
}

static int json_string(struct buf *out, const char *s)
{
    int rc = buf_append(out, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc |= buf_printf(out, "\\%c", c);
        else if (c < 0x20)
            rc |= buf_printf(out, "\\u%04x", c);
        else
            rc |= buf_append(out, s, 1);
    }
    rc |= buf_append(out, "\"", 1);
    return rc ? -1 : 0;
}

int newacct_json(const struct config *cfg, struct buf *out)
{
    struct buf email = {0}, pw = {0}, url = {0};
    int rc = newacct_credentials(cfg, &email, &pw);
    if (rc == 0) {
        rc |= buf_append_str(out, "{\"email\": ");
        rc |= json_string(out, email.data);
        rc |= buf_append_str(out, ", \"password\": ");
        rc |= json_string(out, pw.data);
        if (cfg->tls_mode == TLS_MODE_SELF) {
            rc |= newacct_dclogin(cfg, email.data, pw.data, &url);
            rc |= buf_append_str(out, ", \"dclogin_url\": ");
            rc |= url.data ? json_string(out, url.data) : -1;
        }
        rc |= buf_append_str(out, "}");
    }
    sodium_memzero(pw.data, pw.cap);
    buf_free(&email);
    buf_free(&pw);
    buf_free(&url);
    return rc ? -1 : 0;
}
