/* certwatch.c: reload the TLS certificate when its files change (see
 * certwatch.h). Loop thread. */
#include "core/certwatch.h"

#include <libgen.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"

struct fileid {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    bool ok;
};

struct certwatch {
    struct tls_server *ts;
    const char *path[2]; /* cert, key (the config's strings) */
    uv_fs_event_t ev[2];
    uv_fs_poll_t poll[2];
    uv_timer_t settle;
    bool ev_on[2], poll_on[2];
    struct fileid loaded[2];
    unsigned retries, reloads, open_handles;
    bool stopping;
};

static void identify(const char *path, struct fileid *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (stat(path, &st) != 0)
        return;
    *id = (struct fileid){st.st_dev, st.st_ino, st.st_size, st.st_mtim, true};
}

static bool same(const struct fileid *a, const struct fileid *b)
{
    return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void on_settled(uv_timer_t *t)
{
    struct certwatch *w = t->data;
    struct fileid now[2];
    identify(w->path[0], &now[0]);
    identify(w->path[1], &now[1]);
    if (same(&now[0], &w->loaded[0]) && same(&now[1], &w->loaded[1]))
        return;
    char err[512];
    if (now[0].ok && now[1].ok && tls_server_reload(w->ts, err, sizeof err) == 0) {
        memcpy(w->loaded, now, sizeof now);
        w->retries = 0;
        w->reloads++;
        log_info("TLS: %s changed: certificate reloaded", w->path[0]);
        return;
    }
    if (!now[0].ok || !now[1].ok)
        snprintf(err, sizeof err, "%s is missing", now[0].ok ? w->path[1] : w->path[0]);
    if (w->retries++ < CERTWATCH_RETRIES) {
        if (w->retries == 1)
            log_warn("TLS: certificate files changed but do not load (yet): %s; "
                     "keeping the old certificate", err);
        uv_timer_start(&w->settle, on_settled, 1000, 0);
        return;
    }
    log_error("TLS: the changed certificate files do not load: %s; keeping the old "
              "certificate until they change again or SIGHUP", err);
    /* the next change starts a new round */
    memcpy(w->loaded, now, sizeof now);
    w->retries = 0;
}

static void arm(struct certwatch *w)
{
    if (!w->stopping)
        uv_timer_start(&w->settle, on_settled, CERTWATCH_SETTLE_MS, 0);
}

static void on_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    (void)name;
    (void)events;
    (void)status;
    arm(h->data);
}

static void on_poll(uv_fs_poll_t *h, int status, const uv_stat_t *prev, const uv_stat_t *cur)
{
    (void)status;
    (void)prev;
    (void)cur;
    arm(h->data);
}

static void on_closed(uv_handle_t *h)
{
    struct certwatch *w = h->data;
    if (--w->open_handles == 0)
        free(w);
}

static void watch_dir(struct certwatch *w, uv_loop_t *loop, int i)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", w->path[i]);
    const char *dir = dirname(copy);
    if (i == 1) { /* the key in the certificate's directory: one watch */
        char c0[4096];
        snprintf(c0, sizeof c0, "%s", w->path[0]);
        if (w->ev_on[0] && strcmp(dirname(c0), dir) == 0)
            return;
    }
    uv_fs_event_init(loop, &w->ev[i]);
    w->ev[i].data = w;
    w->open_handles++;
    w->ev_on[i] = true;
    int rc = uv_fs_event_start(&w->ev[i], on_event, dir, 0);
    if (rc < 0)
        log_warn("TLS: cannot watch %s (%s): certificate changes are seen by polling", dir,
                 uv_strerror(rc));
}

struct certwatch *certwatch_start(uv_loop_t *loop, const struct config *cfg,
                                  struct tls_server *ts)
{
    if (cfg->tls_mode == TLS_MODE_SELF || !cfg->tls_cert_path || !cfg->tls_key_path)
        return NULL;
    struct certwatch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->ts = ts;
    w->path[0] = cfg->tls_cert_path;
    w->path[1] = cfg->tls_key_path;
    identify(w->path[0], &w->loaded[0]);
    identify(w->path[1], &w->loaded[1]);
    uv_timer_init(loop, &w->settle);
    w->settle.data = w;
    w->open_handles = 1;
    for (int i = 0; i < 2; i++) {
        watch_dir(w, loop, i);
        uv_fs_poll_init(loop, &w->poll[i]);
        w->poll[i].data = w;
        w->open_handles++;
        w->poll_on[i] = true;
        int rc = uv_fs_poll_start(&w->poll[i], on_poll, w->path[i], CERTWATCH_POLL_MS);
        if (rc < 0)
            log_warn("TLS: cannot poll %s: %s", w->path[i], uv_strerror(rc));
    }
    return w;
}

void certwatch_stop(struct certwatch *w)
{
    if (!w || w->stopping)
        return;
    w->stopping = true;
    for (int i = 0; i < 2; i++) {
        if (w->ev_on[i])
            uv_close((uv_handle_t *)&w->ev[i], on_closed);
        if (w->poll_on[i])
            uv_close((uv_handle_t *)&w->poll[i], on_closed);
    }
    uv_close((uv_handle_t *)&w->settle, on_closed);
}

unsigned certwatch_reloads(const struct certwatch *w) { return w ? w->reloads : 0; }
