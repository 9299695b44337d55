/* dkim_int.h: what the files of src/dkim share and nobody else sees: the
 * tag-list tokenizer (RFC 6376 §3.2), the header-block splitter, header
 * selection and hashing, and the OpenSSL calls. */
#ifndef CM_DKIM_INT_H
#define CM_DKIM_INT_H

#include "dkim/dkim.h"

#include <openssl/evp.h>

/* ---- tag lists: tag-spec *( ";" tag-spec ) [ ";" ] */
struct dkim_tagit {
    const char *p;
    size_t len, pos;
};
struct dkim_tag {
    const char *name, *val; /* val trimmed of surrounding FWS */
    size_t name_len, val_len;
    size_t raw_start, raw_end; /* offsets of everything between '=' and ';'/end */
};
void dkim_tagit_init(struct dkim_tagit *it, const char *p, size_t len);
/* 1 = a tag in *t, 0 = end of list, -1 = syntax error (*why). */
int dkim_tag_next(struct dkim_tagit *it, struct dkim_tag *t, const char **why);
bool dkim_tag_is(const struct dkim_tag *t, const char *name);
/* Copies the value without any whitespace (base64 values); -1 if too long. */
int dkim_tag_compact(const struct dkim_tag *t, char *out, size_t cap, size_t *out_len);
bool dkim_is_wsp(unsigned char c);
/* Does the ':'-separated list value of t contain word (case-insensitive,
 * whitespace around items ignored)? */
bool dkim_tag_list_has(const struct dkim_tag *t, const char *word);

/* ---- the header block of a message */
struct dkim_field {
    size_t off, len;  /* bytes of the field in raw, CRLF included when present */
    size_t name_len;  /* name without trailing WSP */
};
struct dkim_headers {
    struct buf raw;   /* the header block without the empty line */
    size_t line_start, scan;
    bool done, overflow, malformed;
    struct dkim_field *f;
    size_t n;
};
/* Takes header bytes; returns how many of p belong to the header block
 * (including the empty line that ends it); the rest is body. */
size_t dkim_headers_feed(struct dkim_headers *h, const char *p, size_t n);
/* End of message inside the header block: what came is the header. */
void dkim_headers_finish(struct dkim_headers *h);
void dkim_headers_free(struct dkim_headers *h);
bool dkim_field_name_is(const struct dkim_headers *h, size_t i, const char *name);

/* Hashes the fields named by names[] (bottom-up selection, RFC 6376 §5.4.2)
 * canonicalised with canon, then `sigfield` (the DKIM-Signature field with
 * the b= value removed, hashed without its final CRLF). 0 or -1. */
int dkim_hash_headers(const struct dkim_headers *h, const char (*names)[64], size_t n_names,
                      enum dkim_canon canon, const char *sigfield, size_t sigfield_len,
                      unsigned char digest[32]);

/* ---- crypto */
/* 1 = signature good, 0 = bad signature, -1 = key unusable (*why). */
int dkim_crypto_verify(enum dkim_alg alg, const struct dkim_key *key,
                       const unsigned char digest[32], const unsigned char *sig,
                       size_t sig_len, const char **why);
/* Signs digest with pkey (RSA PKCS#1 v1.5 SHA-256 or Ed25519 over the
 * digest); 0 with out filled, or -1. */
int dkim_crypto_sign(EVP_PKEY *pkey, const unsigned char digest[32], unsigned char *out,
                     size_t *out_len);
EVP_PKEY *dkim_signkey_pkey(const struct dkim_signkey *k);

/* Lower-cases ASCII in place. */
void dkim_lower(char *s);

#endif
