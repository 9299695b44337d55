/* fuzz_metadata_json.c: the metadata.json reader (store_md_parse). Any
 * input parses or is refused; what parses is written back and must read
 * back to the same tokens (the writer and the reader agree). */
#include "core/buf.h"
#include "store/accounts.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store_tokens t, t2;
    int64_t now = 1700000000;
    if (store_md_parse((const char *)data, size, now, &t) < 0) {
        if (t.n != 0)
            abort();
        return 0;
    }
    store_md_expire(&t, now);
    struct buf b = {0};
    if (store_md_format(&t, &b) == 0) {
        if (store_md_parse(b.data, b.len, now, &t2) != 0 || t2.n != t.n)
            abort();
        for (size_t i = 0; i < t.n; i++)
            if (strcmp(t.v[i].token, t2.v[i].token) != 0 || t.v[i].ts != t2.v[i].ts)
                abort();
        store_md_free(&t2);
    }
    buf_free(&b);
    store_md_free(&t);
    return 0;
}
