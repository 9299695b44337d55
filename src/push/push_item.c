/* push_item.c: the item file format, the retry schedule and token tags
 * (see push_int.h). No I/O. */
#include "push/push_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool clean(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return false;
    return true;
}

int push_item_parse(const char *data, size_t len, struct push_item_data *out)
{
    memset(out, 0, sizeof *out);
    const char *nl1 = memchr(data, '\n', len);
    if (!nl1)
        return -1;
    size_t alen = (size_t)(nl1 - data);
    const char *ts = nl1 + 1;
    const char *nl2 = memchr(ts, '\n', len - alen - 1);
    if (!nl2)
        return -1;
    size_t tslen = (size_t)(nl2 - ts);
    const char *tok = nl2 + 1;
    size_t toklen = len - (size_t)(tok - data);
    if (toklen > 0 && tok[toklen - 1] == '\n')
        toklen--;
    if (alen == 0 || alen > STORE_ADDR_MAX || !clean(data, alen) || !memchr(data, '@', alen))
        return -1;
    if (tslen == 0 || tslen > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < tslen; i++) {
        if (ts[i] < '0' || ts[i] > '9')
            return -1;
        v = v * 10 + (ts[i] - '0');
    }
    if (toklen == 0 || toklen > STORE_TOKEN_MAX || !clean(tok, toklen))
        return -1;
    memcpy(out->addr, data, alen);
    out->start_ts = v;
    memcpy(out->token, tok, toklen);
    out->token_len = toklen;
    return 0;
}

int push_item_format(const char *addr, int64_t start_ts, const char *token, struct buf *out)
{
    return buf_printf(out, "%s\n%lld\n%s", addr, (long long)start_ts, token) < 0 ? -1 : 0;
}

bool push_item_name_ok(const char *name)
{
    size_t i = 0;
    for (; name[i]; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return i == PUSH_ID_LEN;
}

bool push_item_name_tmp(const char *name)
{
    size_t n = strlen(name);
    return (n >= 4 && strcmp(name + n - 4, ".tmp") == 0) || strstr(name, ".tmp-") != NULL;
}

uint64_t push_token_hash(const char *token, size_t len)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)token[i];
        h *= 1099511628211ull;
    }
    return h;
}

void push_token_tag(const char *token, size_t len, char out[9])
{
    snprintf(out, 9, "%08x", (unsigned)(push_token_hash(token, len) >> 32));
}

uint64_t push_retry_delay_ms(unsigned attempts, double scale)
{
    uint64_t s = 1;
    for (unsigned i = 0; i < attempts && i < 10; i++)
        s *= 8;
    double ms = (double)s * 1000.0 * scale;
    return ms < 1 ? 1 : (uint64_t)ms;
}

bool push_should_drop(unsigned attempts, int64_t start_ts, int64_t now_ms, double scale)
{
    if (attempts >= PUSH_ATTEMPTS_MAX)
        return true;
    double age_ms = (double)now_ms - (double)start_ts * 1000.0;
    return age_ms > (double)PUSH_MAX_AGE_S * 1000.0 * scale;
}

double push_time_scale(const char *env)
{
    if (!env || !*env)
        return 1.0;
    char *end;
    double v = strtod(env, &end);
    if (*end || !(v > 0) || v > 1)
        return 1.0;
    return v;
}
