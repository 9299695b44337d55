/* key_parse.c: the key record at <s>._domainkey.<d> (RFC 6376 §3.6.1,
 * RFC 8463 §4) into struct dkim_key. Pure; the caller joins the strings of
 * one TXT record before calling. */
#include "core/base64.h"
#include "dkim/dkim_int.h"

#include <string.h>
#include <strings.h>

static int parse_p(const struct dkim_tag *t, struct dkim_key *k, const char **why)
{
    char tmp[2 * DKIM_MAX_KEY_BYTES];
    size_t n;
    long got;
    if (dkim_tag_compact(t, tmp, sizeof tmp, &n) < 0) {
        *why = "p= too long";
        return -1;
    }
    if (n == 0) {
        k->revoked = true;
        return 0;
    }
    if ((got = base64_decode(tmp, n, k->pub, sizeof k->pub)) <= 0) {
        *why = "bad base64 in p=";
        return -1;
    }
    k->pub_len = (size_t)got;
    return 0;
}

int dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, const char **why)
{
    struct dkim_tagit it;
    struct dkim_tag t;
    unsigned seen = 0; /* v h k n p s t */
    bool first = true, have_p = false;
    int r;
    memset(out, 0, sizeof *out);
    out->type = DKIM_KEY_RSA;
    dkim_tagit_init(&it, txt, len);
    while ((r = dkim_tag_next(&it, &t, why)) == 1) {
        static const char names[] = "vhknpst";
        if (t.name_len == 1 && strchr(names, t.name[0])) {
            unsigned bit = 1u << (strchr(names, t.name[0]) - names);
            if (seen & bit) {
                *why = "duplicate tag";
                return -1;
            }
            seen |= bit;
        }
        if (dkim_tag_is(&t, "v")) {
            if (!first || t.val_len != 5 || memcmp(t.val, "DKIM1", 5) != 0) {
                *why = "v= is not DKIM1 as the first tag";
                return -1;
            }
        } else if (dkim_tag_is(&t, "h")) {
            if (!dkim_tag_list_has(&t, "sha256")) {
                *why = "h= excludes sha256";
                return -1;
            }
        } else if (dkim_tag_is(&t, "k")) {
            if (t.val_len == 3 && strncasecmp(t.val, "rsa", 3) == 0)
                out->type = DKIM_KEY_RSA;
            else if (t.val_len == 7 && strncasecmp(t.val, "ed25519", 7) == 0)
                out->type = DKIM_KEY_ED25519;
            else {
                *why = "unknown key type";
                return -1;
            }
        } else if (dkim_tag_is(&t, "p")) {
            if (parse_p(&t, out, why) < 0)
                return -1;
            have_p = true;
        } else if (dkim_tag_is(&t, "s")) {
            if (!dkim_tag_list_has(&t, "email") && !dkim_tag_list_has(&t, "*")) {
                *why = "s= excludes email";
                return -1;
            }
        } else if (dkim_tag_is(&t, "t")) {
            out->testing = dkim_tag_list_has(&t, "y");
            out->strict = dkim_tag_list_has(&t, "s");
        }
        first = false;
    }
    if (r < 0)
        return -1;
    if (!have_p) {
        *why = "missing p=";
        return -1;
    }
    return 0;
}
