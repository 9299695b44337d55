/* fuzz_uidlist.c: dovecot-uidlist parser. Any bytes: no crash, no leak;
 * a parsed list written back in version 3 parses to the same records. */
#include "store/index_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct uidlist *ul)
{
    struct buf b = {0};
    struct uidlist again;
    const char *err;
    if (uidlist_format_header(&b, ul->uidvalidity, ul->nextuid, ul->guid[0] ? ul->guid : "0") < 0)
        abort();
    for (size_t i = 0; i < ul->n; i++)
        if (uidlist_format_rec(&b, ul->recs[i].uid, uidlist_base(ul, &ul->recs[i]),
                               ul->recs[i].size, ul->recs[i].vsize) < 0)
            abort();
    if (uidlist_parse(b.data, b.len, &again, &err) < 0 || again.broken || again.n != ul->n ||
        again.uidvalidity != ul->uidvalidity || again.nextuid != ul->nextuid)
        abort();
    for (size_t i = 0; i < ul->n; i++)
        if (again.recs[i].uid != ul->recs[i].uid ||
            strcmp(uidlist_base(&again, &again.recs[i]), uidlist_base(ul, &ul->recs[i])) != 0)
            abort();
    uidlist_free(&again);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct uidlist ul;
    const char *err;
    if (uidlist_parse((const char *)data, size, &ul, &err) == 0) {
        roundtrip(&ul);
        uidlist_free(&ul);
    }
    return 0;
}
