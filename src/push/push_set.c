/* push_set.c: the counted set of pending tokens (see push_int.h): open
 * addressing over 64-bit keys with linear probing and backward-shift
 * deletion (no tombstones), doubled at 3/4 load. No I/O. */
#include "push/push_int.h"

#include <stdlib.h>
#include <string.h>

struct push_set_slot {
    uint64_t key; /* 0 = empty */
    uint32_t count;
};

static uint64_t norm(uint64_t key)
{
    return key ? key : 1; /* 0 marks an empty slot */
}

static size_t find(const struct push_set *s, uint64_t key)
{
    size_t mask = s->cap - 1, i = (size_t)(key ^ (key >> 29)) & mask;
    while (s->slots[i].key && s->slots[i].key != key)
        i = (i + 1) & mask;
    return i;
}

static int grow(struct push_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct push_set_slot *old = s->slots;
    size_t old_cap = s->cap;
    s->slots = calloc(cap, sizeof *s->slots);
    if (!s->slots) {
        s->slots = old;
        return -1;
    }
    s->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key)
            s->slots[find(s, old[i].key)] = old[i];
    free(old);
    return 0;
}

int push_set_add(struct push_set *s, uint64_t key)
{
    key = norm(key);
    if ((s->used + 1) * 4 > s->cap * 3 && grow(s) < 0)
        return -1;
    size_t i = find(s, key);
    if (!s->slots[i].key) {
        s->slots[i].key = key;
        s->used++;
    }
    s->slots[i].count++;
    return 0;
}

bool push_set_has(const struct push_set *s, uint64_t key)
{
    return s->cap && s->slots[find(s, norm(key))].key != 0;
}

void push_set_del(struct push_set *s, uint64_t key)
{
    if (!s->cap)
        return;
    size_t mask = s->cap - 1, i = find(s, norm(key));
    if (!s->slots[i].key || --s->slots[i].count > 0)
        return;
    /* backward shift: later entries of the probe run move into the hole */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint64_t k = s->slots[j].key;
        if (!k)
            break;
        size_t home = (size_t)(k ^ (k >> 29)) & mask;
        /* does j's entry probe through the hole i? (cyclic: home not in (i, j]) */
        bool through = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (through) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i].key = 0;
    s->slots[i].count = 0;
    s->used--;
}

size_t push_set_size(const struct push_set *s)
{
    return s->used;
}

void push_set_free(struct push_set *s)
{
    free(s->slots);
    memset(s, 0, sizeof *s);
}
