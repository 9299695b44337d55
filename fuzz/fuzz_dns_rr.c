/* fuzz_dns_rr.c: libFuzzer harness for the answer-section parser of
 * `dns --check` (core/dns_rr.c). The first byte picks the record type;
 * the rest is the DNS message. Invariants trap when broken: at most
 * DNS_RR_MAX records, each a NUL-terminated string of at most
 * DNS_RR_TEXT_MAX bytes; a failed parse leaves the set empty. */
#include <stdint.h>
#include <string.h>

#include "core/dns_rr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int types[] = {DNS_T_NS, DNS_T_CNAME, DNS_T_MX, DNS_T_TXT, DNS_T_SRV, DNS_T_CAA};
    if (size < 1)
        return 0;
    int type = types[data[0] % (sizeof types / sizeof types[0])];
    struct dns_rr_set set;
    int rc = dns_rr_parse(data + 1, size - 1, type, &set);
    if (set.n > DNS_RR_MAX || (rc < 0 && set.n != 0))
        __builtin_trap();
    for (size_t i = 0; i < set.n; i++)
        if (!set.text[i] || strlen(set.text[i]) > DNS_RR_TEXT_MAX)
            __builtin_trap();
    dns_rr_set_free(&set);
    return 0;
}
