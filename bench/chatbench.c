/* chatbench.c: one benchmark client for any chatmail-style SMTP+IMAP server
 * (chatmaild-server, or the Postfix+Dovecot reference in bench/reference/).
 *
 * Scenarios (--scenario latency|throughput|idle|logins|all):
 *   latency     receivers sit in IMAP IDLE; one sender submits OpenPGP/MIME
 *               shaped messages over implicit-TLS submission, one at a time;
 *               time from the final "." to the receiver's "* N EXISTS" and to
 *               the "250" (p50/p90/p99/max, milliseconds).
 *   throughput  C concurrent submission connections for T seconds; accepted
 *               messages/s; then every accepted message is looked up by
 *               Message-ID in the recipients' Maildirs (delivered/s, lost).
 *   idle        K TLS IMAP connections logged in and in IDLE; server memory
 *               per connection = (PSS after - PSS before) / K, PSS summed over
 *               every process of the server (given pids and descendants).
 *   logins      new TLS connection + LOGIN per second, for first logins
 *               (create-on-login) and for existing accounts.
 *
 * Single-threaded, epoll + non-blocking OpenSSL (TLS 1.3 only, no
 * certificate verification: a loopback benchmark). Results are printed as
 * text, or with --json as one flat JSON object, one key per line (bench/run.sh
 * reads it with awk). Build: cc -O2 -o chatbench chatbench.c -lssl -lcrypto -lz
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define LIM_LINE 4096          /* longest server line kept (longer: cut) */
#define LIM_ADDR 128
#define LIM_PASS 64
#define LIM_RESULTS 128
#define LIM_ROOTS 64
#define RAMP_DEFAULT 64        /* connections being set up at once */

/* ------------------------------------------------------------------ utils */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "chatbench: out of memory\n");
        exit(2);
    }
    return p;
}

static uint32_t rnd32(void)
{
    uint32_t v;
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
        v = (uint32_t)rand();
    return v;
}

static void rnd_bytes(unsigned char *p, size_t n)
{
    if (RAND_bytes(p, (int)n) != 1)
        for (size_t i = 0; i < n; i++) p[i] = (unsigned char)rand();
}

__attribute__((format(printf, 1, 2)))
static void logmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chatbench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---------------------------------------------------------------- options */

static struct {
    const char *scenario, *host, *domain, *password, *accounts_file;
    const char *maildir_tmpl, *server_pids, *server_pattern, *label;
    int smtps_port, imaps_port;
    int accounts, receivers, connections, seconds, idle_k, idle_per_acct;
    int idle_hold, messages, logins, login_conc, sources, ramp;
    double deliver_timeout;
    bool create, json, print_message;
} opt = {
    .scenario = "all", .host = "127.0.0.1", .domain = NULL, .password = NULL,
    .smtps_port = 465, .imaps_port = 993, .accounts = 16, .receivers = 2,
    .connections = 8, .seconds = 10, .idle_k = 1000, .idle_per_acct = 4,
    .idle_hold = 0, .messages = 100, .logins = 500, .login_conc = 8,
    .sources = 1, .ramp = RAMP_DEFAULT, .deliver_timeout = 60,
};

static void usage(FILE *f)
{
    fprintf(f,
"usage: chatbench --domain D [options]\n"
"  --scenario S        latency|throughput|idle|logins|all (default all)\n"
"  --host H            server IPv4 address (default 127.0.0.1)\n"
"  --smtps-port P      implicit-TLS submission port (default 465)\n"
"  --imaps-port P      implicit-TLS IMAP port (default 993)\n"
"  --domain D          mail domain of the accounts\n"
"  --create            create-on-login: random 9-character local parts\n"
"  --accounts-file F   given accounts, one 'addr password' per line\n"
"  --password P        password for --create accounts (default random)\n"
"  --accounts N        size of the account pool (default 16)\n"
"  --receivers R       latency: IDLE receivers (default 2)\n"
"  --messages M        latency: messages sent one at a time (default 100)\n"
"  --connections C     throughput: submission connections (default 8)\n"
"  --seconds T         throughput: seconds of sending (default 10)\n"
"  --maildir-root TPL  Maildir of a user for the lost-message check;\n"
"                      %%a address, %%l local part, %%d domain\n"
"  --deliver-timeout S throughput: wait at most S s for delivery (default 60)\n"
"  --idle K            idle: connections to hold (default 1000)\n"
"  --idle-per-account N idle: connections per account (default 4)\n"
"  --idle-hold S       idle: measure again after S more seconds (default 0)\n"
"  --logins N          logins: logins per kind (default 500)\n"
"  --login-concurrency N logins in flight at once (default 8)\n"
"  --sources N         bind client sockets to 127.0.0.2..127.0.0.(N+1)\n"
"  --ramp N            connections being opened at once (default %d)\n"
"  --server-pids \"P..\" server process ids (descendants included) for PSS\n"
"  --server-pattern S  also every process whose command line contains S\n"
"  --label L           name printed with the results\n"
"  --json              print one flat JSON object\n"
"  --print-message     print one generated message (SMTP DATA form) and exit\n", RAMP_DEFAULT);
}

static int parse_int(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < 0 || v > 100000000) return -1;
    *out = (int)v;
    return 0;
}

struct intopt { const char *name; int *p; };

static int parse_args(int argc, char **argv)
{
    struct intopt ints[] = {
        {"--smtps-port", &opt.smtps_port}, {"--imaps-port", &opt.imaps_port},
        {"--accounts", &opt.accounts}, {"--receivers", &opt.receivers},
        {"--connections", &opt.connections}, {"--seconds", &opt.seconds},
        {"--idle", &opt.idle_k}, {"--idle-per-account", &opt.idle_per_acct},
        {"--idle-hold", &opt.idle_hold}, {"--messages", &opt.messages},
        {"--logins", &opt.logins}, {"--login-concurrency", &opt.login_conc},
        {"--sources", &opt.sources}, {"--ramp", &opt.ramp},
    };
    struct { const char *name; const char **p; } strs[] = {
        {"--scenario", &opt.scenario}, {"--host", &opt.host}, {"--domain", &opt.domain},
        {"--password", &opt.password}, {"--accounts-file", &opt.accounts_file},
        {"--maildir-root", &opt.maildir_tmpl}, {"--server-pids", &opt.server_pids},
        {"--server-pattern", &opt.server_pattern}, {"--label", &opt.label},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool done = false;
        if (!strcmp(a, "--create")) { opt.create = true; continue; }
        if (!strcmp(a, "--json")) { opt.json = true; continue; }
        if (!strcmp(a, "--print-message")) { opt.print_message = true; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); exit(0); }
        if (i + 1 >= argc) { logmsg("missing value or unknown option: %s", a); return -1; }
        for (size_t k = 0; k < sizeof ints / sizeof ints[0] && !done; k++)
            if (!strcmp(a, ints[k].name)) {
                if (parse_int(argv[++i], ints[k].p)) { logmsg("bad number for %s", a); return -1; }
                done = true;
            }
        for (size_t k = 0; k < sizeof strs / sizeof strs[0] && !done; k++)
            if (!strcmp(a, strs[k].name)) { *strs[k].p = argv[++i]; done = true; }
        if (!strcmp(a, "--deliver-timeout") && !done) {
            opt.deliver_timeout = atof(argv[++i]);
            done = true;
        }
        if (!done) { logmsg("unknown option: %s", a); return -1; }
    }
    if (!opt.domain) { logmsg("--domain is required"); return -1; }
    if (!opt.create && !opt.accounts_file) { logmsg("give --create or --accounts-file"); return -1; }
    if (opt.sources < 1) opt.sources = 1;
    if (opt.ramp < 1) opt.ramp = 1;
    if (opt.idle_per_acct < 1) opt.idle_per_acct = 1;
    if (opt.login_conc < 1) opt.login_conc = 1;
    return 0;
}

/* --------------------------------------------------------------- results */

static struct result { char key[64]; char sval[256]; double val; bool is_str; } results[LIM_RESULTS];
static int n_results;

static void res_num(const char *key, double v)
{
    if (n_results >= LIM_RESULTS) return;
    struct result *r = &results[n_results++];
    snprintf(r->key, sizeof r->key, "%s", key);
    r->val = v;
}

__attribute__((format(printf, 2, 3)))
static void res_str(const char *key, const char *fmt, ...)
{
    if (n_results >= LIM_RESULTS) return;
    struct result *r = &results[n_results++];
    snprintf(r->key, sizeof r->key, "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->sval, sizeof r->sval, fmt, ap);
    va_end(ap);
    r->is_str = true;
    for (char *p = r->sval; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 32) *p = '\'';
}

static void print_results(void)
{
    if (opt.json) printf("{\n");
    for (int i = 0; i < n_results; i++) {
        struct result *r = &results[i];
        const char *sep = i + 1 < n_results ? "," : "";
        if (opt.json && r->is_str)
            printf("\"%s\": \"%s\"%s\n", r->key, r->sval, sep);
        else if (opt.json)
            printf("\"%s\": %.3f%s\n", r->key, r->val, sep);
        else if (r->is_str)
            printf("%-34s %s\n", r->key, r->sval);
        else
            printf("%-34s %.3f\n", r->key, r->val);
    }
    if (opt.json) printf("}\n");
    fflush(stdout);
}

/* -------------------------------------------------------------- accounts */

struct account { char addr[LIM_ADDR]; char local[LIM_ADDR]; char pass[LIM_PASS]; };

static struct account **accts;   /* each account apart: connections keep pointers */
static int n_accts, cap_accts, n_file_accts;

static void rand_name(char *out, size_t len, bool letters_first)
{
    static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < len; i++)
        out[i] = al[rnd32() % ((i == 0 && letters_first) ? 26 : 36)];
    out[len] = 0;
}

static void acct_push(const char *addr, const char *pass)
{
    if (n_accts == cap_accts) {
        cap_accts = cap_accts ? cap_accts * 2 : 256;
        struct account **n = realloc(accts, (size_t)cap_accts * sizeof *n);
        if (!n) { logmsg("out of memory"); exit(2); }
        accts = n;
    }
    struct account *a = xmalloc(sizeof *a);
    accts[n_accts++] = a;
    snprintf(a->addr, sizeof a->addr, "%s", addr);
    snprintf(a->pass, sizeof a->pass, "%s", pass);
    snprintf(a->local, sizeof a->local, "%s", addr);
    char *at = strchr(a->local, '@');
    if (at) *at = 0;
}

/* The i-th account of the pool: generated on demand with --create, else
 * the file's accounts, wrapping around. */
static struct account *account_at(int i)
{
    if (!opt.create) return accts[i % n_file_accts];
    while (n_accts <= i) {
        char local[16], addr[LIM_ADDR];
        rand_name(local, 9, true);
        snprintf(addr, sizeof addr, "%s@%s", local, opt.domain);
        acct_push(addr, opt.password);
    }
    return accts[i];
}

static int load_accounts_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) { logmsg("cannot open %s: %s", path, strerror(errno)); return -1; }
    char line[512], addr[LIM_ADDR], pass[LIM_PASS];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || sscanf(line, "%127s %63s", addr, pass) != 2) continue;
        acct_push(addr, pass);
    }
    fclose(f);
    n_file_accts = n_accts;
    if (!n_file_accts) { logmsg("no accounts in %s", path); return -1; }
    return 0;
}

/* ------------------------------------------------- OpenPGP/MIME messages */

static const char b64al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = b64al[(v >> 18) & 63];
        out[o++] = b64al[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64al[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64al[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

static uint32_t crc24(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xB704CEu;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint32_t)p[i] << 16;
        for (int k = 0; k < 8; k++) {
            crc <<= 1;
            if (crc & 0x1000000u) crc ^= 0x1864CFBu;
        }
    }
    return crc & 0xFFFFFFu;
}

/* One new-format packet header (RFC 4880 4.2.2) for tag and body length. */
static size_t pkt_header(unsigned char *o, int tag, size_t len)
{
    o[0] = (unsigned char)(0xC0 | tag);
    if (len < 192) { o[1] = (unsigned char)len; return 2; }
    len -= 192;
    o[1] = (unsigned char)((len >> 8) + 192);
    o[2] = (unsigned char)(len & 0xFF);
    return 3;
}

/* Binary: two PKESK (as Delta Chat encrypts to the recipient and to self)
 * then one SEIPD v1, random bodies; 1.6-3 KiB, so 2.2-4 KiB armored. */
static size_t pgp_binary(unsigned char *o)
{
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        size_t len = 94;   /* v3 PKESK, X25519 ECDH: realistic size */
        n += pkt_header(o + n, 1, len);
        rnd_bytes(o + n, len);
        o[n] = 3;          /* version */
        n += len;
    }
    size_t len = 1400 + rnd32() % 1400;
    n += pkt_header(o + n, 18, len);
    rnd_bytes(o + n, len);
    o[n] = 1;              /* SEIPD version 1 */
    return n + len;
}

/* Armored payload (with CRLF line ends) into out; returns its length. */
static size_t pgp_armor(char *out)
{
    unsigned char bin[3200], crcb[3];
    char b[4400], crc64[8];
    size_t nb = pgp_binary(bin), nl = b64(bin, nb, b), o = 0;
    uint32_t c = crc24(bin, nb);
    crcb[0] = (unsigned char)(c >> 16); crcb[1] = (unsigned char)(c >> 8); crcb[2] = (unsigned char)c;
    b64(crcb, 3, crc64);
    o += (size_t)sprintf(out + o, "-----BEGIN PGP MESSAGE-----\r\n\r\n");
    for (size_t i = 0; i < nl; i += 76) {
        size_t w = nl - i < 76 ? nl - i : 76;
        memcpy(out + o, b + i, w);
        o += w;
        out[o++] = '\r'; out[o++] = '\n';
    }
    o += (size_t)sprintf(out + o, "=%s\r\n-----END PGP MESSAGE-----\r\n", crc64);
    return o;
}

static unsigned long run_id;

/* The DATA payload including the terminating CRLF.CRLF; malloc'd. */
static char *build_message(const struct account *from, const struct account *to,
                           unsigned seq, size_t *len)
{
    char *m = xmalloc(8192), armor[5000], date[64], bnd[24];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    rand_name(bnd, 20, false);
    pgp_armor(armor);
    int n = snprintf(m, 8192,
        "Chat-Version: 1.0\r\nSubject: [...]\r\nDate: %s\r\n"
        "Message-ID: <chatbench.%lx.%u@%s>\r\nFrom: <%s>\r\nTo: <%s>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; "
        "protocol=\"application/pgp-encrypted\"; boundary=\"%s\"\r\n\r\n"
        "--%s\r\nContent-Type: application/pgp-encrypted; charset=\"utf-8\"\r\n"
        "Content-Description: PGP/MIME version identification\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\nVersion: 1\r\n\r\n"
        "--%s\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"; charset=\"utf-8\"\r\n"
        "Content-Description: OpenPGP encrypted message\r\n"
        "Content-Disposition: inline; filename=\"encrypted.asc\";\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n%s\r\n--%s--\r\n.\r\n",
        date, run_id, seq, opt.domain, from->addr, to->addr, bnd, bnd, bnd, armor, bnd);
    *len = n > 0 && n < 8192 ? (size_t)n : 0;
    return m;
}

/* ---------------------------------------------------- connections, loop */

enum proto { P_IMAP, P_SMTP };
enum ev { EV_LOGIN_OK, EV_IDLE_READY, EV_EXISTS, EV_SMTP_READY, EV_SENT, EV_FLUSHED, EV_FAIL };

struct conn;
typedef void (*conn_cb)(struct conn *c, enum ev e, long arg, const char *text);

enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_DEAD };
enum { IM_GREET, IM_LOGIN, IM_SELECT, IM_IDLE_WAIT, IM_IDLING, IM_DONE };
enum { SM_GREET, SM_EHLO, SM_AUTH, SM_READY, SM_MAIL, SM_RCPT, SM_DATA, SM_DOT, SM_RSET };

struct conn {
    int fd, st, pst, slot;
    enum proto proto;
    bool idle_goal;          /* IMAP: SELECT + IDLE after LOGIN */
    bool notify_flush;       /* emit EV_FLUSHED when the output drains */
    uint32_t ev_mask;
    SSL *ssl;
    struct account *acct;
    conn_cb cb;
    void *ud;
    long id, exists, fail_code;
    const char *rcpt;        /* SMTP transaction in progress */
    char *body;
    size_t body_len;
    char *out;
    size_t out_len, out_off, out_cap;
    size_t in_len;
    struct conn *next_dead;
    char in[LIM_LINE];
};

static int epfd;
static SSL_CTX *ssl_ctx;
static struct sockaddr_in srv_addr;
static struct conn *dead_list;
static long conn_seq;

static void conn_fail(struct conn *c, const char *why);

static void ep_set(struct conn *c, uint32_t mask)
{
    if (c->ev_mask == mask) return;
    struct epoll_event e = {.events = mask, .data.ptr = c};
    epoll_ctl(epfd, c->ev_mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e);
    c->ev_mask = mask;
}

static void conn_close(struct conn *c, bool reset)
{
    if (c->st == ST_DEAD) return;
    if (reset) {
        struct linger l = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    c->st = ST_DEAD;
    free(c->out);
    c->out = NULL;
    free(c->body);
    c->body = NULL;
    c->next_dead = dead_list;
    dead_list = c;
}

static void free_dead(void)
{
    while (dead_list) {
        struct conn *c = dead_list;
        dead_list = c->next_dead;
        free(c);
    }
}

static void conn_flush(struct conn *c)
{
    while (c->st == ST_OPEN && c->out_off < c->out_len) {
        ERR_clear_error();
        int n = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        if (n > 0) { c->out_off += (size_t)n; continue; }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE) { ep_set(c, EPOLLIN | EPOLLOUT); return; }
        if (e == SSL_ERROR_WANT_READ) return;
        conn_fail(c, "write failed");
        return;
    }
    if (c->st != ST_OPEN) return;
    c->out_len = c->out_off = 0;
    if (c->out_cap > 16384) { free(c->out); c->out = NULL; c->out_cap = 0; }
    ep_set(c, EPOLLIN);
    if (c->notify_flush) {
        c->notify_flush = false;
        c->cb(c, EV_FLUSHED, 0, "");
    }
}

static void conn_send(struct conn *c, const char *data, size_t n)
{
    if (c->st != ST_OPEN) return;
    if (c->out_len + n > c->out_cap) {
        size_t cap = (c->out_len + n) * 2;
        char *p = realloc(c->out, cap);
        if (!p) { conn_fail(c, "out of memory"); return; }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    conn_flush(c);
}

__attribute__((format(printf, 2, 3)))
static void conn_printf(struct conn *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof buf) conn_send(c, buf, (size_t)n);
}

static void conn_fail(struct conn *c, const char *why)
{
    if (c->st == ST_DEAD) return;
    conn_cb cb = c->cb;
    conn_close(c, true);
    cb(c, EV_FAIL, c->fail_code, why);
}

static struct conn *conn_open(enum proto p, struct account *a, conn_cb cb, void *ud)
{
    struct conn *c = xmalloc(sizeof *c);
    c->proto = p; c->acct = a; c->cb = cb; c->ud = ud; c->id = conn_seq++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { logmsg("socket: %s", strerror(errno)); free(c); return NULL; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.sources > 1) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7F000002u + (uint32_t)(c->id % opt.sources));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        bind(c->fd, (struct sockaddr *)&src, sizeof src);
    }
    srv_addr.sin_port = htons((uint16_t)(p == P_IMAP ? opt.imaps_port : opt.smtps_port));
    c->st = ST_CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&srv_addr, sizeof srv_addr) < 0 && errno != EINPROGRESS) {
        logmsg("connect: %s", strerror(errno));
        conn_close(c, true);
        return NULL;
    }
    ep_set(c, EPOLLIN | EPOLLOUT);
    return c;
}

static void proto_line(struct conn *c, char *line);

static void conn_read(struct conn *c)
{
    while (c->st == ST_OPEN) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof c->in - 1 - c->in_len));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ) return;
            if (e == SSL_ERROR_WANT_WRITE) { ep_set(c, EPOLLIN | EPOLLOUT); return; }
            conn_fail(c, "connection closed by server");
            return;
        }
        c->in_len += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < c->in_len && c->st == ST_OPEN; i++) {
            if (c->in[i] != '\n') continue;
            c->in[i] = 0;
            if (i > start && c->in[i - 1] == '\r') c->in[i - 1] = 0;
            proto_line(c, c->in + start);
            start = i + 1;
        }
        if (c->st != ST_OPEN) return;
        if (start == 0 && c->in_len == sizeof c->in - 1) {   /* overlong: cut */
            c->in[c->in_len] = 0;
            proto_line(c, c->in);
            start = c->in_len;
        }
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
    }
}

static void conn_handshake(struct conn *c)
{
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        c->st = ST_OPEN;
        ep_set(c, EPOLLIN);
        conn_read(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) ep_set(c, EPOLLIN);
    else if (e == SSL_ERROR_WANT_WRITE) ep_set(c, EPOLLIN | EPOLLOUT);
    else conn_fail(c, "TLS handshake failed");
}

static void conn_event(struct conn *c, uint32_t events)
{
    if (c->st == ST_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) { conn_fail(c, strerror(err)); return; }
        c->ssl = SSL_new(ssl_ctx);
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_tlsext_host_name(c->ssl, opt.domain);
        c->st = ST_HANDSHAKE;
    }
    if (c->st == ST_HANDSHAKE) { conn_handshake(c); return; }
    if (c->st != ST_OPEN) return;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_read(c);
    if (c->st == ST_OPEN && (events & EPOLLOUT)) conn_flush(c);
}

/* One round of the loop: waits at most timeout_ms for events. */
static void loop_once(int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, timeout_ms);
    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        if (c->st != ST_DEAD) conn_event(c, evs[i].events);
    }
    free_dead();
}

/* ------------------------------------------------------------ IMAP, SMTP */

static long parse_exists(const char *line)
{
    char *end;
    if (strncmp(line, "* ", 2)) return -1;
    long n = strtol(line + 2, &end, 10);
    if (end == line + 2 || strcasecmp(end, " EXISTS")) return -1;
    return n;
}

static void imap_line(struct conn *c, char *line)
{
    long ex = parse_exists(line);
    if (ex >= 0) c->exists = ex;
    switch (c->pst) {
    case IM_GREET:
        if (strncmp(line, "* OK", 4)) { conn_fail(c, line); return; }
        conn_printf(c, "a1 LOGIN \"%s\" \"%s\"\r\n", c->acct->addr, c->acct->pass);
        c->pst = IM_LOGIN;
        break;
    case IM_LOGIN:
        if (strncmp(line, "a1 ", 3)) return;
        if (strncmp(line, "a1 OK", 5)) { c->fail_code = 1; conn_fail(c, line); return; }
        c->pst = c->idle_goal ? IM_SELECT : IM_DONE;
        if (c->idle_goal) conn_printf(c, "a2 SELECT INBOX\r\n");
        c->cb(c, EV_LOGIN_OK, 0, line);
        break;
    case IM_SELECT:
        if (strncmp(line, "a2 ", 3)) return;
        if (strncmp(line, "a2 OK", 5)) { conn_fail(c, line); return; }
        conn_printf(c, "a3 IDLE\r\n");
        c->pst = IM_IDLE_WAIT;
        break;
    case IM_IDLE_WAIT:
        if (line[0] == '+') { c->pst = IM_IDLING; c->cb(c, EV_IDLE_READY, c->exists, line); }
        else if (!strncmp(line, "a3 ", 3)) conn_fail(c, line);
        break;
    case IM_IDLING:
        if (ex >= 0) c->cb(c, EV_EXISTS, ex, line);
        break;
    default:
        break;
    }
}

static void smtp_auth(struct conn *c)
{
    unsigned char raw[2 * LIM_ADDR + LIM_PASS];
    char enc[sizeof raw * 2];
    size_t al = strlen(c->acct->addr), pl = strlen(c->acct->pass);
    raw[0] = 0;
    memcpy(raw + 1, c->acct->addr, al);
    raw[1 + al] = 0;
    memcpy(raw + 2 + al, c->acct->pass, pl);
    b64(raw, 2 + al + pl, enc);
    conn_printf(c, "AUTH PLAIN %s\r\n", enc);
}

/* A failed transaction: reset, then report the failing code. */
static void smtp_reject(struct conn *c, long code)
{
    c->fail_code = code;
    c->pst = SM_RSET;
    conn_printf(c, "RSET\r\n");
}

static void smtp_line(struct conn *c, char *line)
{
    if (strlen(line) < 3 || line[3] == '-') return;   /* continuation */
    long code = strtol(line, NULL, 10);
    switch (c->pst) {
    case SM_GREET:
        if (code != 220) { conn_fail(c, line); return; }
        conn_printf(c, "EHLO chatbench.localhost\r\n");
        c->pst = SM_EHLO;
        break;
    case SM_EHLO:
        if (code != 250) { conn_fail(c, line); return; }
        smtp_auth(c);
        c->pst = SM_AUTH;
        break;
    case SM_AUTH:
        if (code != 235) { c->fail_code = 1; conn_fail(c, line); return; }
        c->pst = SM_READY;
        c->cb(c, EV_SMTP_READY, 0, line);
        break;
    case SM_MAIL:
        if (code != 250) { smtp_reject(c, code); return; }
        conn_printf(c, "RCPT TO:<%s>\r\n", c->rcpt);
        c->pst = SM_RCPT;
        break;
    case SM_RCPT:
        if (code != 250) { smtp_reject(c, code); return; }
        conn_printf(c, "DATA\r\n");
        c->pst = SM_DATA;
        break;
    case SM_DATA:
        if (code != 354) { smtp_reject(c, code); return; }
        c->pst = SM_DOT;
        c->notify_flush = true;
        conn_send(c, c->body, c->body_len);
        break;
    case SM_DOT:
        c->pst = SM_READY;
        free(c->body);
        c->body = NULL;
        c->cb(c, EV_SENT, code, line);
        break;
    case SM_RSET:
        c->pst = SM_READY;
        free(c->body);
        c->body = NULL;
        c->cb(c, EV_SENT, c->fail_code, line);
        break;
    default:
        break;
    }
}

static void proto_line(struct conn *c, char *line)
{
    if (c->proto == P_IMAP) imap_line(c, line);
    else smtp_line(c, line);
}

/* Starts one message transaction on a ready SMTP connection; body is taken. */
static void smtp_send(struct conn *c, const char *rcpt, char *body, size_t len)
{
    c->rcpt = rcpt;
    c->body = body;
    c->body_len = len;
    c->pst = SM_MAIL;
    conn_printf(c, "MAIL FROM:<%s>\r\n", c->acct->addr);
}

static struct conn *imap_open(struct account *a, bool idle, conn_cb cb, void *ud)
{
    struct conn *c = conn_open(P_IMAP, a, cb, ud);
    if (c) { c->pst = IM_GREET; c->idle_goal = idle; }
    return c;
}

static struct conn *smtp_open(struct account *a, conn_cb cb, void *ud)
{
    struct conn *c = conn_open(P_SMTP, a, cb, ud);
    if (c) c->pst = SM_GREET;
    return c;
}

/* ------------------------------------------------------------ statistics */

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p)
{
    if (n <= 0) return -1;
    int k = (int)ceil(p / 100.0 * n) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return v[k];
}

static void res_dist(const char *prefix, double *v, int n)
{
    char k[64];
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    snprintf(k, sizeof k, "%s_p50_ms", prefix); res_num(k, pct(v, n, 50));
    snprintf(k, sizeof k, "%s_p90_ms", prefix); res_num(k, pct(v, n, 90));
    snprintf(k, sizeof k, "%s_p99_ms", prefix); res_num(k, pct(v, n, 99));
    snprintf(k, sizeof k, "%s_max_ms", prefix); res_num(k, n ? v[n - 1] : -1);
}

/* ------------------------------------- preparing accounts (first logins) */

struct login_run {
    int next, end, in_flight, ok, failed, conc;
    bool unsupported, smtp;  /* smtp: AUTH over submission instead of LOGIN */
    char why[200];
};

static void login_cb(struct conn *c, enum ev e, long arg, const char *text);

static void login_start_more(struct login_run *r)
{
    while (r->in_flight < r->conc && r->next < r->end && !r->unsupported) {
        r->in_flight++;
        struct account *a = account_at(r->next++);
        struct conn *c = r->smtp ? smtp_open(a, login_cb, r) : imap_open(a, false, login_cb, r);
        if (!c) { r->in_flight--; r->failed++; }
    }
}

static void login_cb(struct conn *c, enum ev e, long arg, const char *text)
{
    struct login_run *r = c->ud;
    if (e == EV_LOGIN_OK || e == EV_SMTP_READY) {
        r->ok++;
        conn_close(c, true);
    } else if (e == EV_FAIL) {
        r->failed++;
        if (!r->why[0]) snprintf(r->why, sizeof r->why, "%s", text);
        if (arg == 1 && r->ok == 0) r->unsupported = true;
    } else {
        return;
    }
    r->in_flight--;
    login_start_more(r);
}

/* Logs in accounts [from, to) once each, conc at a time; returns ms taken. */
static double login_range(struct login_run *r, int from, int to, int conc)
{
    bool smtp = r->smtp;
    memset(r, 0, sizeof *r);
    r->smtp = smtp;
    r->next = from; r->end = to; r->conc = conc;
    double t0 = now_ms();
    login_start_more(r);
    while (r->in_flight > 0) loop_once(100);
    return now_ms() - t0;
}

static int pool_size(void)
{
    int n = opt.accounts;
    if (n < opt.receivers + 1) n = opt.receivers + 1;
    if (n < opt.connections + 1) n = opt.connections + 1;
    return n;
}

/* Every account of the pool logs in once (creating it on create-on-login
 * servers). Returns 0, or -1 with the reason in why. */
static int prepare_accounts(int n, char *why, size_t wlen, bool smtp)
{
    struct login_run r = {.smtp = smtp};
    login_range(&r, 0, n, opt.login_conc);
    if (r.failed == 0) return 0;
    snprintf(why, wlen, "%s%s", !r.unsupported ? "" : smtp ? "AUTH refused: " : "LOGIN refused: ", r.why);
    return -1;
}

/* -------------------------------------------------------------- latency */

struct lat_state {
    struct conn *sender;
    struct conn **rcv;
    int n_rcv, n_idle, sent, cur_rcv;
    long exists_before;
    double t_dot, t_250, t_exists;
    bool got_250, got_exists, failed;
    char why[256];
};

static void lat_cb(struct conn *c, enum ev e, long arg, const char *text)
{
    struct lat_state *s = c->ud;
    double t = now_ms();
    if (e == EV_FAIL) {
        s->failed = true;
        snprintf(s->why, sizeof s->why, "%s%s", arg == 1 ? "AUTH/LOGIN refused: " : "", text);
        if (c == s->sender) s->sender = NULL;
        for (int i = 0; i < s->n_rcv; i++) if (s->rcv[i] == c) s->rcv[i] = NULL;
    } else if (e == EV_IDLE_READY) {
        s->n_idle++;
    } else if (e == EV_EXISTS && c == s->rcv[s->cur_rcv] && s->sender && arg > s->exists_before && !s->got_exists) {
        s->got_exists = true;
        s->t_exists = t;
    } else if (e == EV_FLUSHED) {
        s->t_dot = t;
    } else if (e == EV_SENT) {
        s->got_250 = true;
        s->t_250 = t;
        if (arg != 250) { s->failed = true; snprintf(s->why, sizeof s->why, "message refused: %s", text); }
    } else if (e == EV_SMTP_READY) {
        s->got_250 = true;   /* "ready" */
    }
}

static int wait_until(bool *flag_a, bool *flag_b, bool *failed, double deadline)
{
    while (!(*flag_a && *flag_b) && !*failed && now_ms() < deadline) loop_once(20);
    return (*flag_a && *flag_b) ? 0 : -1;
}

static int lat_setup(struct lat_state *s)
{
    bool yes = true;
    s->rcv = xmalloc(sizeof *s->rcv * (size_t)s->n_rcv);
    for (int i = 0; i < s->n_rcv; i++) {
        s->rcv[i] = imap_open(account_at(1 + i), true, lat_cb, s);
        if (!s->rcv[i]) { snprintf(s->why, sizeof s->why, "cannot connect"); return -1; }
    }
    double dl = now_ms() + 30000;
    while (s->n_idle < s->n_rcv && !s->failed && now_ms() < dl) loop_once(20);
    if (s->n_idle < s->n_rcv) {
        if (!s->why[0]) snprintf(s->why, sizeof s->why, "receivers did not reach IDLE");
        return -1;
    }
    s->got_250 = false;
    s->sender = smtp_open(account_at(0), lat_cb, s);
    if (!s->sender || wait_until(&s->got_250, &yes, &s->failed, now_ms() + 30000)) {
        if (!s->why[0]) snprintf(s->why, sizeof s->why, "submission not ready");
        return -1;
    }
    return 0;
}

static void scenario_latency(void)
{
    struct lat_state s = {.n_rcv = opt.receivers};
    double *d_ex = xmalloc(sizeof(double) * (size_t)opt.messages);
    double *d_250 = xmalloc(sizeof(double) * (size_t)opt.messages);
    int n_ok = 0, missing = 0;
    if (lat_setup(&s) == 0) {
        for (int m = 0; m < opt.messages && !s.failed; m++) {
            size_t len;
            s.cur_rcv = m % s.n_rcv;
            struct conn *r = s.rcv[s.cur_rcv];
            if (!r || !s.sender) { s.failed = true; snprintf(s.why, sizeof s.why, "receiver dropped"); break; }
            s.exists_before = r->exists;
            s.got_250 = s.got_exists = false;
            char *body = build_message(account_at(0), r->acct, (unsigned)m, &len);
            smtp_send(s.sender, r->acct->addr, body, len);
            if (wait_until(&s.got_250, &s.got_exists, &s.failed, now_ms() + 10000)) {
                missing++;
                r->exists = r->exists > s.exists_before ? r->exists : s.exists_before + 1;
                while (!s.got_250 && !s.failed) loop_once(20);
                continue;
            }
            d_ex[n_ok] = s.t_exists - s.t_dot;
            d_250[n_ok++] = s.t_250 - s.t_dot;
        }
    }
    if (n_ok == 0) {
        res_str("latency_status", "n/a: %s", s.why[0] ? s.why : "no message reached a receiver");
    } else {
        res_str("latency_status", "%s%s", (s.failed) ? "partial: " : "ok", (s.failed) ? s.why : "");
        res_num("latency_messages", n_ok);
        res_num("latency_missing", missing);
        res_dist("latency_exists", d_ex, n_ok);
        res_dist("latency_250", d_250, n_ok);
    }
    if (s.sender) conn_close(s.sender, false);
    for (int i = 0; i < s.n_rcv; i++) if (s.rcv && s.rcv[i]) conn_close(s.rcv[i], false);
    free_dead();
    free(s.rcv); free(d_ex); free(d_250);
}

/* ------------------------------------------------------------ throughput */

struct tp_state {
    struct conn **cs;        /* open connections by slot */
    int n_pool, open, failed_conns, next_rcpt;
    long accepted, rejected, cap;
    int *acc_rcpt;           /* recipient account index of accepted seq */
    unsigned *acc_seq;
    unsigned seq;
    double deadline, t_last;
    bool stopping;
    char why[256];
};

static void tp_drop(struct conn *c, struct tp_state *s)
{
    if (c->slot >= 0 && c->slot < opt.connections && s->cs[c->slot] == c) {
        s->cs[c->slot] = NULL;
        s->open--;
    }
}

static void tp_next(struct conn *c, struct tp_state *s)
{
    if (now_ms() >= s->deadline) { tp_drop(c, s); conn_close(c, false); return; }
    int ri = s->next_rcpt++ % s->n_pool;
    if (account_at(ri) == c->acct) ri = (ri + 1) % s->n_pool;
    size_t len;
    char *body = build_message(c->acct, account_at(ri), s->seq, &len);
    c->exists = ri;          /* remember recipient and seq on the conn */
    c->fail_code = s->seq++;
    smtp_send(c, account_at(ri)->addr, body, len);
}

static void tp_cb(struct conn *c, enum ev e, long arg, const char *text)
{
    struct tp_state *s = c->ud;
    if (e == EV_FAIL) {
        tp_drop(c, s);
        s->failed_conns++;
        if (!s->why[0]) snprintf(s->why, sizeof s->why, "%s%s", arg == 1 ? "AUTH refused: " : "", text);
        return;
    }
    if (e == EV_SMTP_READY) { tp_next(c, s); return; }
    if (e != EV_SENT) return;
    s->t_last = now_ms();
    if (arg == 250 && s->accepted < s->cap) {
        s->acc_rcpt[s->accepted] = (int)c->exists;
        s->acc_seq[s->accepted++] = (unsigned)c->fail_code;
    } else if (arg != 250) {
        s->rejected++;
        if (!s->why[0]) snprintf(s->why, sizeof s->why, "refused: %s", text);
    }
    tp_next(c, s);
}

static void maildir_path(char *out, size_t n, const struct account *a, const char *sub)
{
    size_t o = 0;
    for (const char *p = opt.maildir_tmpl; *p && o + 1 < n; p++) {
        const char *ins = NULL;
        if (p[0] == '%' && p[1] == 'a') ins = a->addr;
        else if (p[0] == '%' && p[1] == 'l') ins = a->local;
        else if (p[0] == '%' && p[1] == 'd') ins = opt.domain;
        if (ins) { o += (size_t)snprintf(out + o, n - o, "%s", ins); p++; }
        else out[o++] = *p;
        if (o >= n) o = n - 1;
    }
    out[o] = 0;
    snprintf(out + o, n - o, "/%s", sub);
}

static long count_dir(const char *path)
{
    DIR *d = opendir(path);
    long n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static long count_mail(int n_pool)
{
    long n = 0;
    char p[1024];
    for (int i = 0; i < n_pool; i++) {
        maildir_path(p, sizeof p, account_at(i), "new"); n += count_dir(p);
        maildir_path(p, sizeof p, account_at(i), "cur"); n += count_dir(p);
    }
    return n;
}

/* Marks found[seq] for every file of dir holding one of this run's messages
 * (read through gzread: plain or gzip-compressed Maildir files). */
static void scan_dir(const char *path, unsigned char *found, unsigned nseq)
{
    DIR *d = opendir(path);
    char tag[64], fp[2048], buf[8192];
    if (!d) return;
    int tl = snprintf(tag, sizeof tag, "<chatbench.%lx.", run_id);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(fp, sizeof fp, "%s/%s", path, e->d_name);
        gzFile g = gzopen(fp, "rb");
        if (!g) continue;
        int n = gzread(g, buf, sizeof buf - 1);
        gzclose(g);
        if (n <= 0) continue;
        buf[n] = 0;
        char *m = strstr(buf, tag);
        if (!m) continue;
        unsigned long seq = strtoul(m + tl, NULL, 10);
        if (seq < nseq) found[seq] = 1;
    }
    closedir(d);
}

static long lost_check(struct tp_state *s)
{
    unsigned char *found = xmalloc(s->seq + 1), *seen = xmalloc((size_t)s->n_pool);
    char p[1024];
    for (long i = 0; i < s->accepted; i++) {
        int r = s->acc_rcpt[i];
        if (seen[r]) continue;
        seen[r] = 1;
        maildir_path(p, sizeof p, account_at(r), "new"); scan_dir(p, found, s->seq);
        maildir_path(p, sizeof p, account_at(r), "cur"); scan_dir(p, found, s->seq);
    }
    long lost = 0;
    for (long i = 0; i < s->accepted; i++) if (!found[s->acc_seq[i]]) lost++;
    free(found); free(seen);
    return lost;
}

static void tp_report_delivery(struct tp_state *s, long base, double t0)
{
    double dl = now_ms() + opt.deliver_timeout * 1000, t_all = -1;
    long have = 0;
    while (now_ms() < dl) {
        have = count_mail(s->n_pool) - base;
        if (have >= s->accepted) { t_all = now_ms(); break; }
        usleep(20000);
    }
    res_num("throughput_delivered", have < s->accepted ? have : s->accepted);
    if (t_all > 0) res_num("throughput_delivered_per_s", s->accepted / ((t_all - t0) / 1000));
    else res_str("throughput_delivered_per_s", "not all delivered within %.0f s", opt.deliver_timeout);
    res_num("throughput_lost", (double)lost_check(s));
}

static void scenario_throughput(void)
{
    struct tp_state s = {.n_pool = pool_size(), .cap = 4000000};
    s.acc_rcpt = xmalloc(sizeof(int) * (size_t)s.cap);
    s.acc_seq = xmalloc(sizeof(unsigned) * (size_t)s.cap);
    s.cs = xmalloc(sizeof *s.cs * (size_t)opt.connections);
    long base = opt.maildir_tmpl ? count_mail(s.n_pool) : 0;
    double t0 = now_ms();
    s.deadline = t0 + opt.seconds * 1000.0;
    for (int i = 0; i < opt.connections; i++) {
        struct conn *c = smtp_open(account_at(i % s.n_pool), tp_cb, &s);
        if (!c) continue;
        c->slot = i;
        s.cs[i] = c;
        s.open++;
    }
    /* each connection closes itself at the deadline after its last answer */
    while (s.open > 0 && now_ms() < s.deadline + 30000) loop_once(50);
    for (int i = 0; i < opt.connections; i++)
        if (s.cs[i]) { conn_close(s.cs[i], true); s.cs[i] = NULL; }
    free_dead();
    if (s.accepted == 0) {
        res_str("throughput_status", "n/a: %s", s.why[0] ? s.why : "nothing accepted");
    } else {
        double el = (s.t_last > s.deadline ? s.t_last : s.deadline) - t0;
        res_str("throughput_status", "%s%s", (s.failed_conns || s.rejected) ? "partial: " : "ok", (s.failed_conns || s.rejected) ? s.why : "");
        res_num("throughput_connections", opt.connections);
        res_num("throughput_seconds", el / 1000);
        res_num("throughput_accepted", (double)s.accepted);
        res_num("throughput_rejected", (double)s.rejected);
        res_num("throughput_accepted_per_s", s.accepted / (el / 1000));
        if (opt.maildir_tmpl) tp_report_delivery(&s, base, t0);
        else res_str("throughput_lost", "not checked (no --maildir-root)");
    }
    free(s.cs); free(s.acc_rcpt); free(s.acc_seq);
}

/* ------------------------------------------------------------------ PSS */

struct proc { int pid, ppid; bool in; };

static int read_ppid(int pid)
{
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    int ppid = -1;
    if (rp) sscanf(rp + 1, " %*c %d", &ppid);
    return ppid;
}

static bool cmdline_has(int pid, const char *pat)
{
    char p[64], buf[4096];
    snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
    FILE *f = fopen(p, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
    buf[n] = 0;
    return strstr(buf, pat) != NULL;
}

static long pss_kib(int pid)
{
    char p[64], line[256];
    long v = 0;
    snprintf(p, sizeof p, "/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Pss:", 4)) { v = strtol(line + 4, NULL, 10); break; }
    fclose(f);
    return v;
}

static bool is_root_pid(int pid)
{
    if (!opt.server_pids) return false;
    const char *s = opt.server_pids;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) { s++; continue; }
        if (v == pid) return true;
        s = end;
    }
    return false;
}

/* PSS (KiB) summed over the server's processes: the given pids, those whose
 * command line contains the pattern, and all their descendants. */
static long server_pss(int *nproc)
{
    static struct proc ps[65536];
    int n = 0;
    DIR *d = opendir("/proc");
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d)) && n < 65536;) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        int pid = atoi(e->d_name);
        ps[n].pid = pid;
        ps[n].ppid = read_ppid(pid);
        ps[n].in = is_root_pid(pid) || (opt.server_pattern && pid != getpid() &&
                                        cmdline_has(pid, opt.server_pattern));
        n++;
    }
    closedir(d);
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < n; i++) {
            if (ps[i].in) continue;
            for (int j = 0; j < n; j++)
                if (ps[j].in && ps[j].pid == ps[i].ppid) { ps[i].in = changed = true; break; }
        }
    }
    long sum = 0;
    *nproc = 0;
    for (int i = 0; i < n; i++) if (ps[i].in) { sum += pss_kib(ps[i].pid); (*nproc)++; }
    return sum;
}

/* ----------------------------------------------------------------- idle */

struct idle_state {
    struct conn **cs;        /* by slot; NULL once failed */
    int want, started, in_flight, held, failed, login_refused;
    char why[256];
};

static void idle_cb(struct conn *c, enum ev e, long arg, const char *text)
{
    struct idle_state *s = c->ud;
    if (e == EV_IDLE_READY) {
        s->in_flight--;
        s->held++;
    } else if (e == EV_FAIL) {
        s->cs[c->slot] = NULL;
        if (c->pst == IM_IDLING) s->held--;
        else s->in_flight--;
        s->failed++;
        if (arg == 1) s->login_refused++;
        if (!s->why[0]) snprintf(s->why, sizeof s->why, "%s", text);
    }
}

static void idle_open_more(struct idle_state *s, int n_acct)
{
    while (s->started < s->want && s->in_flight < opt.ramp) {
        int i = s->started++;
        s->in_flight++;
        s->cs[i] = imap_open(account_at(i % n_acct), true, idle_cb, s);
        if (s->cs[i]) s->cs[i]->slot = i;
        else { s->in_flight--; s->failed++; }
    }
}

static void idle_hold(double ms)
{
    double end = now_ms() + ms;
    while (now_ms() < end) loop_once(200);
}

static void idle_report(struct idle_state *s, int n_acct, double t_open, long pss0, int np0);

static void scenario_idle(void)
{
    struct idle_state s = {.want = opt.idle_k};
    int n_acct = (opt.idle_k + opt.idle_per_acct - 1) / opt.idle_per_acct, np0;
    char why[256];
    if (n_acct < 1) n_acct = 1;
    if (prepare_accounts(n_acct, why, sizeof why, false)) { res_str("idle_status", "n/a: %s", why); return; }
    idle_hold(1000);
    long pss0 = server_pss(&np0);
    s.cs = xmalloc(sizeof *s.cs * (size_t)(s.want + 1));
    double t0 = now_ms(), dl = t0 + 120000 + opt.idle_k * 20.0;
    while ((s.started < s.want || s.in_flight > 0) && now_ms() < dl) {
        idle_open_more(&s, n_acct);
        loop_once(50);
        if (s.login_refused && s.held == 0) break;
    }
    idle_report(&s, n_acct, now_ms() - t0, pss0, np0);
    for (int i = 0; i < s.want; i++) if (s.cs[i]) conn_close(s.cs[i], false);
    free_dead();
    free(s.cs);
    idle_hold(3000);   /* let the server tear the sessions down */
}

static void idle_report(struct idle_state *s, int n_acct, double t_open, long pss0, int np0)
{
    int np1;
    idle_hold(2000);
    long pss1 = server_pss(&np1);
    if (s->held == 0) {
        res_str("idle_status", "n/a: %s", s->why[0] ? s->why : "no connection reached IDLE");
        return;
    }
    res_str("idle_status", "%s%s", (s->failed) ? "partial: " : "ok", (s->failed) ? s->why : "");
    res_num("idle_requested", s->want);
    res_num("idle_held", s->held);
    res_num("idle_failed", s->failed);
    res_num("idle_accounts", n_acct);
    res_num("idle_open_seconds", t_open / 1000);
    res_num("idle_server_procs_before", np0);
    res_num("idle_server_procs", np1);
    res_num("idle_pss_before_kib", (double)pss0);
    res_num("idle_pss_after_kib", (double)pss1);
    res_num("idle_kib_per_conn", (double)(pss1 - pss0) / s->held);
    if (opt.idle_hold > 0) {
        idle_hold(opt.idle_hold * 1000.0);
        long pss2 = server_pss(&np1);
        res_num("idle_hold_seconds", opt.idle_hold);
        res_num("idle_held_after_hold", s->held);
        res_num("idle_server_procs_after_hold", np1);
        res_num("idle_kib_per_conn_after_hold", (double)(pss2 - pss0) / (s->held ? s->held : 1));
    }
}

/* --------------------------------------------------------------- logins */

static void logins_report(const char *kind, struct login_run *r, double ms)
{
    char k[64];
    snprintf(k, sizeof k, "logins_%s_status", kind);
    if (r->ok == 0) { res_str(k, "n/a: %s", r->why); return; }
    res_str(k, "%s%s", (r->failed) ? "partial: " : "ok", (r->failed) ? r->why : "");
    snprintf(k, sizeof k, "logins_%s_count", kind); res_num(k, r->ok);
    snprintf(k, sizeof k, "logins_%s_failed", kind); res_num(k, r->failed);
    snprintf(k, sizeof k, "logins_%s_per_s", kind); res_num(k, r->ok / (ms / 1000));
}

static void scenario_logins(void)
{
    struct login_run r = {.smtp = false};
    int pool = pool_size();
    res_num("logins_concurrency", opt.login_conc);
    if (opt.create) {
        int from = pool + opt.idle_k + 1000;   /* indices no other scenario uses */
        account_at(from + opt.logins);
        double ms = login_range(&r, from, from + opt.logins, opt.login_conc);
        logins_report("first", &r, ms);
    } else {
        res_str("logins_first_status", "n/a: given accounts (no --create)");
    }
    /* existing: the pool, already logged in once, over and over */
    memset(&r, 0, sizeof r);
    double t0 = now_ms();
    int done = 0;
    while (done < opt.logins) {
        int n = opt.logins - done < pool ? opt.logins - done : pool;
        struct login_run part = {.smtp = false};
        login_range(&part, 0, n, opt.login_conc);
        r.ok += part.ok;
        r.failed += part.failed;
        if (!r.why[0]) memcpy(r.why, part.why, sizeof r.why);
        done += n;
        if (part.ok == 0) break;
    }
    logins_report("existing", &r, now_ms() - t0);
}

/* ------------------------------------------------------------------ main */

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return;
    rlim_t want = (rlim_t)opt.idle_k + 4096;
    if (rl.rlim_max < want) {
        struct rlimit hi = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &hi) == 0) return;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static int setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    srv_addr.sin_family = AF_INET;
    if (inet_pton(AF_INET, opt.host, &srv_addr.sin_addr) != 1) { logmsg("bad --host %s", opt.host); return -1; }
    ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!ssl_ctx) return -1;
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return -1;
    unsigned char r[8];
    rnd_bytes(r, sizeof r);
    memcpy(&run_id, r, sizeof run_id);
    run_id &= 0xFFFFFFFFFFFFul;
    if (!opt.password) {
        static char pw[24];
        rand_name(pw, 16, false);
        opt.password = pw;
    }
    if (opt.accounts_file) return load_accounts_file(opt.accounts_file);
    return 0;
}

static bool want(const char *s)
{
    return !strcmp(opt.scenario, "all") || !strcmp(opt.scenario, s);
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv)) { usage(stderr); return 1; }
    if (setup()) { logmsg("setup failed"); return 1; }
    if (!want("latency") && !want("throughput") && !want("idle") && !want("logins")) {
        logmsg("unknown scenario %s", opt.scenario);
        return 1;
    }
    char why[256];
    if (opt.print_message) {
        size_t len;
        char *m = build_message(account_at(0), account_at(1), 0, &len);
        fwrite(m, 1, len > 3 ? len - 3 : 0, stdout);   /* without ".\r\n" */
        free(m);
        return 0;
    }
    if (opt.label) res_str("label", "%s", opt.label);
    res_str("target", "%s smtps %d imaps %d domain %s", opt.host, opt.smtps_port, opt.imaps_port, opt.domain);
    double t0 = now_ms();
    int prep = prepare_accounts(pool_size(), why, sizeof why, false);
    res_num("prepare_seconds", (now_ms() - t0) / 1000);
    if (prep) {
        /* no IMAP LOGIN: the IMAP scenarios are n/a; submission may still work */
        res_str("prepare_status", "IMAP failed: %s", why);
        res_str("latency_status", "n/a: %s", why);
        res_str("logins_existing_status", "n/a: %s", why);
        res_str("logins_first_status", "n/a: %s", why);
        res_str("idle_status", "n/a: %s", why);
        if (want("throughput") && prepare_accounts(pool_size(), why, sizeof why, true) == 0)
            scenario_throughput();
        else if (want("throughput"))
            res_str("throughput_status", "n/a: %s", why);
    } else {
        if (want("latency")) scenario_latency();
        if (want("throughput")) scenario_throughput();
        if (want("logins")) scenario_logins();
        if (want("idle")) scenario_idle();
    }
    print_results();
    return 0;
}
