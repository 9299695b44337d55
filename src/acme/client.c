/* client.c: the ACME order as a chain of requests on the loop (see acme.h).
 * One request is in flight at a time; each answer's handler starts the
 * next step, a timer paces polling and retries. Signed requests keep their
 * URL and payload so a badNonce answer is retried with a fresh nonce. */
#include "acme/acme.h"

#include "acme/acme_client_int.h"
#include "acme/acme_json.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/curlm.h"
#include "core/dns.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/tls.h"
#include "http/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

static const char *const chall_name[] = {"http-01", "tls-alpn-01"};

static struct acme *the_acme; /* for the http-01 hook (one client per process) */

/* ------------------------------------------------------------ helpers */

static void clear_challenges(struct acme *a)
{
    for (size_t i = 0; i < N_NAMES; i++) {
        a->http_token[i][0] = a->key_auth[i][0] = a->alpn_name[i][0] = '\0';
        X509_free(a->alpn_cert[i]);
        EVP_PKEY_free(a->alpn_key[i]);
        a->alpn_cert[i] = NULL;
        a->alpn_key[i] = NULL;
    }
}

static void on_timer(uv_timer_t *t)
{
    struct acme *a = t->data;
    void (*fn)(struct acme *) = a->timer_fn;
    a->timer_fn = NULL;
    if (fn && !a->stopping)
        fn(a);
}

void acme_arm(struct acme *a, uint64_t ms, void (*fn)(struct acme *))
{
    a->timer_fn = fn;
    uv_timer_start(&a->timer, on_timer, ms, 0);
}

/* Sets the gauges from the certificate served now and arms the renewal. */
static void schedule_renewal(struct acme *a)
{
    char cert[4096], key[4096];
    time_t nb, na, now = time(NULL);
    bool ours = tls_acme_paths(a->state_dir, cert, key, sizeof cert) == 0 &&
                strcmp(tls_server_cert_in_use(a->ts), cert) == 0;
    if (acme_cert_times(tls_server_cert_in_use(a->ts), &nb, &na) == 0)
        metrics_gauge_set(G_ACME_CERT_EXPIRY, (int64_t)na);
    time_t at = now;
    if (ours && acme_cert_times(cert, &nb, &na) == 0)
        at = acme_renew_at(nb, na);
    if (at < now)
        at = now;
    metrics_gauge_set(G_ACME_NEXT_RENEWAL, (int64_t)at);
    if (ours) {
        char until[32], when[32];
        struct tm t1, t2;
        strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&na, &t1));
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&at, &t2));
        log_info("ACME: certificate for %s valid until %s, renewal at %s", a->names[0], until,
                 when);
    } else {
        log_info("ACME: serving %s until a certificate is issued for %s",
                 tls_server_cert_in_use(a->ts), a->names[0]);
    }
    acme_arm(a, (uint64_t)(at - now) * 1000, acme_start_order);
}

void acme_fail(struct acme *a, const char *fmt, ...)
{
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    clear_challenges(a);
    EVP_PKEY_free(a->cert_key);
    a->cert_key = NULL;
    a->kid[0] = a->nonce[0] = '\0'; /* the retry starts from the directory */
    a->failures++;
    unsigned delay = RETRY_FIRST_S;
    for (unsigned i = 1; i < a->failures && delay < RETRY_MAX_S; i++)
        delay *= 2;
    if (delay > RETRY_MAX_S)
        delay = RETRY_MAX_S;
    if (delay < a->fail_floor_s)
        delay = a->fail_floor_s;
    a->fail_floor_s = 0;
    metrics_inc(M_ACME_ORDER_FAILED);
    metrics_gauge_set(G_ACME_NEXT_RENEWAL, (int64_t)(time(NULL) + delay));
    log_warn("ACME: order for %s failed: %s; the current certificate stays, retry in %u s",
             a->names[0], why, delay);
    acme_arm(a, (uint64_t)delay * 1000, acme_start_order);
}

/* "type: detail" of a problem document, or the status. */
static void problem(const struct curlm_result *r, char *out, size_t cap)
{
    struct ajson_tok *toks = calloc(256, sizeof *toks);
    struct ajson j;
    char type[256] = "", detail[512] = "";
    if (toks && ajson_parse(&j, r->body, r->body_len, toks, 256) == 0) {
        ajson_get_str(&j, 0, "type", type, sizeof type);
        ajson_get_str(&j, 0, "detail", detail, sizeof detail);
    }
    free(toks);
    if (type[0])
        snprintf(out, cap, "HTTP %ld %s: %s", r->status, type, detail);
    else
        snprintf(out, cap, "HTTP %ld", r->status);
}

/* Parses an answer's JSON body into j (toks freed by the caller). */
static struct ajson_tok *parse(const struct curlm_result *r, struct ajson *j)
{
    struct ajson_tok *toks = malloc(N_TOKS * sizeof *toks);
    if (toks && (r->body_truncated || ajson_parse(j, r->body, r->body_len, toks, N_TOKS) < 0 ||
                 j->tok[0].type != AJ_OBJ)) {
        free(toks);
        return NULL;
    }
    return toks;
}

/* ------------------------------------------------------------ requests */

static void on_answer(void *ud, const struct curlm_result *r)
{
    struct acme *a = ud;
    if (a->stopping || r->curl_code == CURLM_ERR_CANCELLED)
        return;
    if (r->replay_nonce && r->replay_nonce[0])
        snprintf(a->nonce, sizeof a->nonce, "%s", r->replay_nonce);
    if (r->curl_code != 0) {
        acme_fail(a, "%s: %s", a->p_url, r->error);
        return;
    }
    step_fn next = a->p_next;
    a->p_next = NULL;
    next(a, r);
}

static void send_req(struct acme *a, const char *method, const char *url, bool jose,
                     step_fn next)
{
    const char *hdrs[3] = {"User-Agent: chatmaild-server-acme"};
    size_t nh = 1;
    if (jose)
        hdrs[nh++] = "Content-Type: application/jose+json";
    if (jose && a->p_pem)
        hdrs[nh++] = "Accept: application/pem-certificate-chain";
    struct curlm_post p = {
        .url = url, .headers = hdrs, .n_headers = nh, .body = a->body.data,
        .body_len = a->body.len, .timeout_ms = 30000, .ca_file = a->ca_file, .method = method,
        .body_max = ANSWER_MAX, .keep_headers = true,
    };
    snprintf(a->p_url, sizeof a->p_url, "%s", url);
    a->p_next = next;
    if (!curlm_post(a->curl, &p, on_answer, a))
        acme_fail(a, "cannot start a request to %s", url);
}

static void do_signed(struct acme *a);
static void signed_answer(struct acme *a, const struct curlm_result *r);

static void on_nonce(struct acme *a, const struct curlm_result *r)
{
    if (!a->nonce[0]) {
        acme_fail(a, "newNonce gave no Replay-Nonce (HTTP %ld)", r->status);
        return;
    }
    do_signed(a);
}

/* The signed POST of a->s_url / a->p_payload, after fetching a nonce. */
static void do_signed(struct acme *a)
{
    buf_reset(&a->body);
    if (!a->nonce[0]) {
        send_req(a, "HEAD", a->u_nonce, false, on_nonce);
        return;
    }
    const char *kid = a->kid[0] ? a->kid : NULL;
    if (acme_jws(a->acct, a->jwk, kid, a->nonce, a->s_url, a->p_payload, &a->body) < 0) {
        acme_fail(a, "cannot sign a request");
        return;
    }
    a->nonce[0] = '\0'; /* used */
    send_req(a, "POST", a->s_url, true, signed_answer);
}

/* A badNonce answer is retried (RFC 8555 §6.5) up to three times. */
static void signed_answer(struct acme *a, const struct curlm_result *r)
{
    char why[1024];
    if (r->status == 400 && a->p_bad_nonce < 3) {
        problem(r, why, sizeof why);
        if (strstr(why, "urn:ietf:params:acme:error:badNonce")) {
            a->p_bad_nonce++;
            do_signed(a);
            return;
        }
    }
    a->user_next(a, r);
}

/* POST of payload ("" = POST-as-GET) to url, signed; next gets the answer. */
static void post_signed(struct acme *a, const char *url, const char *payload, bool pem,
                        step_fn next)
{
    char *p = strdup(payload);
    if (!p) {
        acme_fail(a, "out of memory");
        return;
    }
    free(a->p_payload);
    a->p_payload = p;
    snprintf(a->s_url, sizeof a->s_url, "%s", url);
    a->p_pem = pem;
    a->p_bad_nonce = 0;
    a->user_next = next;
    do_signed(a);
}

/* ------------------------------------------------------------ the order */

static void fetch_authz(struct acme *a);
static void finalize(struct acme *a);
static void poll_order(struct acme *a);
static void on_order_state(struct acme *a, const struct curlm_result *r);

/* Copies member key of obj (a string) into out, or fails the order. */
static bool need_str(struct acme *a, const struct ajson *j, int obj, const char *key, char *out,
                     size_t cap, const char *what)
{
    if (ajson_get_str(j, obj, key, out, cap) > 0)
        return true;
    acme_fail(a, "%s without a usable \"%s\"", what, key);
    return false;
}

static void on_cert(struct acme *a, const struct curlm_result *r)
{
    char why[1024], cert[4096], key[4096], dir[4096];
    time_t nb, na;
    struct buf pem = {0};
    if (r->status != 200) {
        problem(r, why, sizeof why);
        acme_fail(a, "certificate download: %s", why);
        return;
    }
    if (r->body_truncated || acme_cert_times_pem(r->body, r->body_len, &nb, &na) < 0) {
        acme_fail(a, "certificate download: not a PEM certificate chain");
        return;
    }
    snprintf(dir, sizeof dir, "%s/acme/live", a->state_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        acme_fail(a, "cannot create %s: %s", dir, strerror(errno));
        return;
    }
    if (tls_acme_paths(a->state_dir, cert, key, sizeof cert) < 0 ||
        acme_key_pem(a->cert_key, &pem) < 0) {
        acme_fail(a, "cannot encode the certificate key");
        return;
    }
    /* the key first: a crash between the two leaves a pair that does not
     * match, which tls.c skips (then the client orders again) */
    if (fileio_write_atomic(dir, "privkey", pem.data, pem.len, 0600, true) < 0 ||
        fileio_write_atomic(dir, "fullchain", r->body, r->body_len, 0644, true) < 0) {
        int e = errno;
        buf_free(&pem);
        acme_fail(a, "cannot store the certificate under %s: %s", dir, strerror(e));
        return;
    }
    buf_free(&pem);
    if (tls_server_reload(a->ts, why, sizeof why) < 0) {
        acme_fail(a, "the new certificate does not load: %s", why);
        return;
    }
    clear_challenges(a);
    EVP_PKEY_free(a->cert_key);
    a->cert_key = NULL;
    a->failures = 0;
    metrics_inc(M_ACME_ORDER_VALID);
    log_info("ACME: certificate for %s, %s, %s issued and installed (%s)", a->names[0],
             a->names[1], a->names[2], cert);
    schedule_renewal(a);
}

static void download(struct acme *a)
{
    post_signed(a, a->cert_url, "", true, on_cert);
}

/* An order object (answer to finalize or a poll). */
static void on_order_state(struct acme *a, const struct curlm_result *r)
{
    char why[1024], status[32] = "";
    struct ajson j;
    if (r->status != 200) {
        problem(r, why, sizeof why);
        acme_fail(a, "order: %s", why);
        return;
    }
    struct ajson_tok *toks = parse(r, &j);
    if (!toks) {
        acme_fail(a, "order: not a JSON object");
        return;
    }
    ajson_get_str(&j, 0, "status", status, sizeof status);
    bool ok = true;
    if (strcmp(status, "valid") == 0)
        ok = need_str(a, &j, 0, "certificate", a->cert_url, sizeof a->cert_url, "valid order");
    free(toks);
    if (!ok)
        return;
    if (strcmp(status, "valid") == 0) {
        download(a);
    } else if (strcmp(status, "processing") == 0 || strcmp(status, "ready") == 0) {
        if (++a->polls > POLLS_MAX) {
            acme_fail(a, "order still %s after %u polls", status, POLLS_MAX);
            return;
        }
        uint64_t ms = r->retry_after > 0 && r->retry_after < 10 ? (uint64_t)r->retry_after * 1000
                                                                : 1000;
        acme_arm(a, ms, poll_order);
    } else {
        acme_fail(a, "order became \"%s\"", status);
    }
}

static void poll_order(struct acme *a)
{
    post_signed(a, a->order, "", false, on_order_state);
}

static void finalize(struct acme *a)
{
    const char *names[N_NAMES] = {a->names[0], a->names[1], a->names[2]};
    struct buf csr = {0};
    EVP_PKEY_free(a->cert_key);
    a->polls = 0;
    if (!(a->cert_key = acme_key_new_ec()) || buf_append_str(&csr, "{\"csr\":\"") < 0 ||
        acme_csr_b64(a->cert_key, names, N_NAMES, &csr) < 0 || buf_append_str(&csr, "\"}") < 0) {
        buf_free(&csr);
        acme_fail(a, "cannot build the certificate request");
        return;
    }
    char *payload = buf_steal_str(&csr);
    if (!payload) {
        acme_fail(a, "out of memory");
        return;
    }
    post_signed(a, a->finalize, payload, false, on_order_state);
    free(payload);
}

/* Puts the challenge of `type` for authorisation i in place. */
static bool install(struct acme *a, size_t i, enum chall type, const char *name,
                    const char *token)
{
    if (acme_key_authorization(token, a->thumb, a->key_auth[i], sizeof a->key_auth[i]) < 0)
        return false;
    if (type == CH_HTTP01)
        return snprintf(a->http_token[i], sizeof a->http_token[i], "%s", token) <
               (int)sizeof a->http_token[i];
    X509_free(a->alpn_cert[i]);
    EVP_PKEY_free(a->alpn_key[i]);
    a->alpn_cert[i] = NULL;
    a->alpn_key[i] = NULL;
    if (acme_alpn_cert(name, a->key_auth[i], &a->alpn_cert[i], &a->alpn_key[i]) < 0)
        return false;
    snprintf(a->alpn_name[i], sizeof a->alpn_name[i], "%s", name);
    return true;
}

static bool token_ok(const char *t)
{
    size_t n = strlen(t);
    return n >= 16 && n == strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_");
}

static void on_respond(struct acme *a, const struct curlm_result *r)
{
    char why[1024];
    if (r->status != 200) {
        problem(r, why, sizeof why);
        acme_fail(a, "challenge for %s: %s", a->names[a->cur], why);
        return;
    }
    acme_arm(a, 500, fetch_authz);
}

/* Picks the first type of acme_challenge the server offers, installs it and
 * tells the server to validate. False when no usable challenge is offered. */
static bool respond(struct acme *a, const struct ajson *j, const char *name)
{
    int chs = ajson_get(j, 0, "challenges");
    for (size_t p = 0; p < a->n_prefs; p++) {
        for (size_t k = 0;; k++) {
            int c = ajson_at(j, chs, k);
            if (c < 0)
                break;
            char token[128], url[URL_MAX];
            if (!ajson_str_is(j, c, "type", chall_name[a->prefs[p]]) ||
                ajson_get_str(j, c, "token", token, sizeof token) < 0 || !token_ok(token) ||
                ajson_get_str(j, c, "url", url, sizeof url) <= 0)
                continue;
            if (!install(a, a->cur, a->prefs[p], name, token)) {
                acme_fail(a, "cannot prepare the %s challenge for %s", chall_name[a->prefs[p]], name);
                return true;
            }
            log_info("ACME: answering %s for %s", chall_name[a->prefs[p]], name);
            a->responded[a->cur] = true;
            a->polls = 0;
            post_signed(a, url, "{}", false, on_respond);
            return true;
        }
    }
    return false;
}

static void on_authz(struct acme *a, const struct curlm_result *r)
{
    char why[1024], status[32] = "", name[256] = "";
    struct ajson j;
    if (r->status != 200) {
        problem(r, why, sizeof why);
        acme_fail(a, "authorization: %s", why);
        return;
    }
    struct ajson_tok *toks = parse(r, &j);
    if (!toks) {
        acme_fail(a, "authorization: not a JSON object");
        return;
    }
    ajson_get_str(&j, 0, "status", status, sizeof status);
    ajson_get_str(&j, ajson_get(&j, 0, "identifier"), "value", name, sizeof name);
    if (strcmp(status, "valid") == 0) {
        free(toks);
        a->cur++;
        a->polls = 0;
        if (a->cur < a->n_authz)
            fetch_authz(a);
        else
            finalize(a);
        return;
    }
    if (strcmp(status, "pending") == 0 && !a->responded[a->cur]) {
        if (!respond(a, &j, name))
            acme_fail(a, "%s: the server offers none of the challenge types of acme_challenge",
                 name);
        free(toks);
        return;
    }
    if (strcmp(status, "pending") == 0 || strcmp(status, "processing") == 0) {
        free(toks);
        if (++a->polls > POLLS_MAX) {
            acme_fail(a, "authorization for %s still %s after %u polls", name, status, POLLS_MAX);
            return;
        }
        acme_arm(a, a->polls < 4 ? 500 : 2000, fetch_authz);
        return;
    }
    /* invalid, expired, ...: the challenge's error says why */
    why[0] = '\0';
    int chs = ajson_get(&j, 0, "challenges");
    for (size_t k = 0; !why[0]; k++) {
        int c = ajson_at(&j, chs, k), e;
        if (c < 0)
            break;
        char detail[512];
        if ((e = ajson_get(&j, c, "error")) >= 0 &&
            ajson_get_str(&j, e, "detail", detail, sizeof detail) >= 0)
            snprintf(why, sizeof why, ": %s", detail);
    }
    free(toks);
    /* a failed validation counts against the CA's rate limit (Let's
     * Encrypt: 5 per name and hour): no quick retry */
    a->fail_floor_s = RETRY_INVALID_S;
    acme_fail(a, "authorization for %s is %s%s", name, status, why);
}

static void fetch_authz(struct acme *a)
{
    post_signed(a, a->authz[a->cur], "", false, on_authz);
}

static void on_new_order(struct acme *a, const struct curlm_result *r)
{
    char why[1024];
    struct ajson j;
    if (r->status != 201 && r->status != 200) {
        problem(r, why, sizeof why);
        acme_fail(a, "newOrder: %s", why);
        return;
    }
    struct ajson_tok *toks = parse(r, &j);
    if (!toks) {
        acme_fail(a, "newOrder: not a JSON object");
        return;
    }
    snprintf(a->order, sizeof a->order, "%s", r->location);
    int az = ajson_get(&j, 0, "authorizations");
    a->n_authz = 0;
    for (size_t k = 0; a->n_authz < N_NAMES; k++) {
        int t = ajson_at(&j, az, k);
        if (t < 0)
            break;
        if (ajson_str(&j, t, a->authz[a->n_authz], URL_MAX) > 0)
            a->n_authz++;
    }
    bool ok = a->order[0] && a->n_authz > 0 &&
              need_str(a, &j, 0, "finalize", a->finalize, sizeof a->finalize, "order");
    free(toks);
    if (!ok) {
        if (a->order[0] && a->n_authz > 0)
            return; /* need_str failed the order */
        acme_fail(a, "newOrder: no order URL or no authorizations");
        return;
    }
    a->cur = 0;
    a->polls = 0;
    memset(a->responded, 0, sizeof a->responded);
    fetch_authz(a);
}

void acme_new_order(struct acme *a)
{
    char payload[1024];
    snprintf(payload, sizeof payload,
             "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"%s\"},{\"type\":\"dns\",\"value\":"
             "\"%s\"},{\"type\":\"dns\",\"value\":\"%s\"}]}",
             a->names[0], a->names[1], a->names[2]);
    log_info("ACME: ordering a certificate for %s, %s, %s from %s", a->names[0], a->names[1],
             a->names[2], a->dir_url);
    post_signed(a, a->u_order, payload, false, on_new_order);
}

static void on_account(struct acme *a, const struct curlm_result *r)
{
    char why[1024];
    if ((r->status != 200 && r->status != 201) || !r->location[0]) {
        problem(r, why, sizeof why);
        if (a->only_existing)
            acme_fail(a, "the server does not know the account of %s (onlyReturnExisting): %s",
                 a->acct_from, why);
        else
            acme_fail(a, "newAccount: %s", why);
        return;
    }
    snprintf(a->kid, sizeof a->kid, "%s", r->location);
    log_info("ACME: account %s (key %s)", a->kid, a->acct_from);
    acme_caa_then_order(a);
}

static void new_account(struct acme *a)
{
    char payload[1600], email[1200];
    size_t o = 0;
    /* the address as a JSON string's content: quote, backslash and controls escaped */
    for (const char *p = a->email; *p && o + 7 < sizeof email; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(email + o, sizeof email - o, "\\%c", c);
        else if (c < 0x20)
            o += (size_t)snprintf(email + o, sizeof email - o, "\\u%04x", c);
        else
            email[o++] = (char)c;
    }
    email[o] = '\0';
    if (a->only_existing)
        snprintf(payload, sizeof payload, "{\"onlyReturnExisting\":true}");
    else if (a->email[0])
        snprintf(payload, sizeof payload,
                 "{\"termsOfServiceAgreed\":true,\"contact\":[\"mailto:%s\"]}", email);
    else
        snprintf(payload, sizeof payload, "{\"termsOfServiceAgreed\":true}");
    a->kid[0] = '\0'; /* newAccount is signed with the JWK */
    post_signed(a, a->u_account, payload, false, on_account);
}

static void on_directory(struct acme *a, const struct curlm_result *r)
{
    struct ajson j;
    if (r->status != 200) {
        acme_fail(a, "directory %s: HTTP %ld", a->dir_url, r->status);
        return;
    }
    struct ajson_tok *toks = parse(r, &j);
    if (!toks) {
        acme_fail(a, "directory %s: not a JSON object", a->dir_url);
        return;
    }
    bool ok = need_str(a, &j, 0, "newNonce", a->u_nonce, sizeof a->u_nonce, "directory") &&
              need_str(a, &j, 0, "newAccount", a->u_account, sizeof a->u_account, "directory") &&
              need_str(a, &j, 0, "newOrder", a->u_order, sizeof a->u_order, "directory");
    free(toks);
    if (ok)
        new_account(a);
}

void acme_start_order(struct acme *a)
{
    clear_challenges(a);
    a->order[0] = a->cert_url[0] = '\0';
    a->polls = 0;
    if (!a->kid[0]) {
        buf_reset(&a->body);
        send_req(a, "GET", a->dir_url, false, on_directory);
    } else {
        acme_caa_then_order(a);
    }
}

/* ------------------------------------------------------------ challenges */

static bool http_hook(const char *token, struct buf *out)
{
    struct acme *a = the_acme;
    for (size_t i = 0; a && i < N_NAMES; i++)
        if (a->http_token[i][0] && strcmp(a->http_token[i], token) == 0)
            return buf_append_str(out, a->key_auth[i]) == 0;
    return false;
}

static bool alpn_lookup(void *ud, const char *name, X509 **cert, EVP_PKEY **key)
{
    struct acme *a = ud;
    for (size_t i = 0; i < N_NAMES; i++)
        if (a->alpn_cert[i] && strcasecmp(a->alpn_name[i], name) == 0) {
            *cert = a->alpn_cert[i];
            *key = a->alpn_key[i];
            return true;
        }
    return false;
}

/* ------------------------------------------------------------ start/stop */

static void acme_free(struct acme *a)
{
    clear_challenges(a);
    EVP_PKEY_free(a->acct);
    EVP_PKEY_free(a->cert_key);
    buf_free(&a->body);
    free(a->p_payload);
    free(a->state_dir);
    free(a->dir_url);
    free(a->ca_file);
    free(a->email);
    free(a->acmetool_dir);
    free(a);
}

/* acme_challenge in order, without the types whose port is disabled. */
static void parse_prefs(struct acme *a, const char *s, const struct config *cfg)
{
    while (s && *s && a->n_prefs < 2) {
        s += strspn(s, " \t,");
        size_t n = strcspn(s, " \t,");
        for (int t = CH_HTTP01; t <= CH_ALPN01 && n; t++) {
            bool dup = false;
            for (size_t i = 0; i < a->n_prefs; i++)
                dup |= a->prefs[i] == (enum chall)t;
            bool port = t == CH_HTTP01 ? cfg->http_port != 0 : cfg->https_port != 0;
            if (!dup && port && n == strlen(chall_name[t]) && strncmp(s, chall_name[t], n) == 0)
                a->prefs[a->n_prefs++] = (enum chall)t;
        }
        s += n;
    }
}

int acme_start(struct acme **out, uv_loop_t *loop, const struct config *cfg,
               struct tls_server *ts, char *err, size_t errlen)
{
    *out = NULL;
    const char *why = "out of memory";
    struct acme *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->loop = loop;
    a->ts = ts;
    a->state_dir = strdup(cfg->state_dir ? cfg->state_dir : "/var/lib/chatmaild");
    a->dir_url = strdup(cfg->acme_directory_url ? cfg->acme_directory_url : "");
    a->ca_file = cfg->tls_ca_file ? strdup(cfg->tls_ca_file) : NULL;
    a->email = strdup(cfg->acme_email ? cfg->acme_email : "");
    a->acmetool_dir = strdup(cfg->acme_acmetool_dir ? cfg->acme_acmetool_dir : "/var/lib/acme");
    const char *d = cfg->mail_domain;
    if (!a->state_dir || !a->dir_url || !a->email || !a->acmetool_dir ||
        (cfg->tls_ca_file && !a->ca_file) || !d || strlen(d) > 240) {
        snprintf(err, errlen, "%s", d && strlen(d) > 240 ? "mail_domain too long" : why);
        acme_free(a);
        return -1;
    }
    snprintf(a->names[0], sizeof a->names[0], "%s", d);
    snprintf(a->names[1], sizeof a->names[1], "mta-sts.%s", d);
    snprintf(a->names[2], sizeof a->names[2], "www.%s", d);
    parse_prefs(a, cfg->acme_challenge, cfg);
    if (a->n_prefs == 0) {
        snprintf(err, errlen, "acme_challenge (%s) names only challenges whose port "
                 "(http_port for http-01, https_port for tls-alpn-01) is disabled",
                 cfg->acme_challenge ? cfg->acme_challenge : "");
        acme_free(a);
        return -1;
    }
    if (acme_account_load(a, err, errlen) < 0) {
        acme_free(a);
        return -1;
    }
    if (!(a->curl = curlm_start(loop, &why))) {
        snprintf(err, errlen, "%s", why);
        acme_free(a);
        return -1;
    }
    struct dns_options o = {.servers = (const char *const *)cfg->dns_servers,
                            .n_servers = cfg->n_dns_servers, .timeout_ms = 1000, .tries = 2};
    if (!(a->dns = dns_start(loop, &o, &why)))
        log_warn("ACME: no resolver for the CAA check (%s): ordering without it", why);
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    the_acme = a;
    http_set_acme_hook(http_hook);
    tls_server_set_acme(ts, alpn_lookup, a);
    schedule_renewal(a);
    *out = a;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    acme_free(h->data);
}

void acme_stop(struct acme *a)
{
    if (!a || a->stopping)
        return;
    a->stopping = true;
    http_set_acme_hook(NULL);
    tls_server_set_acme(a->ts, NULL, NULL);
    if (the_acme == a)
        the_acme = NULL;
    curlm_stop(a->curl);
    a->curl = NULL;
    if (a->caa_req)
        dns_cancel(a->caa_req);
    a->caa_req = NULL;
    dns_stop(a->dns);
    a->dns = NULL;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, timer_closed);
}
