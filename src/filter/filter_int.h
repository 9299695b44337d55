/* filter_int.h: private interfaces shared by the files of src/filter (not
 * for use outside the module; the public face is filter.h). */
#ifndef CM_FILTER_FILTER_INT_H
#define CM_FILTER_FILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter/filter.h"

/* struct span, the header and MIME walkers: public, in filter.h. */

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
