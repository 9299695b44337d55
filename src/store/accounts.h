/* accounts.h: accounts under <mailboxes_dir>/<addr>/ (spec §2, §4.2).
 *
 * Promises:
 * - Logging in with a new address creates it by the rules of spec §2.4, in
 *   that order; an address is created once even when many clients log in
 *   with it at the same instant (all of them are checked against the one
 *   stored hash). A wrong password never overwrites anything.
 * - Address strings are validated before they touch a path.
 * - Password hashing and verifying run on libuv's worker pool, bounded per
 *   client IP and overall; repeated logins hit a credential cache.
 * - Any successful login (IMAP or SMTP) sets the password file's mtime to
 *   the start of the UTC day, only when it changes (spec §2.6, decision 8).
 * - metadata.json is read and written in the existing relay's format.
 *
 * The synchronous functions below do blocking file I/O: call them from a
 * worker thread (or at startup), never on the loop thread. */
#ifndef CM_STORE_ACCOUNTS_H
#define CM_STORE_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <uv.h>

struct config;
struct buf;

#define STORE_ADDR_MAX 254       /* bytes in an address (one path component) */
#define STORE_PASSWORD_MAX 4096  /* longer cleartext passwords are refused */
#define STORE_REASON_MAX 128     /* room for a refusal reason */

/* ---- addresses (address.c) ---- */

/* Turns a login name into the account address: lower-cased as Dovecot's
 * auth_username_format does, Dovecot's auth_username_chars only
 * (a-z 0-9 . - _ @ [ ]), ends with "@<mail_domain>" (case-insensitive),
 * nonempty local part, no "..", no leading '.', length <= STORE_ADDR_MAX.
 * Writes the address to out; returns 0, or -1 with a reason. */
int store_addr_normalize(const struct config *cfg, const char *login, char *out,
                         size_t outsz, const char **reason);
/* Same checks on a byte string of known length (NUL inside is refused). */
int store_addr_normalize_n(const struct config *cfg, const char *login, size_t len,
                           char *out, size_t outsz, const char **reason);
/* The account a recipient address is delivered to, as Postfix's
 * recipient_delimiter = + does: "user+tag@<mail_domain>" -> "user@<mail_domain>"
 * (everything from the first '+' of the local part to the '@' dropped; a
 * local part that starts with '+' is left as it is), then
 * store_addr_normalize. Every place that accepts a recipient for a local
 * mailbox uses it; the message itself (its To:) is not changed. */
int store_addr_recipient(const struct config *cfg, const char *addr, char *out, size_t outsz,
                         const char **reason);
/* Creation rules 3-5 of §2.4 on an address: exactly two parts at '@',
 * local-part length within [username_min_length, username_max_length],
 * local part of [a-z0-9._-] only. Returns 0, or -1 with a reason. */
int store_addr_check_new(const struct config *cfg, const char *addr, const char **reason);

/* "<mailboxes_dir>/<addr>" for a valid address (normalised first). */
int store_account_dir(const struct config *cfg, const char *addr, char *out, size_t outsz);
/* True when the account's password file exists and is not empty. */
bool store_account_exists(const struct config *cfg, const char *addr);
/* Entries of mailboxes_dir named like an address that hold a password file
 * (account_count.c; blocking: call at startup). 0 when there is no tree. */
long store_count_accounts(const struct config *cfg);
/* True when incoming mail for addr must be encrypted: its account has the
 * enforceE2EEincoming file, or addr is no valid address here. */
bool store_account_enforces_e2ee(const struct config *cfg, const char *addr);

/* ---- password schemes (password.c) ---- */

#define STORE_HASH_MAX 256
/* Checks a cleartext password against a stored Dovecot scheme string:
 * {SHA512-CRYPT} {SHA256-CRYPT} {BLF-CRYPT} {MD5-CRYPT} {CRYPT} via libcrypt,
 * {ARGON2ID} {ARGON2I} via libsodium, {PLAIN} {CLEAR} {CLEARTEXT}, and a
 * string without {SCHEME} as plain (Dovecot default_pass_scheme = plain).
 * Returns 1 match, 0 mismatch, -1 unknown scheme or malformed hash. */
int store_pw_verify(const char *stored, const char *password);
/* Writes "{ARGON2ID}$argon2id$v=19$m=<KiB>,t=<n>,p=1$<salt>$<hash>"
 * (Dovecot 2.3's ARGON2ID format). Returns 0 or -1. */
int store_pw_hash(const char *password, char *out, size_t outsz);
/* Cost of new argon2id hashes; 0 keeps a value. Defaults: OWASP's
 * recommendation (t=2, 19 MiB). Tests lower them to save time. */
void store_pw_set_argon2_limits(unsigned long long opslimit, size_t memlimit);

/* ---- system resource checks (syslimits.c, §2.4 rule 6) ---- */

/* Returns 0 when new accounts may be created, 1 when refused (reason
 * filled, e.g. "load avg 6.10 > 5.00"). Unreadable values are ignored and
 * logged "ignoring unreadable system limit: ...". */
int store_syslimits_check(const struct config *cfg, char *reason, size_t reasonsz);
/* Where load and memory are read from (NULL restores /proc/...); for tests. */
void store_syslimits_set_paths(const char *loadavg_path, const char *meminfo_path);

/* ---- last login (lastlogin.c, §2.6) ---- */

/* Start of the UTC day of t. */
time_t store_day_floor(time_t t);
/* Sets atime and mtime of the open password file (or of path) to the day
 * floor of now, only when mtime differs. Returns 1 changed, 0 unchanged,
 * -1 error. */
int store_lastlogin_update_fd(int fd, time_t now);
int store_lastlogin_update(const char *password_path, time_t now);

/* ---- login and creation (account_create.c, login.c) ---- */

enum store_login_result {
    STORE_LOGIN_OK = 0,
    STORE_LOGIN_WRONG_PASSWORD, /* account exists, password does not match */
    STORE_LOGIN_REFUSED,        /* invalid name or creation refused (§2.4) */
    STORE_LOGIN_TRY_AGAIN,      /* busy, lock timeout or I/O error */
};

struct store_login_outcome {
    enum store_login_result result;
    bool created;                    /* this call created the account */
    char addr[STORE_ADDR_MAX + 1];   /* normalised address */
    char reason[STORE_REASON_MAX];   /* for REFUSED / TRY_AGAIN */
};

/* §2.4 rules 1-7 for an address that has no account yet (addr normalised).
 * When another login created it meanwhile, the password is verified against
 * that hash instead. Fills out; returns out->result. */
int store_account_create(const struct config *cfg, const char *addr, const char *password,
                         struct store_login_outcome *out);

/* Log in or create, synchronously: normalise, verify against the stored
 * hash (cache first), create on first login, update last login. */
int store_login_sync(const struct config *cfg, const char *user, const char *password,
                     struct store_login_outcome *out);

/* Asynchronous login on the loop's worker pool. The callback runs on the
 * loop thread with the result and, for REFUSED/TRY_AGAIN, a reason string
 * valid during the call. Returns a handle, valid until the callback has
 * run or store_login_cancel was called; NULL when the login was not
 * started (too many in flight overall or for client_ip, or no memory):
 * answer TRY_AGAIN then, the callback will not run. Loop thread only. */
typedef void (*store_login_cb)(void *ud, int result, const char *err);
struct store_login_req;
struct store_login_req *store_login_async(uv_loop_t *loop, const struct config *cfg,
                                          const char *user, const char *password,
                                          const char *client_ip, store_login_cb cb, void *ud);
/* The callback of req will not run; req must not be used afterwards. */
void store_login_cancel(struct store_login_req *req);
/* Bounds on logins in flight: overall and per client IP (0 = default:
 * UV_THREADPOOL_SIZE - 1 overall, so that logins never hold every libuv
 * worker and deliveries, SMTP and fsyncs always find one (issue 16); 8 per
 * IP, at most half the overall bound, rounded up). Logins beyond wait on
 * the loop, holding no worker. Argon2 itself runs at most
 * LIM_PW_ARGON2_PARALLEL at once. Loop thread only. The config must
 * outlive every request. */
void store_login_set_limits(unsigned total, unsigned per_ip);
/* Logins currently in flight (for metrics and tests). */
unsigned store_login_in_flight(void);
/* Forgets every cached credential (tests, password changes by admin). */
void store_login_cache_clear(void);

/* ---- metadata.json (metadata_json.c: format, metadata.c: files; §4.2) ---- */

#define STORE_TOKEN_MAX 4096       /* bytes in one device token */
#define STORE_TOKENS_MAX 256       /* tokens per address; the oldest go first */
#define STORE_TOKEN_VALID_DAYS 90
#define STORE_TOKEN_FUTURE_SLACK 60

struct store_token {
    char *token;
    int64_t ts;
};
struct store_tokens {
    struct store_token *v;
    size_t n;
};

/* Parses metadata.json text: {"devicetoken": {"<tok>": <ts>, ...}} (other
 * keys skipped), the legacy {"devicetoken": ["t1", ...]} and ["t1", ...]
 * (timestamp now). Returns 0, 1 when the legacy form was converted, or -1
 * (corrupt: out is empty). Bounded: at most STORE_TOKENS_MAX tokens. */
int store_md_parse(const char *text, size_t len, int64_t now, struct store_tokens *out);
/* {"devicetoken": {"<tok>": <ts>, ...}} as Python's json.dumps writes it. */
int store_md_format(const struct store_tokens *t, struct buf *out);
/* Drops tokens outside (now - 90 days, now + 60 s). Returns how many. */
size_t store_md_expire(struct store_tokens *t, int64_t now);
/* Adds tok (len bytes) or refreshes its timestamp; at STORE_TOKENS_MAX the
 * oldest token makes room. Returns 0 or -1 (no memory). */
int store_md_set(struct store_tokens *t, const char *tok, size_t len, int64_t ts);
void store_md_free(struct store_tokens *t);

/* Under <account>/metadata.json.lock. Return 0 or -1 (no account, I/O). */
int store_md_add_token(const struct config *cfg, const char *addr, const char *token,
                       time_t now);
/* Valid tokens joined by single spaces into out (expired ones purged). */
int store_md_get_tokens(const struct config *cfg, const char *addr, time_t now,
                        struct buf *out);
/* Removes one token (token != NULL) or all of them (token == NULL). */
int store_md_remove_token(const struct config *cfg, const char *addr, const char *token,
                          time_t now);

#endif
