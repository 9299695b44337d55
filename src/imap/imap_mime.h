/* imap_mime.h: the MIME tree of a message as IMAP FETCH sees it (part
 * numbers, HEADER/TEXT/MIME sections), BODYSTRUCTURE and ENVELOPE output,
 * and message file reading with bare LF turned into CRLF. Built on the
 * header/multipart walkers of src/filter (filter.h). Bounded by
 * LIM_MIME_DEPTH and LIM_MIME_PARTS; anything unparseable becomes a
 * text/plain leaf, never an error. */
#ifndef CM_IMAP_IMAP_MIME_H
#define CM_IMAP_IMAP_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "filter/filter.h"

struct imap_part {
    struct span hdr;  /* header block incl. the last header's CRLF */
    struct span body; /* after the blank line */
    struct content_type ct;
    bool multipart, message; /* message/rfc822: sub[0] is the message */
    struct imap_part *sub;
    size_t nsub;
};

/* Parses an entity (a whole message). Returns 0 or -1 (no memory). */
int imap_mime_parse(const char *p, size_t n, struct imap_part *root);
void imap_mime_free(struct imap_part *root);
/* Resolves the numeric prefix of a section ("1.2.HEADER" -> part 1.2 and
 * *rest "HEADER"). NULL when there is no such part. */
const struct imap_part *imap_mime_find(const struct imap_part *root, const char *spec,
                                       const char **rest);
void imap_write_bodystructure(struct buf *b, const struct imap_part *p, bool extended);
void imap_write_envelope(struct buf *b, struct span hdr);

/* Reads a message file (gzip transparently), bare LF -> CRLF, at most max
 * bytes. 0 or -1. */
int imap_read_message(const char *path, struct buf *out, size_t max);
/* The header block and maybe some body bytes after it (CRLF-normalised). */
int imap_read_header(const char *path, struct buf *out, size_t max);

#endif
