/* dkimtool.c: a test-only front end to src/dkim, so that integration tests
 * can check our signer and verifier against dkimpy without DNS.
 *
 *   dkimtool sign --key PEM --domain D [--selector S] [--now T] [--chunk N] < msg
 *       writes the DKIM-Signature field followed by the message
 *   dkimtool verify [--key NAME=FILE]... [--tempfail NAME] [--now T]
 *                   [--from-domain D] [--chunk N] < msg
 *       FILE holds the key record(s), one TXT record per line; names not
 *       given count as NXDOMAIN. Prints "result <i> <status> <d> <s> <reason>"
 *       per signature and "verdict <pass|none|invalid|temp> <reply>";
 *       exit 0 on pass, 1 otherwise, 2 on usage errors.
 *   dkimtool record --key PEM [--create]
 *       prints the TXT record to publish (generates the key when asked) */
#include "dkim/dkim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_KEYS 16

static char *slurp(FILE *f, size_t *len)
{
    struct buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_append(&b, tmp, n);
    buf_append(&b, "", 1);
    *len = b.len - 1;
    return b.data;
}

static int usage(void)
{
    fprintf(stderr, "usage: dkimtool sign|verify|record [options] (see the source)\n");
    return 2;
}

static int cmd_record(int argc, char **argv)
{
    const char *key = NULL, *why = NULL;
    bool create = false, created = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--create") == 0)
            create = true;
        else
            return usage();
    }
    if (!key)
        return usage();
    struct dkim_signkey *k = dkim_signkey_load(key, create, &created, &why);
    if (!k) {
        fprintf(stderr, "dkimtool: %s\n", why);
        return 1;
    }
    char *rec = dkim_signkey_dns_record(k);
    printf("%s\n", rec);
    if (created)
        fprintf(stderr, "created %s\n", key);
    free(rec);
    dkim_signkey_free(k);
    return 0;
}

static int cmd_sign(int argc, char **argv)
{
    const char *key = NULL, *domain = NULL, *selector = DKIM_SELECTOR, *why = NULL;
    long long now = (long long)time(NULL);
    size_t chunk = 0;
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--key") == 0)
            key = argv[++i];
        else if (strcmp(argv[i], "--domain") == 0)
            domain = argv[++i];
        else if (strcmp(argv[i], "--selector") == 0)
            selector = argv[++i];
        else if (strcmp(argv[i], "--now") == 0)
            now = atoll(argv[++i]);
        else if (strcmp(argv[i], "--chunk") == 0)
            chunk = (size_t)atol(argv[++i]);
        else
            return usage();
    }
    if (!key || !domain)
        return usage();
    struct dkim_signkey *k = dkim_signkey_load(key, false, NULL, &why);
    if (!k) {
        fprintf(stderr, "dkimtool: %s\n", why);
        return 1;
    }
    size_t len;
    char *msg = slurp(stdin, &len);
    struct dkim_signer *s = dkim_signer_new(k, domain, selector, now, &why);
    if (!s) {
        fprintf(stderr, "dkimtool: %s\n", why);
        return 1;
    }
    for (size_t off = 0; off < len;) {
        size_t n = chunk && len - off > chunk ? chunk : len - off;
        dkim_signer_feed(s, msg + off, n);
        off += n;
    }
    struct buf out = {0};
    int rc = dkim_signer_finish(s, &out, &why);
    if (rc < 0)
        fprintf(stderr, "dkimtool: %s\n", why);
    else {
        fwrite(out.data, 1, out.len, stdout);
        fwrite(msg, 1, len, stdout);
    }
    buf_free(&out);
    dkim_signer_free(s);
    dkim_signkey_free(k);
    free(msg);
    return rc < 0 ? 1 : 0;
}

struct keyfile {
    const char *name;
    const char *path; /* NULL = temporary failure */
};

static void answer(struct dkim_verifier *v, size_t q, const struct keyfile *keys, size_t nkeys)
{
    const char *name = dkim_verifier_query(v, q);
    for (size_t k = 0; k < nkeys; k++) {
        if (strcmp(keys[k].name, name) != 0)
            continue;
        if (!keys[k].path) {
            dkim_verifier_set_key(v, q, DKIM_LOOKUP_TEMPFAIL, NULL, NULL, 0);
            return;
        }
        FILE *f = fopen(keys[k].path, "r");
        size_t len;
        char *data = f ? slurp(f, &len) : NULL;
        if (f)
            fclose(f);
        const char *recs[DKIM_MAX_TXT_RECORDS];
        size_t lens[DKIM_MAX_TXT_RECORDS], n = 0;
        for (char *line = data ? strtok(data, "\n") : NULL; line && n < DKIM_MAX_TXT_RECORDS;
             line = strtok(NULL, "\n")) {
            recs[n] = line;
            lens[n++] = strlen(line);
        }
        dkim_verifier_set_key(v, q, n ? DKIM_LOOKUP_FOUND : DKIM_LOOKUP_NOKEY, recs, lens, n);
        free(data);
        return;
    }
    dkim_verifier_set_key(v, q, DKIM_LOOKUP_NOKEY, NULL, NULL, 0);
}

static int cmd_verify(int argc, char **argv)
{
    struct keyfile keys[MAX_KEYS];
    size_t nkeys = 0, chunk = 0;
    const char *from = NULL;
    long long now = (long long)time(NULL);
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--key") == 0 && nkeys < MAX_KEYS) {
            char *eq = strchr(argv[++i], '=');
            if (!eq)
                return usage();
            *eq = '\0';
            keys[nkeys++] = (struct keyfile){argv[i], eq + 1};
        } else if (strcmp(argv[i], "--tempfail") == 0 && nkeys < MAX_KEYS) {
            keys[nkeys++] = (struct keyfile){argv[++i], NULL};
        } else if (strcmp(argv[i], "--now") == 0) {
            now = atoll(argv[++i]);
        } else if (strcmp(argv[i], "--from-domain") == 0) {
            from = argv[++i];
        } else if (strcmp(argv[i], "--chunk") == 0) {
            chunk = (size_t)atol(argv[++i]);
        } else {
            return usage();
        }
    }
    size_t len;
    char *msg = slurp(stdin, &len);
    struct dkim_verifier *v = dkim_verifier_new();
    for (size_t off = 0; off < len;) {
        size_t n = chunk && len - off > chunk ? chunk : len - off;
        dkim_verifier_feed(v, msg + off, n);
        off += n;
    }
    dkim_verifier_finish(v);
    for (size_t q = 0; q < dkim_verifier_nqueries(v); q++)
        answer(v, q, keys, nkeys);
    dkim_verifier_run(v, now);
    static const char *const st[] = {"pass", "fail", "temperror", "permerror"};
    for (size_t i = 0; i < dkim_verifier_nresults(v); i++) {
        const struct dkim_result *r = dkim_verifier_result(v, i);
        printf("result %zu %s %s %s %s\n", i, st[r->status], r->domain[0] ? r->domain : "-",
               r->selector[0] ? r->selector : "-", r->reason);
    }
    static const char *const vk[] = {"pass", "none", "invalid", "temp"};
    struct dkim_verdict vd = dkim_verifier_verdict(v, from);
    printf("verdict %s %s\n", vk[vd.kind], vd.smtp_reply ? vd.smtp_reply : "-");
    dkim_verifier_free(v);
    free(msg);
    return vd.kind == DKIM_VERDICT_PASS ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "sign") == 0)
        return cmd_sign(argc - 2, argv + 2);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    if (strcmp(argv[1], "record") == 0)
        return cmd_record(argc - 2, argv + 2);
    return usage();
}
