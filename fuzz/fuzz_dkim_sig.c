/* fuzz_dkim_sig.c: the DKIM-Signature tag-list parser, then the same bytes
 * as the field of a small message through the streaming verifier (header
 * splitting, b= removal, header hashing, key answer, verdict). Parsed
 * fields must satisfy what the parser promises. */
#include "dkim/dkim.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key_ed[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

static void check_sig(const struct dkim_sig *s)
{
    bool from = false;
    if (!s->domain[0] || !s->selector[0] || s->b_len == 0 || s->n_hnames == 0 ||
        s->n_hnames > DKIM_MAX_HNAMES || s->b_len > DKIM_MAX_SIG_BYTES || s->bh_len > 64)
        abort();
    for (const char *p = s->domain; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            abort();
    for (size_t i = 0; i < s->n_hnames; i++)
        from |= strcmp(s->hnames[i], "from") == 0;
    if (!from || (s->has_t && s->has_x && s->x < s->t))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dkim_sig s;
    const char *why = NULL;
    if (size > 8192)
        return 0;
    if (dkim_sig_parse((const char *)data, size, &s, &why) == 0)
        check_sig(&s);
    else if (!why)
        abort();

    static const char head[] = "DKIM-Signature:";
    static const char tail[] = "\r\nFrom: a@football.example.com\r\nSubject: x\r\n\r\nbody\r\n";
    struct dkim_verifier *v = dkim_verifier_new();
    if (!v)
        return 0;
    dkim_verifier_feed(v, head, sizeof head - 1);
    dkim_verifier_feed(v, (const char *)data, size);
    dkim_verifier_feed(v, tail, sizeof tail - 1);
    dkim_verifier_finish(v);
    const char *txt = key_ed;
    size_t len = sizeof key_ed - 1;
    for (size_t q = 0; q < dkim_verifier_nqueries(v); q++)
        dkim_verifier_set_key(v, q, q % 2 ? DKIM_LOOKUP_TEMPFAIL : DKIM_LOOKUP_FOUND, &txt, &len, 1);
    dkim_verifier_run(v, 1600000000);
    if (dkim_verifier_nresults(v) > DKIM_MAX_SIGS)
        abort();
    for (size_t i = 0; i < dkim_verifier_nresults(v); i++)
        if (!dkim_verifier_result(v, i)->reason)
            abort();
    struct dkim_verdict vd = dkim_verifier_verdict(v, "football.example.com");
    if ((vd.kind == DKIM_VERDICT_PASS) != (vd.smtp_reply == NULL))
        abort();
    dkim_verifier_free(v);
    return 0;
}
