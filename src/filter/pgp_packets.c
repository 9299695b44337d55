/* pgp_packets.c: OpenPGP packet framing walker (RFC 4880 / RFC 9580 §4.2),
 * fed in arbitrary chunks so the armour's base64 can be decoded straight into
 * it. Accepts exactly: (PKESK | SKESK)* SEIPD, ending at the end of data.
 * Packet bodies are skipped, never read. Any malformed or truncated framing
 * moves the walker into PW_FAIL, which it never leaves. */
#include "filter/filter.h"
#include "filter/filter_int.h"

#define PGP_TAG_PKESK 1
#define PGP_TAG_SKESK 3
#define PGP_TAG_SEIPD 18

void pgp_walk_init(struct pgp_walk *w)
{
    *w = (struct pgp_walk){.st = PW_HDR, .tag = -1, .last_tag = -1};
}

static uint64_t be_value(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* A body (or partial chunk) of `len` octets starts now. */
static void start_body(struct pgp_walk *w, uint64_t len, bool partial)
{
    w->remaining = len;
    w->partial = partial;
    w->st = PW_BODY;
}

/* The current body chunk has been skipped completely. */
static void body_done(struct pgp_walk *w)
{
    if (w->partial) {
        w->st = PW_NEWLEN; /* another length follows */
        w->len_have = 0;
        return;
    }
    w->last_tag = w->tag;
    w->packets++;
    w->st = PW_HDR;
}

static void header_octet(struct pgp_walk *w, uint8_t b)
{
    /* More data follows the last packet: it must have been an ESK packet. */
    if (w->last_tag != -1 && w->last_tag != PGP_TAG_PKESK && w->last_tag != PGP_TAG_SKESK) {
        w->st = PW_FAIL;
        return;
    }
    if (!(b & 0x80)) {
        w->st = PW_FAIL;
        return;
    }
    w->len_have = 0;
    if (b & 0x40) { /* new format */
        w->tag = b & 0x3f;
        w->st = PW_NEWLEN;
        return;
    }
    w->tag = (b >> 2) & 0x0f; /* legacy format */
    static const uint8_t legacy_len[4] = {1, 2, 4, 0};
    w->len_need = legacy_len[b & 3];
    w->st = w->len_need ? PW_OLDLEN : PW_FAIL; /* indeterminate length refused */
}

static void new_length_octet(struct pgp_walk *w, uint8_t b)
{
    w->len[w->len_have++] = b;
    uint8_t o1 = w->len[0];
    if (o1 < 192) {
        start_body(w, o1, false);
    } else if (o1 < 224) {
        if (w->len_have == 2)
            start_body(w, ((uint64_t)(o1 - 192) << 8) + w->len[1] + 192, false);
    } else if (o1 < 255) {
        start_body(w, (uint64_t)1 << (o1 & 0x1f), true);
    } else if (w->len_have == 5) {
        start_body(w, be_value(w->len + 1, 4), false);
    }
}

static void old_length_octet(struct pgp_walk *w, uint8_t b)
{
    w->len[w->len_have++] = b;
    if (w->len_have == w->len_need)
        start_body(w, be_value(w->len, w->len_need), false);
}

void pgp_walk_feed(struct pgp_walk *w, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (w->st != PW_FAIL) {
        if (w->st == PW_BODY && w->remaining == 0) {
            body_done(w);
            continue;
        }
        if (i >= n)
            return;
        switch (w->st) {
        case PW_HDR: header_octet(w, p[i++]); break;
        case PW_NEWLEN: new_length_octet(w, p[i++]); break;
        case PW_OLDLEN: old_length_octet(w, p[i++]); break;
        case PW_BODY: {
            size_t take = n - i;
            if ((uint64_t)take > w->remaining)
                take = (size_t)w->remaining;
            w->remaining -= take;
            i += take;
            break;
        }
        case PW_FAIL: return;
        }
    }
}

bool pgp_walk_finish(const struct pgp_walk *w)
{
    return w->st == PW_HDR && w->packets > 0 && w->last_tag == PGP_TAG_SEIPD;
}

bool filter_pgp_packets_ok(const uint8_t *p, size_t n)
{
    struct pgp_walk w;
    pgp_walk_init(&w);
    pgp_walk_feed(&w, p, n);
    return pgp_walk_finish(&w);
}
