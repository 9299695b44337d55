/* push_send.c: one notification request over core/curlm (see push.h):
 * POST notification_url, the raw token as the body, the Content-Type
 * header curl would add for a POST body removed ("Content-Type:"). */
#include "push/push_int.h"

#include <stdlib.h>

#include "core/config.h"
#include "core/curlm.h"
#include "core/log.h"
#include "core/metrics.h"

struct send_ctx {
    void (*done)(void *ud, enum push_outcome o, long status);
    void *ud;
};

static void on_answer(void *ud, const struct curlm_result *r)
{
    struct send_ctx c = *(struct send_ctx *)ud;
    free(ud);
    enum push_outcome o;
    if (r->curl_code == CURLM_ERR_CANCELLED) {
        o = PUSH_CANCELLED;
    } else if (r->status == 200) {
        metrics_inc(M_PUSH_200);
        o = PUSH_DONE;
    } else if (r->status == 410) {
        metrics_inc(M_PUSH_410);
        o = PUSH_GONE;
    } else {
        if (r->status == 0) {
            metrics_inc(M_PUSH_ERROR);
            log_debug("push: no answer from the notification server: %s", r->error);
        } else {
            metrics_inc(M_PUSH_OTHER);
        }
        o = PUSH_RETRY;
    }
    c.done(c.ud, o, r->status);
}

struct curlm_req *push_send(struct curlm *m, const struct config *cfg, const char *token,
                            size_t token_len,
                            void (*done)(void *ud, enum push_outcome o, long status), void *ud)
{
    static const char *const headers[] = {"Content-Type:"};
    struct send_ctx *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->done = done;
    c->ud = ud;
    struct curlm_post p = {.url = cfg->notification_url,
                           .headers = headers,
                           .n_headers = 1,
                           .body = token,
                           .body_len = token_len,
                           .connect_timeout_ms = PUSH_CONNECT_TIMEOUT_MS,
                           .timeout_ms = PUSH_TIMEOUT_MS,
                           .ca_file = cfg->tls_ca_file};
    struct curlm_req *r = curlm_post(m, &p, on_answer, c);
    if (!r)
        free(c);
    return r;
}
