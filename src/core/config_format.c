/* config_format.c: writes the effective configuration (`--check` output)
 * and the list of configuration errors, as text. The configuration is
 * printed in the order of the key table (§1.3 keys, then our own keys),
 * then the derived values, then the settings that have no effect. The
 * output parses again as a chatmail.ini (the derived lines then count as
 * settings with no effect): multi-line values are written as indented
 * continuation lines, control characters are shown as '?'. */
#include "core/buf.h"
#include "core/config.h"
#include "core/config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `key = value`; an empty or NULL value prints as `key =`. */
static int put_kv(struct buf *out, const char *key, const char *value)
{
    if (!value || !*value)
        return buf_printf(out, "%s =\n", key);
    /* "key = ;x" would make ";x" an inline comment; "key =;x" does not */
    if (buf_printf(out, "%s =%s", key, value[0] == ';' ? "" : " ") < 0)
        return -1;
    for (const char *c = value; *c; c++) {
        int rc;
        if (*c == '\n')
            rc = buf_append_str(out, "\n    ");
        else if ((unsigned char)*c < 0x20 || *c == 0x7f)
            rc = buf_append_str(out, "?");
        else
            rc = buf_append(out, c, 1);
        if (rc < 0)
            return -1;
    }
    return buf_append_str(out, "\n");
}

static int put_list(struct buf *out, const char *key, char *const items[], size_t n)
{
    struct buf joined = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = buf_printf(&joined, "%s%s", i ? ", " : "", items[i]);
    if (rc == 0)
        rc = put_kv(out, key, joined.data);
    buf_free(&joined);
    return rc;
}

static int put_special(const struct config *cfg, const char *name, struct buf *out)
{
    if (strcmp(name, "mail_domain") == 0)
        return put_kv(out, name, cfg->mail_domain_bare);
    if (strcmp(name, "tls_external_cert_and_key") == 0) {
        if (cfg->tls_mode != TLS_MODE_EXTERNAL)
            return put_kv(out, name, "");
        char *both = NULL;
        if (asprintf(&both, "%s %s", cfg->tls_cert_path, cfg->tls_key_path) < 0)
            return -1;
        int rc = put_kv(out, name, both);
        free(both);
        return rc;
    }
    if (strcmp(name, "iroh_relay") == 0) {
        if (!cfg->iroh_relay_set) /* as a comment, so that the output parses the same */
            return buf_printf(out, "# iroh_relay not set: %s, served by the local iroh-relay\n",
                              cfg->iroh_relay ? cfg->iroh_relay : "");
        return put_kv(out, name, cfg->iroh_relay);
    }
    if (strcmp(name, "mailboxes_dir") == 0)
        return put_kv(out, name, cfg->mailboxes_dir);
    if (strcmp(name, "state_dir") == 0)
        return put_kv(out, name, cfg->state_dir);
    if (strcmp(name, "dkim_key_path") == 0)
        return put_kv(out, name, cfg->dkim_key_path);
    if (strcmp(name, "tls_ca_file") == 0)
        return put_kv(out, name, cfg->tls_ca_file);
    return 0;
}

static int put_key(const struct config *cfg, const struct cfg_key *k, struct buf *out)
{
    const char *field = (const char *)cfg + k->off;
    switch (k->kind) {
    case CK_STR:
    case CK_LOGLEVEL: return put_kv(out, k->name, *(char *const *)(const void *)field);
    case CK_LONG: return buf_printf(out, "%s = %ld\n", k->name, *(const long *)(const void *)field);
    case CK_SIZE: return buf_printf(out, "%s = %ldM\n", k->name, *(const long *)(const void *)field);
    case CK_DOUBLE: return buf_printf(out, "%s = %g\n", k->name, *(const double *)(const void *)field);
    case CK_BOOL:
        return put_kv(out, k->name, *(const bool *)(const void *)field ? "true" : "false");
    case CK_PORT: return buf_printf(out, "%s = %d\n", k->name, *(const int *)(const void *)field);
    case CK_TIME: {
        int m = *(const int *)(const void *)field;
        return buf_printf(out, "%s = %02d:%02d\n", k->name, m / 60, m % 60);
    }
    case CK_DURATION: return buf_printf(out, "%s = %lds\n", k->name, *(const long *)(const void *)field);
    case CK_LISTEN: return put_list(out, k->name, cfg->listen, cfg->n_listen);
    case CK_DNS: return put_list(out, k->name, cfg->dns_servers, cfg->n_dns_servers);
    case CK_DOMAINS:
        return put_list(out, k->name, cfg->smtp_plaintext_domains, cfg->n_smtp_plaintext_domains);
    case CK_SPECIAL: return put_special(cfg, k->name, out);
    }
    return 0;
}

int config_format(const struct config *cfg, struct buf *out)
{
    static const char *const modes[] = {"acme", "self", "external"};
    if (buf_append_str(out, "[params]\n") < 0)
        return -1;
    for (size_t i = 0; i < cfg_n_keys; i++)
        if (put_key(cfg, &cfg_keys[i], out) < 0)
            return -1;
    if (buf_append_str(out, "# derived\n") < 0 || put_kv(out, "tls_mode", modes[cfg->tls_mode]) < 0 ||
        put_kv(out, "tls_cert_path", cfg->tls_cert_path) < 0 ||
        put_kv(out, "tls_key_path", cfg->tls_key_path) < 0 ||
        put_kv(out, "ipv4_relay", cfg->ipv4_relay) < 0)
        return -1;
    if (cfg->unused && buf_printf(out, "# settings with no effect: %s\n", cfg->unused) < 0)
        return -1;
    return 0;
}

int config_format_errors(const struct config_errors *errs, struct buf *out)
{
    for (size_t i = 0; i < errs->n && i < CONFIG_MAX_ERRORS; i++) {
        const struct config_error *e = &errs->e[i];
        if (buf_printf(out, "config: %s = \"%s\": %s\n", e->key, e->value, e->reason) < 0)
            return -1;
    }
    return 0;
}
