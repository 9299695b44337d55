/* outq_mxdeliv.c: the `mxdeliv` transport: POST https://<MX host>/mxdeliv
 * (federation facts §2, §3) with X-MAIL-FROM and one X-MAIL-TO per
 * recipient, the signed message as body. Any 2xx = delivered to every
 * recipient; anything else (status, timeout, TLS or connect error) asks
 * the runner to fall back to SMTP on the same host. The certificate is
 * checked for the MX host name (not the mail domain); `_`-domains and
 * address literals take any certificate. */
#include "smtp/outq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/curlm.h"

#define MXDELIV_CONNECT_MS 5000
#define MXDELIV_TIMEOUT_MS 60000

struct mxd_req {
    struct outq_attempt *a;
    char **hdr;
    size_t n_hdr;
};

static void mxd_free(struct mxd_req *q)
{
    for (size_t i = 0; i < q->n_hdr; i++)
        free(q->hdr[i]);
    free(q->hdr);
    free(q);
}

/* The first line of the answer's body, printable. */
static void body_line(const struct curlm_result *r, char *out, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < r->body_len && k + 1 < n; i++) {
        unsigned char c = (unsigned char)r->body[i];
        if (c == '\r' || c == '\n')
            break;
        out[k++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[k] = '\0';
}

static void mxd_done(void *ud, const struct curlm_result *r)
{
    struct mxd_req *q = ud;
    struct outq_attempt *a = q->a;
    char line[160];
    body_line(r, line, sizeof line);
    a->connected = r->curl_code == 0;
    if (r->curl_code == 0 && r->status >= 200 && r->status < 300) {
        a->session.code = 250;
        snprintf(a->session.text, sizeof a->session.text, "250 2.0.0 mxdeliv %s: %ld %s",
                 a->host, r->status, line);
    } else {
        a->fallback = true;
        a->session.code = 451;
        if (r->curl_code == 0)
            snprintf(a->session.text, sizeof a->session.text,
                     "451 4.4.0 mxdeliv %s: HTTP %ld %s", a->host, r->status, line);
        else
            snprintf(a->session.text, sizeof a->session.text, "451 4.4.1 mxdeliv %s: %s",
                     a->host, r->error);
    }
    mxd_free(q);
    a->done(a);
}

int outq_mxdeliv_start(void *ctx, struct outq_attempt *a)
{
    const struct outq_mxdeliv_ctx *c = ctx;
    struct mxd_req *q = calloc(1, sizeof *q);
    if (!q || !(q->hdr = calloc(a->n_rcpts + 2, sizeof *q->hdr))) {
        free(q);
        return -1;
    }
    q->a = a;
    bool bad = false;
    struct buf b = {0};
    if (a->mail_from[0]) {
        bad |= buf_printf(&b, "X-MAIL-FROM: %s", a->mail_from) < 0;
        q->hdr[q->n_hdr++] = buf_steal_str(&b);
    }
    for (size_t i = 0; i < a->n_rcpts && !bad; i++) {
        bad |= buf_printf(&b, "X-MAIL-TO: %s", a->rcpts[i]) < 0;
        q->hdr[q->n_hdr++] = buf_steal_str(&b);
    }
    for (size_t i = 0; i < q->n_hdr; i++)
        bad |= q->hdr[i] == NULL;
    char url[600];
    const char *h = a->host;
    size_t hl = strlen(h);
    /* an address literal [1.2.3.4] / [IPv6:...] */
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
        const char *in = h + 1;
        size_t il = hl - 2;
        if (il > 5 && strncasecmp(in, "IPv6:", 5) == 0)
            snprintf(url, sizeof url, "https://[%.*s]:%d/mxdeliv", (int)(il - 5), in + 5, c->port);
        else
            snprintf(url, sizeof url, "https://%.*s:%d/mxdeliv", (int)il, in, c->port);
    } else if (snprintf(url, sizeof url, "https://%s:%d/mxdeliv", h, c->port) >=
               (int)sizeof url) {
        bad = true;
    }
    if (bad) {
        mxd_free(q);
        return -1;
    }
    struct curlm_post p = {
        .url = url,
        .headers = (const char *const *)q->hdr,
        .n_headers = q->n_hdr,
        .body = a->msg,
        .body_len = a->len,
        .connect_timeout_ms = MXDELIV_CONNECT_MS,
        .timeout_ms = MXDELIV_TIMEOUT_MS,
        .ca_file = c->ca_file,
        .insecure = a->any_cert,
        .pin_addr = a->addr.ss_family && h[0] != '[' ? &a->addr : NULL,
    };
    if (!curlm_post(c->curl, &p, mxd_done, q)) {
        mxd_free(q);
        return -1;
    }
    return 0;
}
