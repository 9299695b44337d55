/* cmd_auth.c: LOGIN and AUTHENTICATE PLAIN (with SASL-IR or a "+"
 * continuation). Both need TLS (LOGINDISABLED on plain 143); the check
 * itself is the owner's IMAP_ACT_LOGIN (store's create-on-login). The
 * login name is normalised here so the session knows its address. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "imap/session_int.h"
#include "store/store.h"

/* A login that cannot succeed (bad name, NUL in the password, authzid not
 * the user) is a failure like a wrong password: IMAP_ACT_LOGIN without a
 * password, which the owner answers as failed after the same delay, with
 * the same log line and count (issue 16). */
static enum imap_cmd_result fail_login(struct imap_session *s, const char *user, size_t ulen)
{
    s->login_user = strndup(user, ulen < STORE_ADDR_MAX ? ulen : STORE_ADDR_MAX);
    s->login_pass = NULL;
    s->act = IMAP_ACT_LOGIN;
    return CMD_ASYNC;
}

static enum imap_cmd_result start_login(struct imap_session *s, struct imap_cmd *c,
                                        const char *user, size_t ulen, const char *pass,
                                        size_t plen)
{
    char addr[STORE_ADDR_MAX + 1];
    const char *why;
    if (memchr(pass, '\0', plen) ||
        store_addr_normalize_n(s->cfg, user, ulen, addr, sizeof addr, &why) < 0 ||
        plen > STORE_PASSWORD_MAX)
        return fail_login(s, user, ulen);
    s->login_user = strdup(addr);
    s->login_pass = strndup(pass, plen);
    if (!s->login_user || !s->login_pass) {
        free(s->login_user);
        s->login_user = NULL;
        imap_out(s, "%s NO [UNAVAILABLE] Temporary authentication failure.\r\n", c->tag);
        return CMD_DONE;
    }
    s->act = IMAP_ACT_LOGIN;
    return CMD_ASYNC;
}

static bool refuse_plain(struct imap_session *s, struct imap_cmd *c)
{
    if (s->tls)
        return false;
    imap_out(s, "%s NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
                "(SSL/TLS) connections.\r\n", c->tag);
    return true;
}

enum imap_cmd_result imap_cmd_login(struct imap_session *s, struct imap_cmd *c)
{
    if (c->n != 2 || !imap_arg_is_string(&c->a[0]) || !imap_arg_is_string(&c->a[1]))
        return imap_bad(s, c, "Invalid arguments.");
    if (refuse_plain(s, c))
        return CMD_DONE;
    return start_login(s, c, c->a[0].str, c->a[0].len, c->a[1].str, c->a[1].len);
}

/* PLAIN: authzid NUL authcid NUL password (authzid empty or = authcid). */
static enum imap_cmd_result plain_response(struct imap_session *s, struct imap_cmd *c,
                                           const char *b64, size_t len)
{
    if (len == 1 && b64[0] == '*') {
        imap_out(s, "%s BAD Authentication aborted by client.\r\n", c->tag);
        return CMD_DONE;
    }
    unsigned char *raw = malloc(len / 4 * 3 + 4);
    if (!raw)
        return imap_no(s, c, "Out of memory.");
    int n = len % 4 ? -1 : EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    if (n >= 0 && len >= 2 && b64[len - 1] == '=')
        n -= b64[len - 2] == '=' ? 2 : 1;
    enum imap_cmd_result r = CMD_DONE;
    const char *p = (const char *)raw, *z1 = n > 0 ? memchr(p, '\0', (size_t)n) : NULL;
    const char *z2 = z1 ? memchr(z1 + 1, '\0', (size_t)(p + n - z1 - 1)) : NULL;
    if (!z2) {
        imap_out(s, "%s BAD Invalid base64 data in continued response\r\n", c->tag);
    } else {
        const char *user = z1 + 1, *pass = z2 + 1;
        size_t ulen = (size_t)(z2 - user), azlen = (size_t)(z1 - p);
        if (azlen && (azlen != ulen || memcmp(p, user, ulen) != 0))
            r = fail_login(s, user, ulen);
        else
            r = start_login(s, c, user, ulen, pass, (size_t)(p + n - pass));
    }
    explicit_bzero(raw, len / 4 * 3 + 4);
    free(raw);
    return r;
}

enum imap_cmd_result imap_cmd_authenticate(struct imap_session *s, struct imap_cmd *c)
{
    if (c->n < 1 || c->n > 2 || c->a[0].type != IMAP_ARG_ATOM)
        return imap_bad(s, c, "Invalid arguments.");
    if (!imap_arg_atom_eq(&c->a[0], "PLAIN")) {
        imap_out(s, "%s NO Unsupported authentication mechanism.\r\n", c->tag);
        return CMD_DONE;
    }
    if (refuse_plain(s, c))
        return CMD_DONE;
    if (c->n == 2) {
        if (!imap_arg_is_string(&c->a[1]))
            return imap_bad(s, c, "Invalid arguments.");
        if (c->a[1].len == 1 && c->a[1].str[0] == '=')
            return plain_response(s, c, "", 0);
        return plain_response(s, c, c->a[1].str, c->a[1].len);
    }
    imap_out(s, "+ \r\n");
    s->mode = IM_AUTH_CONT;
    imap_reader_next(&s->rd);
    return CMD_ASYNC;
}

void imap_auth_continue(struct imap_session *s, const char *line, size_t len)
{
    s->mode = IM_CMD;
    struct imap_cmd *c = s->cur;
    if (plain_response(s, c, line, len) == CMD_DONE) {
        s->cur = c;
        /* finished: the caller resets the reader; drop the command */
        if (c->free_state && c->state)
            c->free_state(c->state);
        imap_args_free(&c->args);
        free(c);
        s->cur = NULL;
    }
}
