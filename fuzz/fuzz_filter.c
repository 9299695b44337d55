/* fuzz_filter.c: libFuzzer harness for the encryption filter. Runs the
 * outgoing and incoming verdicts, the building blocks (armour check and
 * packet walker on the raw input too) and both header cleanups on arbitrary
 * bytes; the first byte picks the envelope shape. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "filter/filter.h"

static bool enforce_odd(void *ud, const char *rcpt)
{
    (void)ud;
    return strlen(rcpt) % 2 == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sel = size ? data[0] : 0;
    const char *msg = (const char *)data;
    static const char *const rcpts[] = {"bob@example.net", "alice@example.org", "x/y@z", ""};
    struct filter_envelope env = {
        .mail_from = (sel & 1) ? "alice@example.org" : "",
        .rcpts = rcpts,
        .n_rcpts = (size_t)((sel >> 1) & 3),
    };
    struct filter_result r;
    char lines[2][FILTER_REPLY_MAX];
    filter_outgoing(msg, size, &env, &r);
    filter_log_lines(FILTER_OUTGOING, &r, lines);
    filter_incoming(msg, size, &env, (sel & 8) ? enforce_odd : NULL, NULL, &r);
    filter_log_lines(FILTER_INCOMING, &r, lines);
    filter_armor_ok(msg, size, (sel & 16) ? FILTER_INCOMING : FILTER_OUTGOING);
    filter_pgp_packets_ok(data, size);
    char addr[FILTER_ADDR_MAX];
    filter_parse_first_address(msg, size, addr);
    struct buf out = {0};
    filter_clean_submission(msg, size, &out);
    buf_reset(&out);
    filter_clean_delivery(msg, size, &out);
    buf_free(&out);
    return 0;
}
