/* fuzz_http_request.c: arbitrary bytes into the HTTP request reader, split
 * at an input-chosen point, with every accessor exercised. */
#include <stdint.h>
#include <string.h>

#include "http/request.h"

static void use_request(const struct http_request *q)
{
    const char *path;
    char host[256];
    (void)http_req_path(q, &path);
    http_req_host(q, host, sizeof host);
    (void)http_req_header(q, "content-type");
    (void)http_req_header_nth(q, "x-mail-to", 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] % (size);
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    struct http_reader r;
    http_reader_init(&r, 4096);
    size_t parts[2] = {split < n ? split : n, 0};
    parts[1] = n - parts[0];
    for (int i = 0; i < 2; i++) {
        const char *q = p;
        size_t left = parts[i];
        while (left > 0) {
            size_t used = 0;
            enum http_read_result res = http_reader_feed(&r, q, left, &used);
            if (res == HTTP_READ_ERROR)
                goto out;
            if (res == HTTP_READ_DONE) {
                use_request(&r.req);
                if (r.req.upgrade)
                    goto out;
                http_reader_next(&r);
            }
            if (used == 0 && res != HTTP_READ_DONE)
                break;
            q += used;
            left -= used;
        }
        p += parts[i];
    }
out:
    http_reader_free(&r);
    return 0;
}
