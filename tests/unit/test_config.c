/* test_config.c: chatmail.ini parsing (spec §1.1-§1.3): every default,
 * size strings, IPv4 and underscore domains, TLS modes, keys with no
 * effect, each error with its key/value/reason, our own keys, and that the
 * shipped config/dev.ini and config/chatmail.ini.example parse cleanly.
 * Runs with the repository root as working directory. */
#include "check.h"

#include "core/buf.h"
#include "core/config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

static struct config cfg;
static struct config_errors errs;

static int parse(const char *text)
{
    config_free(&cfg);
    return config_parse_string(text, &cfg, &errs, false);
}

/* The error for `key`, or NULL. */
static const struct config_error *find_error(const char *key)
{
    for (size_t i = 0; i < errs.n; i++)
        if (strcmp(errs.e[i].key, key) == 0)
            return &errs.e[i];
    return NULL;
}

/* Parses "[params]\nmail_domain = chat.example.org\n" + extra, expects one
 * error for key with the given value and reason. */
static void expect_error(const char *extra, const char *key, const char *value,
                         const char *reason)
{
    char text[1024];
    snprintf(text, sizeof text, "[params]\nmail_domain = chat.example.org\n%s\n", extra);
    int rc = parse(text);
    CHECK_INT_EQ(rc, -1);
    const struct config_error *e = find_error(key);
    CHECK(e != NULL);
    if (!e) {
        fprintf(stderr, "  no error for key %s in: %s\n", key, extra);
        return;
    }
    if (value)
        CHECK_STR_EQ(e->value, value);
    if (reason)
        CHECK_STR_EQ(e->reason, reason);
}

TEST(read_config_basic_using_defaults)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = chat.example.org\n"), 0);
    CHECK_INT_EQ(errs.n, 0);
    CHECK_STR_EQ(cfg.mail_domain, "chat.example.org");
    CHECK_STR_EQ(cfg.mail_domain_bare, "chat.example.org");
    CHECK(cfg.ipv4_relay == NULL);
    CHECK_INT_EQ(cfg.max_user_send_per_minute, 60);
    CHECK_INT_EQ(cfg.max_user_send_burst_size, 10);
    CHECK_INT_EQ(cfg.max_mailbox_size_mb, 500);
    CHECK_INT_EQ(cfg.max_message_size, 31457280);
    CHECK_INT_EQ(cfg.delete_mails_after, 20);
    CHECK_INT_EQ(cfg.delete_large_after, 7);
    CHECK_INT_EQ(cfg.delete_inactive_users_after, 90);
    CHECK_INT_EQ(cfg.username_min_length, 9);
    CHECK_INT_EQ(cfg.username_max_length, 9);
    CHECK_INT_EQ(cfg.password_min_length, 9);
    CHECK(cfg.max_load_1m == 5.0);
    CHECK_INT_EQ(cfg.min_available_memory_mb, 200);
    CHECK_INT_EQ(cfg.min_free_disk_space_mb, 1024);
    CHECK_INT_EQ(cfg.max_imap_connections, 10000);
    CHECK_INT_EQ(cfg.max_smtp_connections, 1000);
    CHECK_INT_EQ(cfg.max_http_connections, 4096);
    CHECK_INT_EQ(cfg.imap_prelogin_timeout, 60);
    CHECK_INT_EQ(cfg.smtp_command_timeout, 300);
    CHECK_INT_EQ(cfg.smtp_transaction_timeout, 1800);
    CHECK_INT_EQ(cfg.tls_mode, TLS_MODE_ACME);
    CHECK_STR_EQ(cfg.tls_cert_path, "/var/lib/acme/live/chat.example.org/fullchain");
    CHECK_STR_EQ(cfg.tls_key_path, "/var/lib/acme/live/chat.example.org/privkey");
    CHECK_STR_EQ(cfg.www_folder, "");
    CHECK(!cfg.disable_ipv6);
    CHECK_STR_EQ(cfg.acme_email, "");
    CHECK(!cfg.iroh_relay_set);
    CHECK_STR_EQ(cfg.iroh_relay, "https://chat.example.org");
    CHECK(!cfg.imap_compress);
    CHECK_STR_EQ(cfg.privacy_postal, "");
    CHECK_STR_EQ(cfg.privacy_mail, "");
    CHECK_STR_EQ(cfg.privacy_pdo, "");
    CHECK_STR_EQ(cfg.privacy_supervisor, "");
    CHECK_STR_EQ(cfg.turn_socket_path, ""); /* TURN credentials computed in-process */
    CHECK_STR_EQ(cfg.mailboxes_dir, "/home/vmail/mail/chat.example.org");
    CHECK(cfg.unused == NULL);
}

TEST(own_keys_defaults)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = chat.example.org\n"), 0);
    CHECK_INT_EQ(cfg.n_listen, 0);
    CHECK_INT_EQ(cfg.smtp_port, 25);
    CHECK_INT_EQ(cfg.submission_port, 587);
    CHECK_INT_EQ(cfg.submissions_port, 465);
    CHECK_INT_EQ(cfg.imap_port, 143);
    CHECK_INT_EQ(cfg.imaps_port, 993);
    CHECK_INT_EQ(cfg.https_port, 443);
    CHECK_INT_EQ(cfg.http_port, 80);
    CHECK_STR_EQ(cfg.state_dir, "/var/lib/chatmaild");
    CHECK_STR_EQ(cfg.dkim_key_path, "/var/lib/chatmaild/dkim/opendkim.private");
    CHECK_INT_EQ(cfg.n_dns_servers, 0);
    CHECK(cfg.tls_ca_file == NULL);
    CHECK_INT_EQ(cfg.n_smtp_plaintext_domains, 1);
    CHECK_STR_EQ(cfg.smtp_plaintext_domains[0], "nauta.cu");
    CHECK(config_smtp_plaintext_ok(&cfg, "NAUTA.cu"));
    CHECK(!config_smtp_plaintext_ok(&cfg, "example.org"));
    CHECK_STR_EQ(cfg.nocreate_file, "/etc/chatmail-nocreate");
    CHECK_STR_EQ(cfg.notification_url, "https://notifications.delta.chat/notify");
    CHECK_STR_EQ(cfg.iroh_relay_upstream, "http://127.0.0.1:3340");
    CHECK_STR_EQ(cfg.run_as_user, "vmail");
    CHECK_STR_EQ(cfg.log_level, "info");
}

TEST(size_strings)
{
    long mb = -7;
    CHECK(config_parse_size_mb("500M", &mb) == 0 && mb == 500);
    CHECK(config_parse_size_mb("2G", &mb) == 0 && mb == 2048);
    CHECK(config_parse_size_mb(" 1g ", &mb) == 0 && mb == 1024);
    CHECK(config_parse_size_mb("100MB", &mb) == 0 && mb == 100);
    CHECK(config_parse_size_mb("256", &mb) == 0 && mb == 256);
    CHECK(config_parse_size_mb("1gb", &mb) == 0 && mb == 1024);
    CHECK(config_parse_size_mb("0", &mb) == 0 && mb == 0);
    mb = -7;
    CHECK_INT_EQ(config_parse_size_mb("1.5G", &mb), -1);
    CHECK_INT_EQ(config_parse_size_mb("-1", &mb), -1);
    CHECK_INT_EQ(config_parse_size_mb("", &mb), -1);
    CHECK_INT_EQ(config_parse_size_mb("G", &mb), -1);
    CHECK_INT_EQ(config_parse_size_mb("12X", &mb), -1);
    CHECK_INT_EQ(config_parse_size_mb("B", &mb), -1);
    CHECK_INT_EQ(config_parse_size_mb("99999999999999999999G", &mb), -1);
    CHECK_INT_EQ(config_parse_size_mb(NULL, &mb), -1);
    CHECK_INT_EQ(mb, -7);
}

TEST(size_keys_in_file)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\nmax_mailbox_size = 2G\n"
                       "min_available_memory = 100MB\nmin_free_disk_space = 256\n"), 0);
    CHECK_INT_EQ(cfg.max_mailbox_size_mb, 2048);
    CHECK_INT_EQ(cfg.min_available_memory_mb, 100);
    CHECK_INT_EQ(cfg.min_free_disk_space_mb, 256);
    expect_error("max_mailbox_size = 1.5G", "max_mailbox_size", "1.5G", NULL);
    expect_error("max_mailbox_size = -1", "max_mailbox_size", "-1", "must not be negative");
    expect_error("min_free_disk_space = 12X", "min_free_disk_space", "12X", NULL);
    expect_error("min_available_memory =", "min_available_memory", "", NULL);
}

TEST(ipv4_domain)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = 1.3.3.7\n"), 0);
    CHECK_STR_EQ(cfg.ipv4_relay, "1.3.3.7");
    CHECK_STR_EQ(cfg.mail_domain, "[1.3.3.7]");
    CHECK_STR_EQ(cfg.mail_domain_bare, "1.3.3.7");
    CHECK_INT_EQ(cfg.tls_mode, TLS_MODE_SELF);
    CHECK_STR_EQ(cfg.tls_cert_path, "/var/lib/chatmaild/tls/selfsigned.crt");
    CHECK_STR_EQ(cfg.tls_key_path, "/var/lib/chatmaild/tls/selfsigned.key");
    CHECK_STR_EQ(cfg.mailboxes_dir, "/home/vmail/mail/1.3.3.7");
    CHECK_STR_EQ(cfg.iroh_relay, "https://1.3.3.7");
    /* not a dotted quad: an ordinary (acme) domain */
    CHECK_INT_EQ(parse("[params]\nmail_domain = 1.3.3\n"), 0);
    CHECK(cfg.ipv4_relay == NULL);
    CHECK_INT_EQ(cfg.tls_mode, TLS_MODE_ACME);
}

TEST(underscore_domain)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = _chat.example.org\nstate_dir = /srv/cm/\n"), 0);
    CHECK_INT_EQ(cfg.tls_mode, TLS_MODE_SELF);
    CHECK_STR_EQ(cfg.tls_cert_path, "/srv/cm/tls/selfsigned.crt");
    CHECK_STR_EQ(cfg.tls_key_path, "/srv/cm/tls/selfsigned.key");
    CHECK_STR_EQ(cfg.dkim_key_path, "/srv/cm/dkim/opendkim.private");
    CHECK_STR_EQ(cfg.mail_domain, "_chat.example.org");
    CHECK(cfg.ipv4_relay == NULL);
}

TEST(tls_external)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = _x.org\n"
                       "tls_external_cert_and_key = /etc/c.pem   /etc/k.pem\n"), 0);
    CHECK_INT_EQ(cfg.tls_mode, TLS_MODE_EXTERNAL);
    CHECK_STR_EQ(cfg.tls_cert_path, "/etc/c.pem");
    CHECK_STR_EQ(cfg.tls_key_path, "/etc/k.pem");
    CHECK_INT_EQ(parse("[params]\nmail_domain = 1.2.3.4\ntls_external_cert_and_key = a b\n"), 0);
    CHECK_INT_EQ(cfg.tls_mode, TLS_MODE_EXTERNAL);
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\ntls_external_cert_and_key =\n"), 0);
    CHECK_INT_EQ(cfg.tls_mode, TLS_MODE_ACME);
    const char *why = "tls_external_cert_and_key must have two space-separated paths: "
                      "CERT_PATH KEY_PATH";
    expect_error("tls_external_cert_and_key = /only/one", "tls_external_cert_and_key",
                 "/only/one", why);
    expect_error("tls_external_cert_and_key = a b c", "tls_external_cert_and_key", "a b c", why);
}

TEST(unused_keys)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\npassthrough_senders = a@b\n"
                       "filtermail_smtp_port = 10080\nimap_rawlog = true\n"
                       "passthrough_senders = c@d\n[other]\nfoo = 1\n"), 0);
    CHECK_STR_EQ(cfg.unused, "passthrough_senders, filtermail_smtp_port, imap_rawlog, other.foo");
    CHECK_INT_EQ(parse("top = 1\n[params]\nmail_domain = x.org\n"), 0);
    CHECK_STR_EQ(cfg.unused, "top");
    /* the list is bounded */
    struct buf text = {0};
    buf_append_str(&text, "[params]\nmail_domain = x.org\n");
    for (int i = 0; i < 200; i++)
        buf_printf(&text, "k%d = v\n", i);
    CHECK_INT_EQ(parse(text.data), 0);
    CHECK(cfg.unused && strlen(cfg.unused) < 1000 && strstr(cfg.unused, "k63, ..."));
    buf_free(&text);
}

TEST(integer_errors)
{
    expect_error("max_user_send_per_minute = lots", "max_user_send_per_minute", "lots",
                 "not an integer");
    expect_error("max_message_size = 30M", "max_message_size", "30M", "not an integer");
    expect_error("delete_mails_after = -3", "delete_mails_after", "-3", "must not be negative");
    expect_error("max_imap_connections = 99999999999999999999999", "max_imap_connections",
                 "99999999999999999999999", "out of range");
    expect_error("max_load_1m = high", "max_load_1m", "high", "not a number");
    expect_error("max_load_1m = -1.5", "max_load_1m", "-1.5", "must not be negative");
    expect_error("max_load_1m = nan", "max_load_1m", "nan", "not a number");
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\nmax_load_1m = 2.5\n"
                       "max_user_send_per_minute = +80\n"), 0);
    CHECK(cfg.max_load_1m == 2.5);
    CHECK_INT_EQ(cfg.max_user_send_per_minute, 80);
}

TEST(bool_values)
{
    const char *on[] = {"true", "TRUE", "yes", "On", "1"};
    const char *off[] = {"false", "False", "no", "OFF", "0", ""};
    char text[128];
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        snprintf(text, sizeof text, "[params]\nmail_domain = x.org\ndisable_ipv6 = %s\n"
                 "imap_compress = %s\n", on[i], on[i]);
        CHECK_INT_EQ(parse(text), 0);
        CHECK(cfg.disable_ipv6 && cfg.imap_compress);
    }
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        snprintf(text, sizeof text, "[params]\nmail_domain = x.org\ndisable_ipv6 = %s\n", off[i]);
        CHECK_INT_EQ(parse(text), 0);
        CHECK(!cfg.disable_ipv6);
    }
    expect_error("disable_ipv6 = maybe", "disable_ipv6", "maybe", NULL);
    expect_error("imap_compress = tru", "imap_compress", "tru", NULL);
}

TEST(ports)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\nsmtp_port = 0\nhttp_port = 0\n"
                       "imaps_port = 65535\n"), 0);
    CHECK_INT_EQ(cfg.smtp_port, 0);
    CHECK_INT_EQ(cfg.http_port, 0);
    CHECK_INT_EQ(cfg.imaps_port, 65535);
    CHECK_INT_EQ(cfg.imap_port, 143);
    expect_error("imap_port = 65536", "imap_port", "65536", "port out of range 0..65535");
    expect_error("https_port = -1", "https_port", "-1", "port out of range 0..65535");
    expect_error("smtp_port = smtp", "smtp_port", "smtp", "not an integer");
}

TEST(listen_and_dns)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\nlisten = 127.0.0.1, ::1,,\n"
                       "dns_servers = 9.9.9.9, 1.1.1.1:5353, [2620:fe::fe]:53, 2620:fe::9\n"), 0);
    CHECK_INT_EQ(cfg.n_listen, 2);
    CHECK_STR_EQ(cfg.listen[0], "127.0.0.1");
    CHECK_STR_EQ(cfg.listen[1], "::1");
    CHECK_INT_EQ(cfg.n_dns_servers, 4);
    CHECK_STR_EQ(cfg.dns_servers[1], "1.1.1.1:5353");
    CHECK_STR_EQ(cfg.dns_servers[2], "[2620:fe::fe]:53");
    CHECK_STR_EQ(cfg.dns_servers[3], "2620:fe::9");
    expect_error("listen = 127.0.0.1, localhost", "listen", "localhost",
                 "not an IPv4 or IPv6 address");
    expect_error("listen = 1.2.3.4:25", "listen", "1.2.3.4:25", NULL);
    expect_error("dns_servers = resolver.example", "dns_servers", "resolver.example",
                 "not ip, ip:port or [ipv6]:port");
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\ndns_servers = [::1]:53\v, 1.1.1.1\n"), 0);
    CHECK_STR_EQ(cfg.dns_servers[0], "[::1]:53");
    expect_error("dns_servers = 1.1.1.1: 53", "dns_servers", "1.1.1.1: 53", NULL);
    expect_error("dns_servers = 1.1.1.1:0", "dns_servers", "1.1.1.1:0", NULL);
    expect_error("dns_servers = 1.1.1.1:99999", "dns_servers", "1.1.1.1:99999", NULL);
    expect_error("dns_servers = [::1", "dns_servers", "[::1", NULL);
    expect_error("dns_servers = [1.2.3.4]:53", "dns_servers", "[1.2.3.4]:53", NULL);
    expect_error("dns_servers = 1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,"
                 "1.1.1.8,1.1.1.9", "dns_servers", NULL, "more than 8 entries");
}

TEST(smtp_plaintext_domains)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\n"
                       "smtp_plaintext_domains = nauta.cu, old.example ,\n"), 0);
    CHECK_INT_EQ(cfg.n_smtp_plaintext_domains, 2);
    CHECK_STR_EQ(cfg.smtp_plaintext_domains[1], "old.example");
    CHECK(config_smtp_plaintext_ok(&cfg, "old.EXAMPLE"));
    CHECK(!config_smtp_plaintext_ok(&cfg, "example"));
    struct buf out = {0};
    CHECK_INT_EQ(config_format(&cfg, &out), 0);
    CHECK(out.len > 0 && memmem(out.data, out.len,
                                "smtp_plaintext_domains = nauta.cu, old.example", 46) != NULL);
    buf_free(&out);
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\nsmtp_plaintext_domains =\n"), 0);
    CHECK_INT_EQ(cfg.n_smtp_plaintext_domains, 0);
    CHECK(!config_smtp_plaintext_ok(&cfg, "nauta.cu"));
    expect_error("smtp_plaintext_domains = nauta.cu, bad domain", "smtp_plaintext_domains",
                 "bad domain", NULL);
}

TEST(other_errors)
{
    expect_error("log_level = verbose", "log_level", "verbose",
                 "not one of debug, info, warn, error");
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\nlog_level = WARNING\n"), 0);
    CHECK_STR_EQ(cfg.log_level, "warn");
    expect_error("username_min_length = 12", "username_min_length", "12",
                 "greater than username_max_length (9)");
    expect_error("state_dir =", "state_dir", "", "must not be empty");
    expect_error("mailboxes_dir =", "mailboxes_dir", "", "must not be empty");
}

TEST(mail_domain_errors)
{
    CHECK_INT_EQ(parse("[params]\nmax_user_send_per_minute = 5\n"), -1);
    const struct config_error *e = find_error("mail_domain");
    CHECK(e != NULL);
    if (e) {
        CHECK_STR_EQ(e->value, "");
        CHECK_STR_EQ(e->reason, "missing: mail_domain is required");
    }
    CHECK_INT_EQ(parse(""), -1);
    CHECK(find_error("mail_domain") != NULL);
    CHECK_INT_EQ(parse("[other]\nmail_domain = x.org\n"), -1);
    CHECK(find_error("mail_domain") != NULL);
    const char *bad[] = {"a/b.org", "a b.org", "user@x.org", "..", "x..org", ".x.org", "x.org.",
                         "[1.2.3.4]", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "[params]\nmail_domain = %s\n", bad[i]);
        CHECK_INT_EQ(parse(text), -1);
        e = find_error("mail_domain");
        CHECK(e && strcmp(e->value, bad[i]) == 0);
    }
}

TEST(all_errors_collected)
{
    CHECK_INT_EQ(parse("[params]\nsmtp_port = x\nimap_port = y\nlisten = z\n"), -1);
    CHECK_INT_EQ(errs.n, 4);
    struct buf out = {0};
    CHECK_INT_EQ(config_format_errors(&errs, &out), 0);
    CHECK(strstr(out.data, "config: mail_domain = \"\": missing: mail_domain is required\n"));
    CHECK(strstr(out.data, "config: smtp_port = \"x\": not an integer\n"));
    CHECK(strstr(out.data, "config: listen = \"z\": not an IPv4 or IPv6 address\n"));
    buf_free(&out);
    /* the list is bounded */
    struct buf text = {0};
    buf_append_str(&text, "[params]\n");
    for (int i = 0; i < 100; i++)
        buf_printf(&text, "junk line %d\n", i);
    CHECK_INT_EQ(parse(text.data), -1);
    CHECK_INT_EQ(errs.n, CONFIG_MAX_ERRORS);
    buf_free(&text);
}

TEST(iroh_relay)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\niroh_relay = https://iroh.example \n"), 0);
    CHECK(cfg.iroh_relay_set);
    CHECK_STR_EQ(cfg.iroh_relay, "https://iroh.example");
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\niroh_relay =\n"), 0);
    CHECK(cfg.iroh_relay_set);
    CHECK_STR_EQ(cfg.iroh_relay, "");
}

TEST(own_keys_set)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\nstate_dir = var/state\n"
                       "dkim_key_path = /k.pem\ntls_ca_file = /ca.pem\nrun_as_user =\n"
                       "notification_url = http://127.0.0.1:9/n\nnocreate_file = var/nc\n"
                       "iroh_relay_upstream = http://[::1]:3340\nmailboxes_dir = var/mail\n"), 0);
    CHECK_STR_EQ(cfg.state_dir, "var/state");
    CHECK_STR_EQ(cfg.dkim_key_path, "/k.pem");
    CHECK_STR_EQ(cfg.tls_ca_file, "/ca.pem");
    CHECK_STR_EQ(cfg.run_as_user, "");
    CHECK_STR_EQ(cfg.notification_url, "http://127.0.0.1:9/n");
    CHECK_STR_EQ(cfg.nocreate_file, "var/nc");
    CHECK_STR_EQ(cfg.iroh_relay_upstream, "http://[::1]:3340");
    CHECK_STR_EQ(cfg.mailboxes_dir, "var/mail");
}

TEST(ini_syntax)
{
    /* `#` inside a value is kept; `;` after whitespace starts a comment;
     * duplicate keys: the last wins; `key: value` works. */
    CHECK_INT_EQ(parse("# comment\n; comment\n[params]\n  # indented comment\n"
                       "mail_domain = x.org\nacme_email = a#b@x.org\nwww_folder = /w ; c\n"
                       "max_user_send_per_minute = 1\nmax_user_send_per_minute: 2\n"), 0);
    CHECK_STR_EQ(cfg.acme_email, "a#b@x.org");
    CHECK_STR_EQ(cfg.www_folder, "/w");
    CHECK_INT_EQ(cfg.max_user_send_per_minute, 2);
    /* continuation lines are joined with "\n", like iniconfig */
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\nprivacy_mail =\n    line one\n"
                       "    line two\nprivacy_pdo = a\n  b\n"), 0);
    CHECK_STR_EQ(cfg.privacy_mail, "line one\nline two");
    CHECK_STR_EQ(cfg.privacy_pdo, "a\nb");
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\nprivacy_mail = a\n  [b]\n"
                       "privacy_pdo =;c\n"), 0);
    CHECK_STR_EQ(cfg.privacy_mail, "a\n[b]");
    CHECK_STR_EQ(cfg.privacy_pdo, ";c");
    struct buf out = {0};
    CHECK_INT_EQ(config_format(&cfg, &out), 0);
    CHECK(strstr(out.data, "\nprivacy_mail = a\n    [b]\nprivacy_pdo =;c\n"));
    buf_free(&out);
    /* CRLF and a BOM */
    CHECK_INT_EQ(parse("\xEF\xBB\xBF[params]\r\nmail_domain = x.org\r\n"), 0);
    CHECK_STR_EQ(cfg.mail_domain, "x.org");
}

TEST(bad_lines)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\njust words\n"), -1);
    const struct config_error *e = find_error("line 3");
    CHECK(e && strcmp(e->value, "just words") == 0);
    CHECK_INT_EQ(parse("[params\nmail_domain = x.org\n"), -1);
    CHECK(find_error("line 1") != NULL);
    char text[600];
    snprintf(text, sizeof text, "[params]\nmail_domain = x.org\nwww_folder = /%0300d\nk = v\n", 0);
    CHECK_INT_EQ(parse(text), -1);
    e = find_error("line 3");
    CHECK(e && strstr(e->reason, "line longer than"));
    CHECK_INT_EQ(errs.n, 1); /* the rest of the long line is not parsed */
    CHECK_STR_EQ(cfg.www_folder, "");
    CHECK_STR_EQ(cfg.unused, "k");
}

TEST(format_output)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = 1.2.3.4\nlisten = 127.0.0.1, ::1\n"
                       "privacy_mail =\n  a\n  b\nfoo = 1\n"), 0);
    struct buf out = {0};
    CHECK_INT_EQ(config_format(&cfg, &out), 0);
    CHECK(strstr(out.data, "[params]\nmail_domain = 1.2.3.4\n") == out.data);
    CHECK(strstr(out.data, "\nmax_mailbox_size = 500M\n"));
    CHECK(strstr(out.data, "\nmin_free_disk_space = 1024M\n"));
    CHECK(strstr(out.data, "\nmax_load_1m = 5\n"));
    CHECK(strstr(out.data, "\nlisten = 127.0.0.1, ::1\n"));
    CHECK(strstr(out.data, "\nprivacy_mail = a\n    b\n"));
    CHECK(strstr(out.data, "\n# iroh_relay not set: https://1.2.3.4, served by the local"));
    CHECK(strstr(out.data, "\ntls_mode = self\n"));
    CHECK(strstr(out.data, "\nipv4_relay = 1.2.3.4\n"));
    CHECK(strstr(out.data, "\n# settings with no effect: foo\n"));
    /* the output parses again to the same configuration */
    struct config again;
    struct config_errors errs2;
    CHECK_INT_EQ(config_parse_string(out.data, &again, &errs2, false), 0);
    struct buf out2 = {0};
    CHECK_INT_EQ(config_format(&again, &out2), 0);
    const char *tail = strstr(out2.data, "# settings with no effect:");
    CHECK(tail && strncmp(out.data, out2.data, (size_t)(tail - out2.data)) == 0);
    config_free(&again);
    buf_free(&out);
    buf_free(&out2);
}

static void check_shipped(const char *path)
{
    config_free(&cfg);
    int rc = config_load_file(path, &cfg, &errs);
    if (rc != 0) {
        struct buf out = {0};
        config_format_errors(&errs, &out);
        fprintf(stderr, "%s:\n%s", path, out.data ? out.data : "");
        buf_free(&out);
    }
    CHECK_INT_EQ(rc, 0);
    CHECK(cfg.unused == NULL);
}

TEST(shipped_files)
{
    check_shipped("config/dev.ini");
    CHECK_STR_EQ(cfg.mail_domain, "_chatmail.localhost");
    CHECK_INT_EQ(cfg.tls_mode, TLS_MODE_SELF);
    CHECK_INT_EQ(cfg.smtp_port, 2525);
    CHECK_INT_EQ(cfg.https_port, 8443);
    CHECK_STR_EQ(cfg.state_dir, "var/state");
    CHECK_STR_EQ(cfg.tls_cert_path, "var/state/tls/selfsigned.crt");
    CHECK_STR_EQ(cfg.run_as_user, "");
    CHECK_INT_EQ(cfg.min_free_disk_space_mb, 0);
    check_shipped("config/chatmail.ini.example");
    CHECK_INT_EQ(cfg.max_mailbox_size_mb, 500);
}

TEST(dkim_key_probe)
{
    /* probe_files: the migrated OpenDKIM key wins when it exists */
    config_free(&cfg);
    CHECK_INT_EQ(config_parse_string("[params]\nmail_domain = x.org\n", &cfg, &errs, true), 0);
    bool migrated = access("/etc/dkimkeys/opendkim.private", F_OK) == 0;
    CHECK_STR_EQ(cfg.dkim_key_path, migrated ? "/etc/dkimkeys/opendkim.private"
                                             : "/var/lib/chatmaild/dkim/opendkim.private");
    CHECK_INT_EQ(parse("[params]\nmail_domain = x.org\ndkim_key_path =\n"), 0);
    CHECK_STR_EQ(cfg.dkim_key_path, "/var/lib/chatmaild/dkim/opendkim.private");
}

TEST(load_file_errors)
{
    config_free(&cfg);
    CHECK_INT_EQ(config_load_file("does/not/exist.ini", &cfg, &errs), -1);
    CHECK_INT_EQ(errs.n, 1);
    CHECK_STR_EQ(errs.e[0].key, "-c");
    CHECK_STR_EQ(errs.e[0].value, "does/not/exist.ini");
    config_free(&cfg);
    CHECK_INT_EQ(config_load_file("config", &cfg, &errs), -1);
    CHECK_STR_EQ(errs.e[0].reason, "cannot read: not a regular file");

    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, "[params]\nmail_domain = x.org\0\n", 31) == 31);
    config_free(&cfg);
    CHECK_INT_EQ(config_load_file(path, &cfg, &errs), -1);
    CHECK_STR_EQ(errs.e[0].reason, "cannot read: contains a NUL byte");
    CHECK(ftruncate(fd, 2 * 1024 * 1024) == 0);
    config_free(&cfg);
    CHECK_INT_EQ(config_load_file(path, &cfg, &errs), -1);
    CHECK_STR_EQ(errs.e[0].reason, "cannot read: larger than the limit (LIM_CONFIG_FILE)");
    close(fd);
    unlink(path);
}

TEST(store_and_expiry_keys)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = chat.example.org\n"), 0);
    CHECK(!cfg.store_compress);
    CHECK_INT_EQ(cfg.expire_time, 2);
    CHECK_INT_EQ(parse("[params]\nmail_domain = chat.example.org\nstore_compress = yes\n"
                       "expire_time = 23:59\n"), 0);
    CHECK(cfg.store_compress);
    CHECK_INT_EQ(cfg.expire_time, 23 * 60 + 59);
    expect_error("expire_time = 24:00", "expire_time", "24:00", "not a time of day HH:MM");
    expect_error("expire_time = 1:30", "expire_time", "1:30", "not a time of day HH:MM");
    expect_error("store_compress = gz", "store_compress", "gz", NULL);
}

TEST(queue_keys)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = chat.example.org\n"), 0);
    CHECK_INT_EQ(cfg.queue_lifetime, 2 * 86400);
    CHECK_INT_EQ(cfg.mxdeliv_port, 443);
    static const struct { const char *v; long secs; } ok[] = {
        {"172800", 172800}, {"90s", 90}, {"30m", 1800}, {"48h", 172800}, {"5d", 432000},
        {" 2D ", 172800}, {"0", 0}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "[params]\nmail_domain = chat.example.org\nqueue_lifetime = %s\n",
                 ok[i].v);
        CHECK_INT_EQ(parse(text), 0);
        CHECK_INT_EQ(cfg.queue_lifetime, ok[i].secs);
    }
    expect_error("queue_lifetime = 2w", "queue_lifetime", "2w", NULL);
    expect_error("queue_lifetime = d", "queue_lifetime", "d", NULL);
    expect_error("queue_lifetime = -5m", "queue_lifetime", "-5m", "must not be negative");
    expect_error("mxdeliv_port = 70000", "mxdeliv_port", "70000", NULL);
    CHECK_INT_EQ(parse("[params]\nmail_domain = chat.example.org\n"), 0);
    CHECK_INT_EQ(cfg.outbound_smtp_timeout, 300);
    CHECK_INT_EQ(parse("[params]\nmail_domain = chat.example.org\noutbound_smtp_timeout = 2m\n"), 0);
    CHECK_INT_EQ(cfg.outbound_smtp_timeout, 120);
    expect_error("outbound_smtp_timeout = soon", "outbound_smtp_timeout", "soon", NULL);
}

TEST(acme_keys)
{
    CHECK_INT_EQ(parse("[params]\nmail_domain = chat.example.org\n"), 0);
    CHECK_STR_EQ(cfg.acme_directory_url, "https://acme-v02.api.letsencrypt.org/directory");
    CHECK_STR_EQ(cfg.acme_challenge, "http-01 tls-alpn-01");
    CHECK_STR_EQ(cfg.acme_acmetool_dir, "/var/lib/acme");
    CHECK_STR_EQ(cfg.tls_cert_path, "/var/lib/acme/live/chat.example.org/fullchain");
    CHECK_INT_EQ(parse("[params]\nmail_domain = chat.example.org\nacme_challenge = tls-alpn-01\n"
                       "acme_acmetool_dir = /srv/acme\n"
                       "acme_directory_url = https://127.0.0.1:14000/dir\n"), 0);
    CHECK_STR_EQ(cfg.acme_challenge, "tls-alpn-01");
    CHECK_STR_EQ(cfg.tls_key_path, "/srv/acme/live/chat.example.org/privkey");
    CHECK_STR_EQ(cfg.acme_directory_url, "https://127.0.0.1:14000/dir");
    const char *reason = "must list http-01 and/or tls-alpn-01 (preference order)";
    expect_error("acme_challenge = dns-01", "acme_challenge", "dns-01", reason);
    expect_error("acme_challenge = http-01 dns-01", "acme_challenge", "http-01 dns-01", reason);
    expect_error("acme_challenge =", "acme_challenge", "", reason);
    expect_error("acme_directory_url = http://ca.example/dir", "acme_directory_url",
                 "http://ca.example/dir", "must be an https:// URL");
}

int main(void)
{
    RUN(acme_keys);
    RUN(read_config_basic_using_defaults);
    RUN(own_keys_defaults);
    RUN(size_strings);
    RUN(size_keys_in_file);
    RUN(ipv4_domain);
    RUN(underscore_domain);
    RUN(tls_external);
    RUN(unused_keys);
    RUN(integer_errors);
    RUN(bool_values);
    RUN(ports);
    RUN(listen_and_dns);
    RUN(other_errors);
    RUN(mail_domain_errors);
    RUN(all_errors_collected);
    RUN(iroh_relay);
    RUN(own_keys_set);
    RUN(ini_syntax);
    RUN(bad_lines);
    RUN(format_output);
    RUN(shipped_files);
    RUN(dkim_key_probe);
    RUN(load_file_errors);
    RUN(store_and_expiry_keys);
    RUN(smtp_plaintext_domains);
    RUN(queue_keys);
    config_free(&cfg);
    return check_report();
}
