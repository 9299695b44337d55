/* config_int.h: private to src/core/config*.c — the table of known
 * chatmail.ini keys, the value parsers (each returns NULL when the value is
 * good, else the reason why not, as a static string) and the error list.
 * Nothing outside src/core/config*.c includes this file. */
#ifndef CM_CORE_CONFIG_INTERNAL_H
#define CM_CORE_CONFIG_INTERNAL_H

#include "core/config.h"

#include <stdbool.h>
#include <stddef.h>

/* How the value of one key is turned into its field of struct config. */
enum cfg_kind {
    CK_STR,     /* char *, kept as written (may be "") */
    CK_LONG,    /* long, a non-negative decimal integer */
    CK_SIZE,    /* long, a size string in MB (§1.2) */
    CK_DOUBLE,  /* double, a non-negative decimal number */
    CK_BOOL,    /* bool, true/false/yes/no/on/off/1/0 */
    CK_PORT,    /* int, 0..65535 (0 disables the listener) */
    CK_LISTEN,  /* listen[]: IP addresses */
    CK_DNS,     /* dns_servers[]: ip, ip:port, [v6]:port */
    CK_DOMAINS, /* smtp_plaintext_domains[]: domain names */
    CK_LOGLEVEL,/* char *, debug/info/warn/error */
    CK_TIME,    /* int, "HH:MM" as minutes of the day */
    CK_DURATION,/* long seconds: an integer with optional s, m, h or d suffix */
    CK_SPECIAL, /* handled by cfg_derive (defaults depend on other keys) */
};

struct cfg_key {
    const char *name;
    enum cfg_kind kind;
    const char *def;  /* default, parsed like a value from the file */
    size_t off;       /* offset of the field in struct config */
};

#define CFG_MAX_KEYS 64 /* room in the parser's raw[] table */

extern const struct cfg_key cfg_keys[];
extern const size_t cfg_n_keys;
/* Index of a known key in cfg_keys, or -1. */
int cfg_key_index(const char *name);

/* Appends one problem (if there is room); the value is truncated and its
 * control characters are shown as '?'. */
void cfg_error(struct config_errors *errs, const char *key, const char *value,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Value parsers: NULL = good (result stored), else the reason. */
const char *cfg_parse_long(const char *s, long *out);
const char *cfg_parse_port(const char *s, int *out);
const char *cfg_parse_time(const char *s, int *minutes);
const char *cfg_parse_bool(const char *s, bool *out);
const char *cfg_parse_double(const char *s, double *out);
const char *cfg_parse_size(const char *s, long *out);
const char *cfg_parse_duration(const char *s, long *secs);
const char *cfg_check_domain(const char *s);
const char *cfg_check_ip(const char *s);
const char *cfg_check_dns_server(const char *s);
/* Canonical name ("debug", "info", "warn", "error") or NULL. */
const char *cfg_log_level_name(const char *s);

/* Fills every field of cfg from raw[] (one value per cfg_keys entry, NULL
 * = not in the file), with defaults and derived values. */
void cfg_apply(struct config *cfg, char *const raw[], bool probe_files,
               struct config_errors *errs);

/* Joins a directory and a relative name with exactly one '/' (caller frees). */
char *cfg_path_join(const char *dir, const char *name);

#endif
