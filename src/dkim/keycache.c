/* keycache.c: a bounded LRU of DKIM key records by name
 * ("<s>._domainkey.<d>"), each valid until an expiry time the caller gives.
 * Pure data structure: no clock of its own, no I/O. A fixed array of slots,
 * a chained hash index and a doubly linked recency list (indices, not
 * pointers); a full cache evicts its least recently used entry. */
#include "dkim/dkim.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NIL ((size_t)-1)

struct slot {
    char *name;   /* lower case; NULL = free */
    char *data;   /* the records back to back */
    int64_t expires;
    enum dkim_lookup status;
    size_t n;
    size_t len[DKIM_MAX_TXT_RECORDS];
    size_t prev, next; /* recency: head = most recent */
    size_t chain;      /* next slot in the same bucket */
};

struct dkim_keycache {
    struct slot *s;
    size_t cap, used, nbuckets;
    size_t *bucket;
    size_t head, tail, free_list;
};

static size_t hash_name(const char *name, size_t nb)
{
    uint64_t h = 1469598103934665603ull;
    for (; *name; name++) {
        unsigned char c = (unsigned char)*name;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        h = (h ^ c) * 1099511628211ull;
    }
    return (size_t)(h % nb);
}

struct dkim_keycache *dkim_keycache_new(size_t capacity)
{
    if (capacity == 0)
        capacity = 1;
    struct dkim_keycache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cap = capacity;
    c->nbuckets = capacity * 2 + 1;
    c->s = calloc(capacity, sizeof *c->s);
    c->bucket = malloc(c->nbuckets * sizeof *c->bucket);
    if (!c->s || !c->bucket) {
        free(c->s);
        free(c->bucket);
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < c->nbuckets; i++)
        c->bucket[i] = NIL;
    for (size_t i = 0; i < capacity; i++)
        c->s[i].next = i + 1 < capacity ? i + 1 : NIL;
    c->free_list = 0;
    c->head = c->tail = NIL;
    return c;
}

void dkim_keycache_free(struct dkim_keycache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++) {
        free(c->s[i].name);
        free(c->s[i].data);
    }
    free(c->s);
    free(c->bucket);
    free(c);
}

static void unlink_lru(struct dkim_keycache *c, size_t i)
{
    struct slot *s = &c->s[i];
    if (s->prev != NIL)
        c->s[s->prev].next = s->next;
    else
        c->head = s->next;
    if (s->next != NIL)
        c->s[s->next].prev = s->prev;
    else
        c->tail = s->prev;
}

static void push_front(struct dkim_keycache *c, size_t i)
{
    struct slot *s = &c->s[i];
    s->prev = NIL;
    s->next = c->head;
    if (c->head != NIL)
        c->s[c->head].prev = i;
    c->head = i;
    if (c->tail == NIL)
        c->tail = i;
}

static size_t find(const struct dkim_keycache *c, const char *name)
{
    for (size_t i = c->bucket[hash_name(name, c->nbuckets)]; i != NIL; i = c->s[i].chain)
        if (strcasecmp(c->s[i].name, name) == 0)
            return i;
    return NIL;
}

static void remove_slot(struct dkim_keycache *c, size_t i)
{
    struct slot *s = &c->s[i];
    size_t *pp = &c->bucket[hash_name(s->name, c->nbuckets)];
    while (*pp != i)
        pp = &c->s[*pp].chain;
    *pp = s->chain;
    unlink_lru(c, i);
    free(s->name);
    free(s->data);
    memset(s, 0, sizeof *s);
    s->next = c->free_list;
    c->free_list = i;
    c->used--;
}

int dkim_keycache_get(struct dkim_keycache *c, const char *name, int64_t now,
                      struct dkim_keycache_entry *out)
{
    size_t i = find(c, name);
    if (i == NIL)
        return 0;
    struct slot *s = &c->s[i];
    if (now >= s->expires) {
        remove_slot(c, i);
        return 0;
    }
    unlink_lru(c, i);
    push_front(c, i);
    out->status = s->status;
    out->n = s->n;
    const char *p = s->data;
    for (size_t k = 0; k < s->n; k++) {
        out->txt[k] = p;
        out->len[k] = s->len[k];
        p += s->len[k] + 1;
    }
    return 1;
}

int dkim_keycache_put(struct dkim_keycache *c, const char *name, int64_t expires,
                      enum dkim_lookup status, const char *const *txt, const size_t *len,
                      size_t n)
{
    if (status == DKIM_LOOKUP_TEMPFAIL)
        return 0;
    if (n > DKIM_MAX_TXT_RECORDS)
        n = DKIM_MAX_TXT_RECORDS;
    size_t total = 1;
    for (size_t k = 0; k < n; k++)
        total += len[k] + 1;
    char *nm = strdup(name), *data = malloc(total);
    if (!nm || !data) {
        free(nm);
        free(data);
        return -1;
    }
    for (char *q = nm; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    char *p = data;
    for (size_t k = 0; k < n; k++) {
        memcpy(p, txt[k], len[k]);
        p[len[k]] = '\0';
        p += len[k] + 1;
    }
    size_t old = find(c, nm);
    if (old != NIL)
        remove_slot(c, old);
    if (c->free_list == NIL)
        remove_slot(c, c->tail);
    size_t i = c->free_list;
    struct slot *s = &c->s[i];
    c->free_list = s->next;
    s->name = nm;
    s->data = data;
    s->expires = expires;
    s->status = status;
    s->n = n;
    for (size_t k = 0; k < n; k++)
        s->len[k] = len[k];
    size_t b = hash_name(nm, c->nbuckets);
    s->chain = c->bucket[b];
    c->bucket[b] = i;
    push_front(c, i);
    c->used++;
    return 0;
}

void dkim_keycache_drop(struct dkim_keycache *c, const char *name)
{
    size_t i = find(c, name);
    if (i != NIL)
        remove_slot(c, i);
}

size_t dkim_keycache_size(const struct dkim_keycache *c)
{
    return c->used;
}
