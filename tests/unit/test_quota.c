/* test_quota.c: usage from S= sizes over INBOX and .Folders, the cache,
 * refusal with Dovecot's text, and the §5.2 oldest-first trim with its 24 h
 * protection (triggered at 75 %, down to 70 %). */
#include "check.h"

#include "store/mailbox.h"
#include "store/maildir.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256], acdir[300];

/* An account's INBOX (cur/ new/ tmp/ in the account dir) or a folder. */
static void make_folder(const char *account, const char *name)
{
    char p[700];
    const char *err;
    if (strcmp(name, "INBOX") != 0) {
        folder_create(account, name, &err);
        return;
    }
    mkdir(account, 0700);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", account, (const char *[]){"cur", "new", "tmp"}[i]);
        mkdir(p, 0700);
    }
}

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_quota.XXXXXX");
    if (!mkdtemp(tmpdir))
        abort();
    snprintf(acdir, sizeof(acdir), "%s/user@x", tmpdir);
    make_folder(acdir, "INBOX");
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "rm failed\n");
}

/* A message file named with time `secs` and S=size (content is short). */
static void put(const char *sub, int64_t secs, unsigned long size, const char *tag)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s/%lld.M1P1Q%s.h,S=%lu,W=%lu", acdir, sub, (long long)secs,
             tag, size, size);
    FILE *f = fopen(path, "w");
    fputs("x", f);
    fclose(f);
}

static bool exists(const char *sub, int64_t secs, unsigned long size, const char *tag)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s/%lld.M1P1Q%s.h,S=%lu,W=%lu", acdir, sub, (long long)secs,
             tag, size, size);
    return access(path, F_OK) == 0;
}

TEST(scan_counts_s_sizes_in_all_folders)
{
    setup();
    put("cur", 1000, 100, "a");
    put("new", 1000, 200, "b");
    put("tmp", 1000, 5000, "c"); /* tmp/ does not count */
    make_folder(acdir, "DeltaChat");
    char path[700];
    snprintf(path, sizeof(path), "%s/.DeltaChat/cur/1.x,S=300:2,S", acdir);
    FILE *f = fopen(path, "w");
    fclose(f);
    snprintf(path, sizeof(path), "%s/cur/nosize", acdir); /* no S=: on-disk size */
    f = fopen(path, "w");
    fputs("12345", f);
    fclose(f);
    uint64_t u = 0;
    CHECK_INT_EQ(quota_scan(acdir, &u), 0);
    CHECK_INT_EQ(u, 100 + 200 + 300 + 5);
    CHECK_INT_EQ(quota_scan("/nonexistent/dir", &u), -1);
    teardown();
}

TEST(reserve_refuse_adjust)
{
    setup();
    put("cur", 1000, 600 * 1024, "a");
    struct quota_cache *qc = quota_cache_new();
    uint64_t limit = quota_limit_bytes(1); /* 1 MiB */
    uint64_t u;
    CHECK_INT_EQ(quota_usage(qc, acdir, &u), 0);
    CHECK_INT_EQ(u, 600 * 1024);
    CHECK_INT_EQ(quota_reserve(qc, acdir, 300 * 1024, limit), 0);
    CHECK_INT_EQ(quota_reserve(qc, acdir, 200 * 1024, limit), 1); /* 1100 KiB > 1 MiB */
    quota_usage(qc, acdir, &u);
    CHECK_INT_EQ(u, 900 * 1024);
    CHECK_INT_EQ(quota_reserve(qc, acdir, 124 * 1024, limit), 0); /* exactly full is fine */
    CHECK_INT_EQ(quota_reserve(qc, acdir, 1, limit), 1);
    quota_adjust(qc, acdir, -(int64_t)(124 * 1024));
    quota_forget(qc, acdir);
    quota_usage(qc, acdir, &u); /* rescanned: the truth on disk */
    CHECK_INT_EQ(u, 600 * 1024);
    CHECK_INT_EQ(quota_reserve(qc, acdir, 1u << 30, 0), 0); /* no limit */
    CHECK_STR_EQ(QUOTA_REASON, "Quota exceeded (mailbox for user is full)");
    CHECK_INT_EQ(quota_trim_target_bytes(500), 350ull * 1024 * 1024);
    CHECK_INT_EQ(quota_trim_target_bytes(3), 2ull * 1024 * 1024); /* floor(3*70/100) = 2 MB */
    quota_cache_free(qc);
    teardown();
}

TEST(cache_many_accounts)
{
    setup();
    struct quota_cache *qc = quota_cache_new();
    char p[400];
    for (int i = 0; i < 3000; i++) { /* non-existent: scan errors, nothing cached */
        snprintf(p, sizeof(p), "%s/none%d", tmpdir, i);
        uint64_t u;
        CHECK_INT_EQ(quota_usage(qc, p, &u), -1);
    }
    for (int i = 0; i < 3000; i++) { /* grows the table */
        snprintf(p, sizeof(p), "%s/a%d@x", tmpdir, i);
        mkdir(p, 0700);
        CHECK_INT_EQ(quota_reserve(qc, p, (uint64_t)i, 0), 0);
    }
    for (int i = 0; i < 3000; i += 7) {
        snprintf(p, sizeof(p), "%s/a%d@x", tmpdir, i);
        uint64_t u;
        CHECK_INT_EQ(quota_usage(qc, p, &u), 0);
        CHECK_INT_EQ(u, i);
    }
    quota_cache_free(qc);
    teardown();
}

TEST(trim_oldest_first_with_24h_protection)
{
    setup();
    int64_t now = 10 * 86400;
    put("cur", 1000, 400, "a");      /* oldest */
    put("new", 2000, 300, "b");
    put("cur", 2000, 200, "c");      /* same time, smaller: goes before b */
    put("cur", now - 3600, 500, "d"); /* fresh: protected */
    put("cur", 3000, 100, "e");
    char path[700];
    snprintf(path, sizeof(path), "%s/maildirsize", acdir);
    FILE *f = fopen(path, "w");
    fclose(f);
    struct quota_trim_result res;
    /* total 1500; target 800: a(400) -> 1100, c(200) -> 900, b(300) -> 600 */
    CHECK_INT_EQ(quota_trim(NULL, acdir, 800, now, true, &res), 0); /* dry run first */
    CHECK_INT_EQ(res.removed, 3);
    CHECK(exists("cur", 1000, 400, "a"));
    CHECK(access(path, F_OK) == 0);
    CHECK_INT_EQ(quota_trim(NULL, acdir, 800, now, false, &res), 0);
    CHECK_INT_EQ(res.removed, 3);
    CHECK_INT_EQ(res.bytes, 900);
    CHECK(!exists("cur", 1000, 400, "a"));
    CHECK(!exists("cur", 2000, 200, "c"));
    CHECK(!exists("new", 2000, 300, "b"));
    CHECK(exists("cur", 3000, 100, "e"));
    CHECK(exists("cur", now - 3600, 500, "d"));
    CHECK(access(path, F_OK) != 0); /* maildirsize removed */
    /* target 0: e goes, d is protected and stops the walk */
    CHECK_INT_EQ(quota_trim(NULL, acdir, 0, now, false, &res), 0);
    CHECK_INT_EQ(res.removed, 1);
    CHECK(exists("cur", now - 3600, 500, "d"));
    teardown();
}

TEST(delivery_refused_over_quota_and_trimmed_at_75)
{
    setup();
    int64_t old = (int64_t)time(NULL) - 5 * 86400;
    struct quota_cache *qc = quota_cache_new();
    /* 1 MiB quota: 10 old messages of 70 KiB = 700 KiB (68 %) */
    for (int i = 0; i < 10; i++) {
        char tag[8];
        snprintf(tag, sizeof(tag), "%d", i);
        put("cur", old + i, 70 * 1024, tag);
    }
    struct store_opts o = {.quota = qc, .max_mailbox_size_mb = 1, .no_fsync = true};
    static char big[400 * 1024];
    memset(big, 'a', sizeof(big));
    struct store_rcpt r = {.dir = acdir};
    CHECK_INT_EQ(store_deliver(big, sizeof(big), &r, 1, &o), 0);
    CHECK_INT_EQ(r.status, STORE_EQUOTA);
    uint64_t u;
    quota_usage(qc, acdir, &u);
    CHECK_INT_EQ(u, 700 * 1024);
    /* 100 KiB more: 800 KiB > 75 % (768 KiB) -> trim to 70 % (0 MB: floor(1*70/100)),
     * the fresh message is protected, all old ones go */
    CHECK_INT_EQ(store_deliver(big, 100 * 1024, &r, 1, &o), 1);
    CHECK_INT_EQ(r.status, STORE_OK);
    quota_usage(qc, acdir, &u);
    CHECK_INT_EQ(u, 100 * 1024);
    uint64_t scanned;
    quota_scan(acdir, &scanned);
    CHECK_INT_EQ(scanned, 100 * 1024);
    quota_cache_free(qc);
    teardown();
}

TEST(trim_at_75_percent_of_larger_quota)
{
    setup();
    int64_t old = (int64_t)time(NULL) - 5 * 86400;
    struct quota_cache *qc = quota_cache_new();
    /* 10 MiB quota, 70 % = 7 MiB target; 7 old messages of 1 MiB */
    for (int i = 0; i < 7; i++) {
        char tag[8];
        snprintf(tag, sizeof(tag), "%d", i);
        put("cur", old + i, 1024 * 1024, tag);
    }
    struct store_opts o = {.quota = qc, .max_mailbox_size_mb = 10, .no_fsync = true};
    static char m[1024 * 1024];
    memset(m, 'b', sizeof(m));
    struct store_rcpt r = {.dir = acdir};
    CHECK_INT_EQ(store_deliver(m, sizeof(m), &r, 1, &o), 1); /* 8 MiB = 80 % > 75 % */
    uint64_t u;
    quota_usage(qc, acdir, &u);
    CHECK_INT_EQ(u, 7 * 1024 * 1024); /* the oldest went */
    CHECK(!exists("cur", old, 1024 * 1024, "0"));
    CHECK(exists("cur", old + 1, 1024 * 1024, "1"));
    quota_cache_free(qc);
    teardown();
}

int main(void)
{
    RUN(scan_counts_s_sizes_in_all_folders);
    RUN(reserve_refuse_adjust);
    RUN(cache_many_accounts);
    RUN(trim_oldest_first_with_24h_protection);
    RUN(delivery_refused_over_quota_and_trimmed_at_75);
    RUN(trim_at_75_percent_of_larger_quota);
    return check_report();
}
