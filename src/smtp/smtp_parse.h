/* smtp_parse.h: sans-I/O parsing of one SMTP command line (without its
 * CRLF) into a verb and an argument, and of the arguments of MAIL, RCPT,
 * EHLO/HELO, AUTH and BDAT (RFC 5321, 1869, 3030, 3461, 4954, 6531), plus the
 * strict base64 decoders for AUTH PLAIN and AUTH LOGIN.
 *
 * Promises: pure functions over bytes, no allocation, bounded output
 * buffers. On a syntax error a function returns -1 and writes the complete
 * Postfix-style reply line (without CRLF, e.g. "501 5.1.7 Bad sender address
 * syntax") into err (at most SMTP_ERR_MAX bytes including the NUL). */
#ifndef CM_SMTP_PARSE_H
#define CM_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_ADDR_MAX 254  /* mailbox without the angle brackets (RFC 5321 path 256) */
#define SMTP_ENVID_MAX 100 /* RFC 3461 §4.4 */
#define SMTP_ORCPT_MAX 500 /* RFC 3461 §4.2 */
#define SMTP_AUTH_USER_MAX 254
#define SMTP_AUTH_PASS_MAX 1023
#define SMTP_ERR_MAX 320

enum smtp_verb {
    SMTP_V_UNKNOWN = 0,
    SMTP_V_HELO,
    SMTP_V_EHLO,
    SMTP_V_MAIL,
    SMTP_V_RCPT,
    SMTP_V_DATA,
    SMTP_V_BDAT,
    SMTP_V_RSET,
    SMTP_V_NOOP,
    SMTP_V_QUIT,
    SMTP_V_VRFY,
    SMTP_V_HELP,
    SMTP_V_STARTTLS,
    SMTP_V_AUTH,
};

/* A command line split into verb and argument. arg points into the line
 * (after the spaces that follow the verb); arg_len may be 0. */
struct smtp_cmd {
    enum smtp_verb verb;
    const char *arg;
    size_t arg_len;
};

enum smtp_body { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

/* RFC 3461 NOTIFY bits; SMTP_NOTIFY_NEVER excludes the others. */
#define SMTP_NOTIFY_SUCCESS 1u
#define SMTP_NOTIFY_FAILURE 2u
#define SMTP_NOTIFY_DELAY 4u
#define SMTP_NOTIFY_NEVER 8u

struct smtp_mail_args {
    char addr[SMTP_ADDR_MAX + 1]; /* "" for the null path <> */
    bool addr_utf8;               /* the address has non-ASCII bytes */
    bool smtputf8;                /* SMTPUTF8 parameter given */
    enum smtp_body body;
    int64_t size; /* SIZE=, -1 when absent */
    enum smtp_ret ret;
    char envid[SMTP_ENVID_MAX + 1]; /* xtext as sent, "" when absent */
    bool has_auth;                  /* AUTH= given (accepted and ignored) */
};

struct smtp_rcpt_args {
    char addr[SMTP_ADDR_MAX + 1];
    bool addr_utf8;
    unsigned notify;                /* SMTP_NOTIFY_* bits, 0 when absent */
    char orcpt[SMTP_ORCPT_MAX + 1]; /* "addr-type;xtext" as sent, "" when absent */
};

enum smtp_auth_mech { SMTP_AUTH_MECH_OTHER = 0, SMTP_AUTH_MECH_PLAIN, SMTP_AUTH_MECH_LOGIN };

struct smtp_auth_args {
    enum smtp_auth_mech mech;
    const char *initial; /* initial response (base64, "=" = empty), NULL if none */
    size_t initial_len;
};

struct smtp_auth_creds {
    char user[SMTP_AUTH_USER_MAX + 1];
    char pass[SMTP_AUTH_PASS_MAX + 1];
};

/* Splits a line (CRLF removed) into verb and argument. Refuses control
 * characters ("500 5.5.2 Error: bad syntax") and malformed UTF-8 ("500 5.5.2
 * Error: bad UTF-8 syntax"). An unknown verb is not an error here:
 * cmd->verb is SMTP_V_UNKNOWN. */
int smtp_parse_line(const char *line, size_t len, struct smtp_cmd *cmd, char *err);

/* "FROM:<path> [params]" (the argument of MAIL). The space after the colon
 * and a missing pair of angle brackets are tolerated, as Postfix does;
 * source routes are dropped. */
int smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out, char *err);
/* "TO:<path> [params]" (the argument of RCPT). The null path is refused. */
int smtp_parse_rcpt(const char *arg, size_t len, struct smtp_rcpt_args *out, char *err);
/* EHLO/HELO argument: a domain name or an address literal. */
int smtp_parse_helo(const char *arg, size_t len, bool ehlo, char *err);
/* "mechanism [initial-response]". Unknown mechanisms are not an error here. */
int smtp_parse_auth(const char *arg, size_t len, struct smtp_auth_args *out, char *err);
/* "chunk-size [LAST]". */
int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last, char *err);

/* Checks a mailbox (local@domain, no brackets) and reports whether it has
 * non-ASCII bytes. Returns 0 or -1. */
int smtp_addr_valid(const char *addr, size_t len, bool *utf8);

/* base64 itself is core/base64.h. */

/* AUTH PLAIN response: base64 of "authzid NUL authcid NUL passwd" (RFC
 * 4616). A non-empty authzid must equal the authcid (case-insensitively).
 * Returns 0, -1 for bad base64, -2 for a bad structure (empty user or
 * password, NUL bytes, too long, foreign authzid). */
int smtp_auth_plain_decode(const char *b64, size_t len, struct smtp_auth_creds *out);
/* One AUTH LOGIN step: base64 of a user name or password; no NUL bytes.
 * Writes a NUL-terminated string; returns 0, -1 bad base64, -2 bad value. */
int smtp_auth_login_decode(const char *b64, size_t len, char *out, size_t cap);

#endif
