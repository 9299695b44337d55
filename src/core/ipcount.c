/* ipcount.c: per-IP session counters (see ipcount.h). Entries are chained
 * in buckets; the table never holds more entries than open connections. */
#include "core/ipcount.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IPC_BUCKETS 4096
#define IPC_PROTOS 4

struct ipcount {
    struct ipcount *next;
    unsigned refs;
    unsigned count[IPC_PROTOS];
    char ip[46];
};

struct ipcount_table {
    struct ipcount *bucket[IPC_BUCKETS];
};

static uint32_t ip_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h % IPC_BUCKETS;
}

struct ipcount_table *ipcount_table_new(void) { return calloc(1, sizeof(struct ipcount_table)); }

void ipcount_table_free(struct ipcount_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < IPC_BUCKETS; i++) {
        struct ipcount *e = t->bucket[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(t);
}

struct ipcount *ipcount_acquire(struct ipcount_table *t, const char *ip)
{
    if (!t)
        return NULL;
    uint32_t h = ip_hash(ip);
    for (struct ipcount *e = t->bucket[h]; e; e = e->next) {
        if (strcmp(e->ip, ip) == 0) {
            e->refs++;
            return e;
        }
    }
    struct ipcount *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    strncpy(e->ip, ip, sizeof e->ip - 1);
    e->refs = 1;
    e->next = t->bucket[h];
    t->bucket[h] = e;
    return e;
}

void ipcount_release(struct ipcount_table *t, struct ipcount *e)
{
    if (!t || !e || --e->refs > 0)
        return;
    struct ipcount **pp = &t->bucket[ip_hash(e->ip)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    free(e);
}

unsigned ipcount_get(const struct ipcount *e, int proto)
{
    return e && proto >= 0 && proto < IPC_PROTOS ? e->count[proto] : 0;
}

void ipcount_inc(struct ipcount *e, int proto)
{
    if (e && proto >= 0 && proto < IPC_PROTOS)
        e->count[proto]++;
}

void ipcount_dec(struct ipcount_table *t, struct ipcount *e, int proto)
{
    (void)t;
    if (e && proto >= 0 && proto < IPC_PROTOS && e->count[proto] > 0)
        e->count[proto]--;
}
