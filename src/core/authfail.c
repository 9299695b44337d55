/* authfail.c: the log line, the per-address accounting and the delayed
 * answer of failed authentications (see authfail.h). */
#include "core/authfail.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/gcra.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/net.h"

static struct gcra *fails; /* per client address; made on first use */

static void clean(char *out, size_t cap, const char *in)
{
    size_t n = 0;
    for (; in && in[n] && n + 1 < cap; n++) {
        unsigned char ch = (unsigned char)in[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || strchr("@._+-", ch);
        out[n] = ok ? (char)ch : '?';
    }
    if (n == 0 && cap > 1)
        out[n++] = '-';
    out[n] = '\0';
}

unsigned authfail_record(const char *proto, const char *ip, const char *user)
{
    char u[LIM_AUTH_FAIL_USER + 1], a[LIM_LOGIN_IP + 1];
    clean(u, sizeof u, user);
    clean(a, sizeof a, ip);
    log_info("auth failed: proto=%s ip=%s user=%s", proto, a, u);
    if (!fails)
        fails = gcra_new((uint64_t)LIM_AUTH_FAIL_INTERVAL_MS * 1000000u, LIM_AUTH_FAIL_BURST,
                         LIM_AUTH_FAIL_KEYS);
    if (fails && !gcra_allow(fails, a, strlen(a), uv_hrtime(), NULL))
        return LIM_AUTH_FAIL_PENALTY_MS;
    return LIM_AUTH_FAIL_DELAY_MS;
}

struct authfail_wait {
    uv_timer_t timer;
    void (*cb)(void *ud);
    void *ud;
};

static void on_closed(uv_handle_t *h) { free(h->data); }

static void on_fire(uv_timer_t *t)
{
    struct authfail_wait *w = t->data;
    void (*cb)(void *) = w->cb;
    w->cb = NULL;
    uv_close((uv_handle_t *)&w->timer, on_closed);
    if (cb)
        cb(w->ud);
}

struct authfail_wait *authfail_wait_start(unsigned ms, void (*cb)(void *ud), void *ud)
{
    struct authfail_wait *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->cb = cb;
    w->ud = ud;
    uv_timer_init(net_loop(), &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, on_fire, ms, 0);
    return w;
}

void authfail_wait_cancel(struct authfail_wait *w)
{
    if (!w || !w->cb)
        return;
    w->cb = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_closed);
}
