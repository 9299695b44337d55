/* gcra.c: keyed GCRA rate limiter over an open-addressing hash table of
 * (hash, theoretical arrival time) pairs; see gcra.h. */
#include "core/gcra.h"

#include <sodium.h>
#include <stdlib.h>

struct gcra_slot {
    uint64_t h;   /* 0 = empty */
    uint64_t tat; /* theoretical arrival time of the next conforming request */
};

struct gcra {
    uint64_t interval, tolerance;
    size_t cap, used, max_keys;
    struct gcra_slot *slot;
    unsigned char hkey[crypto_shorthash_KEYBYTES];
};

struct gcra *gcra_new(uint64_t interval_ns, unsigned burst, size_t max_keys)
{
    if (interval_ns == 0 || max_keys == 0 || max_keys > (SIZE_MAX / 4) / sizeof(struct gcra_slot))
        return NULL;
    struct gcra *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->cap = 16;
    while (g->cap < max_keys * 2) /* load factor at most 1/2 */
        g->cap *= 2;
    g->slot = calloc(g->cap, sizeof *g->slot);
    if (!g->slot || sodium_init() < 0) {
        free(g->slot);
        free(g);
        return NULL;
    }
    g->interval = interval_ns;
    g->tolerance = interval_ns * burst;
    g->max_keys = max_keys;
    randombytes_buf(g->hkey, sizeof g->hkey);
    return g;
}

void gcra_free(struct gcra *g)
{
    if (!g)
        return;
    free(g->slot);
    free(g);
}

size_t gcra_size(const struct gcra *g) { return g->used; }

static uint64_t key_hash(const struct gcra *g, const void *key, size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, key, len, g->hkey);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof out; i++)
        h = (h << 8) | out[i];
    return h ? h : 1;
}

/* Rebuilds the table with the entries that have not drained by now. */
static void sweep(struct gcra *g, uint64_t now)
{
    struct gcra_slot *fresh = calloc(g->cap, sizeof *fresh);
    if (!fresh)
        return;
    size_t used = 0;
    for (size_t i = 0; i < g->cap; i++) {
        struct gcra_slot s = g->slot[i];
        if (!s.h || s.tat <= now)
            continue;
        size_t j = s.h & (g->cap - 1);
        while (fresh[j].h)
            j = (j + 1) & (g->cap - 1);
        fresh[j] = s;
        used++;
    }
    free(g->slot);
    g->slot = fresh;
    g->used = used;
}

static struct gcra_slot *find(struct gcra *g, uint64_t h)
{
    size_t j = h & (g->cap - 1);
    while (g->slot[j].h && g->slot[j].h != h)
        j = (j + 1) & (g->cap - 1);
    return &g->slot[j];
}

bool gcra_allow(struct gcra *g, const void *key, size_t keylen, uint64_t now_ns,
                uint64_t *retry_ns)
{
    uint64_t h = key_hash(g, key, keylen);
    struct gcra_slot *s = find(g, h);
    if (!s->h) {
        if (g->used >= g->max_keys) {
            sweep(g, now_ns);
            s = find(g, h);
        }
        if (g->used >= g->max_keys) {
            if (retry_ns)
                *retry_ns = g->interval;
            return false;
        }
        s->h = h;
        s->tat = now_ns;
        g->used++;
    }
    uint64_t tat = s->tat > now_ns ? s->tat : now_ns;
    if (tat - now_ns > g->tolerance) {
        if (retry_ns)
            *retry_ns = tat - now_ns - g->tolerance;
        return false;
    }
    s->tat = tat + g->interval;
    return true;
}
