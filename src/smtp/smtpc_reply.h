/* smtpc_reply.h: the SMTP client's reply parser (RFC 5321 §4.2), sans I/O.
 *
 * Push bytes in; it returns once per complete reply. Lines are bounded
 * (SMTPC_LINE_MAX, the 512 of RFC 5321 §4.5.3.1.5 plus slack), a reply has
 * at most SMTPC_REPLY_LINES lines, every line of a multiline reply must
 * carry the same code, and the code's digits must be in range (2-5, 0-5,
 * 0-9). An RFC 3463 enhanced status code whose class matches the reply's
 * first digit is split off into `enh`. The texts of all lines are joined
 * with a space (truncated to fit). EHLO capabilities are extracted from
 * the lines after the first. Line ends: CRLF, a bare LF is tolerated. */
#ifndef CM_SMTP_SMTPC_REPLY_H
#define CM_SMTP_SMTPC_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTPC_LINE_MAX 1024
#define SMTPC_REPLY_LINES 256

struct smtpc_reply {
    int code;      /* 200..599 */
    char enh[16];  /* "5.1.1", or "" */
    char text[256];
};

struct smtpc_caps {
    bool pipelining, starttls, size, eightbitmime, smtputf8, chunking;
    uint64_t size_max; /* SIZE n; 0 = no limit announced */
};

struct smtpc_reply_parser {
    struct smtpc_reply reply; /* valid after SMTPC_RP_DONE */
    struct smtpc_caps caps;   /* of the reply just completed */
    const char *why;          /* after SMTPC_RP_ERR */
    /* private */
    size_t len, text_len;
    unsigned lines;
    char line[SMTPC_LINE_MAX];
};

enum { SMTPC_RP_ERR = -1, SMTPC_RP_MORE = 0, SMTPC_RP_DONE = 1 };

void smtpc_reply_init(struct smtpc_reply_parser *p);
/* Consumes bytes up to the end of one reply. Returns SMTPC_RP_DONE with
 * *used the bytes consumed (the rest belongs to the next reply),
 * SMTPC_RP_MORE when all n bytes were consumed without completing a reply,
 * or SMTPC_RP_ERR (p->why says why; the stream cannot be trusted further). */
int smtpc_reply_feed(struct smtpc_reply_parser *p, const char *data, size_t n, size_t *used);
/* Parses "d.d{1,3}.d{1,3}" at the start of s (n bytes) followed by a space
 * or the end; returns its length or 0. */
size_t smtpc_enh_code(const char *s, size_t n, int cls);

#endif
