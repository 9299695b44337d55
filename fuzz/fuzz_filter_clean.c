/* fuzz_filter_clean.c: libFuzzer harness for the privacy header cleanup.
 * Besides "no crash", checks what cleanup promises: the output is never
 * longer than the input plus one added "Subject: [...]" line, cleaning is
 * idempotent, and the body after the first blank line is kept byte for byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "filter/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_one(int (*fn)(const char *, size_t, struct buf *), const char *msg, size_t size)
{
    struct buf a = {0}, b = {0};
    if (fn(msg, size, &a) < 0)
        abort();
    if (a.len > size + 18)
        abort();
    if (fn(a.data, a.len, &b) < 0 || b.len != a.len || memcmp(a.data, b.data, a.len) != 0)
        abort();
    const char *sep = memmem(msg, size, "\r\n\r\n", 4);
    if (sep && !(size >= 2 && msg[0] == '\r' && msg[1] == '\n')) {
        size_t body = size - (size_t)(sep + 4 - msg);
        if (a.len < body || memcmp(a.data + a.len - body, sep + 4, body) != 0)
            abort();
    }
    buf_free(&a);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(filter_clean_submission, (const char *)data, size);
    check_one(filter_clean_delivery, (const char *)data, size);
    return 0;
}
