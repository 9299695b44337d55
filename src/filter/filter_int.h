/* filter_int.h: private interfaces shared by the files of src/filter (not
 * for use outside the module; the public face is filter.h). */
#ifndef CM_FILTER_FILTER_INT_H
#define CM_FILTER_FILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A view into the caller's buffer; never owns memory. */
struct span {
    const char *p;
    size_t n;
};

/* ---- mime.c: header fields, Content-Type, multipart split, decoding ---- */

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

/* ---- pgp_packets.c: streaming OpenPGP packet framing walker ---- */

enum pgp_walk_state { PW_HDR, PW_NEWLEN, PW_OLDLEN, PW_BODY, PW_FAIL };

struct pgp_walk {
    enum pgp_walk_state st;
    int tag;      /* tag of the packet being read */
    int last_tag; /* tag of the last complete packet, -1 none */
    bool partial; /* the current body chunk is a partial-length chunk */
    uint8_t len[5];
    uint8_t len_have, len_need;
    uint64_t remaining;
    size_t packets;
};

void pgp_walk_init(struct pgp_walk *w);
void pgp_walk_feed(struct pgp_walk *w, const uint8_t *p, size_t n);
bool pgp_walk_finish(const struct pgp_walk *w);

/* ---- address.c ---- */
bool addr_eq_nocase(const char *a, const char *b);

#endif
