/* fuzz_acme_json.c: the bounded JSON reader of the ACME client. Whatever
 * the input, parsing either fails or yields tokens whose spans lie inside
 * the input and whose subtrees nest properly; every lookup and string
 * decode on them stays in bounds, and a decoded string never holds a NUL
 * and is never longer than its raw form. */
#include "acme/acme_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct ajson *j, int t)
{
    const struct ajson_tok *k = &j->tok[t];
    char out[256];
    if (k->next <= (uint32_t)t || k->next > j->n || (size_t)k->start + k->len > 1u << 20)
        abort();
    if (k->type == AJ_STR) {
        long n = ajson_str(j, t, out, sizeof out);
        if (n >= 0 && ((size_t)n != strlen(out) || (size_t)n > k->len))
            abort();
    }
    if (k->type == AJ_OBJ) {
        ajson_get(j, t, "status");
        ajson_get_str(j, t, "type", out, sizeof out);
        ajson_str_is(j, t, "status", "valid");
    }
    if (k->type == AJ_ARR || k->type == AJ_OBJ) {
        for (size_t i = 0; i < k->count * (k->type == AJ_OBJ ? 2u : 1u); i++) {
            int c = k->type == AJ_ARR ? ajson_at(j, t, i) : -1;
            if (k->type == AJ_ARR && (c <= t || (uint32_t)c >= k->next))
                abort();
        }
        ajson_at(j, t, k->count);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ajson_tok toks[512];
    struct ajson j;
    if (size > 1u << 20 || ajson_parse(&j, (const char *)data, size, toks, 512) < 0)
        return 0;
    if (j.n == 0 || j.tok[0].next != j.n)
        abort();
    for (size_t t = 0; t < j.n; t++) {
        if ((size_t)j.tok[t].start + j.tok[t].len > size)
            abort();
        walk(&j, (int)t);
    }
    return 0;
}
