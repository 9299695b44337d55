/* sqlheap.c: SQLite's own heap (see sqlheap.h).
 *
 * Size-classed blocks in 64 KiB slabs, each aligned to its size so that a
 * block finds its slab header by masking its address. Slabs are carved from
 * 64 MiB regions reserved with mmap (one mapping each: the kernel's limit on
 * mappings is never near); a slab whose last block comes back is handed to
 * the kernel with MADV_DONTNEED and reused later (one empty slab per class
 * stays, so a connection opened and closed in a loop does not churn).
 * Requests above the largest class (rare: SQLite's big buffers) go to
 * malloc with a small header. One mutex: SQLite calls come from the workers
 * and the loop thread. */
#include "store/sqlheap.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SLAB ((size_t)64 * 1024)
#define REGION ((size_t)64 * 1024 * 1024)
#define MAX_REGIONS 256 /* 16 GiB of address space at most */
#define HDR ((size_t)64)   /* the slab header's room; keeps blocks 16-byte aligned */
#define BIG_HDR ((size_t)16)

static const uint32_t class_size[] = {16,   32,   48,   64,   96,   128,  192,   256,
                                      384,  512,  768,  1024, 1536, 2048, 3072,  4096,
                                      4608, 6144, 8192, 10240, 12288, 16384, 21760};
#define NCLASS (sizeof class_size / sizeof class_size[0])

struct slab {
    struct slab *prev, *next; /* the class's slabs that have a free block */
    void *free;               /* returned blocks, linked through their first word */
    uint32_t cls;             /* class index */
    uint32_t used;            /* blocks handed out */
    uint32_t cap;             /* blocks the slab holds */
    uint32_t fresh;           /* blocks never handed out (taken from the end) */
};
_Static_assert(sizeof(struct slab) <= HDR, "slab header fits its room");

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slab *partial[NCLASS]; /* slabs with a free block, per class */
static unsigned empties[NCLASS];     /* of those, wholly unused ones */
static struct slab **spares;         /* slabs given back to the kernel, to reuse; */
static size_t n_spares, cap_spares;   /* kept apart so that their pages stay untouched */
static char *regions[MAX_REGIONS];
static size_t n_regions, region_used; /* bytes carved from the newest region */
static size_t slabs_live;             /* slabs holding memory (not given back) */
static size_t big_bytes;              /* bytes of big blocks */

static struct slab *slab_of(const void *p) { return (struct slab *)((uintptr_t)p & ~(SLAB - 1)); }

static bool in_regions(const void *p)
{
    size_t n = __atomic_load_n(&n_regions, __ATOMIC_ACQUIRE); /* regions only grow */
    for (size_t i = 0; i < n; i++)
        if ((const char *)p >= regions[i] && (const char *)p < regions[i] + REGION)
            return true;
    return false;
}

/* A SLAB-aligned region of REGION bytes, reserved without commitment. */
static char *map_region(void)
{
    size_t want = REGION + SLAB;
    char *p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + SLAB - 1) & ~(SLAB - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    size_t tail = (size_t)(p + want - (a + REGION));
    if (tail)
        munmap(a + REGION, tail);
    return a;
}

/* A slab's worth of memory (under mu). */
static struct slab *slab_get(void)
{
    struct slab *s = n_spares ? spares[--n_spares] : NULL;
    if (!s) {
        if (n_regions == 0 || region_used == REGION) {
            if (n_regions == MAX_REGIONS)
                return NULL;
            char *r = map_region();
            if (!r)
                return NULL;
            regions[n_regions] = r;
            __atomic_store_n(&n_regions, n_regions + 1, __ATOMIC_RELEASE);
            region_used = 0;
        }
        s = (struct slab *)(regions[n_regions - 1] + region_used);
        region_used += SLAB;
    }
    slabs_live++;
    return s;
}

/* Gives a slab's pages back to the kernel and keeps its address for reuse
 * (under mu); without room to note it, the address range stays unused. */
static void slab_put(struct slab *s)
{
    madvise(s, SLAB, MADV_DONTNEED);
    slabs_live--;
    if (n_spares == cap_spares) {
        size_t cap = cap_spares ? cap_spares * 2 : 256;
        struct slab **n = realloc(spares, cap * sizeof(*n));
        if (!n)
            return;
        spares = n;
        cap_spares = cap;
    }
    spares[n_spares++] = s;
}

static int class_of(size_t n)
{
    for (size_t i = 0; i < NCLASS; i++)
        if (n <= class_size[i])
            return (int)i;
    return -1;
}

static void unlink_partial(struct slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        partial[s->cls] = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void push_partial(struct slab *s)
{
    s->prev = NULL;
    s->next = partial[s->cls];
    if (s->next)
        s->next->prev = s;
    partial[s->cls] = s;
}

static void *big_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    size_t *h = malloc(BIG_HDR + n);
    if (!h)
        return NULL;
    h[0] = n;
    pthread_mutex_lock(&mu);
    big_bytes += n;
    pthread_mutex_unlock(&mu);
    return (char *)h + BIG_HDR;
}

static void *heap_malloc(int nbytes)
{
    if (nbytes <= 0)
        return NULL;
    int c = class_of((size_t)nbytes);
    if (c < 0)
        return big_alloc((size_t)nbytes);
    pthread_mutex_lock(&mu);
    struct slab *s = partial[c];
    if (!s) {
        s = slab_get();
        if (!s) {
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        memset(s, 0, sizeof *s);
        s->cls = (uint32_t)c;
        s->cap = s->fresh = (uint32_t)((SLAB - HDR) / class_size[c]);
        push_partial(s);
        empties[c]++;
    }
    if (s->used == 0)
        empties[c]--;
    void *p;
    if (s->free) {
        p = s->free;
        s->free = *(void **)p;
    } else {
        p = (char *)s + HDR + (size_t)(s->cap - s->fresh) * class_size[c];
        s->fresh--;
    }
    if (++s->used == s->cap)
        unlink_partial(s);
    pthread_mutex_unlock(&mu);
    return p;
}

static void heap_free(void *p)
{
    if (!p)
        return;
    if (!in_regions(p)) {
        size_t *h = (size_t *)((char *)p - BIG_HDR);
        pthread_mutex_lock(&mu);
        big_bytes -= h[0];
        pthread_mutex_unlock(&mu);
        free(h);
        return;
    }
    struct slab *s = slab_of(p);
    pthread_mutex_lock(&mu);
    uint32_t c = s->cls;
    bool was_full = s->used == s->cap;
    *(void **)p = s->free;
    s->free = p;
    s->used--;
    if (was_full)
        push_partial(s);
    if (s->used == 0) {
        if (empties[c] >= 1) { /* keep one empty slab per class, return the rest */
            unlink_partial(s);
            slab_put(s);
        } else {
            empties[c]++;
        }
    }
    pthread_mutex_unlock(&mu);
}

static int heap_size(void *p)
{
    if (!p)
        return 0;
    if (!in_regions(p))
        return (int)*(size_t *)((char *)p - BIG_HDR);
    return (int)class_size[slab_of(p)->cls];
}

static int heap_roundup(int n)
{
    if (n <= 0)
        return 0;
    int c = class_of((size_t)n);
    if (c >= 0)
        return (int)class_size[c];
    return (n + 15) & ~15;
}

static void *heap_realloc(void *p, int nbytes)
{
    if (!p)
        return heap_malloc(nbytes);
    int have = heap_size(p);
    if (nbytes <= have && heap_roundup(nbytes) == have)
        return p;
    void *q = heap_malloc(nbytes);
    if (!q)
        return NULL;
    memcpy(q, p, (size_t)(have < nbytes ? have : nbytes));
    heap_free(p);
    return q;
}

static int heap_init(void *ud)
{
    (void)ud;
    return SQLITE_OK;
}

static void heap_shutdown(void *ud) { (void)ud; }

static const sqlite3_mem_methods methods = {
    heap_malloc, heap_free, heap_realloc, heap_size, heap_roundup, heap_init, heap_shutdown, NULL,
};

int sqlheap_install(void)
{
    return sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) == SQLITE_OK ? 0 : -1;
}

size_t sqlheap_mapped(void)
{
    pthread_mutex_lock(&mu);
    size_t n = slabs_live * SLAB + big_bytes;
    pthread_mutex_unlock(&mu);
    return n;
}

const sqlite3_mem_methods *sqlheap_methods(void) { return &methods; }
