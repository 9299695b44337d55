/* fuzz_http_route.c: arbitrary bytes through the whole request handling
 * except the socket: the llhttp reader (with pipelining), then the router
 * and every handler (site pages, /new, well-known documents, /qr.svg,
 * /metrics, redirects, the http port), answering into a buffer. The first
 * byte picks the relay's mode (ACME, self-signed, IPv4) and the port. */
#include <stdint.h>
#include <string.h>

#include "core/config.h"
#include "http/http.h"
#include "http/http_int.h"
#include "http/request.h"
#include "http/router.h"

static struct config cfgs[3];
static bool ready;

static void setup(void)
{
    static const char *const ini[3] = {
        "[params]\nmail_domain = chat.example\ntls_external_cert_and_key = /a /b\n",
        "[params]\nmail_domain = _chat.example\nmetrics_allow = 10.0.0.0/8\n",
        "[params]\nmail_domain = 192.0.2.7\nwww_folder = /nonexistent-www\n",
    };
    for (int i = 0; i < 3; i++) {
        struct config_errors errs = {0};
        config_parse_string(ini[i], &cfgs[i], &errs, false);
    }
    char err[200];
    http_init(&cfgs[0], err, sizeof err);
    ready = true;
}

static void serve(const struct http_request *q, const struct config *cfg, bool tls, const char *ip)
{
    const char *path;
    size_t pl = http_req_path(q, &path);
    char pathbuf[8200], host[256];
    if (pl >= sizeof pathbuf)
        return;
    memcpy(pathbuf, path, pl);
    pathbuf[pl] = '\0';
    http_req_host(q, host, sizeof host);
    struct buf out = {0};
    struct http_ctx x = {.cfg = cfg, .peer_ip = ip, .out = &out, .req = q, .path = pathbuf,
                         .host = host, .tls = tls};
    http_route(&x);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    if (size < 1)
        return 0;
    const struct config *cfg = &cfgs[data[0] % 3];
    bool tls = (data[0] & 4) == 0;
    const char *ip = (data[0] & 8) ? "10.1.2.3" : "192.0.2.1";
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    struct http_reader r;
    http_reader_init(&r, 4096);
    while (n > 0) {
        size_t used = 0;
        enum http_read_result res = http_reader_feed(&r, p, n, &used);
        if (res == HTTP_READ_ERROR)
            break;
        if (res == HTTP_READ_DONE) {
            serve(&r.req, cfg, tls, ip);
            if (r.req.upgrade)
                break;
            http_reader_next(&r);
        } else if (used == 0) {
            break;
        }
        p += used;
        n -= used;
    }
    http_reader_free(&r);
    return 0;
}
