/* tls.c: the sans-I/O TLS engine of tls.h over OpenSSL 3.
 *
 * Each tls_conn has one custom BIO (both directions): reading hands OpenSSL
 * the bytes of the tls_conn_feed() call in progress, writing either collects
 * what one handshake/read/shutdown step emits (sent as one io->send when the
 * step returns) or, for application data, calls io->send at once. Plaintext is read
 * into a stack buffer and handed to io->recv, which may call tls_conn_write
 * or tls_conn_shutdown. With SSL_MODE_RELEASE_BUFFERS and the flight buffer
 * freed after each send, an idle connection holds no buffers.
 *
 * Server contexts: one SSL_CTX per policy, all sharing one certificate (no
 * per-name selection; SNI is only recorded). Server cipher preference, no
 * compression, no renegotiation, no server session cache (tickets only).
 * The HTTPS policy selects ALPN "smtp", "imap" or "http/1.1" and raises the
 * minimum to TLS 1.3 from a ClientHello callback when the client names
 * "smtp" or "imap". Reload builds a new set and swaps it in; SSL objects
 * hold a reference to the SSL_CTX they started with. */
#include "core/limits.h"
#include "core/tls.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define N_POLICIES 3

struct tls_server {
    SSL_CTX *ctx[N_POLICIES];
    enum tls_mode mode;
    char *cert_path, *key_path;
    char *state_dir, *domain, *ipv4; /* self-signed and ACME modes */
    char in_use[LIM_TLS_PATH];       /* the certificate file the contexts serve */
    tls_acme_lookup acme_lookup;     /* tls-alpn-01 challenge certificates */
    void *acme_ud;
};

/* Client sessions kept for resumption, per "v:" or "a:" (verified or not)
 * plus the host name: a session from an unverified handshake is never
 * resumed where verification is asked for. A small ring: the oldest entry
 * makes room. */
#define TLS_CLIENT_SESSIONS 64
struct tls_client_session {
    char key[LIM_TLS_HOST + 3];
    SSL_SESSION *sess;
};

struct tls_client {
    SSL_CTX *ctx;
    struct tls_client_session cache[TLS_CLIENT_SESSIONS];
    unsigned next;
};

struct tls_conn {
    SSL *ssl;
    struct tls_io io;
    void *ud;
    const uint8_t *in; /* the unread part of the buffer being fed */
    size_t in_len;
    struct buf out; /* a handshake flight being collected; empty when idle */
    char alpn[LIM_TLS_ALPN_NAME + 1];
    struct tls_client *client;     /* client side: the session cache */
    char sess_key[LIM_TLS_HOST + 3];
    unsigned collecting : 1, established : 1, peer_closed : 1, closing : 1, failed : 1;
};

/* ---------- the BIO between OpenSSL and the owner ---------- */

static BIO_METHOD *bio_method;
static CRYPTO_ONCE bio_once = CRYPTO_ONCE_STATIC_INIT;

static void flush_out(struct tls_conn *t)
{
    if (t->out.len == 0)
        return;
    struct buf b = t->out;
    t->out = (struct buf){0};
    t->io.send(t->ud, (const uint8_t *)b.data, b.len);
    buf_free(&b);
}

static int bio_read_ex(BIO *b, char *out, size_t len, size_t *got)
{
    struct tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->in_len == 0) {
        BIO_set_retry_read(b);
        *got = 0;
        return 0;
    }
    size_t n = len < t->in_len ? len : t->in_len;
    memcpy(out, t->in, n);
    t->in += n;
    t->in_len -= n;
    *got = n;
    return 1;
}

static int bio_write_ex(BIO *b, const char *p, size_t len, size_t *written)
{
    struct tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->collecting) {
        if (buf_append(&t->out, p, len) < 0)
            return 0;
    } else {
        t->io.send(t->ud, (const uint8_t *)p, len);
    }
    *written = len;
    return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    /* Writes never block, so what a call collected is sent when the call
     * returns: one io->send per flight (even across OpenSSL's flushes). */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cm-tls");
    if (m && BIO_meth_set_read_ex(m, bio_read_ex) && BIO_meth_set_write_ex(m, bio_write_ex) &&
        BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create)) {
        bio_method = m;
        return;
    }
    BIO_meth_free(m);
}

/* ---------- server contexts ---------- */

static bool alpn_is(const unsigned char *p, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(p, name, n) == 0;
}

static bool alpn_is_mail(const unsigned char *p, size_t n)
{
    return alpn_is(p, n, "smtp") || alpn_is(p, n, "imap");
}

/* The host_name of a ClientHello's SNI extension into name ("" when
 * absent or malformed). */
static void hello_sni(SSL *s, char *name, size_t cap)
{
    const unsigned char *p;
    size_t len;
    name[0] = '\0';
    if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 5)
        return;
    size_t list = (size_t)p[0] << 8 | p[1];
    if (list + 2 > len || p[2] != TLSEXT_NAMETYPE_host_name)
        return;
    size_t n = (size_t)p[3] << 8 | p[4];
    if (n + 5 > len || n == 0 || n >= cap || memchr(p + 5, '\0', n))
        return;
    memcpy(name, p + 5, n);
    name[n] = '\0';
}

/* tls-alpn-01 (RFC 8737 §3): a ClientHello offering "acme-tls/1" gets the
 * challenge certificate for its SNI name, or fails when there is none (the
 * real certificate is never presented under acme-tls/1). */
static int hello_acme(SSL *s, struct tls_server *ts, int *al)
{
    char name[LIM_TLS_HOST];
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    hello_sni(s, name, sizeof name);
    if (!name[0] || !ts || !ts->acme_lookup || !ts->acme_lookup(ts->acme_ud, name, &cert, &key) ||
        SSL_use_certificate(s, cert) != 1 || SSL_use_PrivateKey(s, key) != 1) {
        ERR_clear_error();
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* ClientHello callback (HTTPS policy): ALPN "smtp"/"imap" needs TLS 1.3;
 * "acme-tls/1" is answered with a challenge certificate. */
static int hello_cb(SSL *s, int *al, void *arg)
{
    const unsigned char *p;
    size_t len;
    if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_application_layer_protocol_negotiation, &p,
                                  &len) != 1 || len < 2)
        return SSL_CLIENT_HELLO_SUCCESS;
    p += 2; /* the list's own length; each entry is checked against len */
    len -= 2;
    while (len > 0) {
        size_t n = p[0];
        if (n + 1 > len)
            break;
        if (alpn_is(p + 1, n, TLS_ALPN_ACME))
            return hello_acme(s, arg, al);
        if (alpn_is_mail(p + 1, n)) {
            SSL_set_min_proto_version(s, TLS1_3_VERSION);
            break;
        }
        p += n + 1;
        len -= n + 1;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* ALPN (HTTPS policy): the client's first of "smtp", "imap", "http/1.1",
 * or "acme-tls/1" (hello_cb installed the challenge certificate). */
static int alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)s, (void)arg;
    while (inlen > 0) {
        unsigned int n = in[0];
        if (n + 1 > inlen)
            break;
        if (alpn_is_mail(in + 1, n) || alpn_is(in + 1, n, "http/1.1") ||
            alpn_is(in + 1, n, TLS_ALPN_ACME)) {
            *out = in + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        in += n + 1;
        inlen -= n + 1;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* Accepts every name (one certificate serves them all) so SNI is recorded. */
static int sni_cb(SSL *s, int *al, void *arg)
{
    (void)s, (void)al, (void)arg;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *server_ctx(struct tls_server *ts, enum tls_policy policy,
                           const struct tls_pair *pair)
{
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    if (!c)
        return NULL;
    int min = policy == TLS_POLICY_CLIENT ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                               SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_tlsext_servername_callback(c, sni_cb);
    if (policy == TLS_POLICY_HTTPS) {
        SSL_CTX_set_client_hello_cb(c, hello_cb, ts);
        SSL_CTX_set_alpn_select_cb(c, alpn_cb, NULL);
    }
    if (SSL_CTX_set_min_proto_version(c, min) != 1 || SSL_CTX_set_dh_auto(c, 1) != 1 ||
        SSL_CTX_use_cert_and_key(c, pair->leaf, pair->key, pair->chain, 1) != 1) {
        SSL_CTX_free(c);
        return NULL;
    }
    return c;
}

static void free_ctxs(SSL_CTX **ctx)
{
    for (int i = 0; i < N_POLICIES; i++) {
        SSL_CTX_free(ctx[i]);
        ctx[i] = NULL;
    }
}

int tls_acme_paths(const char *state_dir, char *cert, char *key, size_t len)
{
    int a = snprintf(cert, len, "%s/acme/live/fullchain", state_dir);
    int b = snprintf(key, len, "%s/acme/live/privkey", state_dir);
    return a > 0 && b > 0 && (size_t)a < len && (size_t)b < len ? 0 : -1;
}

/* ACME mode: our own issued pair (<state_dir>/acme/live/), else acmetool's
 * (cfg's paths), else the temporary self-signed one (created when missing)
 * until the ACME client has a certificate. */
static int load_acme_pair(struct tls_server *ts, struct tls_pair *pair, char *used, size_t ulen,
                          char *err, size_t errlen)
{
    char cert[LIM_TLS_PATH], key[LIM_TLS_PATH], why[512];
    if (tls_acme_paths(ts->state_dir, cert, key, sizeof cert) == 0 &&
        tls_pair_load(pair, cert, key, why, sizeof why) == 0)
        return snprintf(used, ulen, "%s", cert), 0;
    if (tls_pair_load(pair, ts->cert_path, ts->key_path, why, sizeof why) == 0)
        return snprintf(used, ulen, "%s", ts->cert_path), 0;
    if (tls_selfsigned_paths(ts->state_dir, cert, key, sizeof cert) < 0) {
        tls_set_err(err, errlen, "state_dir too long");
        return -1;
    }
    if (tls_selfsigned_ensure(ts->state_dir, cert, key, ts->domain, NULL, err, errlen) < 0 ||
        tls_pair_load(pair, cert, key, err, errlen) < 0)
        return -1;
    return snprintf(used, ulen, "%s", cert), 0;
}

/* Loads (or, self-signed, first creates) the pair and builds all contexts. */
static int build_ctxs(struct tls_server *ts, SSL_CTX **ctx, char *err, size_t errlen)
{
    struct tls_pair pair;
    char used[LIM_TLS_PATH];
    if (ts->mode == TLS_MODE_ACME) {
        if (load_acme_pair(ts, &pair, used, sizeof used, err, errlen) < 0)
            return -1;
    } else {
        if (ts->mode == TLS_MODE_SELF &&
            tls_selfsigned_ensure(ts->state_dir, ts->cert_path, ts->key_path, ts->domain,
                                  ts->ipv4, err, errlen) < 0)
            return -1;
        if (tls_pair_load(&pair, ts->cert_path, ts->key_path, err, errlen) < 0)
            return -1;
        snprintf(used, sizeof used, "%s", ts->cert_path);
    }
    int r = 0;
    for (int i = 0; i < N_POLICIES && r == 0; i++) {
        ctx[i] = server_ctx(ts, (enum tls_policy)i, &pair);
        if (!ctx[i]) {
            tls_set_err(err, errlen, "cannot use certificate %s: %s", used,
                    tls_ossl_reason("out of memory"));
            free_ctxs(ctx);
            r = -1;
        }
    }
    tls_pair_free(&pair);
    if (r == 0)
        snprintf(ts->in_use, sizeof ts->in_use, "%s", used);
    return r;
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

/* Copies what the server needs from cfg (cfg may be freed afterwards). */
static int server_paths(struct tls_server *ts, const struct config *cfg, char *err,
                        size_t errlen)
{
    bool oom = false;
    ts->mode = cfg->tls_mode;
    if (ts->mode != TLS_MODE_SELF) {
        ts->cert_path = dup_or_null(cfg->tls_cert_path, &oom);
        ts->key_path = dup_or_null(cfg->tls_key_path, &oom);
        if (!oom && (!ts->cert_path || !ts->key_path)) {
            tls_set_err(err, errlen, "no certificate or key path configured");
            return -1;
        }
        if (ts->mode == TLS_MODE_ACME) {
            ts->state_dir = dup_or_null(cfg->state_dir ? cfg->state_dir : "/var/lib/chatmaild",
                                        &oom);
            ts->domain = dup_or_null(cfg->mail_domain, &oom);
            if (!oom && (!ts->domain || strlen(ts->state_dir) + 32 > LIM_TLS_PATH)) {
                tls_set_err(err, errlen, "no mail_domain, or state_dir too long");
                return -1;
            }
        }
    } else {
        char cert[LIM_TLS_PATH], key[LIM_TLS_PATH];
        const char *dir = cfg->state_dir ? cfg->state_dir : "/var/lib/chatmaild";
        if (tls_selfsigned_paths(dir, cert, key, sizeof cert) < 0) {
            tls_set_err(err, errlen, "state_dir too long");
            return -1;
        }
        ts->cert_path = dup_or_null(cert, &oom);
        ts->key_path = dup_or_null(key, &oom);
        ts->state_dir = dup_or_null(dir, &oom);
        ts->ipv4 = dup_or_null(cfg->ipv4_relay, &oom);
        ts->domain = dup_or_null(cfg->mail_domain_bare ? cfg->mail_domain_bare
                                                       : cfg->mail_domain, &oom);
        if (!oom && !ts->domain && !ts->ipv4) {
            tls_set_err(err, errlen, "no mail_domain for the self-signed certificate");
            return -1;
        }
    }
    if (oom)
        tls_set_err(err, errlen, "out of memory");
    return oom ? -1 : 0;
}

static void bio_method_ensure(void)
{
    CRYPTO_THREAD_run_once(&bio_once, bio_method_init);
}

int tls_server_new(struct tls_server **out, const struct config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    bio_method_ensure();
    struct tls_server *ts = calloc(1, sizeof *ts);
    if (!ts || !bio_method) {
        free(ts);
        tls_set_err(err, errlen, "out of memory");
        return -1;
    }
    if (server_paths(ts, cfg, err, errlen) < 0 || build_ctxs(ts, ts->ctx, err, errlen) < 0) {
        tls_server_free(ts);
        return -1;
    }
    *out = ts;
    return 0;
}

int tls_server_reload(struct tls_server *ts, char *err, size_t errlen)
{
    SSL_CTX *fresh[N_POLICIES] = {0};
    if (build_ctxs(ts, fresh, err, errlen) < 0)
        return -1;
    free_ctxs(ts->ctx); /* connections still using them hold a reference */
    memcpy(ts->ctx, fresh, sizeof fresh);
    return 0;
}

void tls_server_set_acme(struct tls_server *ts, tls_acme_lookup lookup, void *ud)
{
    ts->acme_lookup = lookup;
    ts->acme_ud = ud;
}

const char *tls_server_cert_in_use(const struct tls_server *ts) { return ts->in_use; }

void tls_server_free(struct tls_server *ts)
{
    if (!ts)
        return;
    free_ctxs(ts->ctx);
    free(ts->cert_path);
    free(ts->key_path);
    free(ts->state_dir);
    free(ts->domain);
    free(ts->ipv4);
    free(ts);
}

/* ---------- client context ---------- */

static struct tls_client_session *session_slot(struct tls_client *tc, const char *key)
{
    for (unsigned i = 0; i < TLS_CLIENT_SESSIONS; i++)
        if (tc->cache[i].sess && strcmp(tc->cache[i].key, key) == 0)
            return &tc->cache[i];
    return NULL;
}

/* OpenSSL hands over a new session (after the handshake, or a TLS 1.3
 * ticket later): keep it for the next connection to the same host. */
static int client_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_conn *t = SSL_get_app_data(ssl);
    if (!t || !t->client || !t->sess_key[0] || !SSL_SESSION_is_resumable(sess))
        return 0;
    struct tls_client *tc = t->client;
    struct tls_client_session *e = session_slot(tc, t->sess_key);
    if (!e) {
        e = &tc->cache[tc->next];
        tc->next = (tc->next + 1) % TLS_CLIENT_SESSIONS;
        memcpy(e->key, t->sess_key, sizeof e->key);
    }
    SSL_SESSION_free(e->sess);
    e->sess = sess;
    return 1; /* we keep the reference */
}

int tls_client_new(struct tls_client **out, const char *ca_file, char *err, size_t errlen)
{
    *out = NULL;
    bio_method_ensure();
    ERR_clear_error();
    struct tls_client *tc = calloc(1, sizeof *tc);
    if (!tc || !bio_method || !(tc->ctx = SSL_CTX_new(TLS_client_method()))) {
        free(tc);
        tls_set_err(err, errlen, "cannot create TLS client context: %s", tls_ossl_reason("out of memory"));
        return -1;
    }
    SSL_CTX_set_mode(tc->ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(tc->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_min_proto_version(tc->ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(tc->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(tc->ctx, client_new_session);
    FILE *f = ca_file ? fopen(ca_file, "rb") : NULL;
    if (ca_file && !f) {
        tls_set_err(err, errlen, "cannot read CA file %s: %s", ca_file, strerror(errno));
    } else if (f) {
        fclose(f);
        if (SSL_CTX_load_verify_locations(tc->ctx, ca_file, NULL) == 1) {
            /* the system roots stay trusted too (tls_ca_file adds anchors) */
            if (SSL_CTX_set_default_verify_paths(tc->ctx) != 1)
                ERR_clear_error();
            return *out = tc, 0;
        }
        tls_set_err(err, errlen, "cannot load CA file %s: %s", ca_file, tls_ossl_reason("bad file"));
    } else if (SSL_CTX_set_default_verify_paths(tc->ctx) == 1) {
        return *out = tc, 0;
    } else {
        tls_set_err(err, errlen, "cannot load the system trust store: %s", tls_ossl_reason("unknown"));
    }
    tls_client_free(tc);
    return -1;
}

void tls_client_free(struct tls_client *tc)
{
    if (!tc)
        return;
    for (unsigned i = 0; i < TLS_CLIENT_SESSIONS; i++)
        SSL_SESSION_free(tc->cache[i].sess);
    SSL_CTX_free(tc->ctx);
    free(tc);
}

/* ---------- connections ---------- */

static struct tls_conn *conn_new(SSL_CTX *ctx, const struct tls_io *io, void *ud)
{
    struct tls_conn *t = calloc(1, sizeof *t);
    BIO *b = bio_method ? BIO_new(bio_method) : NULL;
    if (!t || !b || !(t->ssl = SSL_new(ctx))) {
        BIO_free(b);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b); /* one reference serves both directions */
    t->io = *io;
    t->ud = ud;
    return t;
}

struct tls_conn *tls_conn_new_server(struct tls_server *ts, enum tls_policy policy,
                                     const struct tls_io *io, void *ud)
{
    if ((unsigned)policy >= N_POLICIES)
        return NULL;
    struct tls_conn *t = conn_new(ts->ctx[policy], io, ud);
    if (t)
        SSL_set_accept_state(t->ssl);
    return t;
}

/* "[1.2.3.4]" -> "1.2.3.4"; returns whether the result is an IP literal. */
static bool host_name(const char *host, char *name, size_t len)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
        snprintf(name, len, "%.*s", (int)(n - 2), host + 1);
    else
        snprintf(name, len, "%s", host);
    unsigned char a[16];
    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/* NULL-terminated names -> ALPN wire format; 0 or -1 (a name too long). */
static int set_alpn(SSL *ssl, const char *const *alpn)
{
    unsigned char wire[256];
    size_t len = 0;
    for (size_t i = 0; alpn[i]; i++) {
        size_t n = strlen(alpn[i]);
        if (n == 0 || n > 255 || len + 1 + n > sizeof wire)
            return -1;
        wire[len++] = (unsigned char)n;
        memcpy(wire + len, alpn[i], n);
        len += n;
    }
    return len == 0 || SSL_set_alpn_protos(ssl, wire, (unsigned)len) == 0 ? 0 : -1;
}

static int client_setup(SSL *ssl, const char *host, bool verify, const char *const *alpn)
{
    char name[LIM_TLS_HOST];
    if (strlen(host) >= sizeof name)
        return -1;
    bool ip = host_name(host, name, sizeof name);
    if (!ip && name[0] && SSL_set_tlsext_host_name(ssl, name) != 1)
        return -1;
    if (verify) {
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                    : SSL_set1_host(ssl, name);
        if (ok != 1)
            return -1;
    }
    return alpn ? set_alpn(ssl, alpn) : 0;
}

static int handshake_step(struct tls_conn *t, const char **err);

struct tls_conn *tls_conn_new_client(struct tls_client *tc, const char *host, bool verify,
                                     const char *const *alpn, const struct tls_io *io, void *ud)
{
    struct tls_conn *t = conn_new(tc->ctx, io, ud);
    if (!t)
        return NULL;
    SSL_set_connect_state(t->ssl);
    SSL_set_app_data(t->ssl, t);
    t->client = tc;
    if (host && host[0] && strlen(host) < LIM_TLS_HOST) {
        snprintf(t->sess_key, sizeof t->sess_key, "%c:%s", verify ? 'v' : 'a', host);
        struct tls_client_session *e = session_slot(tc, t->sess_key);
        if (e && SSL_set_session(t->ssl, e->sess) != 1)
            ERR_clear_error();
    }
    const char *why;
    if (client_setup(t->ssl, host ? host : "", verify, alpn) < 0 ||
        handshake_step(t, &why) < 0) {
        ERR_clear_error();
        tls_conn_free(t);
        return NULL;
    }
    return t;
}

/* Marks t failed and finds the most useful reason for it. */
static int conn_fail(struct tls_conn *t, int ssl_err, const char **err)
{
    t->failed = 1;
    unsigned long code = ERR_peek_last_error();
    const char *why = NULL;
    long vr = SSL_get_verify_result(t->ssl);
    if (ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK)
        why = X509_verify_cert_error_string(vr);
    else if (code)
        why = ERR_reason_error_string(code);
    if (!why)
        why = ssl_err == SSL_ERROR_SYSCALL ? "out of memory" : "TLS error";
    ERR_clear_error();
    *err = why;
    return -1;
}

/* Runs the handshake on the bytes available: 1 done, 0 needs more, -1. */
static int handshake_step(struct tls_conn *t, const char **err)
{
    ERR_clear_error();
    t->collecting = 1;
    int r = SSL_do_handshake(t->ssl);
    t->collecting = 0;
    flush_out(t);
    if (r == 1) {
        const unsigned char *a;
        unsigned int alen;
        SSL_get0_alpn_selected(t->ssl, &a, &alen);
        if (alen > 0 && alen <= LIM_TLS_ALPN_NAME)
            memcpy(t->alpn, a, alen);
        t->established = 1;
        if (t->io.handshake_done)
            t->io.handshake_done(t->ud);
        return 1;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return 0;
    return conn_fail(t, e, err);
}

/* Hands every complete record's plaintext to io->recv. */
static int read_loop(struct tls_conn *t, const char **err)
{
    uint8_t chunk[LIM_TLS_READ_CHUNK];
    while (!t->closing && !t->peer_closed && !t->failed) {
        size_t got = 0;
        ERR_clear_error();
        t->collecting = 1;
        int r = SSL_read_ex(t->ssl, chunk, sizeof chunk, &got);
        t->collecting = 0;
        flush_out(t);
        if (r == 1) {
            if (t->io.recv)
                t->io.recv(t->ud, chunk, got);
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return 0;
        if (e == SSL_ERROR_ZERO_RETURN) {
            t->peer_closed = 1;
            return 0;
        }
        return conn_fail(t, e, err);
    }
    return 0;
}

int tls_conn_feed(struct tls_conn *t, const uint8_t *p, size_t n, const char **err)
{
    const char *dummy;
    if (!err)
        err = &dummy;
    if (t->failed) {
        *err = "connection already failed";
        return -1;
    }
    t->in = p;
    t->in_len = n;
    int r = 0;
    if (!t->established)
        r = handshake_step(t, err);
    if (r >= 0 && t->established)
        r = read_loop(t, err);
    t->in = NULL;
    t->in_len = 0;
    return r < 0 ? -1 : 0;
}

int tls_conn_write(struct tls_conn *t, const uint8_t *p, size_t n, const char **err)
{
    const char *dummy;
    if (!err)
        err = &dummy;
    if (!t->established || t->failed || t->closing) {
        *err = t->established ? "connection closed" : "handshake not complete";
        return -1;
    }
    ERR_clear_error();
    while (n > 0) {
        size_t w = 0;
        int r = SSL_write_ex(t->ssl, p, n, &w);
        if (r != 1)
            return conn_fail(t, SSL_get_error(t->ssl, r), err);
        p += w;
        n -= w;
    }
    return 0;
}

void tls_conn_shutdown(struct tls_conn *t)
{
    if (t->closing || t->failed)
        return;
    t->closing = 1;
    if (!t->established)
        return;
    t->collecting = 1;
    SSL_shutdown(t->ssl);
    t->collecting = 0;
    flush_out(t);
    ERR_clear_error();
}

void tls_conn_free(struct tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    buf_free(&t->out);
    free(t);
}

bool tls_conn_established(const struct tls_conn *t) { return t->established && !t->failed; }
bool tls_conn_peer_closed(const struct tls_conn *t) { return t->peer_closed; }
const char *tls_conn_alpn(const struct tls_conn *t) { return t->alpn; }
const char *tls_conn_version(const struct tls_conn *t) { return SSL_get_version(t->ssl); }
bool tls_conn_resumed(const struct tls_conn *t)
{
    return t->established && SSL_session_reused(t->ssl) == 1;
}

const char *tls_conn_sni(const struct tls_conn *t)
{
    return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}
