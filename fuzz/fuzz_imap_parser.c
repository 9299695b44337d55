/* fuzz_imap_parser.c: arbitrary bytes through the IMAP command reader and,
 * for each command read, the argument parser. */
#include <stdint.h>
#include <string.h>

#include "imap/parser.h"

static void walk(const struct imap_arg *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].type == IMAP_ARG_LIST)
            walk(v[i].list, v[i].n);
        else if (v[i].str && v[i].type != IMAP_ARG_LITERAL && strlen(v[i].str) != v[i].len)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imap_reader r;
    imap_reader_init(&r, 4096);
    const char *p = (const char *)data;
    size_t n = size;
    while (n > 0) {
        size_t used = 0;
        enum imap_read_result res = imap_reader_feed(&r, p, n, &used);
        p += used;
        n -= used;
        if (res == IMAP_READ_COMMAND) {
            size_t len;
            const char *cmd = imap_reader_command(&r, &len);
            char tag[64], name[32];
            const char *rest, *err;
            size_t rl;
            if (imap_split_command(cmd, len, tag, sizeof tag, name, sizeof name, &rest, &rl,
                                   &err) == 0) {
                struct imap_args a;
                if (imap_parse_args(rest, rl, &a, &err) == 0) {
                    walk(a.v, a.n);
                    imap_args_free(&a);
                }
            }
            imap_reader_next(&r);
        } else if (res == IMAP_READ_ERROR) {
            imap_reader_next(&r);
        } else if (used == 0) {
            break;
        }
    }
    imap_reader_free(&r);
    return 0;
}
