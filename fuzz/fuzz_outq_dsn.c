/* fuzz_outq_dsn.c: the delivery status notification's input side
 * (smtp/outq_dsn.c): the header block taken from the original message
 * (whole lines only, bounded, a prefix of the input) and its Message-ID,
 * then a DSN built around them must keep its MIME frame. */
#include "smtp/outq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    size_t max = size ? data[0] * 16u : 0;
    char id[128];
    size_t n = outq_dsn_headers(msg, size, max, id, sizeof id);
    if (n > size || n > max || strlen(id) >= sizeof id)
        abort();
    if (n && n < size && msg[n - 1] != '\n')
        abort();
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            abort();
    struct outq_dsn_rcpt r = {"a@b.example", "550 5.1.2 b.example: domain not found"};
    struct buf out = {0};
    if (outq_dsn_build(&out, "relay.example", "x@relay.example", &r, 1, msg, n, 0, 0,
                       size & 1) < 0)
        abort();
    if (!memmem(out.data, out.len, "Content-Type: message/delivery-status", 37) ||
        !memmem(out.data, out.len, "Status: 5.1.2", 13))
        abort();
    buf_free(&out);
    return 0;
}
