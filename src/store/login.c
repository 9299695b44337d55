/* login.c: log in (or create on first login) without blocking the loop.
 *
 * store_login_sync does the work on a worker thread: normalise the name,
 * open the password file, accept a cached credential if the file is the
 * one it was verified against, else verify the hash (or create the
 * account, §2.4), then update last login (§2.6, decision 8).
 * store_login_async queues it on libuv's pool. At most `total` logins are
 * in flight, and `per_ip` per client IP, so that a flood of logins cannot
 * fill the pool and starve fsyncs and deliveries. Logins beyond that wait
 * in a FIFO (bounded overall and per IP: LIM_LOGIN_QUEUE*) and start as
 * slots free up - thousands of clients reconnecting after a restart are
 * served in turn rather than refused. Past the queue bounds the caller is
 * told to try again. The counters live on the loop thread only. */
#include "core/limits.h"
#include "store/accounts.h"
#include "store/accounts_int.h"

#include "core/config.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static void finish(struct store_login_outcome *out, enum store_login_result r,
                   const char *reason)
{
    out->result = r;
    snprintf(out->reason, sizeof out->reason, "%s", reason ? reason : "");
}

/* Last login on the open file, then remember the credential for its new
 * state. A failed futimens is logged; the login still succeeds. */
static void after_success(int fd, const uint8_t *key, const char *addr)
{
    time_t now = time(NULL);
    struct stat st;
    if (store_lastlogin_update_fd(fd, now) < 0)
        log_warn("cannot update last login of %s: %s", addr, strerror(errno));
    if (fstat(fd, &st) == 0)
        store_cred_put(key, &st, now);
}

/* Verifies against the open, non-empty password file. */
static int verify_file(int fd, const char *password, struct store_login_outcome *out)
{
    char hash[LIM_STORE_PWFILE_MAX];
    if (store_read_fd(fd, hash, sizeof hash) < 0) {
        log_error("cannot read password file of %s", out->addr);
        finish(out, STORE_LOGIN_TRY_AGAIN, "cannot read password file");
        return out->result;
    }
    store_rstrip(hash);
    int v = store_pw_verify(hash, password);
    sodium_memzero(hash, sizeof hash);
    if (v < 0)
        log_warn("unsupported or corrupt password hash for %s", out->addr);
    finish(out, v == 1 ? STORE_LOGIN_OK : STORE_LOGIN_WRONG_PASSWORD, NULL);
    return out->result;
}

/* The account exists when fd >= 0 and the file is not empty. Returns -1
 * when it does not exist (fd closed), else the login result. */
static int login_existing(int fd, const char *password, const uint8_t *key,
                          struct store_login_outcome *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size == 0) {
        log_error("empty password file for %s: treated as no account", out->addr);
        close(fd);
        return -1;
    }
    if (store_cred_hit(key, &st, time(NULL)))
        finish(out, STORE_LOGIN_OK, NULL);
    else
        verify_file(fd, password, out);
    if (out->result == STORE_LOGIN_OK)
        after_success(fd, key, out->addr);
    close(fd);
    return out->result;
}

static int open_password(const char *dir)
{
    char path[LIM_STORE_PATH];
    if (store_path(path, sizeof path, dir, "password") < 0)
        return -1;
    return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

int store_login_sync(const struct config *cfg, const char *user, const char *password,
                     struct store_login_outcome *out)
{
    const char *why = NULL;
    char dir[LIM_STORE_PATH];
    uint8_t key[STORE_CRED_KEY_BYTES];
    memset(out, 0, sizeof *out);
    if (!password || strnlen(password, STORE_PASSWORD_MAX + 1) > STORE_PASSWORD_MAX)
        why = "password too long";
    else if (store_addr_normalize(cfg, user, out->addr, sizeof out->addr, &why) == 0 &&
             store_account_dir(cfg, out->addr, dir, sizeof dir - sizeof "/password.lock") < 0)
        why = "invalid address";
    if (why) {
        finish(out, STORE_LOGIN_REFUSED, why);
        return out->result;
    }
    store_cred_key(out->addr, password, key);
    int fd = open_password(dir);
    if (fd < 0 && errno != ENOENT && errno != ENOTDIR) {
        log_error("cannot open password file of %s: %s", out->addr, strerror(errno));
        finish(out, STORE_LOGIN_TRY_AGAIN, "cannot open password file");
    } else if (fd < 0 || login_existing(fd, password, key, out) < 0) {
        if (store_account_create(cfg, out->addr, password, out) == STORE_LOGIN_OK &&
            (fd = open_password(dir)) >= 0) {
            after_success(fd, key, out->addr);
            close(fd);
        }
    }
    sodium_memzero(key, sizeof key);
    return out->result;
}

/* ---- asynchronous logins on the worker pool ---- */

struct store_login_req {
    uv_work_t work;
    uv_loop_t *loop;
    struct store_login_req *prev, *next; /* in the wait queue */
    bool waiting;
    const struct config *cfg;
    store_login_cb cb; /* NULL once cancelled */
    void *ud;
    char ip[LIM_LOGIN_IP];
    char *user, *password;
    size_t password_len;
    struct store_login_outcome out;
};

struct ip_count {
    char ip[LIM_LOGIN_IP];
    unsigned n;
};

static unsigned limit_total, limit_per_ip;
static unsigned in_flight;
static struct store_login_req *wait_head, *wait_tail;
static unsigned n_waiting;
static struct ip_count ip_counts[LIM_LOGIN_INFLIGHT_CAP];
static size_t n_ip_counts;

static unsigned default_total(void)
{
    const char *env = getenv("UV_THREADPOOL_SIZE");
    long pool = env ? strtol(env, NULL, 10) : 4;
    if (pool < 1)
        pool = 4;
    if (pool > LIM_LOGIN_INFLIGHT_CAP)
        pool = LIM_LOGIN_INFLIGHT_CAP;
    return pool > 1 ? (unsigned)pool - 1 : 1; /* one worker always left for the rest */
}

void store_login_set_limits(unsigned total, unsigned per_ip)
{
    limit_total = total > LIM_LOGIN_INFLIGHT_CAP ? LIM_LOGIN_INFLIGHT_CAP : total;
    limit_per_ip = per_ip;
}

unsigned store_login_in_flight(void) { return in_flight; }

static struct ip_count *ip_find(const char *ip)
{
    for (size_t i = 0; i < n_ip_counts; i++)
        if (strcmp(ip_counts[i].ip, ip) == 0)
            return &ip_counts[i];
    return NULL;
}

static unsigned per_ip_limit(unsigned total)
{
    if (limit_per_ip)
        return limit_per_ip;
    /* default: 8, and at most half of the bound (rounded up) for one address */
    unsigned half = (total + 1) / 2;
    return half < LIM_LOGIN_PER_IP_DEFAULT ? (half ? half : 1) : LIM_LOGIN_PER_IP_DEFAULT;
}

/* Counts a new login for ip; returns -1 when a bound is reached. */
static int admit(const char *ip)
{
    unsigned total = limit_total ? limit_total : default_total();
    struct ip_count *c = ip_find(ip);
    if (in_flight >= total || (c && c->n >= per_ip_limit(total)) ||
        (!c && n_ip_counts >= LIM_LOGIN_INFLIGHT_CAP))
        return -1;
    if (!c) {
        c = &ip_counts[n_ip_counts++];
        snprintf(c->ip, sizeof c->ip, "%s", ip);
        c->n = 0;
    }
    c->n++;
    in_flight++;
    return 0;
}

static void release(const char *ip)
{
    struct ip_count *c = ip_find(ip);
    in_flight--;
    if (c && --c->n == 0)
        *c = ip_counts[--n_ip_counts];
}

static void req_free(struct store_login_req *req)
{
    if (req->password)
        sodium_memzero(req->password, req->password_len);
    free(req->password);
    free(req->user);
    free(req);
}

static void work_cb(uv_work_t *w)
{
    struct store_login_req *req = w->data;
    store_login_sync(req->cfg, req->user, req->password, &req->out);
}

static void wait_remove(struct store_login_req *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else
        wait_head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    else
        wait_tail = req->prev;
    req->prev = req->next = NULL;
    req->waiting = false;
    n_waiting--;
}

static unsigned waiting_for(const char *ip)
{
    unsigned n = 0;
    for (struct store_login_req *r = wait_head; r; r = r->next)
        n += strcmp(r->ip, ip) == 0;
    return n;
}

static void after_work_cb(uv_work_t *w, int status);

static int start_work(struct store_login_req *req)
{
    return uv_queue_work(req->loop, &req->work, work_cb, after_work_cb);
}

/* Starts waiting logins, oldest first, as far as the bounds allow. */
static void dispatch_waiting(void)
{
    struct store_login_req *r = wait_head, *next;
    for (; r; r = next) {
        next = r->next;
        if (admit(r->ip) < 0)
            continue; /* its address is at its bound; others may go */
        wait_remove(r);
        if (start_work(r) != 0) {
            release(r->ip);
            finish(&r->out, STORE_LOGIN_TRY_AGAIN, "cannot queue the login");
            r->cb(r->ud, (int)r->out.result, r->out.reason);
            req_free(r);
        }
    }
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct store_login_req *req = w->data;
    release(req->ip);
    dispatch_waiting();
    if (req->cb) {
        if (status != 0)
            finish(&req->out, STORE_LOGIN_TRY_AGAIN, "login cancelled");
        const struct store_login_outcome *o = &req->out;
        bool has_reason = o->result == STORE_LOGIN_REFUSED || o->result == STORE_LOGIN_TRY_AGAIN;
        req->cb(req->ud, (int)o->result, has_reason ? o->reason : NULL);
    }
    req_free(req);
}

struct store_login_req *store_login_async(uv_loop_t *loop, const struct config *cfg,
                                          const char *user, const char *password,
                                          const char *client_ip, store_login_cb cb, void *ud)
{
    char ip[LIM_LOGIN_IP];
    snprintf(ip, sizeof ip, "%s", client_ip ? client_ip : "");
    if (!user || !password)
        return NULL;
    bool now = admit(ip) == 0;
    if (!now && (n_waiting >= LIM_LOGIN_QUEUE || waiting_for(ip) >= LIM_LOGIN_QUEUE_PER_IP))
        return NULL;
    struct store_login_req *req = calloc(1, sizeof *req);
    if (req) {
        req->user = strdup(user);
        req->password_len = strlen(password);
        req->password = strdup(password);
    }
    if (!req || !req->user || !req->password) {
        if (now)
            release(ip);
        if (req)
            req_free(req);
        return NULL;
    }
    req->cfg = cfg;
    req->cb = cb;
    req->ud = ud;
    req->loop = loop;
    snprintf(req->ip, sizeof req->ip, "%s", ip);
    req->work.data = req;
    if (!now) { /* wait for a slot */
        req->waiting = true;
        req->prev = wait_tail;
        if (wait_tail)
            wait_tail->next = req;
        else
            wait_head = req;
        wait_tail = req;
        n_waiting++;
        return req;
    }
    if (start_work(req) != 0) {
        release(req->ip);
        req_free(req);
        return NULL;
    }
    return req;
}

void store_login_cancel(struct store_login_req *req)
{
    if (!req)
        return;
    if (req->waiting) { /* never started: nothing else refers to it */
        wait_remove(req);
        req_free(req);
        return;
    }
    req->cb = NULL;
    uv_cancel((uv_req_t *)&req->work); /* may fail when already running: fine */
}
