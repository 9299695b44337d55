/* config_apply.c: the table of every chatmail.ini key we understand (§1.3
 * keys first, then chatmaild-server's own), and the step that turns the raw
 * strings into struct config: defaults, typed parsing, derived values (IPv4
 * relay, TLS mode and paths, mailboxes_dir, iroh_relay, dkim_key_path) and
 * cross-key checks. Every problem is collected; nothing stops early. */
#include "core/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define F(field) offsetof(struct config, field)
#define DKIM_MIGRATED_KEY "/etc/dkimkeys/opendkim.private"
#define TLS_EXTERNAL_REASON \
    "tls_external_cert_and_key must have two space-separated paths: CERT_PATH KEY_PATH"

const struct cfg_key cfg_keys[] = {
    {"mail_domain", CK_SPECIAL, NULL, 0},
    {"max_user_send_per_minute", CK_LONG, "60", F(max_user_send_per_minute)},
    {"max_user_send_burst_size", CK_LONG, "10", F(max_user_send_burst_size)},
    {"max_mailbox_size", CK_SIZE, "500M", F(max_mailbox_size_mb)},
    {"max_message_size", CK_LONG, "31457280", F(max_message_size)},
    {"delete_mails_after", CK_LONG, "20", F(delete_mails_after)},
    {"delete_large_after", CK_LONG, "7", F(delete_large_after)},
    {"delete_inactive_users_after", CK_LONG, "90", F(delete_inactive_users_after)},
    {"username_min_length", CK_LONG, "9", F(username_min_length)},
    {"username_max_length", CK_LONG, "9", F(username_max_length)},
    {"password_min_length", CK_LONG, "9", F(password_min_length)},
    {"max_load_1m", CK_DOUBLE, "5", F(max_load_1m)},
    {"min_available_memory", CK_SIZE, "200M", F(min_available_memory_mb)},
    {"min_free_disk_space", CK_SIZE, "1G", F(min_free_disk_space_mb)},
    {"max_imap_connections", CK_LONG, "10000", F(max_imap_connections)},
    {"max_smtp_connections", CK_LONG, "1000", F(max_smtp_connections)},
    {"tls_external_cert_and_key", CK_SPECIAL, NULL, 0},
    {"www_folder", CK_STR, "", F(www_folder)},
    {"disable_ipv6", CK_BOOL, "false", F(disable_ipv6)},
    {"acme_email", CK_STR, "", F(acme_email)},
    {"iroh_relay", CK_SPECIAL, NULL, 0},
    {"imap_compress", CK_BOOL, "false", F(imap_compress)},
    {"privacy_postal", CK_STR, "", F(privacy_postal)},
    {"privacy_mail", CK_STR, "", F(privacy_mail)},
    {"privacy_pdo", CK_STR, "", F(privacy_pdo)},
    {"privacy_supervisor", CK_STR, "", F(privacy_supervisor)},
    {"turn_socket_path", CK_STR, "", F(turn_socket_path)},
    {"mailboxes_dir", CK_SPECIAL, NULL, 0},
    /* chatmaild-server's own keys */
    {"listen", CK_LISTEN, "", 0},
    {"smtp_port", CK_PORT, "25", F(smtp_port)},
    {"submission_port", CK_PORT, "587", F(submission_port)},
    {"submissions_port", CK_PORT, "465", F(submissions_port)},
    {"imap_port", CK_PORT, "143", F(imap_port)},
    {"imaps_port", CK_PORT, "993", F(imaps_port)},
    {"https_port", CK_PORT, "443", F(https_port)},
    {"http_port", CK_PORT, "80", F(http_port)},
    {"state_dir", CK_SPECIAL, NULL, 0},
    {"dkim_key_path", CK_SPECIAL, NULL, 0},
    {"dns_servers", CK_DNS, "", 0},
    {"tls_ca_file", CK_SPECIAL, NULL, 0},
    {"smtp_plaintext_domains", CK_DOMAINS, "nauta.cu", 0},
    {"nocreate_file", CK_STR, "/etc/chatmail-nocreate", F(nocreate_file)},
    {"notification_url", CK_STR, "https://notifications.delta.chat/notify", F(notification_url)},
    {"iroh_relay_upstream", CK_STR, "http://127.0.0.1:3340", F(iroh_relay_upstream)},
    {"metrics_allow", CK_STR, "", F(metrics_allow)},
    {"run_as_user", CK_STR, "vmail", F(run_as_user)},
    {"log_level", CK_LOGLEVEL, "info", F(log_level)},
    {"store_compress", CK_BOOL, "false", F(store_compress)},
    {"expire_time", CK_TIME, "00:02", F(expire_time)},
    {"max_http_connections", CK_LONG, "4096", F(max_http_connections)},
    {"imap_prelogin_timeout", CK_LONG, "60", F(imap_prelogin_timeout)},
    {"smtp_command_timeout", CK_LONG, "300", F(smtp_command_timeout)},
    {"smtp_transaction_timeout", CK_LONG, "1800", F(smtp_transaction_timeout)},
    {"queue_lifetime", CK_DURATION, "2d", F(queue_lifetime)},
    {"mxdeliv_port", CK_PORT, "443", F(mxdeliv_port)},
    {"outbound_smtp_port", CK_PORT, "25", F(outbound_smtp_port)},
    {"outbound_smtp_timeout", CK_DURATION, "300s", F(outbound_smtp_timeout)},
    {"acme_directory_url", CK_STR, "https://acme-v02.api.letsencrypt.org/directory",
     F(acme_directory_url)},
    {"acme_challenge", CK_STR, "http-01 tls-alpn-01", F(acme_challenge)},
    {"acme_acmetool_dir", CK_STR, "/var/lib/acme", F(acme_acmetool_dir)},
};
const size_t cfg_n_keys = sizeof cfg_keys / sizeof cfg_keys[0];
_Static_assert(sizeof cfg_keys / sizeof cfg_keys[0] <= CFG_MAX_KEYS, "raise CFG_MAX_KEYS");

/* Keys of §1.3 that only configured the old daemons' plumbing
 * (filtermail_*, postfix_reinject_*, passdb_path, mtail_address, imap_rawlog,
 * filtermail_host, postfix_host) are deliberately absent from the table:
 * like unknown keys, they end up in config.unused. */

int cfg_key_index(const char *name)
{
    for (size_t i = 0; i < cfg_n_keys; i++)
        if (strcmp(cfg_keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

char *cfg_path_join(const char *dir, const char *name)
{
    if (!dir)
        return NULL;
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    char *out = NULL;
    if (asprintf(&out, "%.*s/%s", (int)dl, dir, name) < 0)
        return NULL;
    return out;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Splits a comma-separated list into the array; empty items are skipped. */
static void apply_list(const char *key, const char *value, char **arr, size_t *n, size_t max,
                       const char *(*check)(const char *), struct config_errors *errs)
{
    char *copy = strdup(value);
    char *save = NULL;
    for (char *item = copy ? strtok_r(copy, ",", &save) : NULL; item;
         item = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*item))
            item++;
        size_t len = strlen(item);
        while (len && isspace((unsigned char)item[len - 1]))
            item[--len] = '\0';
        if (!len)
            continue;
        const char *why = check(item);
        if (why) {
            cfg_error(errs, key, item, "%s", why);
        } else if (*n >= max) {
            cfg_error(errs, key, value, "more than %zu entries", max);
            break;
        } else if ((arr[*n] = strdup(item)) != NULL) {
            (*n)++;
        } else {
            cfg_error(errs, "-", "", "out of memory");
        }
    }
    if (!copy)
        cfg_error(errs, "-", "", "out of memory");
    free(copy);
}

static void apply_typed(struct config *cfg, const struct cfg_key *k, const char *v,
                        struct config_errors *errs)
{
    char *field = (char *)cfg + k->off;
    const char *why = NULL;
    switch (k->kind) {
    case CK_STR: *(char **)(void *)field = strdup(v); break;
    case CK_LONG: why = cfg_parse_long(v, (long *)(void *)field); break;
    case CK_SIZE: why = cfg_parse_size(v, (long *)(void *)field); break;
    case CK_DOUBLE: why = cfg_parse_double(v, (double *)(void *)field); break;
    case CK_BOOL: why = cfg_parse_bool(v, (bool *)(void *)field); break;
    case CK_PORT: why = cfg_parse_port(v, (int *)(void *)field); break;
    case CK_TIME: why = cfg_parse_time(v, (int *)(void *)field); break;
    case CK_DURATION: why = cfg_parse_duration(v, (long *)(void *)field); break;
    case CK_LOGLEVEL: {
        const char *name = cfg_log_level_name(v);
        *(char **)(void *)field = strdup(name ? name : "info");
        why = name ? NULL : "not one of debug, info, warn, error";
        break;
    }
    case CK_LISTEN:
        apply_list(k->name, v, cfg->listen, &cfg->n_listen, CONFIG_MAX_LISTEN, cfg_check_ip, errs);
        break;
    case CK_DNS:
        apply_list(k->name, v, cfg->dns_servers, &cfg->n_dns_servers, CONFIG_MAX_DNS,
                   cfg_check_dns_server, errs);
        break;
    case CK_DOMAINS:
        apply_list(k->name, v, cfg->smtp_plaintext_domains, &cfg->n_smtp_plaintext_domains,
                   CONFIG_MAX_PLAIN_DOMAINS, cfg_check_domain, errs);
        break;
    case CK_SPECIAL: break;
    }
    if (why) {
        cfg_error(errs, k->name, v, "%s", why);
        if (k->def && k->kind != CK_LOGLEVEL) /* keep a sane value for format */
            apply_typed(cfg, k, k->def, errs);
    }
}

static const char *raw_of(char *const raw[], const char *name)
{
    int i = cfg_key_index(name);
    return i < 0 ? NULL : raw[i];
}

/* mail_domain -> mail_domain, mail_domain_bare, ipv4_relay. 0 when valid. */
static int derive_domain(struct config *cfg, const char *v, struct config_errors *errs)
{
    if (!v) {
        cfg_error(errs, "mail_domain", "", "missing: mail_domain is required");
        return -1;
    }
    const char *why = cfg_check_domain(v);
    if (why) {
        cfg_error(errs, "mail_domain", v, "%s", why);
        return -1;
    }
    unsigned char addr[4];
    cfg->mail_domain_bare = strdup(v);
    if (inet_pton(AF_INET, v, addr) == 1) {
        cfg->ipv4_relay = strdup(v);
        if (asprintf(&cfg->mail_domain, "[%s]", v) < 0)
            cfg->mail_domain = NULL;
    } else {
        cfg->mail_domain = strdup(v);
    }
    return 0;
}

/* §1.3 derived TLS table: external wins; `_` or IPv4 -> self; else acme. */
static void derive_tls(struct config *cfg, const char *ext, bool domain_ok,
                       struct config_errors *errs)
{
    if (ext && *ext) {
        const char *ws = " \t\r\n\v\f";
        const char *cert = ext + strspn(ext, ws);
        size_t cert_len = strcspn(cert, ws);
        const char *key = cert + cert_len + strspn(cert + cert_len, ws);
        size_t key_len = strcspn(key, ws);
        if (cert_len && key_len && !key[key_len + strspn(key + key_len, ws)]) {
            cfg->tls_mode = TLS_MODE_EXTERNAL;
            cfg->tls_cert_path = strndup(cert, cert_len);
            cfg->tls_key_path = strndup(key, key_len);
            return;
        }
        cfg_error(errs, "tls_external_cert_and_key", ext, TLS_EXTERNAL_REASON);
    }
    if (!domain_ok)
        return;
    if (cfg->mail_domain_bare[0] == '_' || cfg->ipv4_relay) {
        cfg->tls_mode = TLS_MODE_SELF;
        cfg->tls_cert_path = cfg_path_join(cfg->state_dir, "tls/selfsigned.crt");
        cfg->tls_key_path = cfg_path_join(cfg->state_dir, "tls/selfsigned.key");
    } else {
        cfg->tls_mode = TLS_MODE_ACME;
        const char *at = cfg->acme_acmetool_dir ? cfg->acme_acmetool_dir : "/var/lib/acme";
        if (asprintf(&cfg->tls_cert_path, "%s/live/%s/fullchain", at, cfg->mail_domain) < 0)
            cfg->tls_cert_path = NULL;
        if (asprintf(&cfg->tls_key_path, "%s/live/%s/privkey", at, cfg->mail_domain) < 0)
            cfg->tls_key_path = NULL;
    }
}

/* A path that must not be empty: the default when absent. */
static char *nonempty_path(const char *key, const char *v, const char *def,
                           struct config_errors *errs)
{
    if (v && !*v)
        cfg_error(errs, key, v, "must not be empty");
    return dup_or_null(v && *v ? v : def);
}

static void derive_paths(struct config *cfg, char *const raw[], bool domain_ok, bool probe_files,
                         struct config_errors *errs)
{
    const char *mb = raw_of(raw, "mailboxes_dir");
    char *mb_def = NULL;
    if (domain_ok && !mb && asprintf(&mb_def, "/home/vmail/mail/%s", cfg->mail_domain_bare) < 0)
        mb_def = NULL;
    cfg->mailboxes_dir = nonempty_path("mailboxes_dir", mb, mb_def, errs);
    free(mb_def);

    const char *iroh = raw_of(raw, "iroh_relay");
    cfg->iroh_relay_set = iroh != NULL;
    if (iroh)
        cfg->iroh_relay = strdup(iroh);
    else if (domain_ok && asprintf(&cfg->iroh_relay, "https://%s", cfg->mail_domain_bare) < 0)
        cfg->iroh_relay = NULL;

    const char *dkim = raw_of(raw, "dkim_key_path");
    if (dkim && *dkim)
        cfg->dkim_key_path = strdup(dkim);
    else if (probe_files && access(DKIM_MIGRATED_KEY, F_OK) == 0)
        cfg->dkim_key_path = strdup(DKIM_MIGRATED_KEY);
    else
        cfg->dkim_key_path = cfg_path_join(cfg->state_dir, "dkim/opendkim.private");

    const char *ca = raw_of(raw, "tls_ca_file");
    cfg->tls_ca_file = ca && *ca ? strdup(ca) : NULL;
}

/* acme_challenge: a space-separated preference list of "http-01" and
 * "tls-alpn-01"; acme_directory_url: an https:// URL. */
static void check_acme(const struct config *cfg, struct config_errors *errs)
{
    const char *c = cfg->acme_challenge;
    size_t n = 0;
    while (c && *c) {
        c += strspn(c, " \t,");
        size_t len = strcspn(c, " \t,");
        if (len == 0)
            break;
        if (!(len == 7 && strncmp(c, "http-01", 7) == 0) &&
            !(len == 11 && strncmp(c, "tls-alpn-01", 11) == 0)) {
            cfg_error(errs, "acme_challenge", cfg->acme_challenge,
                      "must list http-01 and/or tls-alpn-01 (preference order)");
            return;
        }
        n++;
        c += len;
    }
    if (cfg->acme_challenge && n == 0)
        cfg_error(errs, "acme_challenge", cfg->acme_challenge,
                  "must list http-01 and/or tls-alpn-01 (preference order)");
    if (cfg->acme_directory_url && strncmp(cfg->acme_directory_url, "https://", 8) != 0)
        cfg_error(errs, "acme_directory_url", cfg->acme_directory_url, "must be an https:// URL");
}

/* After an allocation failure a string is NULL; the caller must not run. */
static void check_complete(const struct config *cfg, struct config_errors *errs)
{
    const char *must[] = {
        cfg->mail_domain, cfg->mail_domain_bare, cfg->tls_cert_path, cfg->tls_key_path,
        cfg->www_folder, cfg->acme_email, cfg->iroh_relay, cfg->privacy_postal,
        cfg->privacy_mail, cfg->privacy_pdo, cfg->privacy_supervisor, cfg->turn_socket_path,
        cfg->mailboxes_dir, cfg->state_dir, cfg->dkim_key_path, cfg->nocreate_file,
        cfg->notification_url, cfg->iroh_relay_upstream, cfg->run_as_user, cfg->log_level,
        cfg->acme_directory_url, cfg->acme_challenge, cfg->acme_acmetool_dir,
    };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        if (!must[i]) {
            cfg_error(errs, "-", "", "out of memory");
            return;
        }
    }
}

void cfg_apply(struct config *cfg, char *const raw[], bool probe_files,
               struct config_errors *errs)
{
    bool domain_ok = derive_domain(cfg, raw_of(raw, "mail_domain"), errs) == 0;
    for (size_t i = 0; i < cfg_n_keys; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        if (k->kind != CK_SPECIAL)
            apply_typed(cfg, k, raw[i] ? raw[i] : k->def, errs);
    }
    cfg->state_dir = nonempty_path("state_dir", raw_of(raw, "state_dir"), "/var/lib/chatmaild", errs);
    derive_tls(cfg, raw_of(raw, "tls_external_cert_and_key"), domain_ok, errs);
    derive_paths(cfg, raw, domain_ok, probe_files, errs);
    check_acme(cfg, errs);
    if (cfg->username_min_length > cfg->username_max_length) {
        char v[32];
        snprintf(v, sizeof v, "%ld", cfg->username_min_length);
        cfg_error(errs, "username_min_length", v, "greater than username_max_length (%ld)",
                  cfg->username_max_length);
    }
    if (errs->n == 0)
        check_complete(cfg, errs);
}
