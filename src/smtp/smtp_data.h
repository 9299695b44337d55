/* smtp_data.h: streaming decoders for the message bytes of SMTP DATA (dot
 * transparency, RFC 5321 §4.5.2) and of BDAT chunks (RFC 3030).
 *
 * Feed arbitrary pieces of input; the unstuffed message bytes go to a sink
 * callback as they are decoded, so nothing is buffered here. Promises:
 *  - every line must end in CRLF. A bare LF or a bare CR anywhere is a
 *    framing error, never an end of data: all SMTP-smuggling forms
 *    ("\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\n", "\r\n.\r" + other, ...) are
 *    refused, and the caller must reply and close the connection (Postfix
 *    3.9 smtpd_forbid_bare_newline=reject: "550 5.5.2 <domain> Error: bare
 *    <LF> received"; the same with <CR> for a bare CR);
 *  - the only end of DATA is CRLF "." CRLF (or "." CRLF as the first line);
 *  - max_size counts unstuffed bytes (CRLFs included). Once crossed, or once
 *    a line exceeds LIM_SMTP_DATA_LINE bytes, the sink is no longer called
 *    but input is still consumed up to the end, so the caller can then send
 *    552 (or 500) and keep the session in sync;
 *  - BDAT: the caller slices exactly the announced byte count. There is no
 *    dot-stuffing and no end marker, but the same CRLF rules apply: we do
 *    not advertise BINARYMIME, and a bare LF accepted here could turn into a
 *    smuggled end-of-data when we relay the message over SMTP DATA. When the
 *    LAST chunk ends inside an unterminated line, smtp_bdat_finish() sends a
 *    closing CRLF to the sink, so every spooled message ends in CRLF. */
#ifndef CM_SMTP_DATA_H
#define CM_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Receives decoded message bytes; returns 0, or -1 to record a spool
 * failure (the decoder then stops calling it and sets spool_failed). */
typedef int (*smtp_data_sink)(void *ctx, const char *p, size_t n);

enum smtp_data_status {
    SMTP_DATA_MORE = 0, /* all input consumed, need more */
    SMTP_DATA_END,      /* end of DATA found; *consumed ends after it */
    SMTP_DATA_BARE_LF,  /* framing error: bare LF */
    SMTP_DATA_BARE_CR,  /* framing error: bare CR */
};

struct smtp_data {
    int state;
    uint64_t size; /* unstuffed bytes decoded so far */
    uint64_t max_size;
    size_t line_len;    /* bytes of the current line so far */
    bool too_big;       /* size crossed max_size */
    bool line_too_long; /* a line crossed LIM_SMTP_DATA_LINE */
    bool spool_failed;  /* the sink returned -1 */
    smtp_data_sink sink;
    void *ctx;
};

void smtp_data_init(struct smtp_data *d, uint64_t max_size, smtp_data_sink sink, void *ctx);

/* DATA phase: consumes up to n bytes; *consumed says how many (on END the
 * rest belongs to the next command, on an error it is unspecified). */
enum smtp_data_status smtp_data_feed(struct smtp_data *d, const char *p, size_t n,
                                     size_t *consumed);

/* BDAT chunk bytes (all of p belongs to the message): SMTP_DATA_MORE or an
 * error. */
enum smtp_data_status smtp_bdat_feed(struct smtp_data *d, const char *p, size_t n);
/* After the LAST chunk: SMTP_DATA_END, or SMTP_DATA_BARE_CR when the
 * message ends in a lone CR. */
enum smtp_data_status smtp_bdat_finish(struct smtp_data *d);

/* True when the message may be queued (no size, line or spool failure). */
bool smtp_data_ok(const struct smtp_data *d);

#endif
