/* fuzz_push_item.c: the push notification item file
 * (push/push_item.c): whatever parses has bounded, clean fields and formats
 * back into bytes that parse to the same item (a fixed point); the name
 * checks and the schedule never misbehave on any input. */
#include "push/push_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct push_item_data d, again;
    if (push_item_parse((const char *)data, size, &d) == 0) {
        size_t alen = strlen(d.addr);
        if (alen == 0 || alen > STORE_ADDR_MAX || !strchr(d.addr, '@') || d.token_len == 0 ||
            d.token_len > STORE_TOKEN_MAX || strlen(d.token) != d.token_len || d.start_ts < 0)
            abort();
        struct buf b = {0};
        if (push_item_format(d.addr, d.start_ts, d.token, &b) < 0)
            abort();
        if (push_item_parse(b.data, b.len, &again) < 0 || strcmp(again.addr, d.addr) != 0 ||
            again.start_ts != d.start_ts || again.token_len != d.token_len ||
            memcmp(again.token, d.token, d.token_len) != 0)
            abort();
        buf_free(&b);
    }
    char name[64];
    size_t n = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, n);
    name[n] = '\0';
    if (push_item_name_ok(name) && (strlen(name) != PUSH_ID_LEN || push_item_name_tmp(name)))
        abort();
    unsigned attempts = size ? data[0] : 0;
    if (push_retry_delay_ms(attempts, 1.0) == 0)
        abort();
    (void)push_should_drop(attempts, (int64_t)size, (int64_t)size * 1000, 1.0);
    (void)push_time_scale(name);
    return 0;
}
