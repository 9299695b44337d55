/* main.c: chatmaild-server's entry point: arguments, configuration,
 * listeners, privilege drop, signals and the one libuv loop.
 *
 *   chatmaild-server -c chatmail.ini            serve
 *   chatmaild-server -c chatmail.ini --check    validate and print the config
 *   chatmaild-server -c chatmail.ini expire [--remove|--dry-run] [--days N] [-v]
 *                                               one expiry pass (spec §5.1)
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "core/buf.h"
#include "acme/acme.h"
#include "core/certwatch.h"
#include "core/config.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/net.h"
#include "core/tls.h"
#include "http/dnszone.h"
#include "http/http.h"
#include "imap/imap.h"
#include "smtp/smtp.h"
#include "store/store.h"

#define CM_VERSION "0.1.0"

struct options {
    const char *config_path;
    bool check;
    bool expire;     /* the `expire` subcommand, with its arguments: */
    int expire_argc;
    char **expire_argv;
    bool queue;      /* the `queue` subcommand, with its arguments: */
    int queue_argc;
    char **queue_argv;
    bool dns;        /* the `dns` subcommand, with its arguments: */
    int dns_argc;
    char **dns_argv;
};

static struct {
    const char *config_path;
    uv_loop_t *loop;
    struct config cfg;
    struct tls_server *tls;
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    uv_timer_t trim;
    struct expire_daily *expiry;
    struct certwatch *certwatch;
    struct acme *acme;
    bool stopping;
} app;

static void usage(FILE *f)
{
    fprintf(f, "usage: chatmaild-server -c FILE [--check]\n"
               "       chatmaild-server -c FILE expire [--remove|--dry-run] [--days N] [-v]\n"
               "       chatmaild-server -c FILE queue [list|flush]\n"
               "       chatmaild-server -c FILE dns [--zonefile F] [--check]\n"
               "  -c FILE    chatmail.ini to use\n"
               "  --check    validate the configuration, print it and exit\n"
               "  expire     one expiry pass now: reports what it would remove;\n"
               "             --remove removes it (--dry-run: the default, said\n"
               "             explicitly); --days N pretends the date is N days earlier\n"
               "  queue      list the outbound queue (id, age, recipients, next try,\n"
               "             last reply); `queue flush`: the running server retries all now\n"
               "  dns        print the DNS zone the relay needs (required and\n"
               "             recommended records, the DKIM key's record);\n"
               "             --zonefile F writes it to F; --check asks the zone's\n"
               "             server and exits 1 when a required record is wrong\n"
               "  --version  print the version and exit\n");
}

/* Returns -1 to exit 0 (help/version), 0 to go on, 1 on a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            o->config_path = argv[++i];
        } else if (strcmp(a, "--check") == 0) {
            o->check = true;
        } else if (strcmp(a, "expire") == 0) {
            o->expire = true;
            o->expire_argc = argc - i - 1;
            o->expire_argv = argv + i + 1;
            break;
        } else if (strcmp(a, "dns") == 0) {
            o->dns = true;
            o->dns_argc = argc - i - 1;
            o->dns_argv = argv + i + 1;
            break;
        } else if (strcmp(a, "queue") == 0) {
            o->queue = true;
            o->queue_argc = argc - i - 1;
            o->queue_argv = argv + i + 1;
            break;
        } else if (strcmp(a, "--version") == 0) {
            printf("chatmaild-server %s\n", CM_VERSION);
            return -1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        } else {
            fprintf(stderr, "chatmaild-server: unknown argument: %s\n", a);
            usage(stderr);
            return 1;
        }
    }
    if (!o->config_path) {
        fprintf(stderr, "chatmaild-server: -c FILE is required\n");
        usage(stderr);
        return 1;
    }
    return 0;
}

static int load_config(const char *path)
{
    struct config_errors errs = {0};
    if (config_load_file(path, &app.cfg, &errs) < 0) {
        struct buf b = {0};
        config_format_errors(&errs, &b);
        fputs(b.data ? b.data : "config: invalid configuration\n", stderr);
        buf_free(&b);
        return -1;
    }
    return 0;
}

static int make_dir(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Gives the state directory (and what is directly in it, one level down)
 * to the user the server will run as. */
static void chown_tree(const char *dir, uid_t uid, gid_t gid, int depth)
{
    if (chown(dir, uid, gid) < 0 || depth == 0)
        return;
    uv_fs_t req;
    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) < 0)
        return;
    uv_dirent_t ent;
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, ent.name);
        if (ent.type == UV_DIRENT_DIR)
            chown_tree(p, uid, gid, depth - 1);
        else if (chown(p, uid, gid) < 0)
            log_warn("cannot chown %s: %s", p, strerror(errno));
    }
    uv_fs_req_cleanup(&req);
}

static int drop_privileges(void)
{
    const char *user = app.cfg.run_as_user;
    if (geteuid() != 0 || !user || !*user)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        log_error("run_as_user %s: no such user", user);
        return -1;
    }
    chown_tree(app.cfg.state_dir, pw->pw_uid, pw->pw_gid, 2);
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        log_error("cannot drop privileges to %s: %s", user, strerror(errno));
        return -1;
    }
    log_info("running as %s", user);
    return 0;
}

/* The fsreport gauges of the last expiry pass, for /metrics (spec §5.5). */
static int render_fsreport(struct buf *out)
{
    struct fsreport f;
    if (!app.expiry || !expire_daily_report(app.expiry, &f))
        return 0;
    return fsreport_format(&f, out);
}

/* Gives memory freed by finished handshakes, logins and commands back to
 * the kernel: glibc keeps freed pages inside its heap otherwise, and
 * thousands of idle connections would carry that slack. */
static void on_trim(uv_timer_t *t)
{
    (void)t;
    malloc_trim(0);
}

static void on_net_down(void)
{
    smtp_stop();
    certwatch_stop(app.certwatch);
    app.certwatch = NULL;
    acme_stop(app.acme);
    app.acme = NULL;
    uv_close((uv_handle_t *)&app.trim, NULL);
    expire_daily_stop(app.expiry);
    app.expiry = NULL;
    uv_close((uv_handle_t *)&app.sig_term, NULL);
    uv_close((uv_handle_t *)&app.sig_int, NULL);
    uv_close((uv_handle_t *)&app.sig_hup, NULL);
    uv_close((uv_handle_t *)&app.sig_usr1, NULL);
    log_info("stopped");
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (app.stopping)
        return;
    app.stopping = true;
    log_info("received %s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    net_shutdown(LIM_SHUTDOWN_GRACE_MS, on_net_down);
}

/* Re-reads chatmail.ini for what can change safely while serving: the log
 * level. Everything else needs a restart (ports, paths, limits in use). */
static void reload_config(void)
{
    struct config fresh = {0};
    struct config_errors errs = {0};
    enum log_level lvl;
    if (config_load_file(app.config_path, &fresh, &errs) < 0) {
        log_error("SIGHUP: %s has errors, keeping the running configuration", app.config_path);
    } else if (fresh.log_level && log_level_parse(fresh.log_level, &lvl) == 0) {
        log_set_level(lvl);
    }
    config_free(&fresh);
}

static void on_hup(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    char err[512];
    reload_config();
    if (tls_server_reload(app.tls, err, sizeof err) < 0)
        log_error("SIGHUP: certificate reload failed, keeping the old one: %s", err);
    else
        log_info("SIGHUP: certificate reloaded");
}

/* SIGUSR1: the daily expiry pass now (it also refreshes the fsreport
 * gauges of /metrics), as `systemctl start chatmail-expire` did. */
static void on_usr1(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    if (!app.expiry) {
        log_warn("SIGUSR1: daily expiry is not scheduled");
        return;
    }
    log_info("SIGUSR1: starting the expiry pass");
    expire_daily_run_now(app.expiry);
}

static void register_protocols(void)
{
    net_set_protocol(PROTO_SMTP_MX, &smtp_mx_ops);
    net_set_protocol(PROTO_SUBMISSION, &smtp_submission_ops);
    net_set_protocol(PROTO_IMAP, &imap_session_ops);
    net_set_protocol(PROTO_HTTP, &http_session_ops);
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Every connection is a descriptor, and an active IMAP session's open
 * folder three more (SQLite's database, WAL and shared-memory files): take
 * all the descriptors the hard limit allows (the systemd unit raises it). */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    log_info("file descriptor limit %llu", (unsigned long long)rl.rlim_cur);
}

static int serve(void)
{
    char err[512];
    raise_nofile();
    if (make_dir(app.cfg.state_dir) < 0) {
        log_error("cannot create state_dir %s: %s", app.cfg.state_dir, strerror(errno));
        return 1;
    }
    app.loop = uv_default_loop();
    if (tls_server_new(&app.tls, &app.cfg, err, sizeof err) < 0) {
        log_error("TLS: %s", err);
        return 1;
    }
    register_protocols();
    if (http_init(&app.cfg, err, sizeof err) < 0) {
        log_error("HTTP: %s", err);
        return 1;
    }
    if (net_init(app.loop, &app.cfg, app.tls, err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    if (smtp_init(app.loop, &app.cfg, err, sizeof err) < 0) {
        log_error("smtp: %s", err);
        return 1;
    }
    if (drop_privileges() < 0)
        return 1;
    uv_signal_init(app.loop, &app.sig_term);
    uv_signal_init(app.loop, &app.sig_int);
    uv_signal_init(app.loop, &app.sig_hup);
    uv_signal_init(app.loop, &app.sig_usr1);
    uv_signal_start(&app.sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&app.sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&app.sig_hup, on_hup, SIGHUP);
    uv_signal_start(&app.sig_usr1, on_usr1, SIGUSR1);
    metrics_gauge_set(G_ACCOUNTS, store_count_accounts(&app.cfg));
    if (net_start(err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    app.expiry = expire_daily_start(app.loop, &app.cfg, app.cfg.expire_time / 60,
                                    app.cfg.expire_time % 60, quota_cache_shared());
    if (!app.expiry)
        log_warn("daily expiry could not be scheduled");
    metrics_set_extra(render_fsreport);
    app.certwatch = certwatch_start(app.loop, &app.cfg, app.tls);
    if (app.cfg.tls_mode == TLS_MODE_ACME &&
        acme_start(&app.acme, app.loop, &app.cfg, app.tls, err, sizeof err) < 0)
        log_error("ACME: %s: no certificate will be obtained (serving %s)", err,
                  tls_server_cert_in_use(app.tls));
    uv_timer_init(app.loop, &app.trim);
    uv_timer_start(&app.trim, on_trim, LIM_MEMORY_TRIM_MS, LIM_MEMORY_TRIM_MS);
    log_info("chatmaild-server %s for %s ready", CM_VERSION, app.cfg.mail_domain);
    uv_run(app.loop, UV_RUN_DEFAULT);
    uv_walk(app.loop, close_walk_cb, NULL);
    uv_run(app.loop, UV_RUN_DEFAULT);
    uv_loop_close(app.loop);
    smtp_free();
    tls_server_free(app.tls);
    quota_cache_shared_free();
    http_cleanup();
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    int r = parse_args(argc, argv, &o);
    if (r != 0)
        return r < 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    app.config_path = o.config_path;
    if (load_config(o.config_path) < 0) {
        config_free(&app.cfg);
        return 1;
    }
    if (o.expire) {
        enum log_level lvl;
        if (app.cfg.log_level && log_level_parse(app.cfg.log_level, &lvl) == 0)
            log_set_level(lvl);
        int rc = expire_cli(&app.cfg, o.expire_argc, o.expire_argv);
        config_free(&app.cfg);
        return rc;
    }
    if (o.dns) {
        int rc = dnszone_cli(&app.cfg, o.dns_argc, o.dns_argv);
        config_free(&app.cfg);
        return rc;
    }
    if (o.queue) {
        int rc = smtp_queue_cli(&app.cfg, o.queue_argc, o.queue_argv);
        config_free(&app.cfg);
        return rc;
    }
    if (o.check) {
        struct buf b = {0};
        config_format(&app.cfg, &b);
        fputs(b.data ? b.data : "", stdout);
        buf_free(&b);
        config_free(&app.cfg);
        return 0;
    }
    enum log_level lvl;
    if (app.cfg.log_level && log_level_parse(app.cfg.log_level, &lvl) == 0)
        log_set_level(lvl);
    if (app.cfg.unused)
        log_warn("chatmail.ini contains settings that have no effect: %s", app.cfg.unused);
    int rc = serve();
    config_free(&app.cfg);
    return rc;
}
