/* fuzz_config.c: libFuzzer harness for the chatmail.ini parser.
 * Feeds arbitrary text to config_parse_string (no file probing), formats
 * the result or the errors, and checks two properties: a configuration that
 * parses formats into text that parses again without error (except lines
 * that grew past inih's line limit: joined lists, long derived paths), and
 * the error list never overflows its bound. */
#include "core/buf.h"
#include "core/config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_INPUT (64 * 1024)

static void reparse(const char *text)
{
    struct config again;
    struct config_errors errs;
    if (config_parse_string(text, &again, &errs, false) != 0) {
        bool too_long = false; /* the key on that line then goes missing too */
        for (size_t i = 0; i < errs.n; i++)
            too_long |= strstr(errs.e[i].reason, "line longer than") != NULL;
        if (!too_long)
            abort(); /* config_format wrote something the parser refuses */
    }
    config_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    struct config cfg;
    struct config_errors errs;
    int rc = config_parse_string(text, &cfg, &errs, false);
    if (errs.n > CONFIG_MAX_ERRORS || (rc == 0) != (errs.n == 0))
        abort();
    struct buf out = {0};
    if (rc == 0) {
        if (config_format(&cfg, &out) == 0 && out.data)
            reparse(out.data);
    } else {
        config_format_errors(&errs, &out);
    }
    long mb;
    config_parse_size_mb(text, &mb);
    buf_free(&out);
    config_free(&cfg);
    free(text);
    return 0;
}
