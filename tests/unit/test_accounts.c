/* test_accounts.c: create-on-login by every rule of spec §2.4, login to
 * existing (legacy SHA512-CRYPT) accounts, concurrency (10 first logins of
 * one address see one hash; 250 different creations at once), last login
 * (§2.6), and the asynchronous login on a real libuv loop: results, the
 * in-flight bounds, the credential cache (cost, invalidation) and cancel. */
#include "check.h"
#include "core/limits.h"

#include "core/config.h"
#include "store/accounts.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char root[256];      /* temp dir of this test run */
static char mboxes[300];    /* root/mail */
static char loadavg[300], meminfo[300], nocreate[300];
static struct config cfg;

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static long read_text(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t len = fread(out, 1, n - 1, f);
    fclose(f);
    out[len] = '\0';
    return (long)len;
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/cm-accounts-XXXXXX");
    if (!mkdtemp(root))
        abort();
    snprintf(mboxes, sizeof mboxes, "%s/mail/example.org", root);
    snprintf(loadavg, sizeof loadavg, "%s/loadavg", root);
    snprintf(meminfo, sizeof meminfo, "%s/meminfo", root);
    snprintf(nocreate, sizeof nocreate, "%s/nocreate", root);
    write_text(loadavg, "0.42 0.30 0.20 1/100 1234\n");
    write_text(meminfo, "MemTotal:  8000000 kB\nMemFree:  1000 kB\nMemAvailable:  4000000 kB\n");
    store_syslimits_set_paths(loadavg, meminfo);
    cfg.mail_domain = "example.org";
    cfg.mailboxes_dir = mboxes;
    cfg.nocreate_file = nocreate;
    cfg.username_min_length = 9;
    cfg.username_max_length = 9;
    cfg.password_min_length = 9;
    cfg.max_load_1m = 5;
    cfg.min_available_memory_mb = 200;
    cfg.min_free_disk_space_mb = 0;
    store_pw_set_argon2_limits(1, 8192); /* cheap hashes; test_password covers the real cost */
}

static void teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", root);
}

static int login(const char *user, const char *pw, struct store_login_outcome *o)
{
    return store_login_sync(&cfg, user, pw, o);
}

static void account_file(const char *addr, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s/%s", mboxes, addr, name);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

TEST(address_normalize)
{
    char out[STORE_ADDR_MAX + 1];
    const char *why;
    CHECK_INT_EQ(store_addr_normalize(&cfg, "Foo.Bar-1@Example.ORG", out, sizeof out, &why), 0);
    CHECK_STR_EQ(out, "foo.bar-1@example.org");
    static const char *bad[] = {
        "a/b@example.org", "..abcdefg@example.org", "abc..defg@example.org", ".abcdefgh@example.org",
        "abcdefghi@other.org", "abcdefghi@sub.example.org", "abcdefghi@example.org.evil",
        "@example.org", "abc\\defgh@example.org", "abc defgh@example.org", "abc+defgh@example.org",
        "abcdefghi@example.org/", "example.org", "", "abcdefghi@example.org\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = store_addr_normalize(&cfg, bad[i], out, sizeof out, &why);
        if (rc != -1)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK_INT_EQ(rc, -1);
    }
    CHECK_INT_EQ(store_addr_normalize_n(&cfg, "abc\0defgh@example.org", 21, out, sizeof out, &why), -1);
    char longname[400];
    memset(longname, 'a', 300);
    strcpy(longname + 300, "@example.org");
    CHECK_INT_EQ(store_addr_normalize(&cfg, longname, out, sizeof out, &why), -1);
    CHECK_INT_EQ(store_addr_normalize(&cfg, "abcdefghi@example.org", out, 10, &why), -1);
    /* IPv4 relays: the domain is "[1.2.3.4]" */
    struct config v4 = cfg;
    v4.mail_domain = "[1.2.3.4]";
    CHECK_INT_EQ(store_addr_normalize(&v4, "abcdefghi@[1.2.3.4]", out, sizeof out, &why), 0);
}

TEST(address_creation_rules)
{
    const char *why = NULL;
    CHECK_INT_EQ(store_addr_check_new(&cfg, "abc.e_f-9@example.org", &why), 0);
    static const char *bad[] = {
        "abcdefgh@example.org", "abcdefghij@example.org", "ABCDEFGHI@example.org",
        "abcd+efgh@example.org", "abcd!efgh@example.org", "abcd efgh@example.org",
        "abcd/efgh@example.org", "abcd\\efgh@example.org", "abc@efghi@example.org",
        "abcdefghi", "abcdéfgh@example.org",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT_EQ(store_addr_check_new(&cfg, bad[i], &why), -1);
    struct config wide = cfg;
    wide.username_min_length = 3;
    wide.username_max_length = 20;
    CHECK_INT_EQ(store_addr_check_new(&wide, "abc@example.org", &why), 0);
    CHECK_INT_EQ(store_addr_check_new(&wide, "ab@example.org", &why), -1);
    CHECK_INT_EQ(store_addr_check_new(&wide, "abcdefghijklmnopqrst@example.org", &why), 0);
    CHECK_INT_EQ(store_addr_check_new(&wide, "abcdefghijklmnopqrstu@example.org", &why), -1);
}

TEST(create_on_first_login)
{
    struct store_login_outcome o;
    char path[512], hash[512], hash2[512];
    CHECK_INT_EQ(login("newuser01@example.org", "password123", &o), STORE_LOGIN_OK);
    CHECK(o.created);
    CHECK_STR_EQ(o.addr, "newuser01@example.org");
    account_file("newuser01@example.org", "password", path, sizeof path);
    CHECK(read_text(path, hash, sizeof hash) > 0);
    CHECK(strncmp(hash, "{ARGON2ID}$argon2id$v=19$", 25) == 0);
    CHECK(strchr(hash, '\n') == NULL);
    struct stat st;
    account_file("newuser01@example.org", "enforceE2EEincoming", path, sizeof path);
    CHECK(stat(path, &st) == 0 && st.st_size == 0);
    account_file("newuser01@example.org", "", path, sizeof path);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)))
        CHECK(strncmp(e->d_name, "password.tmp", 12) != 0);
    if (d)
        closedir(d);
    CHECK(store_account_exists(&cfg, "newuser01@example.org"));
    CHECK(store_account_exists(&cfg, "NEWUSER01@example.org"));
    CHECK(!store_account_exists(&cfg, "newuser02@example.org"));
    char dir[512];
    CHECK_INT_EQ(store_account_dir(&cfg, "NewUser01@example.org", dir, sizeof dir), 0);
    CHECK(strcmp(dir + strlen(mboxes), "/newuser01@example.org") == 0);
    CHECK_INT_EQ(store_account_dir(&cfg, "../etc@example.org", dir, sizeof dir), -1);

    /* second login: same hash, not created again; upper case = same account */
    CHECK_INT_EQ(login("NewUser01@Example.org", "password123", &o), STORE_LOGIN_OK);
    CHECK(!o.created);
    /* a wrong password is refused and never overwrites */
    CHECK_INT_EQ(login("newuser01@example.org", "password124", &o), STORE_LOGIN_WRONG_PASSWORD);
    account_file("newuser01@example.org", "password", path, sizeof path);
    CHECK(read_text(path, hash2, sizeof hash2) > 0);
    CHECK_STR_EQ(hash, hash2);
    CHECK_INT_EQ(login("newuser01@example.org", "password123", &o), STORE_LOGIN_OK);
}

TEST(rule1_nocreate)
{
    struct store_login_outcome o;
    write_text(nocreate, "");
    CHECK_INT_EQ(login("nocreate1@example.org", "password123", &o), STORE_LOGIN_REFUSED);
    char path[512];
    account_file("nocreate1@example.org", "", path, sizeof path);
    CHECK(!exists(path));
    /* existing accounts still log in */
    CHECK_INT_EQ(login("newuser01@example.org", "password123", &o), STORE_LOGIN_OK);
    unlink(nocreate);
    CHECK_INT_EQ(login("nocreate1@example.org", "password123", &o), STORE_LOGIN_OK);
    CHECK(o.created);
}

TEST(rules2_to_5)
{
    struct store_login_outcome o;
    CHECK_INT_EQ(login("shortpw01@example.org", "12345678", &o), STORE_LOGIN_REFUSED);
    CHECK_STR_EQ(o.reason, "password too short");
    /* nine code points, more bytes */
    CHECK_INT_EQ(login("shortpw01@example.org", "üüüüüüüüü", &o), STORE_LOGIN_OK);
    CHECK_INT_EQ(login("abc@defgh@example.org", "password123", &o), STORE_LOGIN_REFUSED);
    CHECK_INT_EQ(login("shortie1@example.org", "password123", &o), STORE_LOGIN_REFUSED);
    CHECK_INT_EQ(login("toolong012@example.org", "password123", &o), STORE_LOGIN_REFUSED);
    static const char *bad[] = {"abcd+efgh@example.org", "abcd!efgh@example.org",
                                "abcd efgh@example.org", "abcd/efgh@example.org",
                                "abcd\\efgh@example.org", "abcdefghi@other.org"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT_EQ(login(bad[i], "password123", &o), STORE_LOGIN_REFUSED);
    /* upper case in a login name is lower-cased first (Dovecot) */
    CHECK_INT_EQ(login("UPPERCASE@example.org", "password123", &o), STORE_LOGIN_OK);
    CHECK_STR_EQ(o.addr, "uppercase@example.org");
    char path[512];
    account_file("UPPERCASE@example.org", "", path, sizeof path);
    CHECK(!exists(path));
}

TEST(rule6_resources)
{
    struct store_login_outcome o;
    write_text(loadavg, "6.10 5.00 4.00 1/100 1234\n");
    CHECK_INT_EQ(login("loadedsys@example.org", "password123", &o), STORE_LOGIN_REFUSED);
    CHECK_STR_EQ(o.reason, "load avg 6.10 > 5.00");
    /* existing accounts are never affected */
    CHECK_INT_EQ(login("newuser01@example.org", "password123", &o), STORE_LOGIN_OK);
    write_text(loadavg, "0.10 0.10 0.10 1/100 1234\n");
    write_text(meminfo, "MemTotal: 8000000 kB\nMemAvailable:  102400 kB\n");
    CHECK_INT_EQ(login("loadedsys@example.org", "password123", &o), STORE_LOGIN_REFUSED);
    CHECK_STR_EQ(o.reason, "available memory 100M < 200M");
    CHECK_INT_EQ(login("newuser01@example.org", "password123", &o), STORE_LOGIN_OK);
    /* unreadable load: ignored, the memory check still applies */
    store_syslimits_set_paths("/nonexistent/loadavg", meminfo);
    CHECK_INT_EQ(login("loadedsys@example.org", "password123", &o), STORE_LOGIN_REFUSED);
    write_text(meminfo, "MemTotal: 8000000 kB\nMemAvailable:  4000000 kB\n");
    cfg.min_free_disk_space_mb = 1L << 40;
    CHECK_INT_EQ(login("loadedsys@example.org", "password123", &o), STORE_LOGIN_REFUSED);
    CHECK(strncmp(o.reason, "free disk ", 10) == 0);
    CHECK_INT_EQ(login("newuser01@example.org", "password123", &o), STORE_LOGIN_OK);
    cfg.min_free_disk_space_mb = 0;
    /* everything unreadable: nothing refuses */
    store_syslimits_set_paths("/nonexistent/loadavg", "/nonexistent/meminfo");
    CHECK_INT_EQ(login("loadedsys@example.org", "password123", &o), STORE_LOGIN_OK);
    CHECK(o.created);
    store_syslimits_set_paths(loadavg, meminfo);
    char reason[STORE_REASON_MAX];
    CHECK_INT_EQ(store_syslimits_check(&cfg, reason, sizeof reason), 0);
}

TEST(empty_password_file_recreated)
{
    struct store_login_outcome o;
    char dir[512], path[512], hash[512];
    account_file("emptyfile@example.org", "", dir, sizeof dir);
    mkdir(dir, 0700);
    account_file("emptyfile@example.org", "password", path, sizeof path);
    write_text(path, "");
    CHECK(!store_account_exists(&cfg, "emptyfile@example.org"));
    CHECK_INT_EQ(login("emptyfile@example.org", "password123", &o), STORE_LOGIN_OK);
    CHECK(o.created);
    CHECK(read_text(path, hash, sizeof hash) > 10);
    CHECK_INT_EQ(login("emptyfile@example.org", "password124", &o), STORE_LOGIN_WRONG_PASSWORD);
}

TEST(legacy_sha512_account)
{
    /* what an existing relay wrote; the name is longer than today's rules */
    struct store_login_outcome o;
    char dir[512], path[512];
    account_file("legacy-account-name@example.org", "", dir, sizeof dir);
    mkdir(dir, 0700);
    account_file("legacy-account-name@example.org", "password", path, sizeof path);
    write_text(path, "{SHA512-CRYPT}$6$saltsaltsaltsalt$GkzgkzVbauGAKXpOTbypQEKy/9yJWVjcvXvDw7CxoJjnJ1.w.g1rV8bhCVTpHrRrO/h6b3DAwPN3y5qmHXZ1R1");
    struct timespec old[2] = {{.tv_sec = 1000000, .tv_nsec = 0}, {.tv_sec = 1000000, .tv_nsec = 0}};
    utimensat(AT_FDCWD, path, old, 0);
    CHECK_INT_EQ(login("legacy-account-name@example.org", "wrong horse", &o), STORE_LOGIN_WRONG_PASSWORD);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_mtime == 1000000); /* failed login: no last login */
    CHECK_INT_EQ(login("legacy-account-name@example.org", "correct horse", &o), STORE_LOGIN_OK);
    CHECK(!o.created);
    CHECK(stat(path, &st) == 0 && st.st_mtime == store_day_floor(time(NULL)));
    CHECK(st.st_atime == store_day_floor(time(NULL)));
    /* no enforceE2EEincoming is added to legacy accounts */
    account_file("legacy-account-name@example.org", "enforceE2EEincoming", path, sizeof path);
    CHECK(!exists(path));
}

TEST(last_login)
{
    CHECK_INT_EQ(store_day_floor(1700000123), 1699920000);
    CHECK_INT_EQ(store_day_floor(1699920000), 1699920000);
    CHECK_INT_EQ(store_day_floor(-1), -86400);
    char path[512];
    snprintf(path, sizeof path, "%s/lastlogin-file", root);
    write_text(path, "x");
    time_t now = 1700000123;
    CHECK_INT_EQ(store_lastlogin_update(path, now), 1);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_mtime == 1699920000 && st.st_atime == 1699920000);
    CHECK_INT_EQ(store_lastlogin_update(path, now + 3600), 0); /* same day: untouched */
    struct timespec atime_only[2] = {{.tv_sec = 5, .tv_nsec = 0}, {.tv_nsec = UTIME_OMIT}};
    utimensat(AT_FDCWD, path, atime_only, 0);
    CHECK_INT_EQ(store_lastlogin_update(path, now + 3600), 0);
    CHECK(stat(path, &st) == 0 && st.st_atime == 5); /* only when mtime changes */
    CHECK_INT_EQ(store_lastlogin_update(path, now + 86400), 1);
    CHECK(stat(path, &st) == 0 && st.st_mtime == 1699920000 + 86400);
    int fd = open(path, O_RDONLY);
    CHECK_INT_EQ(store_lastlogin_update_fd(fd, now), 1);
    CHECK_INT_EQ(store_lastlogin_update_fd(fd, now), 0);
    close(fd);
    CHECK_INT_EQ(store_lastlogin_update("/nonexistent/password", now), -1);
}

/* ---- concurrency ---- */

struct same_arg {
    int result;
    bool created;
    char hash[512];
};

static void *same_login(void *p)
{
    struct same_arg *a = p;
    struct store_login_outcome o;
    char path[512];
    a->result = login("samesame1@example.org", "password-same", &o);
    a->created = o.created;
    account_file("samesame1@example.org", "password", path, sizeof path);
    read_text(path, a->hash, sizeof a->hash);
    return NULL;
}

TEST(ten_concurrent_first_logins_one_hash)
{
    store_pw_set_argon2_limits(2, 19u << 20); /* the real cost: a wide race window */
    pthread_t th[10];
    struct same_arg args[10];
    memset(args, 0, sizeof args);
    for (int i = 0; i < 10; i++)
        pthread_create(&th[i], NULL, same_login, &args[i]);
    for (int i = 0; i < 10; i++)
        pthread_join(th[i], NULL);
    int created = 0;
    for (int i = 0; i < 10; i++) {
        CHECK_INT_EQ(args[i].result, STORE_LOGIN_OK);
        created += args[i].created;
        CHECK_STR_EQ(args[i].hash, args[0].hash);
    }
    CHECK_INT_EQ(created, 1);
    CHECK(strncmp(args[0].hash, "{ARGON2ID}", 10) == 0);
    store_pw_set_argon2_limits(1, 8192);
}

#define MANY_THREADS 25
#define MANY_EACH 10

static void *many_logins(void *p)
{
    int base = (int)(intptr_t)p;
    long ok = 0;
    for (int i = 0; i < MANY_EACH; i++) {
        char user[64];
        struct store_login_outcome o;
        snprintf(user, sizeof user, "many%05d@example.org", base * MANY_EACH + i);
        if (login(user, "password-many", &o) == STORE_LOGIN_OK && o.created)
            ok++;
    }
    return (void *)(intptr_t)ok;
}

TEST(concurrent_creation_250_accounts)
{
    pthread_t th[MANY_THREADS];
    for (int i = 0; i < MANY_THREADS; i++)
        pthread_create(&th[i], NULL, many_logins, (void *)(intptr_t)i);
    long total = 0;
    for (int i = 0; i < MANY_THREADS; i++) {
        void *r;
        pthread_join(th[i], &r);
        total += (long)(intptr_t)r;
    }
    CHECK_INT_EQ(total, MANY_THREADS * MANY_EACH);
    int found = 0;
    for (int i = 0; i < MANY_THREADS * MANY_EACH; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "many%05d@example.org", i);
        found += store_account_exists(&cfg, addr);
    }
    CHECK_INT_EQ(found, 250);
}

/* ---- asynchronous login ---- */

struct cb_rec {
    int calls;
    int result;
    char err[STORE_REASON_MAX];
};

static void on_login(void *ud, int result, const char *err)
{
    struct cb_rec *r = ud;
    r->calls++;
    r->result = result;
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static int async_login(uv_loop_t *loop, const char *user, const char *pw, const char *ip)
{
    struct cb_rec r = {0};
    if (!store_login_async(loop, &cfg, user, pw, ip, on_login, &r))
        return -1;
    uv_run(loop, UV_RUN_DEFAULT);
    return r.calls == 1 ? r.result : -2;
}

TEST(async_results)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    CHECK_INT_EQ(async_login(&loop, "asyncuser@example.org", "password123", "192.0.2.1"), STORE_LOGIN_OK);
    CHECK_INT_EQ(async_login(&loop, "asyncuser@example.org", "password123", "192.0.2.1"), STORE_LOGIN_OK);
    CHECK_INT_EQ(async_login(&loop, "asyncuser@example.org", "wrongpass1", "192.0.2.1"),
                 STORE_LOGIN_WRONG_PASSWORD);
    struct cb_rec r = {0};
    CHECK(store_login_async(&loop, &cfg, "bad/name1@example.org", "password123", NULL, on_login, &r));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(r.calls, 1);
    CHECK_INT_EQ(r.result, STORE_LOGIN_REFUSED);
    CHECK_STR_EQ(r.err, "invalid character in address");
    CHECK_INT_EQ(store_login_in_flight(), 0);
    uv_loop_close(&loop);
}

TEST(async_busy_bounds)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    store_login_set_limits(3, 2);
    struct cb_rec r[6];
    memset(r, 0, sizeof r);
    CHECK(store_login_async(&loop, &cfg, "asyncuser@example.org", "password123", "192.0.2.1", on_login, &r[0]));
    CHECK(store_login_async(&loop, &cfg, "asyncuser@example.org", "password123", "192.0.2.1", on_login, &r[1]));
    /* third from the same IP: waits for a slot of its address */
    CHECK(store_login_async(&loop, &cfg, "asyncuser@example.org", "password123", "192.0.2.1", on_login, &r[2]));
    CHECK(store_login_async(&loop, &cfg, "asyncuser@example.org", "password123", "192.0.2.2", on_login, &r[3]));
    /* overall bound reached: waits too, and a waiting login can be cancelled */
    struct store_login_req *w = store_login_async(&loop, &cfg, "asyncuser@example.org",
                                                  "password123", "192.0.2.3", on_login, &r[4]);
    CHECK(w != NULL);
    CHECK_INT_EQ(store_login_in_flight(), 3);
    store_login_cancel(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(store_login_in_flight(), 0);
    CHECK(r[0].calls == 1 && r[1].calls == 1 && r[2].calls == 1 && r[3].calls == 1);
    CHECK_INT_EQ(r[2].result, STORE_LOGIN_OK);
    CHECK_INT_EQ(r[4].calls, 0);
    /* past the per-IP queue bound: refused at once (the caller says "try again") */
    struct cb_rec many[LIM_LOGIN_QUEUE_PER_IP + 3];
    memset(many, 0, sizeof many);
    size_t accepted = 0;
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        accepted += store_login_async(&loop, &cfg, "asyncuser@example.org", "password123",
                                      "192.0.2.7", on_login, &many[i]) != NULL;
    CHECK_INT_EQ(accepted, 2 + LIM_LOGIN_QUEUE_PER_IP); /* 2 running + the queue */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(many[accepted - 1].result, STORE_LOGIN_OK);
    CHECK_INT_EQ(many[accepted].calls, 0);
    /* defaults: pool size - 1 overall (one libuv worker always left for
     * deliveries and fsyncs), one IP gets at most half of it (rounded up) */
    store_login_set_limits(0, 0);
    setenv("UV_THREADPOOL_SIZE", "4", 1);
    struct cb_rec d[6];
    memset(d, 0, sizeof d);
    for (int i = 0; i < 5; i++)
        CHECK(store_login_async(&loop, &cfg, "asyncuser@example.org", "password123", "192.0.2.5", on_login, &d[i]));
    CHECK_INT_EQ(store_login_in_flight(), 2);
    CHECK(store_login_async(&loop, &cfg, "asyncuser@example.org", "password123", "192.0.2.6",
                            on_login, &d[5]));
    CHECK_INT_EQ(store_login_in_flight(), 3);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 6; i++)
        CHECK_INT_EQ(d[i].result, STORE_LOGIN_OK);
    uv_loop_close(&loop);
}

static double us_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e6 + (double)(b.tv_nsec - a->tv_nsec) / 1e3;
}

TEST(async_cache_cost_and_invalidation)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    store_pw_set_argon2_limits(2, 19u << 20); /* the real cost */
    store_login_cache_clear();
    CHECK_INT_EQ(async_login(&loop, "cacheuser@example.org", "password123", "192.0.2.9"), STORE_LOGIN_OK);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT_EQ(async_login(&loop, "cacheuser@example.org", "password123", "192.0.2.9"), STORE_LOGIN_OK);
    double first_us = us_since(&t0);
    store_login_cache_clear();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT_EQ(async_login(&loop, "cacheuser@example.org", "password123", "192.0.2.9"), STORE_LOGIN_OK);
    double uncached_us = us_since(&t0);
    enum { N = 200 };
    int ok = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++)
        ok += async_login(&loop, "cacheuser@example.org", "password123", "192.0.2.9") == STORE_LOGIN_OK;
    double async_us = us_since(&t0) / N;
    CHECK_INT_EQ(ok, N);
    struct store_login_outcome o;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++)
        login("cacheuser@example.org", "password123", &o);
    double sync_us = us_since(&t0) / N;
    printf("login: uncached %.0f us, cached %.0f us (first hit), cached async round trip %.1f us, "
           "cached worker part %.1f us\n", uncached_us, first_us, async_us, sync_us);
    CHECK(async_us < uncached_us / 5);

    /* a changed password file invalidates the entry */
    char dir[512], hash[STORE_HASH_MAX];
    account_file("cacheuser@example.org", "", dir, sizeof dir);
    store_pw_set_argon2_limits(1, 8192);
    CHECK_INT_EQ(store_pw_hash("another-password", hash, sizeof hash), 0);
    char path[512];
    account_file("cacheuser@example.org", "password", path, sizeof path);
    write_text(path, hash);
    CHECK_INT_EQ(async_login(&loop, "cacheuser@example.org", "password123", "192.0.2.9"),
                 STORE_LOGIN_WRONG_PASSWORD);
    CHECK_INT_EQ(async_login(&loop, "cacheuser@example.org", "another-password", "192.0.2.9"),
                 STORE_LOGIN_OK);
    uv_loop_close(&loop);
}

TEST(async_cancel)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cb_rec r[4];
    memset(r, 0, sizeof r);
    struct store_login_req *req[4];
    for (int i = 0; i < 4; i++) {
        req[i] = store_login_async(&loop, &cfg, "cancelled@example.org", "password123", "192.0.2.7",
                                   on_login, &r[i]);
        CHECK(req[i] != NULL);
    }
    store_login_cancel(req[0]);
    store_login_cancel(req[3]);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(r[0].calls, 0);
    CHECK_INT_EQ(r[3].calls, 0);
    CHECK_INT_EQ(r[1].calls, 1);
    CHECK_INT_EQ(r[2].calls, 1);
    CHECK_INT_EQ(store_login_in_flight(), 0);
    uv_loop_close(&loop);
}

TEST(address_recipient_plus_tag)
{
    char out[STORE_ADDR_MAX + 1];
    const char *why = NULL;
    CHECK_INT_EQ(store_addr_recipient(&cfg, "Abcdefghi+Tag@Example.ORG", out, sizeof out, &why), 0);
    CHECK_STR_EQ(out, "abcdefghi@example.org");
    CHECK_INT_EQ(store_addr_recipient(&cfg, "abcdefghi+a+b@example.org", out, sizeof out, &why), 0);
    CHECK_STR_EQ(out, "abcdefghi@example.org");
    CHECK_INT_EQ(store_addr_recipient(&cfg, "abcdefghi+@example.org", out, sizeof out, &why), 0);
    CHECK_STR_EQ(out, "abcdefghi@example.org");
    CHECK_INT_EQ(store_addr_recipient(&cfg, "abcdefghi@example.org", out, sizeof out, &why), 0);
    CHECK_STR_EQ(out, "abcdefghi@example.org");
    /* the tag is dropped, never part of a path: any atext in it is fine */
    CHECK_INT_EQ(store_addr_recipient(&cfg, "abcdefghi+t/x=y@example.org", out, sizeof out, &why), 0);
    CHECK_STR_EQ(out, "abcdefghi@example.org");
    static const char *bad[] = {
        "+tag@example.org", "abcdefghi+tag@other.org", "abc/x+tag@example.org",
        "abcdefghi+tag", "+@example.org", "", "..ab+c@example.org",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        int rc = store_addr_recipient(&cfg, bad[i], out, sizeof out, &why);
        if (rc != -1)
            fprintf(stderr, "accepted: %s -> %s\n", bad[i], out);
        CHECK_INT_EQ(rc, -1);
        CHECK(why != NULL);
    }
    CHECK_INT_EQ(store_addr_recipient(&cfg, NULL, out, sizeof out, &why), -1);
    char longname[400];
    memset(longname, 'a', 300);
    strcpy(longname + 300, "+t@example.org");
    CHECK_INT_EQ(store_addr_recipient(&cfg, longname, out, sizeof out, &why), -1);
}

int main(void)
{
    setup();
    RUN(address_normalize);
    RUN(address_recipient_plus_tag);
    RUN(address_creation_rules);
    RUN(create_on_first_login);
    RUN(rule1_nocreate);
    RUN(rules2_to_5);
    RUN(rule6_resources);
    RUN(empty_password_file_recreated);
    RUN(legacy_sha512_account);
    RUN(last_login);
    RUN(ten_concurrent_first_logins_one_hash);
    RUN(concurrent_creation_250_accounts);
    RUN(async_results);
    RUN(async_busy_bounds);
    RUN(async_cache_cost_and_invalidation);
    RUN(async_cancel);
    teardown();
    return check_report();
}
