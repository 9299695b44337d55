/* seqset.h: IMAP sequence sets (RFC 3501 sequence-set, RFC 5182 "$" is
 * not supported: SEARCHRES is not advertised): "1:4,7,9:*". Parsed into
 * sorted, merged ranges; "*" is resolved against the largest number given. */
#ifndef CM_IMAP_SEQSET_H
#define CM_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SEQSET_MAX_RANGES 4096

struct seq_range {
    uint32_t lo, hi;
};
struct seqset {
    struct seq_range *r;
    size_t n;
};

/* Parses text (len bytes) with '*' = star (the highest seq or UID; 0 for
 * an empty mailbox). Returns 0, or -1 when malformed (a 0 number, junk,
 * too many ranges). Ranges are sorted and merged. */
int seqset_parse(const char *text, size_t len, uint32_t star, struct seqset *out);
bool seqset_contains(const struct seqset *s, uint32_t v);
void seqset_free(struct seqset *s);
/* Writes a sorted array of numbers as a compact set ("1:3,7"). */
void seqset_write(struct buf *b, const uint32_t *v, size_t n);

#endif
