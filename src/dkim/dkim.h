/* dkim.h: DKIM (RFC 6376, RFC 8463) for chatmaild-server: the public face of
 * src/dkim. Everything here is sans-I/O except dkim_signkey_load (reads or
 * creates the key file) and the resolver glue at the end (core DNS).
 *
 *  - dkim_sig_parse / dkim_key_parse: the DKIM-Signature tag list and the
 *    `<s>._domainkey.<d>` TXT key record, errors as values with reasons.
 *  - struct dkim_bodycanon: streaming body canonicalisation (simple or
 *    relaxed) that takes the body in any chunks.
 *  - struct dkim_verifier: feed the message (headers then body) in chunks,
 *    then answer its key queries (the caller does DNS), then run it: one
 *    result per signature and one SMTP verdict (§1 of the federation facts).
 *  - struct dkim_signer: feed the message in chunks; get the DKIM-Signature
 *    header field to prepend (relaxed/simple, selector `opendkim`, the facts
 *    file's header set and over-signing plus Message-ID).
 *  - struct dkim_keycache: a bounded LRU of key records with a TTL; the clock
 *    is passed in.
 *  - struct dkim_resolver: glues core/dns TXT lookups to the key cache and
 *    answers a verifier's queries.
 *
 * Bounds: DKIM_MAX_* below. Only CRLF ends a line (SMTP delivers nothing
 * else; a bare CR or LF is an ordinary byte). */
#ifndef CM_DKIM_DKIM_H
#define CM_DKIM_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define DKIM_MAX_HEADER_BYTES (256 * 1024) /* the header block of one message */
#define DKIM_MAX_FIELDS       1000         /* header fields of one message */
#define DKIM_MAX_SIGS         8            /* DKIM-Signature fields evaluated */
#define DKIM_MAX_HNAMES       128          /* names in one h= list */
#define DKIM_MAX_SIG_BYTES    512          /* b= decoded (RSA 4096 = 512) */
#define DKIM_MAX_KEY_BYTES    1024         /* p= decoded (RSA 4096 SPKI ~ 550) */
#define DKIM_MAX_TXT_BYTES    4096         /* one key record */
#define DKIM_MAX_TXT_RECORDS  3            /* TXT records tried per selector */
#define DKIM_NAME_MAX         253          /* d=, s=, i= domain part */
#define DKIM_RSA_MIN_BITS     1024
#define DKIM_RSA_MAX_BITS     4096
#define DKIM_SELECTOR         "opendkim"

enum dkim_alg { DKIM_ALG_RSA_SHA256 = 0, DKIM_ALG_ED25519_SHA256, DKIM_ALG_RSA_SHA1 };
enum dkim_canon { DKIM_CANON_SIMPLE = 0, DKIM_CANON_RELAXED };
enum dkim_keytype { DKIM_KEY_RSA = 0, DKIM_KEY_ED25519 };

/* ---------------------------------------------------------------- parsing */

/* A parsed DKIM-Signature. Names are lower-cased (d=, s=, h= entries). */
struct dkim_sig {
    enum dkim_alg alg;
    enum dkim_canon hcanon, bcanon;
    char domain[DKIM_NAME_MAX + 1];   /* d= */
    char selector[DKIM_NAME_MAX + 1]; /* s= */
    char auid_domain[DKIM_NAME_MAX + 1]; /* domain part of i= (or d=) */
    unsigned char b[DKIM_MAX_SIG_BYTES];
    size_t b_len;
    unsigned char bh[64];
    size_t bh_len;
    size_t n_hnames;
    char hnames[DKIM_MAX_HNAMES][64]; /* h= entries; longer names are refused */
    bool has_l, has_t, has_x;
    uint64_t l, t, x;
};

/* Parses the value of a DKIM-Signature field (everything after the colon,
 * folding included). 0, or -1 with *why set (a static string). Refuses
 * what RFC 6376 §6.1.1 makes a PERMFAIL: missing v/a/b/bh/d/h/s, v != 1,
 * unknown a= or c=, h= without From, i= outside d=, x < t, q= without
 * dns/txt, duplicate tags. a=rsa-sha1 and l= parse (so the verifier can
 * name them) and are refused by the verifier. */
int dkim_sig_parse(const char *value, size_t len, struct dkim_sig *out, const char **why);

struct dkim_key {
    enum dkim_keytype type;
    bool revoked;   /* p= empty */
    bool testing;   /* t=y */
    bool strict;    /* t=s: i= must equal d= */
    unsigned char pub[DKIM_MAX_KEY_BYTES]; /* decoded p= */
    size_t pub_len;
};

/* Parses one key record (the strings of one TXT record joined by the
 * caller). Refuses: v= other than DKIM1 or not first, unknown k=, h= without
 * sha256, s= without email or *, missing p=, bad base64. A revoked key
 * parses with revoked = true. 0, or -1 with *why. */
int dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, const char **why);

/* ------------------------------------------------------- canonicalisation */

/* Streaming body canonicaliser: push the body in chunks of any size; the
 * canonical bytes go to `out` in pieces. dkim_bodycanon_finish applies the
 * end-of-body rules (trailing empty lines, missing final CRLF). */
typedef void (*dkim_out_fn)(void *ctx, const char *p, size_t n);
struct dkim_bodycanon {
    enum dkim_canon canon;
    bool held_cr;     /* a CR waiting to see whether LF follows */
    bool line_empty;  /* nothing of the current line emitted yet */
    bool pending_wsp; /* relaxed: a run of WSP waiting for a non-WSP byte */
    bool any;         /* anything emitted */
    uint64_t empty_lines; /* empty lines held back (maybe trailing) */
    uint64_t out_bytes;
    dkim_out_fn out;
    void *ctx;
    char obuf[4096];
    size_t olen;
};
void dkim_bodycanon_init(struct dkim_bodycanon *c, enum dkim_canon canon, dkim_out_fn out,
                         void *ctx);
void dkim_bodycanon_feed(struct dkim_bodycanon *c, const char *p, size_t n);
void dkim_bodycanon_finish(struct dkim_bodycanon *c);

/* Canonicalises one header field (name ":" value, folding included, with or
 * without its final CRLF) into out: simple = unchanged plus CRLF when
 * missing; relaxed = lower-case name, unfolded, WSP runs as one SP, no WSP
 * around the colon or at the end, then CRLF. 0 or -1 (memory). */
int dkim_canon_header(enum dkim_canon canon, const char *field, size_t len, struct buf *out);

/* ----------------------------------------------------------- verification */

enum dkim_status {
    DKIM_PASS = 0,
    DKIM_FAIL,      /* cryptographic failure: body hash or signature */
    DKIM_TEMPERROR, /* key lookup failed temporarily */
    DKIM_PERMERROR, /* unusable signature or key */
};

struct dkim_result {
    enum dkim_status status;
    const char *reason;              /* static text: "pass", "body hash mismatch", ... */
    char domain[DKIM_NAME_MAX + 1];  /* d= ("" when the field did not parse) */
    char selector[DKIM_NAME_MAX + 1];
    int query;                       /* index into the key queries, or -1 */
    bool crypto_failed;              /* the key's signature check failed */
};

/* How the caller's lookup of one key query ended. */
enum dkim_lookup {
    DKIM_LOOKUP_FOUND = 0, /* TXT records given */
    DKIM_LOOKUP_NOKEY,     /* NXDOMAIN or no TXT record: permanent */
    DKIM_LOOKUP_TEMPFAIL,  /* timeout, SERVFAIL, resolver stopped: temporary */
};

enum dkim_verdict_kind {
    DKIM_VERDICT_PASS = 0,
    DKIM_VERDICT_NONE,    /* no DKIM-Signature at all: 554 */
    DKIM_VERDICT_INVALID, /* none valid with d= the From domain: 554 */
    DKIM_VERDICT_TEMP,    /* could have passed but a key lookup failed: 451 */
};

struct dkim_verdict {
    enum dkim_verdict_kind kind;
    const char *smtp_reply; /* full reply line without CRLF; NULL on pass */
};

#define DKIM_REPLY_NONE    "554 5.7.1 No DKIM signature found"
#define DKIM_REPLY_INVALID "554 5.7.1 No valid DKIM signature found"
#define DKIM_REPLY_TEMP    "451 4.7.5 DKIM key lookup failed temporarily, try again later"

struct dkim_verifier;

/* A verifier for one message. NULL on memory exhaustion. */
struct dkim_verifier *dkim_verifier_new(void);
void dkim_verifier_free(struct dkim_verifier *v);
/* Message bytes in any chunks. Never fails: bad input shows in the results. */
void dkim_verifier_feed(struct dkim_verifier *v, const char *p, size_t n);
/* End of message. After this the queries are final. */
void dkim_verifier_finish(struct dkim_verifier *v);
/* True once the header block is complete (queries are known from then on,
 * so the caller may start DNS before the body has arrived). */
bool dkim_verifier_headers_done(const struct dkim_verifier *v);
/* Distinct key records to fetch: "<s>._domainkey.<d>" (lower case). */
size_t dkim_verifier_nqueries(const struct dkim_verifier *v);
const char *dkim_verifier_query(const struct dkim_verifier *v, size_t i);
/* The answer to query i: `n` TXT records (each already joined), or a
 * lookup failure (n = 0). Only the first DKIM_MAX_TXT_RECORDS are tried. */
void dkim_verifier_set_key(struct dkim_verifier *v, size_t i, enum dkim_lookup status,
                           const char *const *txt, const size_t *len, size_t n);
/* Checks every signature (call after finish and after every set_key; a
 * query never answered counts as TEMPFAIL). `now` is unix seconds (x=). */
void dkim_verifier_run(struct dkim_verifier *v, int64_t now);
size_t dkim_verifier_nresults(const struct dkim_verifier *v);
const struct dkim_result *dkim_verifier_result(const struct dkim_verifier *v, size_t i);
/* The acceptance decision for the From domain (as in the header, any case;
 * an address literal `[...]` always passes). */
struct dkim_verdict dkim_verifier_verdict(const struct dkim_verifier *v, const char *from_domain);

/* ---------------------------------------------------------------- signing */

struct dkim_signkey;

/* Loads the private key (PEM, PKCS#1 or PKCS#8; RSA or Ed25519) from path.
 * When the file does not exist and `create` is set, generates a 2048-bit
 * RSA key and writes it with mode 0600 (parent directory created 0700);
 * *created tells. NULL with *why on failure. */
struct dkim_signkey *dkim_signkey_load(const char *path, bool create, bool *created,
                                       const char **why);
void dkim_signkey_free(struct dkim_signkey *k);
/* The TXT record to publish at <selector>._domainkey.<domain>:
 * "v=DKIM1;k=rsa;p=<base64 SPKI>;s=email;t=s" (k=ed25519 with the raw key
 * for Ed25519). Caller frees; NULL on memory exhaustion. */
char *dkim_signkey_dns_record(const struct dkim_signkey *k);

struct dkim_signer;

/* A signer for one message from `domain` with `selector`; t= is `now`
 * unless now <= 0. NULL with *why on bad arguments or memory. */
struct dkim_signer *dkim_signer_new(const struct dkim_signkey *k, const char *domain,
                                    const char *selector, int64_t now, const char **why);
void dkim_signer_free(struct dkim_signer *s);
/* Message bytes in any chunks. -1 once the header block exceeds
 * DKIM_MAX_HEADER_BYTES or a header line is malformed (sticky). */
int dkim_signer_feed(struct dkim_signer *s, const char *p, size_t n);
/* Appends "DKIM-Signature: ...\r\n" (folded) to out. 0, or -1 with *why. */
int dkim_signer_finish(struct dkim_signer *s, struct buf *out, const char **why);

/* -------------------------------------------------------------- key cache */

struct dkim_keycache;

struct dkim_keycache_entry {
    enum dkim_lookup status;   /* FOUND or NOKEY (temporary failures are never cached) */
    size_t n;                  /* records */
    const char *txt[DKIM_MAX_TXT_RECORDS];
    size_t len[DKIM_MAX_TXT_RECORDS];
};

struct dkim_keycache *dkim_keycache_new(size_t capacity);
void dkim_keycache_free(struct dkim_keycache *c);
/* Looks a name up (case-insensitive). 1 and *out filled (pointers valid
 * until the next put/drop/free), or 0 when absent or expired at `now`. A hit
 * makes the entry the most recently used. */
int dkim_keycache_get(struct dkim_keycache *c, const char *name, int64_t now,
                      struct dkim_keycache_entry *out);
/* Stores (replacing) an entry valid until `expires`; the least recently
 * used entry goes when full. 0 or -1 (memory; nothing stored). */
int dkim_keycache_put(struct dkim_keycache *c, const char *name, int64_t expires,
                      enum dkim_lookup status, const char *const *txt, const size_t *len,
                      size_t n);
void dkim_keycache_drop(struct dkim_keycache *c, const char *name);
size_t dkim_keycache_size(const struct dkim_keycache *c);

/* ------------------------------------------------- key lookup through DNS */

struct dns;
struct dkim_resolver;
struct dkim_fetch;

#define DKIM_CACHE_ENTRIES   1000
#define DKIM_CACHE_TTL       3600 /* seconds, found keys */
#define DKIM_CACHE_NEG_TTL   300  /* seconds, NXDOMAIN / no TXT */

/* Key lookups through `dns` with a cache of `capacity` entries. */
struct dkim_resolver *dkim_resolver_new(struct dns *dns, size_t capacity);
void dkim_resolver_free(struct dkim_resolver *r);
/* Answers the queries of v (after its headers are done): from the cache,
 * else by a DNS TXT lookup. With only_domain (the From domain) set, keys of
 * other d= are not looked up at all: they could not make the verdict pass
 * (their signatures end as temperror, which the verdict ignores for other
 * domains), and a message cannot make us query 8 strangers' DNS. Returns
 * NULL when everything was answered at once (cb is not called), else a
 * handle; cb(arg) runs once when the last answer is in. `now` (unix
 * seconds) is the cache clock. Cancel with dkim_fetch_cancel before
 * freeing v if it is still pending. */
typedef void (*dkim_fetch_cb)(void *arg);
struct dkim_fetch *dkim_resolver_fetch(struct dkim_resolver *r, struct dkim_verifier *v,
                                       const char *only_domain, int64_t now, dkim_fetch_cb cb,
                                       void *arg);
void dkim_fetch_cancel(struct dkim_fetch *f);
/* After dkim_verifier_run: drops the cache entries of keys whose signature
 * failed cryptographically (so a rotated key is fetched again). */
void dkim_resolver_note_results(struct dkim_resolver *r, const struct dkim_verifier *v);

#endif
