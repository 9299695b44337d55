/* sqlheap.c: SQLite's own heap (see sqlheap.h).
 *
 * Size-classed blocks in 64 KiB slabs mapped with mmap, each slab aligned to
 * its size so that a block finds its slab header by masking its address;
 * requests above the largest class get a mapping of their own. A slab whose
 * last block comes back is unmapped (one empty slab per class is kept, so a
 * connection opened and closed in a loop does not map and unmap every time).
 * One mutex: SQLite calls come from the workers and the loop thread. */
#include "store/sqlheap.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define SLAB ((size_t)64 * 1024)
#define HDR ((size_t)64) /* the slab header's room; keeps blocks 16-byte aligned */
#define BIG UINT32_MAX

static const uint32_t class_size[] = {16,   32,   48,   64,   96,   128,  192,   256,
                                      384,  512,  768,  1024, 1536, 2048, 3072,  4096,
                                      4608, 6144, 8192, 10240, 12288, 16384, 21760};
#define NCLASS (sizeof class_size / sizeof class_size[0])

struct slab {
    struct slab *prev, *next; /* the class's slabs that have a free block */
    void *free;               /* returned blocks, linked through their first word */
    uint32_t cls;             /* class index, or BIG */
    uint32_t used;            /* blocks handed out */
    uint32_t cap;             /* blocks the slab holds */
    uint32_t fresh;           /* blocks never handed out (taken from the end) */
    size_t mapped;            /* bytes of the mapping */
};
_Static_assert(sizeof(struct slab) <= HDR, "slab header fits its room");

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slab *partial[NCLASS]; /* slabs with a free block, per class */
static unsigned empties[NCLASS];     /* of those, wholly unused ones */
static size_t mapped_total;

static struct slab *slab_of(const void *p) { return (struct slab *)((uintptr_t)p & ~(SLAB - 1)); }

/* n bytes (a multiple of SLAB or of the page size) at a SLAB-aligned address. */
static void *map_aligned(size_t n)
{
    size_t want = n + SLAB;
    char *p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + SLAB - 1) & ~(SLAB - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    size_t tail = (size_t)(p + want - (a + n));
    if (tail)
        munmap(a + n, tail);
    return a;
}

static int class_of(size_t n)
{
    for (size_t i = 0; i < NCLASS; i++)
        if (n <= class_size[i])
            return (int)i;
    return -1;
}

static size_t page_round(size_t n)
{
    size_t pg = 4096;
    return (n + pg - 1) & ~(pg - 1);
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
    size_t len = page_round(HDR + n);
    struct slab *s = map_aligned(len);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->cls = BIG;
    s->mapped = len;
    pthread_mutex_lock(&mu);
    mapped_total += len;
    pthread_mutex_unlock(&mu);
    return (char *)s + HDR;
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
        s = map_aligned(SLAB);
        if (!s) {
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        memset(s, 0, sizeof *s);
        s->cls = (uint32_t)c;
        s->cap = s->fresh = (uint32_t)((SLAB - HDR) / class_size[c]);
        s->mapped = SLAB;
        mapped_total += SLAB;
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
    struct slab *s = slab_of(p);
    if (s->cls == BIG) {
        size_t len = s->mapped;
        pthread_mutex_lock(&mu);
        mapped_total -= len;
        pthread_mutex_unlock(&mu);
        munmap(s, len);
        return;
    }
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
            mapped_total -= s->mapped;
            munmap(s, s->mapped);
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
    struct slab *s = slab_of(p);
    return (int)(s->cls == BIG ? s->mapped - HDR : class_size[s->cls]);
}

static int heap_roundup(int n)
{
    if (n <= 0)
        return 0;
    int c = class_of((size_t)n);
    if (c >= 0)
        return (int)class_size[c];
    size_t r = page_round(HDR + (size_t)n) - HDR;
    return r > INT32_MAX ? n : (int)r;
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
    size_t n = mapped_total;
    pthread_mutex_unlock(&mu);
    return n;
}

const sqlite3_mem_methods *sqlheap_methods(void) { return &methods; }
