/* filter.h: encryption enforcement and privacy header cleanup (spec §3.3-3.6,
 * §7, §13.2). Pure functions over the bytes of one message: no I/O, no
 * clock, no logging. The message is in SMTP-data form after dot-unstuffing,
 * CRLF line endings.
 *
 * Promises: the checks never copy the whole message; they walk it in place
 * and decode only what must be decoded (the "Version: 1" part, the
 * Secure-Join text, the armour's base64, which is streamed into the packet
 * walker). A part body in base64 or quoted-printable transfer encoding is
 * decoded into a heap buffer no larger than that part. The MIME walk looks
 * at the top level and its direct sub-parts only (depth 1, at most 3 parts
 * are examined); header blocks and header lines are bounded by
 * LIM_MIME_HEADER_BYTES / LIM_MIME_HEADER_LINE. Crossing a bound makes a
 * message "not encrypted" or, at the top level, a parse error reply. Any
 * input is safe: nothing here aborts. */
#ifndef CM_FILTER_FILTER_H
#define CM_FILTER_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum filter_direction { FILTER_OUTGOING, FILTER_INCOMING };

/* What the filter decided. For the metrics of spec §5.5:
 *   "Filtering encrypted mail."    <=> kind is ENCRYPTED or SECUREJOIN
 *   "Filtering unencrypted mail."  <=> kind is ASM_SELF, MAILER_DAEMON,
 *                                      CLEARTEXT_OK or REJECTED
 *   "Filtering mailer-daemon message from" <=> MAILER_DAEMON (incoming)
 *   "Rejected unencrypted mail"    <=> REJECTED
 * INVALID (500 replies: unparsable message, bad or mismatching From) is
 * counted by none of them. filter_log_lines() renders the exact lines. */
enum filter_kind {
    FILTER_KIND_INVALID = 0,
    FILTER_KIND_ENCRYPTED,
    FILTER_KIND_SECUREJOIN,
    FILTER_KIND_ASM_SELF,      /* outgoing: Autocrypt Setup Message to self */
    FILTER_KIND_MAILER_DAEMON, /* incoming: bounce / delivery report */
    FILTER_KIND_CLEARTEXT_OK,  /* incoming: no recipient enforces E2EE */
    FILTER_KIND_REJECTED,      /* 523 Encryption Needed */
};

struct filter_envelope {
    const char *mail_from;    /* envelope sender, "" for <>; never NULL */
    const char *const *rcpts; /* envelope recipients */
    size_t n_rcpts;
};

#define FILTER_REPLY_MAX 512
#define FILTER_ADDR_MAX 320

struct filter_result {
    int code;                     /* 0 = accept; else 500, 523 (or 451, see below) */
    char reply[FILTER_REPLY_MAX]; /* reply line without CRLF; "" when accepted */
    enum filter_kind kind;
    bool null_sender;             /* incoming: MAIL FROM != From -> re-inject with <> */
    char from_addr[FILTER_ADDR_MAX]; /* first From address, lower-cased; "" if none */
};

/* Callback for incoming mail: does this (syntactically valid) local
 * recipient require encryption (its mailbox has enforceE2EEincoming)? */
typedef bool (*filter_rcpt_enforced_fn)(void *ud, const char *rcpt);

/* Outgoing (submission) rules, spec §3.5 steps 1-4 after DATA:
 *   500 Failed to parse message: <reason>
 *   500 Invalid FROM header: <raw value>
 *   500 Invalid FROM <from> for <mailfrom>
 *   accept: encrypted (no armour headers allowed) / Secure-Join request /
 *           Autocrypt Setup Message to self
 *   523 Encryption Needed: Invalid Unencrypted Mail
 * Returns 0 with *r filled, or -1 when memory ran out (r->code = 451 with a
 * transient reply; the caller may send it as is). */
int filter_outgoing(const char *msg, size_t len, const struct filter_envelope *env,
                    struct filter_result *r);

/* Incoming (from other MTAs / relays) rules, spec §3.6 steps 1-7 without
 * the DKIM origin check (the caller runs it on accepted mail). Envelope /
 * From mismatch is tolerated with r->null_sender = true. A recipient that is
 * empty, has no '@' or contains '/' is always enforced; for the others
 * `enforced(ud, rcpt)` decides (NULL callback = every recipient enforced).
 * Return value as filter_outgoing(). */
int filter_incoming(const char *msg, size_t len, const struct filter_envelope *env,
                    filter_rcpt_enforced_fn enforced, void *ud, struct filter_result *r);

/* The building blocks (spec §3.3, §3.4). Memory exhaustion counts as false. */
bool filter_is_encrypted(const char *msg, size_t len, enum filter_direction dir);
bool filter_is_securejoin(const char *msg, size_t len);
/* Armoured payload check on an already transfer-decoded body: BEGIN line,
 * armour headers up to the blank line (any header -> false when outgoing),
 * strict base64, optional "=XXXX" CRC line (value not verified, as RFC 9580
 * asks), END line, then only CR/LF; the packets must pass the walker. */
bool filter_armor_ok(const char *p, size_t n, enum filter_direction dir);
/* Packet sequence check on binary OpenPGP data: zero or more PKESK (tag 1)
 * / SKESK (tag 3) followed by exactly one SEIPD (tag 18) ending the data.
 * New (1/2/5-octet and partial lengths) and legacy (1/2/4-octet) headers;
 * legacy indeterminate length is refused. Bodies are not inspected. */
bool filter_pgp_packets_ok(const uint8_t *p, size_t n);

/* First address of the first From: header, lower-cased, into out (size
 * FILTER_ADDR_MAX). Returns 1 found, 0 no usable address (raw_out gets the
 * raw value, unfolded, control characters replaced, truncated to raw_cap-1),
 * -1 the header block cannot be parsed. */
int filter_from_address(const char *msg, size_t len, char *out, char *raw_out, size_t raw_cap);
/* First address in an RFC 5322 address-list value (display names, quoted
 * strings, comments, angle brackets, groups), lower-cased. Returns 0 or -1. */
int filter_parse_first_address(const char *v, size_t n, char out[FILTER_ADDR_MAX]);

/* Renders the spec's log lines for a decision (0 to 2 lines, no newline),
 * e.g. "Outgoing: Filtering encrypted mail." Returns the number of lines. */
int filter_log_lines(enum filter_direction dir, const struct filter_result *r,
                     char lines[2][FILTER_REPLY_MAX]);

/* Privacy header cleanup on the top-level header block only (spec §7,
 * disable_mime_input_processing). Names are case-insensitive and every
 * instance is removed with its continuation lines; the body is copied
 * unchanged. No Received header is ever added.
 *   submission (authclean): drop Received, X-Originating-IP, X-Mailer,
 *     User-Agent; the first Subject becomes "Subject: [...]", later Subject
 *     headers are dropped; no Subject is added if there was none.
 *   delivery (lmtp_header_checks): drop Received, DKIM-Signature,
 *     Authentication-Results.
 * Appends to out; returns 0, or -1 when memory ran out. */
int filter_clean_submission(const char *msg, size_t len, struct buf *out);
int filter_clean_delivery(const char *msg, size_t len, struct buf *out);

/* ------------------------------------------------------------------
 * The header and MIME walkers the rules are built on (mime.c), also used
 * by IMAP FETCH for part numbers, BODYSTRUCTURE and ENVELOPE. Pure, over
 * the caller's bytes, bounded by LIM_MIME_HEADER_BYTES / _LINE.
 * ------------------------------------------------------------------ */

/* A view into the caller's buffer; never owns memory. */
struct span {
    const char *p;
    size_t n;
};

struct hdr_iter {
    const char *p, *end;
};

struct hdr_field {
    struct span name;  /* trimmed; n == 0 when the first line has no ':' */
    struct span value; /* raw, after ':', folding CRLFs included, no final CRLF */
    struct span whole; /* the field with all continuation lines and the final CRLF */
};

void hdr_iter_init(struct hdr_iter *it, struct span block);
/* 1 = a field, 0 = end of block, -1 = a physical line is over LIM_MIME_HEADER_LINE */
int hdr_next(struct hdr_iter *it, struct hdr_field *f);
/* First field called `name` (case-insensitive). 1 found, 0 not, -1 bad block. */
int hdr_find(struct span block, const char *name, struct span *value);
/* Unfolds (drops CRLF of continuation lines), trims, replaces control
 * characters by '?'; NUL-terminated, truncated to cap - 1. */
void hdr_value_text(struct span v, char *out, size_t cap);
bool span_eq_lit(struct span s, const char *lit, bool nocase);
struct span span_trim(struct span s);

/* Splits an entity into header block (ending with the last header's CRLF)
 * and body. 0 ok, -1 header block over LIM_MIME_HEADER_BYTES. */
int mime_split(struct span entity, struct span *hdr, struct span *body);

#define MIME_TOKEN_MAX 64
#define MIME_BOUNDARY_MAX 200
struct content_type {
    char type[MIME_TOKEN_MAX];    /* lower-cased; "text" by default */
    char subtype[MIME_TOKEN_MAX]; /* lower-cased; "plain" by default */
    char boundary[MIME_BOUNDARY_MAX + 1];
    bool has_boundary;
};
/* Content-Type of a header block; -1 only for a bad header block. */
int mime_content_type(struct span hdr, struct content_type *ct);
bool ct_is(const struct content_type *ct, const char *type, const char *subtype);

enum mime_cte { CTE_IDENTITY, CTE_QUOTED_PRINTABLE, CTE_BASE64 };
enum mime_cte mime_cte(struct span hdr);

/* Body parts of a multipart body: fills up to `max` entities (headers +
 * body of each part) and returns how many parts exist, counting at most
 * max + 1 (so "more than max" is visible). */
size_t mime_parts(struct span body, const char *boundary, struct span *parts, size_t max);

/* Transfer-decodes a body. Identity: *out = in, *owned = NULL. Otherwise a
 * heap buffer of at most in.n bytes in *owned (caller frees). -1 = no memory. */
int mime_decode(enum mime_cte cte, struct span in, struct span *out, char **owned);

#endif
