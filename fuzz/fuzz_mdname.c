/* fuzz_mdname.c: libFuzzer harness for the maildir file-name parser and
 * the flag rewriter (store/mdname.c). Any bytes: no crash, no overflow,
 * and a name rewritten with the flags it parsed to parses to the same
 * size, time and flags. */
#include "store/maildir.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mdname mn, mn2;
    if (mdname_parse((const char *)data, size, &mn) < 0)
        return 0;
    char name[MDNAME_MAX + 1], out[MDNAME_MAX + 1];
    if (memchr(data, '\0', size))
        return 0;
    memcpy(name, data, size);
    name[size] = '\0';
    if (mdname_set_flags(out, sizeof(out), name, mn.flags, mn.keywords) < 0)
        return 0;
    if (mdname_parse(out, strlen(out), &mn2) < 0)
        abort();
    if (mn2.flags != mn.flags || mn2.keywords != mn.keywords || mn2.has_size != mn.has_size ||
        mn2.size != mn.size || mn2.has_secs != mn.has_secs || mn2.secs != mn.secs ||
        mn2.base_len != mn.base_len || !mn2.has_info)
        abort();
    return 0;
}
