/* outq.c: the outbound queue runner (see outq.h). Loop thread, except the
 * *_work functions (worker pool: file reads, signing, state writes, the
 * DSN delivery).
 *
 * One "run" is one delivery attempt of one message: the due pending
 * recipients grouped by domain; each group finds its destination and walks
 * its MX hosts and, per host, the transports. When every group ended, the
 * outcomes go into the state, a worker writes it (or removes the message
 * when every recipient is done, after the DSN is in the sender's INBOX),
 * and the message waits for its next try. */
#include "smtp/outq.h"
#include "smtp/queue.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/curlm.h"
#include "core/dns.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/metrics.h"
#include "dkim/dkim.h"
#include "push/push.h"
#include "smtp/smtpc.h"
#include "store/accounts.h"
#include "store/mailbox.h"
#include "store/maildir.h"

#define OUTQ_MAX_RUNS 256          /* attempts in flight at once */
#define OUTQ_MAX_MSG (64u << 20)   /* bytes of a queue file read back */
#define OUTQ_DSN_HEADERS 65536     /* bytes of the original's header in a DSN */
#define OUTQ_BACKOFF_FIRST 20      /* seconds; doubles per attempt, jittered */
#define OUTQ_BACKOFF_MAX 3600
#define OUTQ_DEAD_SECS 120         /* an unreachable destination is skipped this long */
#define OUTQ_DEAD_PROBE 5          /* one delivery may probe a dead one this often */
#define OUTQ_TICK_MS 1000          /* flush file, oldest-age gauge */
#define OUTQ_DNS_TIMEOUT_MS 2000
#define OUTQ_DNS_TRIES 2
#define OUTQ_MAX_DEAD 4096

struct omsg {
    char id[QUEUE_ID_LEN];
    char *mail_from;
    int64_t arrival;
    struct outq_state st;
    bool busy, fresh;
    struct omsg *prev, *next;
};

/* A destination none of whose hosts could be reached: until `until`, its
 * mail is deferred without a connection, except one probe per
 * OUTQ_DEAD_PROBE seconds (a new message waits for the next probe, not
 * for a backoff). A delivery that gets through clears the mark and makes
 * everything queued for the destination due at once. */
struct dead {
    char *domain;
    int64_t since, until, probe_at;
    char reply[OUTQ_REPLY_MAX];
};

struct group;
struct run {
    struct omsg *m;
    struct buf msg;                /* signed bytes */
    char *headers;                 /* the original's header block (DSN) */
    size_t headers_len;
    int sign_code;                 /* 0, else a permanent refusal (554) */
    char sign_reply[OUTQ_REPLY_MAX];
    struct group *g;
    size_t n_groups, groups_left;
    int64_t now;
    /* commit (worker) */
    struct outq_dsn_rcpt *dsn;
    size_t n_dsn;
    bool dsn_expired, all_done, dsn_stored;
    char dsn_account[STORE_ADDR_MAX + 1];
    struct outq_state snap;        /* the state as written */
};

struct mxhost {
    char *host;
    unsigned short pref;
};

struct group {
    struct run *run;
    char *domain;
    size_t *idx;                   /* into m->st.r */
    const char **rcpts;
    size_t n;
    struct mxhost *mx;
    size_t n_mx, cur_mx;
    struct sockaddr_storage addr;
    bool literal, any_cert;
    int step;                      /* index into order[] being tried */
    int order[OUTQ_T_COUNT];       /* transports for this host, in turn */
    struct outq_attempt a;
    struct outq_reply *replies;    /* per rcpt: the outcome */
    struct outq_reply last;        /* the last host-level failure */
    bool answered;                 /* some peer answered (not dead) */
    bool skipped;                  /* deferred by the dead mark, not tried */
    int64_t probe_at;              /* then: when the next probe may go */
    int path;                      /* OUTQ_T_* of the outcome */
    bool done;
};

static struct {
    uv_loop_t *loop;
    const struct config *cfg;
    char *dir;
    struct dkim_signkey *key;
    struct dns *dns;
    struct curlm *curl;
    struct outq_mxdeliv_ctx mxd;
    struct outq_smtp_ctx smtp;
    struct {
        outq_transport_fn fn;
        void *ctx;
    } t[OUTQ_T_COUNT];
    uv_timer_t timer, tick;
    bool timer_on, started, stopping;
    struct omsg *msgs;
    size_t n_msgs;
    size_t runs;
    int64_t timer_due;
    struct dead *dead;
    size_t n_dead;
    struct quota_cache *quota;
} Q;

static void schedule(void);
static void group_next_host(struct group *g);

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ------------------------------------------------------------ transports */

void outq_set_transport(enum outq_transport_id id, outq_transport_fn fn, void *ctx)
{
    Q.t[id].fn = fn;
    Q.t[id].ctx = ctx;
}

/* ------------------------------------------------------------ files */

static int read_all(const char *path, size_t max, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = 0;
    for (;;) {
        if (buf_reserve(out, 65536) < 0) {
            rc = -1;
            errno = ENOMEM;
            break;
        }
        ssize_t k = read(fd, out->data + out->len, out->cap - out->len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = k < 0 ? -1 : 0;
            break;
        }
        out->len += (size_t)k;
        if (out->len > max) {
            errno = EFBIG;
            rc = -1;
            break;
        }
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int path_of(char *out, size_t n, const char *prefix, const char *id)
{
    int k = snprintf(out, n, "%s/%s%s", Q.dir, prefix, id);
    return k > 0 && (size_t)k < n ? 0 : -1;
}

/* ------------------------------------------------------------ messages */

static void msg_free(struct omsg *m)
{
    free(m->mail_from);
    outq_state_free(&m->st);
    free(m);
}

static void msg_link(struct omsg *m)
{
    m->next = Q.msgs;
    if (Q.msgs)
        Q.msgs->prev = m;
    Q.msgs = m;
    Q.n_msgs++;
}

static void msg_unlink(struct omsg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        Q.msgs = m->next;
    if (m->next)
        m->next->prev = m->prev;
    Q.n_msgs--;
}

static struct omsg *msg_find(const char *id)
{
    for (struct omsg *m = Q.msgs; m; m = m->next)
        if (strcmp(m->id, id) == 0)
            return m;
    return NULL;
}

/* Builds the in-memory message from its queue file and state file
 * (worker). The state's rows are matched to the envelope by address;
 * recipients without a row are pending. NULL when unreadable. */
static struct omsg *msg_load(const char *id)
{
    char path[4096];
    if (path_of(path, sizeof path, "", id) < 0)
        return NULL;
    struct buf b = {0};
    struct queue_envelope env;
    /* the envelope is at the start: 512 KiB covers QUEUE_MAX_RCPTS */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (buf_reserve(&b, 512 * 1024) < 0) {
        close(fd);
        return NULL;
    }
    ssize_t k;
    while ((k = read(fd, b.data + b.len, b.cap - b.len)) > 0 && b.len + (size_t)k < b.cap)
        b.len += (size_t)k;
    if (k > 0)
        b.len += (size_t)k;
    close(fd);
    if (queue_parse_envelope(b.data, b.len, &env) < 0) {
        log_error("queue: %s: malformed envelope, left alone", id);
        buf_free(&b);
        return NULL;
    }
    buf_free(&b);
    struct outq_state old = {0};
    char spath[4096];
    struct buf sb = {0};
    if (path_of(spath, sizeof spath, ".st-", id) == 0 && read_all(spath, OUTQ_STATE_MAX, &sb) == 0 &&
        outq_state_parse(sb.data ? sb.data : "", sb.len, &old) < 0)
        log_error("queue: %s: state file unreadable, starting afresh", id);
    buf_free(&sb);
    struct omsg *m = calloc(1, sizeof *m);
    if (!m || !(m->st.r = calloc(env.n_rcpts, sizeof *m->st.r)))
        goto fail;
    snprintf(m->id, sizeof m->id, "%s", id);
    m->mail_from = env.mail_from;
    env.mail_from = NULL;
    m->arrival = env.arrival;
    for (size_t i = 0; i < env.n_rcpts; i++) {
        bool dup = false;
        for (size_t j = 0; j < m->st.n && !dup; j++)
            dup = strcasecmp(m->st.r[j].addr, env.rcpts[i]) == 0;
        if (dup)
            continue;
        struct outq_rstate *r = &m->st.r[m->st.n++];
        r->addr = env.rcpts[i];
        env.rcpts[i] = NULL;
        for (size_t j = 0; j < old.n; j++)
            if (strcmp(old.r[j].addr, r->addr) == 0) {
                r->status = old.r[j].status;
                r->attempts = old.r[j].attempts;
                r->next_try = old.r[j].next_try;
                memcpy(r->last, old.r[j].last, sizeof r->last);
            }
    }
    outq_state_free(&old);
    queue_envelope_free(&env);
    return m;
fail:
    outq_state_free(&old);
    queue_envelope_free(&env);
    if (m)
        msg_free(m);
    return NULL;
}

struct load_req {
    uv_work_t w;
    char **ids;
    size_t n;
    struct omsg **out;
    bool scan;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_work(uv_work_t *w)
{
    struct load_req *l = w->data;
    if (l->scan) { /* the whole directory */
        DIR *d = opendir(Q.dir);
        struct dirent *de;
        size_t cap = 0;
        while (d && (de = readdir(d)) != NULL) {
            if (strncmp(de->d_name, ".st-", 4) == 0 && strstr(de->d_name, ".tmp-")) {
                unlinkat(dirfd(d), de->d_name, 0); /* a state write cut short */
                continue;
            }
            if (de->d_name[0] == '.' || strlen(de->d_name) >= QUEUE_ID_LEN)
                continue;
            if (l->n == cap) {
                cap = cap ? cap * 2 : 64;
                char **x = realloc(l->ids, cap * sizeof *x);
                if (!x)
                    break;
                l->ids = x;
            }
            if (!(l->ids[l->n] = strdup(de->d_name)))
                break;
            l->n++;
        }
        if (d)
            closedir(d);
        if (l->n)
            qsort(l->ids, l->n, sizeof *l->ids, cmp_str); /* oldest first */
    }
    l->out = calloc(l->n ? l->n : 1, sizeof *l->out);
    for (size_t i = 0; l->out && i < l->n; i++)
        l->out[i] = msg_load(l->ids[i]);
}

static void load_done(uv_work_t *w, int status)
{
    struct load_req *l = w->data;
    (void)status;
    for (size_t i = 0; i < l->n; i++) {
        struct omsg *m = l->out ? l->out[i] : NULL;
        if (m && (Q.stopping || msg_find(m->id))) {
            msg_free(m);
        } else if (m) {
            m->fresh = !l->scan;
            msg_link(m);
        }
        free(l->ids[i]);
    }
    free(l->ids);
    free(l->out);
    free(l);
    if (!Q.stopping)
        schedule();
}

static int load_ids(char **ids, size_t n, bool scan)
{
    struct load_req *l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    l->ids = ids;
    l->n = n;
    l->scan = scan;
    l->w.data = l;
    if (uv_queue_work(Q.loop, &l->w, load_work, load_done) < 0) {
        free(l);
        return -1;
    }
    return 0;
}

void outq_notify(const char *id)
{
    if (!Q.started || Q.stopping)
        return;
    char **ids = malloc(sizeof *ids);
    if (!ids || !(ids[0] = strdup(id)) || load_ids(ids, 1, false) < 0) {
        if (ids)
            free(ids[0]);
        free(ids);
        log_error("queue: %s: cannot load now; it goes at the next start", id);
    }
}

/* ------------------------------------------------------------ dead memory */

static struct dead *dead_find(const char *domain)
{
    for (size_t i = 0; i < Q.n_dead; i++)
        if (strcasecmp(Q.dead[i].domain, domain) == 0)
            return &Q.dead[i];
    return NULL;
}

static void dead_clear(const char *domain)
{
    struct dead *d = dead_find(domain);
    if (!d)
        return;
    free(d->domain);
    *d = Q.dead[--Q.n_dead];
    /* the destination is back: everything queued for it goes now */
    for (struct omsg *m = Q.msgs; m; m = m->next)
        for (size_t i = 0; i < m->st.n; i++) {
            const char *at = strrchr(m->st.r[i].addr, '@');
            if (m->st.r[i].status == OUTQ_PENDING && at && strcasecmp(at + 1, domain) == 0)
                m->st.r[i].next_try = 0;
        }
}

static void dead_mark(const char *domain, const char *reply, int64_t now)
{
    struct dead *d = dead_find(domain);
    if (!d) {
        if (Q.n_dead >= OUTQ_MAX_DEAD) {
            free(Q.dead[0].domain);
            Q.dead[0] = Q.dead[--Q.n_dead];
        }
        struct dead *x = realloc(Q.dead, (Q.n_dead + 1) * sizeof *x);
        if (!x)
            return;
        Q.dead = x;
        d = &Q.dead[Q.n_dead];
        memset(d, 0, sizeof *d);
        if (!(d->domain = strdup(domain)))
            return;
        Q.n_dead++;
        d->since = now;
        log_info("queue: destination %s unreachable, queued mail for it waits", domain);
    }
    d->until = now + OUTQ_DEAD_SECS;
    d->probe_at = now + OUTQ_DEAD_PROBE;
    snprintf(d->reply, sizeof d->reply, "%s", reply);
}

/* ------------------------------------------------------------ a run */

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->n_groups; i++) {
        struct group *g = &r->g[i];
        free(g->domain);
        free(g->idx);
        free(g->rcpts);
        for (size_t k = 0; k < g->n_mx; k++)
            free(g->mx[k].host);
        free(g->mx);
        free(g->replies);
        free(g->a.rcpt);
    }
    free(r->g);
    free(r->dsn);
    free(r->headers);
    buf_free(&r->msg);
    outq_state_free(&r->snap);
    free(r);
}

static void set_reply(struct outq_reply *o, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_reply(struct outq_reply *o, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    o->code = code;
    vsnprintf(o->text, sizeof o->text, fmt, ap);
    va_end(ap);
}

static void commit(struct run *r);

static void group_end(struct group *g)
{
    if (g->done)
        return;
    g->done = true;
    struct run *r = g->run;
    if (--r->groups_left == 0)
        commit(r);
}

/* Every recipient of g gets the same reply. */
static void group_all(struct group *g, const struct outq_reply *rep)
{
    for (size_t i = 0; i < g->n; i++)
        g->replies[i] = *rep;
    group_end(g);
}

static int start_transport(struct group *g, int step);

static void attempt_done(struct outq_attempt *a)
{
    struct group *g = a->ud;
    if (Q.stopping) {
        group_end(g);
        return;
    }
    bool per_rcpt = false;
    for (size_t i = 0; i < g->n; i++)
        per_rcpt |= a->rcpt[i].code != 0;
    int sc = a->session.code, tid = g->order[g->step];
    if (!a->fallback && (per_rcpt || sc / 100 == 2 || sc / 100 == 5)) {
        g->answered = true;
        g->path = tid;
        bool delivered = false;
        for (size_t i = 0; i < g->n; i++) {
            g->replies[i] = a->rcpt[i].code ? a->rcpt[i] : a->session;
            delivered |= g->replies[i].code / 100 == 2;
        }
        if (tid == OUTQ_T_SMTP && delivered && g->step > 0 && /* after /mxdeliv failed */
            outq_smtponly_mark(a->host, now_s()))
            log_info("queue: %s delivers over SMTP, not /mxdeliv: SMTP first for %d min", a->host,
                     OUTQ_SMTPONLY_SECS / 60);
        group_end(g);
        return;
    }
    if (tid == OUTQ_T_SMTP && a->transport_error && outq_smtponly_clear(a->host))
        log_info("queue: %s: SMTP failed, /mxdeliv first again", a->host);
    /* this transport did not deliver: the next one on this host, or the
     * next host */
    struct outq_reply cur = a->session;
    if (cur.code == 0)
        set_reply(&cur, 451, "451 4.4.0 %s: no answer", a->host);
    if (g->step > 0 && g->last.code) { /* the reason of the path tried first too */
        struct outq_reply first = g->last;
        set_reply(&g->last, cur.code, "%.120s (after %.120s)", cur.text, first.text);
    } else
        g->last = cur;
    g->answered |= a->connected;
    g->path = tid;
    if (start_transport(g, g->step + 1) == 0)
        return;
    g->cur_mx++;
    group_next_host(g);
}

/* Starts g->order[step] or a later one on the current host: 0, or -1 when
 * none is left (g->last says why) and the next host is due. */
static int start_transport(struct group *g, int step)
{
    struct outq_attempt *a = &g->a;
    for (g->step = step; g->step < OUTQ_T_COUNT; g->step++) {
        memset(&a->session, 0, sizeof a->session);
        memset(a->rcpt, 0, g->n * sizeof *a->rcpt);
        a->fallback = false;
        a->connected = false;
        a->transport_error = false;
        int tid = g->order[g->step];
        if (Q.t[tid].fn(Q.t[tid].ctx, a) == 0)
            return 0;
        set_reply(&g->last, 451, "451 4.3.0 %s: out of resources", a->host);
    }
    return -1;
}

static void try_host(struct group *g, const char *host)
{
    struct run *r = g->run;
    struct outq_attempt *a = &g->a;
    a->host = host;
    a->addr = g->addr;
    a->any_cert = g->any_cert;
    a->helo = Q.cfg->mail_domain;
    a->mail_from = r->m->mail_from;
    a->rcpts = g->rcpts;
    a->n_rcpts = g->n;
    a->msg = r->msg.data;
    a->len = r->msg.len;
    memset(&a->session, 0, sizeof a->session);
    memset(a->rcpt, 0, g->n * sizeof *a->rcpt);
    a->fallback = false;
    a->connected = false;
    a->done = attempt_done;
    memset(&g->last, 0, sizeof g->last);
    a->ud = g;
    /* /mxdeliv first, then SMTP; SMTP first for a host marked "SMTP only" */
    bool smtp_first = outq_smtponly_is(host, now_s());
    g->order[0] = smtp_first ? OUTQ_T_SMTP : OUTQ_T_MXDELIV;
    g->order[1] = smtp_first ? OUTQ_T_MXDELIV : OUTQ_T_SMTP;
    if (start_transport(g, 0) == 0)
        return;
    g->cur_mx++;
    group_next_host(g);
}

static void on_addr(void *arg, const struct dns_addr_result *res)
{
    struct group *g = arg;
    if (Q.stopping || res->status == DNS_CANCELLED) {
        group_end(g);
        return;
    }
    const char *host = g->mx[g->cur_mx].host;
    if (res->status != DNS_OK || res->n == 0) {
        metrics_inc(M_OUTQ_DNS_FAIL);
        set_reply(&g->last, 451, "451 4.4.3 %s: address lookup failed: %s", host, res->why);
        g->cur_mx++;
        group_next_host(g);
        return;
    }
    /* IPv4 first when disable_ipv6 */
    size_t pick = 0;
    for (size_t i = 0; Q.cfg->disable_ipv6 && i < res->n; i++)
        if (res->addr[i].ss_family == AF_INET) {
            pick = i;
            break;
        }
    g->addr = res->addr[pick];
    try_host(g, host);
}

static void group_next_host(struct group *g)
{
    if (g->cur_mx >= g->n_mx) { /* every host failed: temporary */
        group_all(g, &g->last);
        return;
    }
    /* on_addr runs later, or ran already inside dns_addr */
    dns_addr(Q.dns, g->mx[g->cur_mx].host, on_addr, g);
}

static void shuffle_equal(struct mxhost *mx, size_t n)
{
    for (size_t s = 0; s < n;) {
        size_t e = s + 1;
        while (e < n && mx[e].pref == mx[s].pref)
            e++;
        for (size_t i = e - 1; i > s; i--) {
            size_t j = s + randombytes_uniform((uint32_t)(i - s + 1));
            struct mxhost t = mx[i];
            mx[i] = mx[j];
            mx[j] = t;
        }
        s = e;
    }
}

static void on_mx(void *arg, const struct dns_mx_result *res)
{
    struct group *g = arg;
    if (Q.stopping || res->status == DNS_CANCELLED) {
        group_end(g);
        return;
    }
    struct outq_reply rep;
    switch (res->status) {
    case DNS_OK:
        if (res->null_mx) {
            set_reply(&rep, 556, "556 5.1.10 %s: domain does not accept mail (null MX)",
                      g->domain);
            g->answered = true;
            group_all(g, &rep);
            return;
        }
        if (!(g->mx = calloc(res->n ? res->n : 1, sizeof *g->mx)))
            break;
        for (size_t i = 0; i < res->n; i++) {
            if (!res->mx[i].host[0])
                continue;
            if (!(g->mx[g->n_mx].host = strdup(res->mx[i].host)))
                break;
            g->mx[g->n_mx++].pref = res->mx[i].pref;
        }
        shuffle_equal(g->mx, g->n_mx);
        group_next_host(g);
        return;
    case DNS_NODATA: /* implicit MX: the domain itself */
        if (!(g->mx = calloc(1, sizeof *g->mx)) || !(g->mx[0].host = strdup(g->domain)))
            break;
        g->n_mx = 1;
        group_next_host(g);
        return;
    case DNS_NXDOMAIN:
    case DNS_BADNAME:
        metrics_inc(M_OUTQ_DNS_FAIL);
        set_reply(&rep, 550, "550 5.1.2 %s: domain not found", g->domain);
        g->answered = true;
        group_all(g, &rep);
        return;
    default:
        metrics_inc(M_OUTQ_DNS_FAIL);
        set_reply(&rep, 451, "451 4.4.3 %s: MX lookup failed: %s", g->domain, res->why);
        group_all(g, &rep);
        return;
    }
    set_reply(&rep, 451, "451 4.3.0 out of resources");
    group_all(g, &rep);
}

/* "[1.2.3.4]" or "[IPv6:...]" -> addr. */
static int parse_literal(const char *d, struct sockaddr_storage *ss)
{
    size_t n = strlen(d);
    if (n < 3 || d[0] != '[' || d[n - 1] != ']' || n > 64)
        return -1;
    char ip[70];
    memcpy(ip, d + 1, n - 2);
    ip[n - 2] = '\0';
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return 0;
    }
    if (strncasecmp(ip, "IPv6:", 5) == 0 && inet_pton(AF_INET6, ip + 5, &v6->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return 0;
    }
    return -1;
}

static void group_start(struct group *g)
{
    struct run *r = g->run;
    struct outq_reply rep;
    if (r->sign_code) {
        set_reply(&rep, r->sign_code, "%s", r->sign_reply);
        group_all(g, &rep);
        return;
    }
    g->any_cert = g->domain[0] == '_';
    if (g->domain[0] == '[') {
        if (parse_literal(g->domain, &g->addr) < 0) {
            set_reply(&rep, 550, "550 5.1.2 %s: bad address literal", g->domain);
            group_all(g, &rep);
            return;
        }
        g->literal = g->any_cert = true;
        try_host(g, g->domain);
        return;
    }
    struct dead *d = dead_find(g->domain);
    int64_t now = r->now;
    if (d && d->until > now) {
        if (now < d->probe_at) {
            g->skipped = true;
            g->probe_at = d->probe_at;
            set_reply(&rep, 451, "451 4.4.1 %s: destination unreachable, not tried (%.180s)",
                      g->domain, d->reply);
            group_all(g, &rep);
            return;
        }
        d->probe_at = now + OUTQ_DEAD_PROBE; /* this delivery is the probe */
    }
    dns_mx(Q.dns, g->domain, on_mx, g);
}

/* Groups the due pending recipients of the run's message by domain. */
static int make_groups(struct run *r, int64_t now)
{
    struct omsg *m = r->m;
    r->g = calloc(m->st.n ? m->st.n : 1, sizeof *r->g);
    if (!r->g)
        return -1;
    for (size_t i = 0; i < m->st.n; i++) {
        struct outq_rstate *x = &m->st.r[i];
        if (x->status != OUTQ_PENDING || x->next_try > now)
            continue;
        const char *at = strrchr(x->addr, '@');
        const char *dom = at ? at + 1 : "";
        struct group *g = NULL;
        for (size_t k = 0; k < r->n_groups && !g; k++)
            if (strcasecmp(r->g[k].domain, dom) == 0)
                g = &r->g[k];
        if (!g) {
            g = &r->g[r->n_groups++];
            g->run = r;
            g->path = -1;
            if (!(g->domain = strdup(dom)) || !(g->idx = calloc(m->st.n, sizeof *g->idx)) ||
                !(g->rcpts = calloc(m->st.n, sizeof *g->rcpts)) ||
                !(g->replies = calloc(m->st.n, sizeof *g->replies)) ||
                !(g->a.rcpt = calloc(m->st.n, sizeof *g->a.rcpt)))
                return -1;
        }
        g->idx[g->n] = i;
        g->rcpts[g->n++] = x->addr;
    }
    return 0;
}

/* Worker: the message read back and signed; its header block kept. */
static void prep_work(uv_work_t *w)
{
    struct run *r = w->data;
    char path[4096];
    struct buf file = {0};
    struct queue_envelope env;
    if (path_of(path, sizeof path, "", r->m->id) < 0 || read_all(path, OUTQ_MAX_MSG, &file) < 0 ||
        queue_parse_envelope(file.data ? file.data : "", file.len, &env) < 0) {
        r->sign_code = 451;
        snprintf(r->sign_reply, sizeof r->sign_reply, "451 4.3.0 queue file unreadable: %s",
                 strerror(errno));
        buf_free(&file);
        return;
    }
    const char *msg = file.data + env.body_offset;
    size_t len = file.len - env.body_offset;
    queue_envelope_free(&env);
    char msgid[8];
    r->headers_len = outq_dsn_headers(msg, len, OUTQ_DSN_HEADERS, msgid, sizeof msgid);
    r->headers = malloc(r->headers_len + 1);
    if (r->headers)
        memcpy(r->headers, msg, r->headers_len);
    else
        r->headers_len = 0;
    const char *why = "out of memory";
    struct dkim_signer *s = dkim_signer_new(Q.key, Q.cfg->mail_domain, "opendkim", r->now, &why);
    if (!s || dkim_signer_feed(s, msg, len) < 0 || dkim_signer_finish(s, &r->msg, &why) < 0 ||
        buf_append(&r->msg, msg, len) < 0) {
        r->sign_code = 554;
        snprintf(r->sign_reply, sizeof r->sign_reply, "554 5.6.0 message cannot be signed: %s",
                 why);
    }
    dkim_signer_free(s);
    buf_free(&file);
}

static void prep_done(uv_work_t *w, int status)
{
    struct run *r = w->data;
    free(w);
    if (status < 0 && !r->sign_code) {
        r->sign_code = 451;
        snprintf(r->sign_reply, sizeof r->sign_reply, "451 4.3.0 worker unavailable");
    }
    if (Q.stopping) {
        r->m->busy = false;
        Q.runs--;
        run_free(r);
        return;
    }
    r->groups_left = r->n_groups;
    for (size_t i = 0; i < r->n_groups; i++)
        group_start(&r->g[i]);
}

static void start_run(struct omsg *m, int64_t now)
{
    struct run *r = calloc(1, sizeof *r);
    uv_work_t *w = malloc(sizeof *w);
    if (!r || !w) {
        free(r);
        free(w);
        return;
    }
    r->m = m;
    r->now = now;
    if (make_groups(r, now) < 0 || r->n_groups == 0) {
        run_free(r);
        free(w);
        return;
    }
    w->data = r;
    if (uv_queue_work(Q.loop, w, prep_work, prep_done) < 0) {
        run_free(r);
        free(w);
        return;
    }
    m->busy = true;
    Q.runs++;
}

/* ------------------------------------------------------------ commit */

static int64_t backoff(unsigned attempts)
{
    int64_t b = OUTQ_BACKOFF_FIRST;
    for (unsigned i = 1; i < attempts && b < OUTQ_BACKOFF_MAX; i++)
        b *= 2;
    if (b > OUTQ_BACKOFF_MAX)
        b = OUTQ_BACKOFF_MAX;
    /* jitter: 75% .. 125% */
    int64_t j = (int64_t)randombytes_uniform((uint32_t)(b / 2 + 1));
    return b * 3 / 4 + j;
}

static void commit_work(uv_work_t *w)
{
    struct run *r = w->data;
    struct omsg *m = r->m;
    if (r->n_dsn && m->mail_from[0]) {
        int rc = outq_dsn_store(Q.cfg, Q.quota, m->mail_from, r->dsn_account,
                                sizeof r->dsn_account, r->dsn, r->n_dsn,
                                r->headers ? r->headers : "", r->headers_len, m->arrival, now_s(),
                                r->dsn_expired);
        r->dsn_stored = rc == 0;
        if (rc == -1)
            log_info("queue: %s: no local sender %s for the delivery report", m->id, m->mail_from);
        else if (rc < 0)
            log_error("queue: %s: delivery report to %s not stored", m->id, r->dsn_account);
    }
    char name[QUEUE_ID_LEN + 8];
    snprintf(name, sizeof name, ".st-%s", m->id);
    if (r->all_done) {
        char sp[4096];
        if (path_of(sp, sizeof sp, ".st-", m->id) == 0)
            unlink(sp);
        if (queue_remove(Q.dir, m->id) < 0)
            log_error("queue: %s: cannot remove: %s", m->id, strerror(errno));
        return;
    }
    struct buf b = {0};
    if (outq_state_format(&r->snap, &b) < 0 ||
        fileio_write_atomic(Q.dir, name, b.data, b.len, 0600, true) < 0)
        log_error("queue: %s: cannot write its state: %s", m->id, strerror(errno));
    buf_free(&b);
}

static void commit_done(uv_work_t *w, int status)
{
    struct run *r = w->data;
    (void)status;
    free(w);
    struct omsg *m = r->m;
    if (r->dsn_stored) {
        store_notify_append(r->dsn_account, "INBOX", 0, 0, 0, NULL);
        push_delivered(r->dsn_account); /* the sender's phone learns of the failure */
        metrics_inc(M_DELIVERED_MAIL);
    }
    Q.runs--;
    m->busy = false;
    if (r->all_done) {
        msg_unlink(m);
        msg_free(m);
    }
    run_free(r);
    if (!Q.stopping)
        schedule();
}

static enum metric_counter path_metric(int path, int outcome)
{
    static const enum metric_counter t[2][3] = {
        {M_OUTQ_MXDELIV_DELIVERED, M_OUTQ_MXDELIV_DEFERRED, M_OUTQ_MXDELIV_BOUNCED},
        {M_OUTQ_SMTP_DELIVERED, M_OUTQ_SMTP_DEFERRED, M_OUTQ_SMTP_BOUNCED},
    };
    return t[path == OUTQ_T_SMTP ? 1 : 0][outcome];
}

/* Every group ended: the outcomes into the state, then a worker writes it. */
static void commit(struct run *r)
{
    struct omsg *m = r->m;
    if (Q.stopping) { /* results dropped: the message stays as it was */
        m->busy = false;
        Q.runs--;
        run_free(r);
        return;
    }
    int64_t now = now_s();
    int64_t deadline = m->arrival + Q.cfg->queue_lifetime;
    r->dsn = calloc(m->st.n, sizeof *r->dsn);
    for (size_t k = 0; k < r->n_groups; k++) {
        struct group *g = &r->g[k];
        int outcome = -1; /* 0 delivered, 1 deferred, 2 bounced: the group's worst */
        bool any_ok = false, all_temp = true;
        for (size_t i = 0; i < g->n; i++) {
            struct outq_rstate *x = &m->st.r[g->idx[i]];
            const struct outq_reply *rep = &g->replies[i];
            snprintf(x->last, sizeof x->last, "%s", rep->text);
            x->attempts++;
            int c = rep->code / 100;
            if (c == 2) {
                x->status = OUTQ_DELIVERED;
                any_ok = true;
                all_temp = false;
                outcome = outcome < 0 ? 0 : outcome;
                log_info("queue: %s: delivered to %s: %s", m->id, x->addr, rep->text);
            } else if (c == 5 || now >= deadline || r->sign_code == 554) {
                x->status = OUTQ_FAILED;
                if (c != 5)
                    r->dsn_expired = true;
                else
                    all_temp = false;
                outcome = 2;
                if (r->dsn)
                    r->dsn[r->n_dsn++] = (struct outq_dsn_rcpt){x->addr, x->last};
                log_info("queue: %s: failed for %s: %s%s", m->id, x->addr, rep->text,
                         c == 5 ? "" : " (lifetime ended)");
            } else {
                int64_t next = now + backoff(x->attempts);
                if (g->skipped && m->fresh && g->probe_at < next) /* waits for the probe */
                    next = g->probe_at;
                x->next_try = next < deadline ? next : deadline;
                if (outcome < 1)
                    outcome = 1;
                log_info("queue: %s: deferred for %s: %s", m->id, x->addr, rep->text);
            }
        }
        if (outcome >= 0)
            metrics_inc(path_metric(g->path, outcome));
        if (any_ok)
            dead_clear(g->domain);
        else if (all_temp && !g->answered && !g->literal && !g->skipped && g->n_mx > 0)
            dead_mark(g->domain, g->last.text[0] ? g->last.text : "451 4.4.1 unreachable", now);
    }
    m->fresh = false;
    r->all_done = true;
    for (size_t i = 0; i < m->st.n; i++)
        r->all_done &= m->st.r[i].status != OUTQ_PENDING;
    /* the snapshot the worker writes (m may change meanwhile: no) */
    r->snap.r = calloc(m->st.n ? m->st.n : 1, sizeof *r->snap.r);
    for (size_t i = 0; r->snap.r && i < m->st.n; i++) {
        r->snap.r[i] = m->st.r[i];
        r->snap.r[i].addr = strdup(m->st.r[i].addr);
        r->snap.n++;
        if (!r->snap.r[i].addr)
            r->snap.n--;
    }
    uv_work_t *w = malloc(sizeof *w);
    if (w) {
        w->data = r;
        if (uv_queue_work(Q.loop, w, commit_work, commit_done) == 0)
            return;
        free(w);
    }
    log_error("queue: %s: cannot record the outcome now", m->id);
    m->busy = false;
    Q.runs--;
    run_free(r);
}

/* ------------------------------------------------------------ scheduling */

static int64_t msg_due(const struct omsg *m)
{
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < m->st.n; i++)
        if (m->st.r[i].status == OUTQ_PENDING && m->st.r[i].next_try < due)
            due = m->st.r[i].next_try;
    return due;
}

static void on_timer(uv_timer_t *t)
{
    (void)t;
    Q.timer_on = false;
    schedule();
}

/* Starts every due message (up to OUTQ_MAX_RUNS in flight) and sets the
 * timer for the next one. */
static void schedule(void)
{
    if (Q.stopping)
        return;
    int64_t now = now_s(), next = INT64_MAX;
    for (struct omsg *m = Q.msgs; m; m = m->next) {
        if (m->busy)
            continue;
        int64_t due = msg_due(m);
        if (due <= now && Q.runs < OUTQ_MAX_RUNS)
            start_run(m, now);
        else if (due < next)
            next = due;
    }
    if (next == INT64_MAX)
        return;
    int64_t ms = (next - now) * 1000;
    if (ms < 0)
        ms = 0;
    if (Q.timer_on && Q.timer_due <= next)
        return;
    Q.timer_on = true;
    Q.timer_due = next;
    uv_timer_start(&Q.timer, on_timer, (uint64_t)ms + 10, 0);
}

/* Every second: `queue flush` asked for a retry now? And the age of the
 * oldest queued message for /metrics. */
static void on_tick(uv_timer_t *t)
{
    (void)t;
    char path[4096];
    if (path_of(path, sizeof path, "", OUTQ_FLUSH_FILE) == 0 && unlink(path) == 0) {
        log_info("queue: flush: retrying every queued message now");
        for (size_t i = 0; i < Q.n_dead; i++)
            free(Q.dead[i].domain);
        Q.n_dead = 0;
        for (struct omsg *m = Q.msgs; m; m = m->next)
            for (size_t i = 0; i < m->st.n; i++)
                m->st.r[i].next_try = 0;
        schedule();
    }
    int64_t oldest = 0, now = now_s();
    for (struct omsg *m = Q.msgs; m; m = m->next)
        if (now - m->arrival > oldest)
            oldest = now - m->arrival;
    metrics_gauge_set(G_QUEUE_OLDEST_AGE, oldest);
    /* a timer that fell behind (clock jump): keep going */
    if (!Q.timer_on && Q.runs == 0 && Q.msgs)
        schedule();
}

/* ------------------------------------------------------------ start/stop */

int outq_start(uv_loop_t *loop, const struct config *cfg, const char *queue_dir, char *err,
               size_t errlen)
{
    memset(&Q, 0, sizeof Q);
    Q.loop = loop;
    Q.cfg = cfg;
    if (!(Q.dir = strdup(queue_dir))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    bool created = false;
    const char *why = "unknown";
    Q.key = dkim_signkey_load(cfg->dkim_key_path, true, &created, &why);
    if (!Q.key) {
        snprintf(err, errlen, "DKIM key %s: %s", cfg->dkim_key_path, why);
        outq_free();
        return -1;
    }
    if (created) {
        char *rec = dkim_signkey_dns_record(Q.key);
        log_info("DKIM: created %s; publish: opendkim._domainkey.%s. TXT \"%s\"",
                 cfg->dkim_key_path, cfg->mail_domain, rec ? rec : "?");
        free(rec);
    }
    struct dns_options o = {.servers = (const char *const *)cfg->dns_servers,
                            .n_servers = cfg->n_dns_servers,
                            .timeout_ms = OUTQ_DNS_TIMEOUT_MS,
                            .tries = OUTQ_DNS_TRIES};
    if (!(Q.dns = dns_start(loop, &o, &why)) || !(Q.curl = curlm_start(loop, &why))) {
        snprintf(err, errlen, "queue: %s", why);
        outq_stop();
        outq_free();
        return -1;
    }
    Q.quota = quota_cache_shared();
    Q.mxd = (struct outq_mxdeliv_ctx){.curl = Q.curl, .ca_file = cfg->tls_ca_file,
                                      .port = cfg->mxdeliv_port};
    outq_set_transport(OUTQ_T_MXDELIV, outq_mxdeliv_start, &Q.mxd);
    Q.smtp = (struct outq_smtp_ctx){.loop = loop, .cfg = cfg, .dns = Q.dns,
                                    .port = cfg->outbound_smtp_port};
    if (smtpc_client_new(&Q.smtp.client, loop, cfg->tls_ca_file, err, errlen) < 0) {
        outq_stop();
        outq_free();
        return -1;
    }
    outq_set_transport(OUTQ_T_SMTP, outq_smtp_start, &Q.smtp);
    uv_timer_init(loop, &Q.timer);
    uv_timer_init(loop, &Q.tick);
    uv_timer_start(&Q.tick, on_tick, OUTQ_TICK_MS, OUTQ_TICK_MS);
    Q.started = true;
    if (load_ids(NULL, 0, true) < 0) {
        snprintf(err, errlen, "queue: cannot scan %s", queue_dir);
        outq_stop();
        outq_free();
        return -1;
    }
    return 0;
}

void outq_stop(void)
{
    if (Q.stopping)
        return;
    Q.stopping = true;
    if (Q.started) {
        uv_close((uv_handle_t *)&Q.timer, NULL);
        uv_close((uv_handle_t *)&Q.tick, NULL);
    }
    curlm_stop(Q.curl);
    Q.curl = NULL;
    outq_smtp_stop(&Q.smtp);
    if (Q.dns)
        dns_stop(Q.dns);
    Q.dns = NULL;
}

void outq_free(void)
{
    while (Q.msgs) {
        struct omsg *m = Q.msgs;
        msg_unlink(m);
        msg_free(m);
    }
    for (size_t i = 0; i < Q.n_dead; i++)
        free(Q.dead[i].domain);
    free(Q.dead);
    outq_smtponly_free();
    outq_smtp_free(&Q.smtp);
    dkim_signkey_free(Q.key);
    free(Q.dir);
    memset(&Q, 0, sizeof Q);
}
