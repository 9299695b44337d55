/* watch.c: the per-account change registry. IMAP sessions and push
 * register for an account (and optionally one folder); whoever completes a
 * delivery, flag change or expunge calls store_notify*, which runs every
 * matching callback synchronously, in the same loop turn: no polling, no
 * debounce, no inotify. Loop thread only. Removal during a notification
 * only marks the watcher; it is freed when the outermost notify returns. */
#include "store/mailbox.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_BUCKETS 4096 /* power of two; chains stay short at 60k sessions */

struct store_watch {
    struct store_watch *next;
    char *account;
    char *folder; /* NULL = every folder */
    uint32_t hash;
    bool dead;
    store_watch_fn cb;
    void *ud;
};

static struct store_watch *buckets[WATCH_BUCKETS];
static unsigned notify_depth; /* > 0 while callbacks run */
static bool sweep_pending;
static size_t live_count;

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct store_watch *store_watch(const char *account, const char *folder, store_watch_fn cb,
                                void *ud)
{
    struct store_watch *w = calloc(1, sizeof(*w));
    if (!w || !(w->account = strdup(account)) || (folder && !(w->folder = strdup(folder)))) {
        if (w)
            free(w->account);
        free(w);
        return NULL;
    }
    w->hash = hash_str(account);
    w->cb = cb;
    w->ud = ud;
    struct store_watch **b = &buckets[w->hash & (WATCH_BUCKETS - 1)];
    w->next = *b;
    *b = w;
    live_count++;
    return w;
}

static void watch_free(struct store_watch *w)
{
    free(w->account);
    free(w->folder);
    free(w);
}

static void unlink_from_bucket(struct store_watch *w)
{
    struct store_watch **p = &buckets[w->hash & (WATCH_BUCKETS - 1)];
    while (*p && *p != w)
        p = &(*p)->next;
    if (*p)
        *p = w->next;
}

void store_unwatch(struct store_watch *w)
{
    if (!w || w->dead)
        return;
    w->dead = true;
    live_count--;
    if (notify_depth > 0) {
        sweep_pending = true; /* a notification may be walking this chain */
        return;
    }
    unlink_from_bucket(w);
    watch_free(w);
}

static void sweep(void)
{
    for (size_t i = 0; i < WATCH_BUCKETS; i++) {
        struct store_watch **p = &buckets[i];
        while (*p) {
            struct store_watch *w = *p;
            if (w->dead) {
                *p = w->next;
                watch_free(w);
            } else {
                p = &w->next;
            }
        }
    }
    sweep_pending = false;
}

static bool matches(const struct store_watch *w, uint32_t h, const struct store_event *ev)
{
    if (w->dead || w->hash != h || strcmp(w->account, ev->account) != 0)
        return false;
    return !w->folder || !ev->folder || strcmp(w->folder, ev->folder) == 0;
}

void store_notify(const struct store_event *ev)
{
    if (!ev || !ev->account)
        return;
    uint32_t h = hash_str(ev->account);
    /* Watchers added by a callback go to the head of the chain, before
     * the point the walk has reached, so they miss this event. */
    notify_depth++;
    for (struct store_watch *w = buckets[h & (WATCH_BUCKETS - 1)]; w; w = w->next)
        if (matches(w, h, ev))
            w->cb(w->ud, ev);
    if (--notify_depth == 0 && sweep_pending)
        sweep();
}

void store_notify_append(const char *account, const char *folder, uint32_t uid, uint32_t flags,
                         uint64_t modseq, const struct store_watch *origin)
{
    struct store_event ev = {STORE_EV_APPEND, account, folder, uid, flags, modseq, origin};
    store_notify(&ev);
}

void store_notify_flags(const char *account, const char *folder, uint32_t uid, uint32_t flags,
                        uint64_t modseq, const struct store_watch *origin)
{
    struct store_event ev = {STORE_EV_FLAGS, account, folder, uid, flags, modseq, origin};
    store_notify(&ev);
}

void store_notify_expunge(const char *account, const char *folder, uint32_t uid,
                          uint64_t modseq, const struct store_watch *origin)
{
    struct store_event ev = {STORE_EV_EXPUNGE, account, folder, uid, 0, modseq, origin};
    store_notify(&ev);
}

size_t store_watch_count(void) { return live_count; }
