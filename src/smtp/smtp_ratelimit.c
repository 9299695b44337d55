/* smtp_ratelimit.c: GCRA per sender in a bounded open-addressing table
 * (linear probing, backward-shift deletion, so no tombstones). */
#include "smtp/smtp_ratelimit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GC_SLOTS_PER_CHECK 8

struct rl_entry {
    char *key;    /* NULL = empty slot */
    uint64_t tat; /* theoretical arrival time, ns */
};

struct smtp_ratelimit {
    uint64_t t;   /* emission interval, ns */
    uint64_t tau; /* burst tolerance = t * burst, ns */
    size_t max_keys, n_keys, cap, gc_cursor;
    struct rl_entry *slots;
};

struct smtp_ratelimit *smtp_ratelimit_new(long per_minute, long burst, size_t max_keys)
{
    struct smtp_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    if (per_minute < 1)
        per_minute = 1;
    if (burst < 1)
        burst = 1;
    if (max_keys < 1)
        max_keys = 1;
    rl->t = 60000000000ull / (uint64_t)per_minute;
    rl->tau = rl->t * (uint64_t)burst;
    rl->max_keys = max_keys;
    rl->cap = 16;
    while (rl->cap < max_keys * 2)
        rl->cap *= 2;
    rl->slots = calloc(rl->cap, sizeof *rl->slots);
    if (!rl->slots) {
        free(rl);
        return NULL;
    }
    return rl;
}

void smtp_ratelimit_free(struct smtp_ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < rl->cap; i++)
        free(rl->slots[i].key);
    free(rl->slots);
    free(rl);
}

size_t smtp_ratelimit_keys(const struct smtp_ratelimit *rl)
{
    return rl->n_keys;
}

static size_t hash_key(const char *k)
{
    uint64_t h = 1469598103934665603ull;
    for (; *k; k++) {
        h ^= (unsigned char)*k;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

static size_t find_slot(const struct smtp_ratelimit *rl, const char *key)
{
    size_t i = hash_key(key) & (rl->cap - 1);
    while (rl->slots[i].key && strcmp(rl->slots[i].key, key) != 0)
        i = (i + 1) & (rl->cap - 1);
    return i;
}

/* Removes slot i and shifts later members of the probe run back. */
static void remove_slot(struct smtp_ratelimit *rl, size_t i)
{
    free(rl->slots[i].key);
    rl->slots[i].key = NULL;
    rl->n_keys--;
    size_t j = i;
    for (;;) {
        j = (j + 1) & (rl->cap - 1);
        if (!rl->slots[j].key)
            return;
        size_t home = hash_key(rl->slots[j].key) & (rl->cap - 1);
        /* j's entry may move to i when home is not in (i, j] cyclically */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        rl->slots[i] = rl->slots[j];
        rl->slots[j].key = NULL;
        i = j;
    }
}

/* A key whose TAT is at most one interval ahead is treated exactly like a
 * new key (see smtp_ratelimit_check), so it can go. */
static void gc_step(struct smtp_ratelimit *rl, uint64_t now, size_t slots)
{
    for (size_t k = 0; k < slots && rl->n_keys > 0; k++) {
        size_t i = rl->gc_cursor & (rl->cap - 1);
        if (rl->slots[i].key && rl->slots[i].tat <= now + rl->t)
            remove_slot(rl, i); /* slot i may now hold a shifted entry */
        else
            rl->gc_cursor++;
    }
}

static void evict_least_limited(struct smtp_ratelimit *rl)
{
    size_t best = rl->cap;
    for (size_t i = 0; i < rl->cap; i++) {
        if (rl->slots[i].key && (best == rl->cap || rl->slots[i].tat < rl->slots[best].tat))
            best = i;
    }
    if (best < rl->cap)
        remove_slot(rl, best);
}

static void lower_key(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
    out[i] = '\0';
}

int smtp_ratelimit_check(struct smtp_ratelimit *rl, const char *sender, uint64_t now,
                         uint64_t *until_ns)
{
    char key[512];
    lower_key(sender, key, sizeof key);
    size_t i = find_slot(rl, key);
    uint64_t fresh = now + rl->t; /* governor's starting state */
    uint64_t tat = rl->slots[i].key && rl->slots[i].tat > fresh ? rl->slots[i].tat : fresh;
    uint64_t earliest = tat > rl->tau ? tat - rl->tau : 0;
    if (now < earliest) {
        if (until_ns)
            *until_ns = earliest;
        return 1;
    }
    uint64_t next = (tat > now ? tat : now) + rl->t;
    if (!rl->slots[i].key) {
        if (rl->n_keys >= rl->max_keys) {
            gc_step(rl, now, rl->cap);
            if (rl->n_keys >= rl->max_keys)
                evict_least_limited(rl);
            i = find_slot(rl, key);
        }
        char *dup = strdup(key);
        if (!dup)
            return 0; /* out of memory: let the transaction pass unlimited */
        rl->slots[i].key = dup;
        rl->n_keys++;
    }
    rl->slots[i].tat = next;
    gc_step(rl, now, GC_SLOTS_PER_CHECK);
    return 0;
}

void smtp_ratelimit_reply(char *out, size_t cap, const char *sender, uint64_t until_ns)
{
    snprintf(out, cap, "450 4.7.1: Too much mail from %s, rate-limited until %llu.%03llus", sender,
             (unsigned long long)(until_ns / 1000000000ull),
             (unsigned long long)(until_ns / 1000000ull % 1000ull));
}
