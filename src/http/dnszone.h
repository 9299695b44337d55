/* dnszone.h: the DNS zone a relay needs (federation facts §7), as zone-file
 * text, and the `dns` command that prints it. */
#ifndef CM_HTTP_DNSZONE_H
#define CM_HTTP_DNSZONE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"

#define DNSZONE_TTL 3600

struct dnszone_in {
    const struct config *cfg;
    const char *dkim_record;        /* "v=DKIM1;k=rsa;p=...;s=email;t=s" */
    const char *const *addrs;       /* the domain's A/AAAA as found in DNS */
    size_t n_addrs;
    const char *addr_error;         /* the lookup failed: why (else NULL) */
    int64_t now;                    /* the MTA-STS id: YYYYmmddHHMM (UTC) */
};

/* Appends the zone: required records, then recommended ones (each group
 * under a comment), absolute names, TTL 3600, TXT values split into
 * quoted strings of at most 255 bytes. 0 or -1 (memory). */
int dnszone_format(const struct dnszone_in *in, struct buf *out);

/* `chatmaild-server -c FILE dns [--zonefile F] [--check]`: the zone on
 * stdout or in F; --check asks the zone's authoritative server (the first
 * dns_servers entry when set, else the domain's NS) for each record, prints
 * one line per record (ok / MISSING / DIFFERS / warning for recommended
 * ones) and exits 1 when a required one is missing or differs (the DKIM key at dkim_key_path is created when missing, as the server
 * does; A/AAAA as DNS has them, through dns_servers when set). An
 * IPv4-literal relay
 * needs no DNS: says so. Exit status. */
int dnszone_cli(const struct config *cfg, int argc, char **argv);

#endif
