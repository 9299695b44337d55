/* test_expire.c: every rule of the daily expiry (§5.1) on files dated with
 * utimensat, dry run (deletes nothing, trim included), --days, the summary
 * line, batches, and the fsreport gauges (§5.5). */
#include "check.h"

#include "core/buf.h"
#include "core/config.h"
#include "store/maildir.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DAY 86400

static char base[256];
static int64_t now;

static void setup(void)
{
    snprintf(base, sizeof(base), "/tmp/test_expire.XXXXXX");
    if (!mkdtemp(base))
        abort();
    now = (int64_t)time(NULL);
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "rm failed\n");
}

static void mkdirs(const char *rel)
{
    char p[1024], *s;
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    for (s = p + strlen(base) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(p, 0700);
        *s = '/';
    }
    mkdir(p, 0700);
}

/* Creates base/rel with `size` bytes and mtime now - age seconds. */
static void file_at(const char *rel, size_t size, int64_t age)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", rel);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdirs(dir);
    }
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (size && ftruncate(fd, (off_t)size) != 0)
        abort();
    close(fd);
    struct timespec ts[2] = {{.tv_sec = (time_t)(now - age)}, {.tv_sec = (time_t)(now - age)}};
    CHECK_INT_EQ(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static bool there(const char *rel)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    return access(p, F_OK) == 0;
}

static struct expire_params params(bool dry)
{
    struct expire_params p = {
        .mailboxes_dir = base,
        .delete_mails_after = 20,
        .delete_large_after = 7,
        .delete_inactive_users_after = 90,
        .max_mailbox_size_mb = 500,
        .dry_run = dry,
        .now = now,
    };
    return p;
}

/* A typical relay: see the comments per file. */
static void populate(void)
{
    file_at("a@x/password", 10, 2 * DAY);
    file_at("a@x/maildirsize", 10, DAY);
    file_at("a@x/cur/1.M1P1Q1.h,S=100,W=100:2,S", 100, 25 * DAY);   /* old: goes */
    file_at("a@x/new/2.M1P1Q2.h,S=100,W=100", 100, 25 * DAY);       /* old: goes */
    file_at("a@x/cur/3.M1P1Q3.h,S=300000:2,S", 300000, 8 * DAY);    /* large seen: goes */
    file_at("a@x/new/4.M1P1Q4.h,S=300000", 300000, 8 * DAY);        /* large, unseen: stays */
    file_at("a@x/cur/5.M1P1Q5.h,S=300000:2,S", 300000, 3 * DAY);    /* large recent: stays */
    file_at("a@x/cur/6.M1P1Q6.h,S=200000:2,S", 200000, 8 * DAY);    /* not over 200000: stays */
    file_at("a@x/.DeltaChat/cur/7.M1P1Q7.h,S=5:2,S", 5, 21 * DAY);  /* folder, old: goes */
    file_at("a@x/.DeltaChat/cur/8.M1P1Q8.h,S=5:2,S", 5, DAY);       /* stays */
    file_at("a@x/tmp/9.M1P1Q9.h", 5, 37 * 3600);                    /* stale tmp: goes */
    file_at("a@x/tmp/10.M1P1Q10.h", 5, 30 * 3600);                  /* fresh tmp: stays */
    file_at("b@x/password", 10, 91 * DAY);                          /* inactive: all goes */
    file_at("b@x/cur/11.M1P1Q11.h,S=5:2,S", 5, DAY);
    mkdirs("c@x");                                                  /* empty, no password: goes */
    file_at("d@x/cur/12.M1P1Q12.h,S=5:2,S", 5, DAY);                /* no password, not empty: stays */
    file_at("ci-e@x/password", 10, 0);
    file_at("ci-e@x/cur/13.M1P1Q13.h,S=5:2,S", 5, DAY);
    file_at("pending_notifications/tok", 5, 100 * DAY);             /* not a mailbox */
}

TEST(every_rule)
{
    setup();
    populate();
    struct expire_params p = params(false);
    struct expire_stats st;
    char err[256];
    CHECK_INT_EQ(expire_run_all(&p, &st, err, sizeof(err)), 0);
    CHECK(!there("a@x/cur/1.M1P1Q1.h,S=100,W=100:2,S"));
    CHECK(!there("a@x/new/2.M1P1Q2.h,S=100,W=100"));
    CHECK(!there("a@x/cur/3.M1P1Q3.h,S=300000:2,S"));
    CHECK(there("a@x/new/4.M1P1Q4.h,S=300000"));
    CHECK(there("a@x/cur/5.M1P1Q5.h,S=300000:2,S"));
    CHECK(there("a@x/cur/6.M1P1Q6.h,S=200000:2,S"));
    CHECK(!there("a@x/.DeltaChat/cur/7.M1P1Q7.h,S=5:2,S"));
    CHECK(there("a@x/.DeltaChat/cur/8.M1P1Q8.h,S=5:2,S"));
    CHECK(!there("a@x/tmp/9.M1P1Q9.h"));
    CHECK(there("a@x/tmp/10.M1P1Q10.h"));
    CHECK(!there("a@x/maildirsize"));
    CHECK(there("a@x/password"));
    CHECK(!there("b@x"));
    CHECK(!there("c@x"));
    CHECK(there("d@x/cur/12.M1P1Q12.h,S=5:2,S"));
    CHECK(there("ci-e@x/cur/13.M1P1Q13.h,S=5:2,S"));
    CHECK(there("pending_notifications/tok"));
    CHECK_INT_EQ(st.mailboxes, 5);
    CHECK_INT_EQ(st.removed_mailboxes, 2);
    CHECK_INT_EQ(st.files, 10 + 1 + 1);
    CHECK_INT_EQ(st.removed_files, 5);
    char line[256];
    st.seconds = 0.5;
    expire_summary(&st, line, sizeof(line));
    CHECK_STR_EQ(line, "Removed 2 out of 5 mailboxes and 5 out of 12 files in existing "
                       "mailboxes in 0.50 seconds");
    /* gauges: a@x, d@x, ci-e@x remain */
    CHECK_INT_EQ(st.fs.accounts_all, 3);
    CHECK_INT_EQ(st.fs.accounts_ci, 1);
    CHECK_INT_EQ(st.fs.accounts_user, 2);
    CHECK_INT_EQ(st.fs.active[0], 0); /* a@x logged in 2 days ago */
    CHECK_INT_EQ(st.fs.active[1], 1);
    CHECK_INT_EQ(st.fs.msg_count[0], 7);
    CHECK_INT_EQ(st.fs.msg_bytes[0], 300000 * 2 + 200000 + 5 + 5 + 5 + 5);
    CHECK_INT_EQ(st.fs.msg_count[1], 3); /* >= 102400 */
    CHECK_INT_EQ(st.fs.msg_count[2], 0);
    CHECK_INT_EQ(st.fs.bytes_extra, 20);
    struct buf b = {0};
    CHECK_INT_EQ(fsreport_format(&st.fs, &b), 0);
    CHECK(strstr(b.data, "chatmail_accounts{kind=\"ci\"} 1\n") != NULL);
    CHECK(strstr(b.data, "chatmail_messages_count{min_size=\"102400\"} 3\n") != NULL);
    CHECK(strstr(b.data, "chatmail_accounts_active{days=\"10\"} 1\n") != NULL);
    CHECK(strstr(b.data, "chatmail_storage_bytes{kind=\"total\"} 800040\n") != NULL);
    buf_free(&b);
    teardown();
}

TEST(dry_run_deletes_nothing)
{
    setup();
    populate();
    struct expire_params p = params(true);
    struct expire_stats st;
    char err[256];
    CHECK_INT_EQ(expire_run_all(&p, &st, err, sizeof(err)), 0);
    CHECK(there("a@x/cur/1.M1P1Q1.h,S=100,W=100:2,S"));
    CHECK(there("a@x/tmp/9.M1P1Q9.h"));
    CHECK(there("a@x/maildirsize"));
    CHECK(there("b@x/cur/11.M1P1Q11.h,S=5:2,S"));
    CHECK(there("c@x"));
    CHECK_INT_EQ(st.removed_mailboxes, 2); /* what would go */
    CHECK_INT_EQ(st.removed_files, 5);
    teardown();
}

TEST(quota_trim_in_expiry_obeys_dry_run)
{
    setup();
    /* 1 MB quota -> target floor(0.7) = 0 MB: every message older than 24 h goes */
    file_at("q@x/password", 1, 0);
    file_at("q@x/cur/100.M1P1Q1.h,S=1000:2,S", 10, DAY);
    file_at("q@x/new/200.M1P1Q2.h,S=1000", 10, DAY);
    char fresh[128];
    snprintf(fresh, sizeof(fresh), "q@x/new/%lld.M1P1Q3.h,S=1000", (long long)now - 60);
    file_at(fresh, 10, 0);
    struct expire_params p = params(true);
    p.max_mailbox_size_mb = 1;
    struct expire_stats st;
    char err[256];
    CHECK_INT_EQ(expire_run_all(&p, &st, err, sizeof(err)), 0);
    CHECK_INT_EQ(st.removed_files, 2);
    CHECK(there("q@x/cur/100.M1P1Q1.h,S=1000:2,S"));
    p.dry_run = false;
    CHECK_INT_EQ(expire_run_all(&p, &st, err, sizeof(err)), 0);
    CHECK_INT_EQ(st.removed_files, 2);
    CHECK(!there("q@x/cur/100.M1P1Q1.h,S=1000:2,S"));
    CHECK(!there("q@x/new/200.M1P1Q2.h,S=1000"));
    CHECK(there(fresh));
    teardown();
}

TEST(days_option_and_cli)
{
    setup();
    file_at("a@x/password", 10, 0);
    file_at("a@x/cur/1.M1P1Q1.h,S=5:2,S", 5, 25 * DAY);
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.mailboxes_dir = base;
    cfg.delete_mails_after = 20;
    cfg.delete_large_after = 7;
    cfg.delete_inactive_users_after = 90;
    cfg.max_mailbox_size_mb = 500;
    char out[300];
    snprintf(out, sizeof(out), "%s.out", base);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    char *a1[] = {"--days", "10"}; /* pretends now is 10 days ago: 15 days old, stays */
    int rc1 = expire_cli(&cfg, 2, a1);
    char *a2[] = {"--dry-run"};
    int rc2 = expire_cli(&cfg, 1, a2);
    char *a3[] = {"--bogus"};
    int rc3 = expire_cli(&cfg, 1, a3);
    char **a4 = NULL;
    int rc4 = expire_cli(&cfg, 0, a4); /* no --remove: reports only */
    bool kept = there("a@x/cur/1.M1P1Q1.h,S=5:2,S");
    char *a5[] = {"--remove"};
    int rc5 = expire_cli(&cfg, 1, a5);
    char *a6[] = {"--remove", "--dry-run"};
    int rc6 = expire_cli(&cfg, 2, a6);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(fd);
    CHECK_INT_EQ(rc1, 0);
    CHECK_INT_EQ(rc2, 0);
    CHECK_INT_EQ(rc3, 2);
    CHECK_INT_EQ(rc4, 0);
    CHECK(kept);
    CHECK_INT_EQ(rc5, 0);
    CHECK_INT_EQ(rc6, 2);
    CHECK(!there("a@x/cur/1.M1P1Q1.h,S=5:2,S"));
    FILE *f = fopen(out, "r");
    char l1[256] = "", l2[256] = "", l3[256] = "", l4[256] = "";
    CHECK(fgets(l1, sizeof(l1), f) && fgets(l2, sizeof(l2), f) && fgets(l3, sizeof(l3), f) &&
          fgets(l4, sizeof(l4), f));
    fclose(f);
    unlink(out);
    const char *e1 = "Removed 0 out of 1 mailboxes and 0 out of 1 files in existing mailboxes in ";
    const char *e2 = "Removed 0 out of 1 mailboxes and 1 out of 1 files in existing mailboxes in ";
    CHECK(strncmp(l1, e1, strlen(e1)) == 0);
    CHECK(strncmp(l2, e2, strlen(e2)) == 0);
    CHECK(strncmp(l3, e2, strlen(e2)) == 0);
    CHECK(strncmp(l4, e2, strlen(e2)) == 0); /* --remove: the same line */
    CHECK(strstr(l1, " seconds\n") != NULL);
    teardown();
}

TEST(batches)
{
    setup();
    for (int i = 0; i < 25; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "u%d@x/password", i);
        file_at(rel, 1, 0);
        snprintf(rel, sizeof(rel), "u%d@x/cur/1.M1P1Q1.h,S=5:2,S", i);
        file_at(rel, 5, 30 * DAY);
    }
    struct expire_params p = params(false);
    char err[256];
    struct expire_run *x = expire_begin(&p, err, sizeof(err));
    CHECK(x != NULL);
    int steps = 0;
    while (expire_step(x, 4) > 0)
        steps++;
    struct expire_stats st;
    expire_end(x, &st);
    CHECK(steps >= 6);
    CHECK_INT_EQ(st.mailboxes, 25);
    CHECK_INT_EQ(st.removed_files, 25);
    p.mailboxes_dir = "/nonexistent/mailboxes";
    CHECK(expire_begin(&p, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "/nonexistent/mailboxes") != NULL);
    teardown();
}

int main(void)
{
    RUN(every_rule);
    RUN(dry_run_deletes_nothing);
    RUN(quota_trim_in_expiry_obeys_dry_run);
    RUN(days_option_and_cli);
    RUN(batches);
    return check_report();
}
