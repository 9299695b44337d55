/* test_quota_exact.c: the shared quota cache stays equal to a scan of the
 * Maildir after every change store makes - delivery, expunge, COPY, MOVE,
 * APPEND, undo of a delivery - and the drift of issue 12 (delivered mail
 * expunged over IMAP kept counting until deliveries were refused) is gone. */
#include "check.h"

#include "store/mailbox.h"
#include "store/maildir.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256], acdir[300];
static char msg100k[100 * 1000];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_quota_exact.XXXXXX");
    if (!mkdtemp(tmpdir))
        abort();
    snprintf(acdir, sizeof(acdir), "%s/user@x", tmpdir);
    mkdir(acdir, 0700);
    memset(msg100k, 'q', sizeof msg100k);
    memcpy(msg100k, "Subject: q\r\n\r\n", 14);
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "rm failed\n");
    quota_cache_shared_free();
}

/* Cache figure minus scan figure (0 when exact). */
static long long drift(struct quota_cache *qc)
{
    uint64_t cached = 0, scanned = 0;
    if (quota_usage(qc, acdir, &cached) < 0 || quota_scan(acdir, &scanned) < 0)
        return -1;
    return (long long)cached - (long long)scanned;
}

static const struct store_opts *opts(struct quota_cache *qc)
{
    static struct store_opts o;
    o = (struct store_opts){.quota = qc, .max_mailbox_size_mb = 1, .no_fsync = true};
    return &o;
}

static uint32_t deliver_and_index(struct quota_cache *qc, struct mailbox *mb)
{
    struct store_rcpt r = {.dir = acdir};
    const char *err;
    if (store_deliver(msg100k, sizeof msg100k, &r, 1, opts(qc)) != 1 ||
        mailbox_sync(mb, true, &err) < 0 || mailbox_refresh(mb, NULL, NULL, &err) < 0 ||
        mailbox_count(mb) == 0)
        return 0;
    return mailbox_msgs(mb)[mailbox_count(mb) - 1].uid;
}

/* The reproduction: 1 MiB quota, 8 x 100 KB delivered, all 8
 * expunged over IMAP, then 8 more must all be delivered. */
TEST(expunge_gives_quota_back)
{
    setup();
    struct quota_cache *qc = quota_cache_shared();
    struct mailbox *mb = NULL;
    const char *err;
    CHECK_INT_EQ(mailbox_open(acdir, "INBOX", &mb, &err), 0);
    uint32_t uids[8];
    for (int i = 0; i < 8; i++)
        uids[i] = deliver_and_index(qc, mb);
    CHECK_INT_EQ(drift(qc), 0);
    for (int i = 0; i < 8; i++) {
        uint64_t ms;
        CHECK_INT_EQ(mailbox_expunge(mb, uids[i], &ms, &err), 0);
    }
    CHECK_INT_EQ(drift(qc), 0);
    uint64_t cached = 1;
    quota_usage(qc, acdir, &cached);
    CHECK_INT_EQ(cached, 0);
    for (int i = 0; i < 8; i++) {
        struct store_rcpt r = {.dir = acdir};
        CHECK_INT_EQ(store_deliver(msg100k, sizeof msg100k, &r, 1, opts(qc)), 1);
        CHECK_INT_EQ(r.status, STORE_OK);
    }
    CHECK_INT_EQ(drift(qc), 0);
    mailbox_close(mb);
    teardown();
}

TEST(copy_and_move_are_counted)
{
    setup();
    struct quota_cache *qc = quota_cache_shared();
    struct mailbox *in = NULL, *arch = NULL;
    const char *err;
    CHECK_INT_EQ(mailbox_open(acdir, "INBOX", &in, &err), 0);
    CHECK_INT_EQ(folder_create(acdir, "Archive", &err), 0);
    CHECK_INT_EQ(mailbox_open(acdir, "Archive", &arch, &err), 0);
    uint32_t a = deliver_and_index(qc, in), b = deliver_and_index(qc, in), dst;
    CHECK_INT_EQ(drift(qc), 0);
    CHECK_INT_EQ(mailbox_copy(in, a, arch, &dst, &err), 0); /* a second file */
    CHECK_INT_EQ(drift(qc), 0);
    uint64_t cached = 0;
    quota_usage(qc, acdir, &cached);
    CHECK_INT_EQ(cached, 3 * sizeof msg100k);
    CHECK_INT_EQ(mailbox_move(in, b, arch, &dst, &err), 0); /* same total */
    CHECK_INT_EQ(drift(qc), 0);
    quota_usage(qc, acdir, &cached);
    CHECK_INT_EQ(cached, 3 * sizeof msg100k);
    mailbox_close(arch);
    mailbox_close(in);
    teardown();
}

TEST(append_is_counted_and_refused_over_quota)
{
    setup();
    struct quota_cache *qc = quota_cache_shared();
    struct mailbox *mb = NULL;
    const char *err;
    CHECK_INT_EQ(mailbox_open(acdir, "INBOX", &mb, &err), 0);
    uint32_t uid = 0;
    uint64_t ms = 0;
    int e = 0;
    for (int i = 0; i < 10; i++) /* 1,000,000 of 1,048,576 bytes */
        CHECK_INT_EQ(store_append(mb, acdir, msg100k, sizeof msg100k, MB_SEEN, 0, opts(qc), &uid,
                                  &ms, &e),
                     STORE_OK);
    CHECK(uid > 0);
    CHECK_INT_EQ(drift(qc), 0);
    CHECK_INT_EQ(store_append(mb, acdir, msg100k, sizeof msg100k, 0, 0, opts(qc), &uid, &ms, &e),
                 STORE_EQUOTA);
    CHECK_INT_EQ(drift(qc), 0);
    uint64_t ms2;
    CHECK_INT_EQ(mailbox_expunge(mb, uid, &ms2, &err), 0);
    CHECK_INT_EQ(drift(qc), 0);
    CHECK_INT_EQ(store_append(mb, acdir, msg100k, sizeof msg100k, 0, 0, opts(qc), &uid, &ms, &e),
                 STORE_OK);
    CHECK_INT_EQ(drift(qc), 0);
    mailbox_close(mb);
    teardown();
}

TEST(undo_of_a_delivery_gives_quota_back)
{
    setup();
    struct quota_cache *qc = quota_cache_shared();
    char other[400];
    snprintf(other, sizeof other, "%s/other@x", tmpdir);
    mkdir(other, 0700);
    struct store_rcpt r[2] = {{.dir = acdir}, {.dir = other}};
    CHECK_INT_EQ(store_deliver(msg100k, sizeof msg100k, r, 2, opts(qc)), 2);
    CHECK_INT_EQ(drift(qc), 0);
    CHECK_INT_EQ(store_undeliver(r, 2, opts(qc)), 0);
    CHECK_INT_EQ(drift(qc), 0);
    uint64_t cached = 1, scanned = 1;
    quota_usage(qc, acdir, &cached);
    CHECK_INT_EQ(cached, 0);
    quota_usage(qc, other, &cached);
    quota_scan(other, &scanned);
    CHECK_INT_EQ(cached, 0);
    CHECK_INT_EQ(scanned, 0);
    teardown();
}

int main(void)
{
    RUN(expunge_gives_quota_back);
    RUN(copy_and_move_are_counted);
    RUN(append_is_counted_and_refused_over_quota);
    RUN(undo_of_a_delivery_gives_quota_back);
    return check_report();
}
