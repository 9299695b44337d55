/* curlm.c: libcurl multi on libuv (see curlm.h). The pattern of libcurl's
 * multi-uv example: curl tells which socket wants which events (socket
 * callback -> uv_poll_start/stop), when it wants to be woken (timer
 * callback -> uv_timer), and we hand events back with
 * curl_multi_socket_action, then collect finished transfers. */
#include "core/curlm.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct curlm {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct curlm_req *reqs; /* in flight (doubly linked) */
    size_t n_reqs;
    int open_handles;       /* timer + polls not yet closed */
    bool stopping;
    /* the trust store for requests with a ca_file: the system roots plus
     * that file, built once and shared by every connection (loading the
     * system bundle for each new connection was a quarter of the loop's
     * time in a push burst); rebuilt when the file changes */
    X509_STORE *roots;
    char *roots_file;
    struct stat roots_st;
};

struct curlm_req {
    struct curlm *m;
    CURL *easy;
    struct curl_slist *headers, *resolve;
    struct curlm_req *prev, *next;
    bool want_roots;        /* a ca_file was given (certificates checked) */
    X509_STORE *roots;      /* a reference to the shared store, or NULL */
    curlm_cb cb;
    void *ud;
    char *body;
    size_t body_len, body_cap;
    bool truncated;
    struct curlm_hdrs *hdrs; /* NULL unless keep_headers */
    char err[CURL_ERROR_SIZE];
};

struct curlm_hdrs {
    char location[CURLM_HDR_KEEP], nonce[CURLM_HDR_KEEP], link[CURLM_HDR_KEEP],
        ctype[CURLM_HDR_KEEP];
    long retry_after;
};

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct curlm *m;
};

static void maybe_free(struct curlm *m)
{
    if (m->stopping && m->open_handles == 0)
        free(m);
}

static void handle_closed(uv_handle_t *h)
{
    struct curlm *m = h->data;
    if (h->type == UV_POLL)
        free(h); /* the sock_ctx (poll is its first member) */
    m->open_handles--;
    maybe_free(m);
}

/* ------------------------------------------------------------ completion */

static void req_unlink(struct curlm_req *r)
{
    struct curlm *m = r->m;
    if (r->prev)
        r->prev->next = r->next;
    else
        m->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    m->n_reqs--;
}

static void req_free(struct curlm_req *r)
{
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    curl_slist_free_all(r->resolve);
    X509_STORE_free(r->roots);
    free(r->body);
    free(r->hdrs);
    free(r);
}

static void req_finish(struct curlm_req *r, int code)
{
    struct curlm *m = r->m;
    long status = 0;
    if (code == CURLE_OK)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(m->multi, r->easy);
    req_unlink(r);
    struct curlm_result res = {
        .status = status,
        .curl_code = code,
        .error = code == CURLM_ERR_CANCELLED ? "cancelled"
                 : r->err[0]                 ? r->err
                 : code != CURLE_OK          ? curl_easy_strerror((CURLcode)code)
                                             : "",
        .body = r->body,
        .body_len = r->body_len,
        .body_truncated = r->truncated,
        .location = r->hdrs ? r->hdrs->location : "",
        .replay_nonce = r->hdrs ? r->hdrs->nonce : "",
        .link = r->hdrs ? r->hdrs->link : "",
        .content_type = r->hdrs ? r->hdrs->ctype : "",
        .retry_after = r->hdrs ? r->hdrs->retry_after : -1,
    };
    r->cb(r->ud, &res);
    req_free(r);
}

static void check_done(struct curlm *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct curlm_req *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r)
            req_finish(r, (int)msg->data.result);
    }
}

/* ------------------------------------------------------------ libuv glue */

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock_ctx *s = (struct sock_ctx *)p;
    struct curlm *m = s->m;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(m->multi, s->fd, flags, &running);
    check_done(m);
}

static void on_timer(uv_timer_t *t)
{
    struct curlm *m = t->data;
    int running;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(m);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct curlm *m = userp;
    if (m->stopping)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&m->timer);
    else
        uv_timer_start(&m->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct curlm *m = userp;
    struct sock_ctx *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, handle_closed);
            curl_multi_assign(m->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        if (m->stopping || !(s = calloc(1, sizeof *s)))
            return -1;
        s->fd = fd;
        s->m = m;
        if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = m;
        m->open_handles++;
        curl_multi_assign(m->multi, fd, s);
    }
    int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

/* ------------------------------------------------------------ API */

struct curlm *curlm_start(uv_loop_t *loop, const char **why)
{
    static bool global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            *why = "curl_global_init failed";
            return NULL;
        }
        global_done = true;
    }
    struct curlm *m = calloc(1, sizeof *m);
    if (!m || !(m->multi = curl_multi_init())) {
        free(m);
        *why = "out of memory";
        return NULL;
    }
    m->loop = loop;
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->open_handles = 1;
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L); /* no limit per host */
    return m;
}

void curlm_stop(struct curlm *m)
{
    if (!m || m->stopping)
        return;
    while (m->reqs)
        req_finish(m->reqs, CURLM_ERR_CANCELLED);
    m->stopping = true;
    curl_multi_cleanup(m->multi); /* closes cached connections: socket_cb REMOVE */
    m->multi = NULL;
    X509_STORE_free(m->roots);
    m->roots = NULL;
    free(m->roots_file);
    m->roots_file = NULL;
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, handle_closed);
}

size_t curlm_pending(const struct curlm *m)
{
    return m ? m->n_reqs : 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct curlm_req *r = ud;
    size_t len = size * n, room = r->body_cap - r->body_len;
    size_t k = len < room ? len : room;
    memcpy(r->body + r->body_len, p, k);
    r->body_len += k;
    if (k < len)
        r->truncated = true;
    return len;
}

/* Copies a header's value (trimmed) into dst; `append` joins with ", ". */
static void hdr_copy(char *dst, const char *v, size_t n, bool append)
{
    size_t used = append ? strlen(dst) : 0;
    if (append && used > 0 && used + 2 < CURLM_HDR_KEEP) {
        memcpy(dst + used, ", ", 2);
        used += 2;
    }
    size_t k = n < CURLM_HDR_KEEP - 1 - used ? n : CURLM_HDR_KEEP - 1 - used;
    memcpy(dst + used, v, k);
    dst[used + k] = '\0';
}

static bool hdr_is(const char *line, size_t len, const char *name, const char **v, size_t *vn)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return false;
    const char *p = line + nl + 1, *end = line + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *v = p;
    *vn = (size_t)(end - p);
    return true;
}

/* Response headers (keep_headers): a new status line (a redirect or a
 * 100 Continue) starts over. */
static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    struct curlm_req *r = ud;
    struct curlm_hdrs *h = r->hdrs;
    size_t len = size * n;
    const char *v;
    size_t vn;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        memset(h, 0, sizeof *h);
        h->retry_after = -1;
    } else if (hdr_is(p, len, "Location", &v, &vn)) {
        hdr_copy(h->location, v, vn, false);
    } else if (hdr_is(p, len, "Replay-Nonce", &v, &vn)) {
        hdr_copy(h->nonce, v, vn, false);
    } else if (hdr_is(p, len, "Link", &v, &vn)) {
        hdr_copy(h->link, v, vn, true);
    } else if (hdr_is(p, len, "Content-Type", &v, &vn)) {
        hdr_copy(h->ctype, v, vn, false);
    } else if (hdr_is(p, len, "Retry-After", &v, &vn)) {
        long s = 0;
        size_t i = 0;
        while (i < vn && i < 9 && v[i] >= '0' && v[i] <= '9')
            s = s * 10 + (v[i++] - '0');
        h->retry_after = i > 0 && i == vn ? s : -1;
    }
    return len;
}

/* The shared store for ca_file (system roots + the file): the cached one
 * while the file is unchanged (same inode, size and mtime), else a new one.
 * NULL when the file cannot be read or holds no certificate. Partial chains
 * are accepted, as curl's own store does (a CA file may hold an
 * intermediate as its trust anchor). */
static X509_STORE *roots_for(struct curlm *m, const char *ca_file)
{
    struct stat st;
    if (stat(ca_file, &st) != 0)
        return NULL;
    if (m->roots && strcmp(m->roots_file, ca_file) == 0 && st.st_ino == m->roots_st.st_ino &&
        st.st_size == m->roots_st.st_size &&
        st.st_mtim.tv_sec == m->roots_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == m->roots_st.st_mtim.tv_nsec)
        return m->roots;
    X509_STORE *s = X509_STORE_new();
    char *name = strdup(ca_file);
    if (!s || !name || X509_STORE_set_default_paths(s) != 1 ||
        X509_STORE_load_file(s, ca_file) != 1) {
        X509_STORE_free(s);
        free(name);
        return NULL;
    }
    X509_STORE_set_flags(s, X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_free(m->roots);
    free(m->roots_file);
    m->roots = s;
    m->roots_file = name;
    m->roots_st = st;
    return s;
}

/* The connection gets the shared store (curl loaded no roots of its own). */
static CURLcode ssl_ctx_cb(CURL *easy, void *ssl_ctx, void *ud)
{
    (void)easy;
    struct curlm_req *r = ud;
    if (!r->roots)
        return CURLE_SSL_CACERT_BADFILE;
    SSL_CTX_set1_cert_store((SSL_CTX *)ssl_ctx, r->roots);
    return CURLE_OK;
}

/* "host:port:addr" for CURLOPT_RESOLVE from the URL and the address. */
static int resolve_entry(const char *url, const struct sockaddr_storage *a, char *out,
                         size_t outlen)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        char ip[INET6_ADDRSTRLEN] = "";
        const void *src = a->ss_family == AF_INET6
                              ? (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr
                              : (const void *)&((const struct sockaddr_in *)a)->sin_addr;
        if (inet_ntop(a->ss_family, src, ip, sizeof ip)) {
            bool v6 = a->ss_family == AF_INET6;
            int k = snprintf(out, outlen, "%s:%s:%s%s%s", host, port, v6 ? "[" : "", ip,
                             v6 ? "]" : "");
            rc = k > 0 && (size_t)k < outlen ? 0 : -1;
        }
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

void curlm_set_max_host_connections(struct curlm *m, long n)
{
    curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
}

struct curlm_req *curlm_post(struct curlm *m, const struct curlm_post *p, curlm_cb cb, void *ud)
{
    const char *method = p->method ? p->method : "POST";
    bool post = strcmp(method, "POST") == 0, head = strcmp(method, "HEAD") == 0;
    if (!m || m->stopping || !p->url || !cb || p->body_max > CURLM_BODY_MAX ||
        (!post && !head && strcmp(method, "GET") != 0))
        return NULL;
    struct curlm_req *r = calloc(1, sizeof *r);
    if (!r || !(r->easy = curl_easy_init())) {
        free(r);
        return NULL;
    }
    r->body_cap = p->body_max ? p->body_max : CURLM_BODY_KEEP;
    if (!(r->body = malloc(r->body_cap)) ||
        (p->keep_headers && !(r->hdrs = calloc(1, sizeof *r->hdrs)))) {
        req_free(r);
        return NULL;
    }
    if (r->hdrs)
        r->hdrs->retry_after = -1;
    r->m = m;
    r->cb = cb;
    r->ud = ud;
    bool bad = false;
    for (size_t i = 0; i < p->n_headers && !bad; i++) {
        struct curl_slist *l = curl_slist_append(r->headers, p->headers[i]);
        bad = l == NULL;
        if (l)
            r->headers = l;
    }
    /* no "Expect: 100-continue" round trip */
    struct curl_slist *l = bad ? NULL : curl_slist_append(r->headers, "Expect:");
    bad |= l == NULL;
    if (l)
        r->headers = l;
    if (!bad && p->pin_addr) {
        char entry[512];
        bad = resolve_entry(p->url, p->pin_addr, entry, sizeof entry) < 0 ||
              !(r->resolve = curl_slist_append(NULL, entry));
    }
    if (!bad && p->ca_file && !p->insecure) {
        r->want_roots = true;
        r->roots = roots_for(m, p->ca_file); /* NULL: the request fails (bad file) */
        if (r->roots)
            X509_STORE_up_ref(r->roots);
    }
    if (bad) {
        req_free(r);
        return NULL;
    }
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, p->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    if (post) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, p->body ? p->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body_len);
    } else if (head) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (r->hdrs) {
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(p->connect_timeout_ms ? p->connect_timeout_ms : 5000));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(p->timeout_ms ? p->timeout_ms : 60000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->err);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    if (r->resolve)
        curl_easy_setopt(e, CURLOPT_RESOLVE, r->resolve);
    if (p->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (r->want_roots) {
        /* curl loads nothing; ssl_ctx_cb puts in the shared store */
        curl_easy_setopt(e, CURLOPT_CAINFO, (char *)NULL);
        curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
        curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
        curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, r);
    }
    if (curl_multi_add_handle(m->multi, e) != CURLM_OK) {
        req_free(r);
        return NULL;
    }
    r->next = m->reqs;
    if (m->reqs)
        m->reqs->prev = r;
    m->reqs = r;
    m->n_reqs++;
    /* curl asked for a 0 ms timer from add_handle: the transfer starts on
     * the next loop turn, so cb never runs inside this call */
    return r;
}
