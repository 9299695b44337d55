/* dns_rr.h: the records of one type in a DNS response's answer section,
 * as zone-file presentation text of their data (sans-I/O; names through
 * c-ares' ares_expand_name, so compression pointers are followed and
 * checked). Types: MX "10 host.", TXT the strings joined (no quotes),
 * CNAME and NS "host.", SRV "prio weight port target.", CAA
 * "flags tag \"value\"". Used by `dns --check`. */
#ifndef CM_CORE_DNS_RR_H
#define CM_CORE_DNS_RR_H

#include <stddef.h>

#define DNS_RR_MAX 32          /* records kept of one answer */
#define DNS_RR_TEXT_MAX 4096   /* bytes of one record's text */

enum { DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_SRV = 33,
       DNS_T_CAA = 257 };

struct dns_rr_set {
    size_t n;
    char *text[DNS_RR_MAX];
};

/* Parses abuf; the answers of `type` (others, CNAMEs followed by the
 * server included, are skipped) into set (caller frees with
 * dns_rr_set_free). 0, or -1 for a malformed message or memory (set
 * emptied). */
int dns_rr_parse(const unsigned char *abuf, size_t alen, int type, struct dns_rr_set *set);
void dns_rr_set_free(struct dns_rr_set *set);

#endif
