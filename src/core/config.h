/* config.h: chatmail.ini ([params] section), read with libinih.
 *
 * Every key of chatmail-relay-behaviour.md §1.3 is accepted with the same
 * default and parsing; keys that only configured the old daemons' plumbing
 * and unknown keys are collected in `unused` (reported in one warning line);
 * chatmaild-server's own keys follow. Parsing is a pure function over the
 * file's bytes (config_parse_string), so it can be unit-tested and fuzzed.
 *
 * Unlike the Python loader, which crashes on the first bad value, every
 * problem is collected as (key, value, reason) and the parse fails as a
 * whole; values are checked more strictly (no negative numbers, booleans
 * must be true/false/yes/no/on/off/1/0, domains letters/digits/-/_/.).
 * Syntax details (comments, continuation lines, long lines) are described
 * at the top of config.c. Defaults are in the key table in config_apply.c
 * and in config/chatmail.ini.example. */
#ifndef CM_CORE_CONFIG_H
#define CM_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tls_mode { TLS_MODE_ACME, TLS_MODE_SELF, TLS_MODE_EXTERNAL };

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_DNS 8
#define CONFIG_MAX_PLAIN_DOMAINS 32

struct config {
    /* §1.3 keys */
    char *mail_domain;        /* effective: "[1.2.3.4]" for an IPv4 relay */
    char *mail_domain_bare;   /* as written in the file (IPv4 without brackets) */
    char *ipv4_relay;         /* the IPv4 address when mail_domain is one, else NULL */
    long max_user_send_per_minute;  /* 60 */
    long max_user_send_burst_size;  /* 10 */
    long max_mailbox_size_mb;       /* "500M" -> 500 */
    long max_message_size;          /* 31457280 bytes */
    long delete_mails_after;        /* days, 20 */
    long delete_large_after;        /* days, 7 */
    long delete_inactive_users_after; /* days, 90 */
    long username_min_length;       /* 9 */
    long username_max_length;       /* 9 */
    long password_min_length;       /* 9 */
    double max_load_1m;             /* 5 */
    long min_available_memory_mb;   /* "200M" */
    long min_free_disk_space_mb;    /* "1G" -> 1024 */
    long max_imap_connections;      /* 10000 */
    long max_smtp_connections;      /* 1000 */
    char *tls_cert_path;            /* derived, see tls_mode */
    char *tls_key_path;
    enum tls_mode tls_mode;
    char *www_folder;               /* "" = built-in pages */
    bool disable_ipv6;
    char *acme_email;
    char *acme_directory_url;       /* RFC 8555 directory (Let's Encrypt production) */
    char *acme_challenge;           /* "http-01 tls-alpn-01": preference order */
    char *acme_acmetool_dir;        /* /var/lib/acme: acmetool's account and live certs */
    bool iroh_relay_set;            /* key present in the file */
    char *iroh_relay;               /* effective URL, "" = advertise nothing */
    bool imap_compress;
    char *privacy_postal, *privacy_mail, *privacy_pdo, *privacy_supervisor;
    char *turn_socket_path;         /* /run/chatmail-turn/turn.socket */
    char *mailboxes_dir;            /* /home/vmail/mail/<bare domain> */

    /* chatmaild-server's own keys */
    char *listen[CONFIG_MAX_LISTEN];
    size_t n_listen;                /* 0 = all addresses (IPv4 + IPv6 unless disable_ipv6) */
    int smtp_port, submission_port, submissions_port, imap_port, imaps_port,
        https_port, http_port;      /* 0 disables a listener */
    char *state_dir;                /* /var/lib/chatmaild */
    char *dkim_key_path;
    char *dns_servers[CONFIG_MAX_DNS];
    size_t n_dns_servers;           /* 0 = from /etc/resolv.conf */
    char *tls_ca_file;              /* NULL = system store */
    /* outbound SMTP may go in plaintext to these domains when their MX
     * offers no STARTTLS (§3 of the federation facts); default nauta.cu */
    char *smtp_plaintext_domains[CONFIG_MAX_PLAIN_DOMAINS];
    size_t n_smtp_plaintext_domains;
    char *nocreate_file;            /* /etc/chatmail-nocreate */
    char *notification_url;
    char *iroh_relay_upstream;      /* http://127.0.0.1:3340 */
    char *run_as_user;              /* vmail */
    char *log_level;                /* info */
    bool store_compress;            /* write new messages gzip-compressed (Dovecot zlib_save = gz) */
    int expire_time;                /* minute of the (local) day of the daily expiry pass (00:02) */
    long queue_lifetime;            /* seconds a queued message is tried (2d) */
    int mxdeliv_port;               /* port of peers' POST /mxdeliv (443; tests point it elsewhere) */
    int outbound_smtp_port;         /* port of peers' SMTP for the fallback (25; tests point it elsewhere) */
    long outbound_smtp_timeout;     /* seconds our SMTP client waits for a peer's reply or for
                                       progress of a write, the greeting included (300) */
    char *metrics_allow;            /* "": /metrics for loopback only; else IPs/CIDRs too */
    long max_http_connections;      /* 4096 HTTP(S) connections; per client IP: 1/5 */
    /* absolute deadlines in seconds (issue 16): bytes do not extend them */
    long imap_prelogin_timeout;     /* 60: accept to successful login */
    long smtp_command_timeout;      /* 300: our reply to the next complete command */
    long smtp_transaction_timeout;  /* 1800: DATA/BDAT start to the end of the message */

    /* keys that have no effect (plumbing of the old daemons, or unknown) */
    char *unused;                   /* ", "-separated names in file order, NULL if none;
                                       "section.key" for keys outside [params] */
};

/* One problem with the configuration: the key, its value and why. */
struct config_error {
    char key[64];
    char value[128];
    char reason[160];
};

#define CONFIG_MAX_ERRORS 32

struct config_errors {
    struct config_error e[CONFIG_MAX_ERRORS];
    size_t n;
};

/* Parses the text of a chatmail.ini. Returns 0 when there is no error; else
 * -1 with every problem in errs (cfg is still freed with config_free).
 * Does no I/O except what it is told: `probe_files` enables the one lookup
 * of the default dkim_key_path (/etc/dkimkeys/opendkim.private exists?). */
int config_parse_string(const char *text, struct config *cfg, struct config_errors *errs,
                        bool probe_files);
/* Reads and parses FILE (at most LIM_CONFIG_FILE bytes, no NUL bytes) with
 * probe_files on; an unreadable file is an error with key "-c". Line-level
 * problems (too long, not `key = value`) have the key "line N". */
int config_load_file(const char *path, struct config *cfg, struct config_errors *errs);
void config_free(struct config *cfg);
/* Whether outbound SMTP to this recipient domain may fall back to
 * plaintext (smtp_plaintext_domains, compared without case). */
bool config_smtp_plaintext_ok(const struct config *cfg, const char *domain);

/* Size strings (§1.2): "500M"->500, "2G"->2048, " 1g "->1024, "100MB"->100,
 * "256"->256. Returns 0 or -1 (no decimals, no negatives). */
int config_parse_size_mb(const char *s, long *mb);

/* Appends the effective configuration: "[params]", then one `key = value`
 * per line (§1.3 keys, our keys, then the derived tls_mode, tls_cert_path,
 * tls_key_path, ipv4_relay), lists comma-joined, and a final
 * "# settings with no effect: ..." line when there are any. 0 or -1 (OOM). */
struct buf;
int config_format(const struct config *cfg, struct buf *out);
/* Appends one `config: KEY = "VALUE": REASON` line per error. 0 or -1. */
int config_format_errors(const struct config_errors *errs, struct buf *out);

#endif
