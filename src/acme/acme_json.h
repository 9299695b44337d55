/* acme_json.h: a small bounded JSON reader for ACME answers (sans-I/O).
 * The whole text is tokenised into a caller-given array (no allocation):
 * each token records its type, its span in the text and the index of the
 * token after its subtree, so lookups walk siblings without recursion.
 * Nesting is limited to ACME_JSON_DEPTH; anything malformed, deeper or
 * needing more tokens than given is refused as a whole. Public only to the
 * acme module, its unit tests and its fuzz harness. */
#ifndef CM_ACME_JSON_H
#define CM_ACME_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACME_JSON_DEPTH 16

enum ajson_type { AJ_OBJ, AJ_ARR, AJ_STR, AJ_NUM, AJ_TRUE, AJ_FALSE, AJ_NULL };

struct ajson_tok {
    uint8_t type;
    uint32_t start, len; /* strings: the raw bytes between the quotes */
    uint32_t next;       /* index of the first token after this subtree */
    uint32_t count;      /* objects: members; arrays: elements */
};

struct ajson {
    const char *text;
    struct ajson_tok *tok;
    size_t n;
};

/* Tokenises text[0..len) into toks (cap entries). An object's member is
 * its key (a string token) followed by the value's subtree. Returns 0 (the
 * root is token 0), or -1 when the text is not one complete JSON value, is
 * nested too deeply, or needs more than cap tokens. */
int ajson_parse(struct ajson *j, const char *text, size_t len, struct ajson_tok *toks,
                size_t cap);
/* The value of member `key` of object token obj (the first one when
 * repeated), or -1 (absent, or obj is not an object). */
int ajson_get(const struct ajson *j, int obj, const char *key);
/* Element i of array token arr, or -1. */
int ajson_at(const struct ajson *j, int arr, size_t i);
/* The unescaped UTF-8 value of string token t into out (NUL-terminated).
 * Returns its length, or -1 (not a string, a bad escape, a NUL or a lone
 * surrogate inside, or longer than cap - 1). */
long ajson_str(const struct ajson *j, int t, char *out, size_t cap);
/* Member `key` of obj is a string equal to want. */
bool ajson_str_is(const struct ajson *j, int obj, const char *key, const char *want);
/* Member `key` of obj as a string into out; -1 when absent or not one. */
long ajson_get_str(const struct ajson *j, int obj, const char *key, char *out, size_t cap);

#endif
