/* test_index.c: the Maildir UID index: UIDs in delivery order and stable
 * across reopen, files added behind our back, rebuild after index deletion
 * or corruption (same UIDs through dovecot-uidlist), new UIDVALIDITY only
 * when nothing is left, Dovecot uidlist takeover, flags/MODSEQ/rename,
 * expunge and VANISHED, two sessions, COPY/MOVE, folders. */
#include "check.h"
#include "store/mailbox.h"
#include "store/maildir.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char adir[256];

static void rm_rf(const char *p)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    CHECK(system(cmd) == 0);
}

static void new_account(void)
{
    snprintf(adir, sizeof(adir), "/tmp/cm-index-XXXXXX");
    CHECK(mkdtemp(adir) != NULL);
}

static void put_file(const char *dir, const char *sub, const char *name, const char *body)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, sub);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(body, f);
        fclose(f);
    }
}

static bool exists(const char *dir, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    return access(p, F_OK) == 0;
}

/* Body of the message file of uid, for identifying it. */
static void body_of(struct mailbox *mb, uint32_t uid, char *out, size_t cap)
{
    struct buf p = {0};
    out[0] = '\0';
    if (mailbox_msg_path(mb, uid, &p) == 0) {
        FILE *f = fopen(p.data, "r");
        if (f) {
            size_t n = fread(out, 1, cap - 1, f);
            out[n] = '\0';
            fclose(f);
        }
    }
    buf_free(&p);
}

static struct mailbox *open_inbox(void)
{
    struct mailbox *mb = NULL;
    const char *err = NULL;
    CHECK_INT_EQ(mailbox_open(adir, "INBOX", &mb, &err), 0);
    if (!mb)
        fprintf(stderr, "open: %s\n", err);
    return mb;
}

static void set_mtime(const char *sub, const char *name, time_t t)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s/%s", adir, sub, name);
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    CHECK_INT_EQ(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void three_messages(void)
{
    /* created out of order: UIDs follow the name timestamps; the mtimes
     * (internal dates) are the delivery times, as a delivery leaves them */
    put_file(adir, "new", "1700000300.M3P9Q1.host,S=2,W=2", "m3");
    put_file(adir, "new", "1700000100.M1P9Q1.host,S=2,W=2", "m1");
    put_file(adir, "cur", "1700000200.M2P9Q1.host,S=2,W=2:2,S", "m2");
    set_mtime("new", "1700000300.M3P9Q1.host,S=2,W=2", 1700000300);
    set_mtime("new", "1700000100.M1P9Q1.host,S=2,W=2", 1700000100);
    set_mtime("cur", "1700000200.M2P9Q1.host,S=2,W=2:2,S", 1700000200);
}

static void check_bodies(struct mailbox *mb, const uint32_t *uids, const char *const *bodies,
                         size_t n)
{
    char b[64];
    CHECK_INT_EQ(mailbox_count(mb), n);
    for (size_t i = 0; i < n; i++) {
        body_of(mb, uids[i], b, sizeof(b));
        CHECK_STR_EQ(b, bodies[i]);
    }
}

TEST(fresh_uids_in_delivery_order_and_stable)
{
    new_account();
    three_messages();
    struct mailbox *mb = open_inbox();
    if (!mb)
        return;
    static const uint32_t uids[] = {1, 2, 3};
    static const char *const bodies[] = {"m1", "m2", "m3"};
    check_bodies(mb, uids, bodies, 3);
    CHECK_INT_EQ(mailbox_uidnext(mb), 4);
    CHECK(mailbox_msgs(mb)[1].flags == MB_SEEN);
    CHECK_INT_EQ(mailbox_msgs(mb)[0].size, 2);
    CHECK_INT_EQ(mailbox_msgs(mb)[0].idate, 1700000100);
    uint32_t uv = mailbox_uidvalidity(mb);
    CHECK(uv != 0);
    mailbox_close(mb);
    CHECK(exists(adir, "dovecot-uidlist"));
    CHECK(exists(adir, MAILBOX_INDEX_NAME));
    mb = open_inbox();
    if (!mb)
        return;
    CHECK_INT_EQ(mailbox_uidvalidity(mb), uv);
    check_bodies(mb, uids, bodies, 3);
    mailbox_close(mb);
    rm_rf(adir);
}

struct changes {
    int appends, flags, expunges;
    uint32_t last_uid, last_seq;
};

static void on_change(void *ud, const struct mailbox_change *ch)
{
    struct changes *c = ud;
    c->appends += ch->kind == MB_CHANGE_APPEND;
    c->flags += ch->kind == MB_CHANGE_FLAGS;
    c->expunges += ch->kind == MB_CHANGE_EXPUNGE;
    c->last_uid = ch->uid;
    c->last_seq = ch->seq;
}

TEST(files_behind_our_back)
{
    new_account();
    three_messages();
    struct mailbox *mb = open_inbox();
    if (!mb)
        return;
    const char *err;
    struct changes c = {0};
    put_file(adir, "new", "1600000000.M1P1Q1.other", "old-but-new");
    char p[600];
    snprintf(p, sizeof(p), "%s/cur/1700000200.M2P9Q1.host,S=2,W=2:2,S", adir);
    unlink(p);
    CHECK_INT_EQ(mailbox_sync(mb, false, &err), 0);
    CHECK_INT_EQ(mailbox_count(mb), 3); /* view unchanged until refresh */
    CHECK_INT_EQ(mailbox_refresh(mb, on_change, &c, &err), 0);
    CHECK_INT_EQ(c.appends, 1);
    CHECK_INT_EQ(c.expunges, 1);
    CHECK_INT_EQ(c.last_uid, 4);
    CHECK_INT_EQ(c.last_seq, 3);
    char b[64];
    body_of(mb, 4, b, sizeof(b));
    CHECK_STR_EQ(b, "old-but-new");
    CHECK(!mailbox_find(mb, 2, NULL));
    mailbox_close(mb);
    rm_rf(adir);
}

TEST(rename_behind_our_back_changes_flags)
{
    new_account();
    three_messages();
    struct mailbox *mb = open_inbox();
    if (!mb)
        return;
    const char *err;
    char a[600], b[600];
    snprintf(a, sizeof(a), "%s/new/1700000100.M1P9Q1.host,S=2,W=2", adir);
    snprintf(b, sizeof(b), "%s/cur/1700000100.M1P9Q1.host,S=2,W=2:2,RS", adir);
    CHECK(rename(a, b) == 0);
    uint64_t before = mailbox_highestmodseq(mb);
    struct changes c = {0};
    CHECK_INT_EQ(mailbox_sync(mb, false, &err), 0);
    CHECK_INT_EQ(mailbox_refresh(mb, on_change, &c, &err), 0);
    CHECK_INT_EQ(c.flags, 1);
    CHECK_INT_EQ(c.appends + c.expunges, 0);
    CHECK_INT_EQ(mailbox_msgs(mb)[0].uid, 1);
    CHECK_INT_EQ(mailbox_msgs(mb)[0].flags, MB_SEEN | MB_ANSWERED);
    CHECK(mailbox_msgs(mb)[0].modseq > before);
    char body[64];
    body_of(mb, 1, body, sizeof(body));
    CHECK_STR_EQ(body, "m1");
    /* a STORE on a file moved without a sync in between finds it again */
    snprintf(a, sizeof(a), "%s/new/1700000300.M3P9Q1.host,S=2,W=2", adir);
    snprintf(b, sizeof(b), "%s/cur/1700000300.M3P9Q1.host,S=2,W=2:2,S", adir);
    CHECK(rename(a, b) == 0);
    uint32_t fl;
    uint64_t ms;
    CHECK_INT_EQ(mailbox_set_flags(mb, 3, MB_FLAGS_ADD, MB_FLAGGED, 0, &fl, &ms, &err), 0);
    CHECK_INT_EQ(fl, MB_SEEN | MB_FLAGGED);
    CHECK(exists(adir, "cur/1700000300.M3P9Q1.host,S=2,W=2:2,FS"));
    mailbox_close(mb);
    rm_rf(adir);
}

static void unlink_index(void)
{
    char p[600];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s%s", adir, MAILBOX_INDEX_NAME, sfx[i]);
        unlink(p);
    }
}

/* Expunges uid 1 so that UIDs are not simply 1..n any more. */
static uint32_t prepare_gap(void)
{
    three_messages();
    struct mailbox *mb = open_inbox();
    if (!mb)
        return 0;
    uint64_t ms;
    const char *err;
    CHECK_INT_EQ(mailbox_expunge(mb, 1, &ms, &err), 0);
    uint32_t uv = mailbox_uidvalidity(mb);
    mailbox_close(mb);
    return uv;
}

static void check_after_gap(uint32_t uv)
{
    struct mailbox *mb = open_inbox();
    if (!mb)
        return;
    CHECK_INT_EQ(mailbox_uidvalidity(mb), uv);
    static const uint32_t uids[] = {2, 3, 4};
    static const char *const bodies[] = {"m2", "m3", "late"};
    check_bodies(mb, uids, bodies, 3);
    CHECK_INT_EQ(mailbox_msgs(mb)[0].uid, 2);
    CHECK_INT_EQ(mailbox_msgs(mb)[0].flags, MB_SEEN);
    CHECK_INT_EQ(mailbox_uidnext(mb), 5);
    mailbox_close(mb);
}

TEST(index_deleted_keeps_uids_via_uidlist)
{
    new_account();
    uint32_t uv = prepare_gap();
    unlink_index();
    put_file(adir, "new", "1500000000.M1P1Q1.late", "late"); /* not in the uidlist */
    check_after_gap(uv);
    rm_rf(adir);
}

TEST(index_garbage_rebuilt_with_same_uids)
{
    new_account();
    uint32_t uv = prepare_gap();
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", adir, MAILBOX_INDEX_NAME);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    for (int i = 0; f && i < 5000; i++)
        fputc((i * 7919) & 0xff, f);
    if (f)
        fclose(f);
    put_file(adir, "new", "1500000000.M1P1Q1.late", "late");
    check_after_gap(uv);
    rm_rf(adir);
}

TEST(index_truncated_rebuilt_with_same_uids)
{
    new_account();
    uint32_t uv = prepare_gap();
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", adir, MAILBOX_INDEX_NAME);
    CHECK(truncate(p, 1000) == 0);
    put_file(adir, "new", "1500000000.M1P1Q1.late", "late");
    check_after_gap(uv);
    rm_rf(adir);
}

TEST(index_and_uidlist_deleted_new_uidvalidity)
{
    new_account();
    three_messages();
    struct mailbox *mb = open_inbox();
    if (!mb)
        return;
    uint32_t uv = mailbox_uidvalidity(mb);
    mailbox_close(mb);
    unlink_index();
    char p[600];
    snprintf(p, sizeof(p), "%s/dovecot-uidlist", adir);
    CHECK(unlink(p) == 0);
    mb = open_inbox();
    if (!mb)
        return;
    CHECK(mailbox_uidvalidity(mb) > uv);
    CHECK_INT_EQ(mailbox_count(mb), 3);
    mailbox_close(mb);
    rm_rf(adir);
}

static const char takeover_uidlist[] =
    "3 V1690000000 N20 G0123456789abcdef0123456789abcdef\n"
    "5 W1234 S1200 :1690000000.M1P2Q3.relay,S=1200,W=1234\n"
    "9 :1690000001.M2P2Q3.relay,S=10,W=12\n"
    "11 :1690000002.M3P2Q3.relay,S=10,W=12\n";

TEST(dovecot_uidlist_takeover)
{
    new_account();
    put_file(adir, ".", "dovecot-uidlist", takeover_uidlist);
    put_file(adir, "cur", "1690000000.M1P2Q3.relay,S=1200,W=1234:2,S", "a");
    put_file(adir, "cur", "1690000001.M2P2Q3.relay,S=10,W=12:2,FRS", "b");
    put_file(adir, "new", "1690000009.M9P2Q3.relay,S=10,W=12", "c"); /* unlisted */
    /* uid 11's file is gone: it stays expunged */
    struct mailbox *mb = open_inbox();
    if (!mb)
        return;
    CHECK_INT_EQ(mailbox_uidvalidity(mb), 1690000000u);
    static const uint32_t uids[] = {5, 9, 20};
    static const char *const bodies[] = {"a", "b", "c"};
    check_bodies(mb, uids, bodies, 3);
    const struct mailbox_msg *m = mailbox_msgs(mb);
    CHECK_INT_EQ(m[0].flags, MB_SEEN);
    CHECK_INT_EQ(m[1].flags, MB_SEEN | MB_ANSWERED | MB_FLAGGED);
    CHECK_INT_EQ(m[2].flags, 0);
    CHECK_INT_EQ(m[0].size, 1200);
    CHECK_INT_EQ(m[0].vsize, 1234);
    CHECK_INT_EQ(mailbox_uidnext(mb), 21);
    mailbox_close(mb);
    /* we wrote it back in the same format, keeping the guid */
    char buf[4096] = "";
    char p[600];
    snprintf(p, sizeof(p), "%s/dovecot-uidlist", adir);
    FILE *f = fopen(p, "r");
    if (f) {
        buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
        fclose(f);
    }
    CHECK(strncmp(buf, "3 V1690000000 N21 G0123456789abcdef0123456789abcdef\n5 :", 55) == 0);
    CHECK(strstr(buf, "\n20 :1690000009.M9P2Q3.relay,S=10,W=12\n") != NULL);
    rm_rf(adir);
}

TEST(uidlist_newer_than_index_wins)
{
    new_account();
    three_messages();
    struct mailbox *mb = open_inbox();
    if (!mb)
        return;
    mailbox_close(mb);
    /* Dovecot ran in between and renumbered (say, after its own loss). */
    char ul[512];
    snprintf(ul, sizeof(ul),
             "3 V77 N40\n30 :1700000100.M1P9Q1.host,S=2,W=2\n"
             "31 :1700000200.M2P9Q1.host,S=2,W=2\n32 :1700000300.M3P9Q1.host,S=2,W=2\n");
    put_file(adir, ".", "dovecot-uidlist", ul);
    mb = open_inbox();
    if (!mb)
        return;
    CHECK_INT_EQ(mailbox_uidvalidity(mb), 77);
    static const uint32_t uids[] = {30, 31, 32};
    static const char *const bodies[] = {"m1", "m2", "m3"};
    check_bodies(mb, uids, bodies, 3);
    mailbox_close(mb);
    rm_rf(adir);
}

TEST(flags_bump_modseq_and_rename)
{
    new_account();
    three_messages();
    struct mailbox *mb = open_inbox();
    if (!mb)
        return;
    const char *err;
    uint32_t fl;
    uint64_t ms, before = mailbox_msgs(mb)[2].modseq;
    CHECK_INT_EQ(mailbox_set_flags(mb, 3, MB_FLAGS_ADD, MB_SEEN | MB_FLAGGED, 0, &fl, &ms, &err), 0);
    CHECK_INT_EQ(fl, MB_SEEN | MB_FLAGGED);
    CHECK(ms > before);
    CHECK(ms > mailbox_highestmodseq(mb)); /* view HIGHESTMODSEQ moves on refresh */
    CHECK(exists(adir, "cur/1700000300.M3P9Q1.host,S=2,W=2:2,FS"));
    CHECK(!exists(adir, "new/1700000300.M3P9Q1.host,S=2,W=2"));
    CHECK_INT_EQ(mailbox_msgs(mb)[2].flags, MB_SEEN | MB_FLAGGED);
    CHECK_INT_EQ(mailbox_msgs(mb)[2].modseq, ms);
    char b[64];
    body_of(mb, 3, b, sizeof(b));
    CHECK_STR_EQ(b, "m3");
    /* no change: no new modseq */
    uint64_t ms2;
    CHECK_INT_EQ(mailbox_set_flags(mb, 3, MB_FLAGS_ADD, MB_SEEN, 0, &fl, &ms2, &err), 0);
    CHECK_INT_EQ(ms2, ms);
    /* UNCHANGEDSINCE below the message's modseq fails */
    CHECK_INT_EQ(mailbox_set_flags(mb, 3, MB_FLAGS_REMOVE, MB_SEEN, ms - 1, &fl, &ms2, &err), 1);
    CHECK_INT_EQ(mailbox_set_flags(mb, 3, MB_FLAGS_SET, MB_KEYWORD(1), ms, &fl, &ms2, &err), 0);
    CHECK(exists(adir, "cur/1700000300.M3P9Q1.host,S=2,W=2:2,b"));
    CHECK_INT_EQ(mailbox_set_flags(mb, 99, MB_FLAGS_ADD, MB_SEEN, 0, &fl, &ms2, &err), -1);
    /* refresh does not report our own change again */
    struct changes c = {0};
    CHECK_INT_EQ(mailbox_refresh(mb, on_change, &c, &err), 0);
    CHECK_INT_EQ(c.flags, 0);
    CHECK_INT_EQ(mailbox_highestmodseq(mb), ms2);
    mailbox_close(mb);
    /* flags come back from the file names after an index loss */
    unlink_index();
    mb = open_inbox();
    if (!mb)
        return;
    CHECK_INT_EQ(mailbox_msgs(mb)[2].flags, MB_KEYWORD(1));
    mailbox_close(mb);
    rm_rf(adir);
}

TEST(expunge_records_vanished)
{
    new_account();
    three_messages();
    struct mailbox *mb = open_inbox();
    if (!mb)
        return;
    const char *err;
    uint64_t since = mailbox_highestmodseq(mb), ms;
    CHECK_INT_EQ(mailbox_expunge(mb, 2, &ms, &err), 0);
    CHECK(ms > since);
    CHECK(!exists(adir, "cur/1700000200.M2P9Q1.host,S=2,W=2:2,S"));
    CHECK_INT_EQ(mailbox_expunge(mb, 2, &ms, &err), -1);
    uint32_t *uids = NULL;
    size_t n = 0;
    bool complete = false;
    CHECK_INT_EQ(mailbox_vanished_since(mb, since, &uids, &n, &complete, &err), 0);
    CHECK_INT_EQ(n, 1);
    CHECK(uids && uids[0] == 2);
    CHECK(complete);
    free(uids);
    CHECK_INT_EQ(mailbox_vanished_since(mb, 1, &uids, &n, &complete, &err), 0);
    CHECK(!complete); /* older than the index: history unknown */
    free(uids);
    struct changes c = {0};
    CHECK_INT_EQ(mailbox_count(mb), 3);
    CHECK_INT_EQ(mailbox_refresh(mb, on_change, &c, &err), 0);
    CHECK_INT_EQ(c.expunges, 1);
    CHECK_INT_EQ(c.last_seq, 2);
    CHECK_INT_EQ(mailbox_count(mb), 2);
    mailbox_close(mb);
    rm_rf(adir);
}

TEST(two_sessions_see_each_other)
{
    new_account();
    three_messages();
    struct mailbox *a = open_inbox(), *b = open_inbox();
    if (!a || !b)
        return;
    const char *err;
    uint32_t fl, uid;
    uint64_t ms;
    CHECK_INT_EQ(mailbox_set_flags(a, 1, MB_FLAGS_ADD, MB_ANSWERED, 0, &fl, &ms, &err), 0);
    CHECK_INT_EQ(mailbox_expunge(a, 3, &ms, &err), 0);
    put_file(adir, "new", "1700000400.M4P9Q1.host,S=2,W=2", "m4");
    CHECK_INT_EQ(mailbox_append_file(a, false, "1700000400.M4P9Q1.host,S=2,W=2", &uid, &ms, &err), 0);
    CHECK_INT_EQ(uid, 4);
    struct changes c = {0};
    CHECK_INT_EQ(mailbox_refresh(b, on_change, &c, &err), 0);
    CHECK_INT_EQ(c.flags, 1);
    CHECK_INT_EQ(c.expunges, 1);
    CHECK_INT_EQ(c.appends, 1);
    CHECK_INT_EQ(mailbox_count(b), 3);
    CHECK_INT_EQ(mailbox_msgs(b)[0].flags, MB_ANSWERED);
    CHECK_INT_EQ(mailbox_msgs(b)[2].uid, 4);
    CHECK_INT_EQ(mailbox_uidnext(b), 5);
    CHECK_INT_EQ(mailbox_highestmodseq(b), ms);
    /* the same file again: already indexed, same uid */
    CHECK_INT_EQ(mailbox_append_file(b, false, "1700000400.M4P9Q1.host,S=2,W=2", &uid, &ms, &err), 0);
    CHECK_INT_EQ(uid, 4);
    mailbox_close(a);
    mailbox_close(b);
    rm_rf(adir);
}

TEST(copy_and_move)
{
    new_account();
    three_messages();
    const char *err;
    struct mailbox *ar = NULL;
    CHECK_INT_EQ(mailbox_open(adir, "Archive", &ar, &err), -1); /* not created yet */
    CHECK_INT_EQ(folder_create(adir, "Archive", &err), 0);
    struct mailbox *in = open_inbox();
    CHECK_INT_EQ(mailbox_open(adir, "Archive", &ar, &err), 0);
    if (!in || !ar)
        return;
    uint32_t nu;
    CHECK_INT_EQ(mailbox_copy(in, 2, ar, &nu, &err), 0);
    CHECK_INT_EQ(nu, 1);
    CHECK_INT_EQ(mailbox_move(in, 3, ar, &nu, &err), 0);
    CHECK_INT_EQ(nu, 2);
    CHECK_INT_EQ(mailbox_refresh(ar, NULL, NULL, &err), 0);
    CHECK_INT_EQ(mailbox_refresh(in, NULL, NULL, &err), 0);
    CHECK_INT_EQ(mailbox_count(ar), 2);
    CHECK_INT_EQ(mailbox_count(in), 2);
    CHECK_INT_EQ(mailbox_msgs(ar)[0].flags, MB_SEEN);
    CHECK_INT_EQ(mailbox_msgs(ar)[0].size, 2);
    char b[64];
    body_of(ar, 1, b, sizeof(b));
    CHECK_STR_EQ(b, "m2");
    body_of(ar, 2, b, sizeof(b));
    CHECK_STR_EQ(b, "m3");
    mailbox_close(in);
    mailbox_close(ar);
    rm_rf(adir);
}

/* Internal date is the file's mtime (Dovecot's Maildir), not the name's
 * time; COPY (link or byte copy) keeps it. */
TEST(internal_date_is_mtime_and_copy_keeps_it)
{
    new_account();
    put_file(adir, "new", "1700000100.M1P9Q1.host,S=2,W=2", "m1");
    set_mtime("new", "1700000100.M1P9Q1.host,S=2,W=2", 1500000000);
    const char *err;
    CHECK_INT_EQ(folder_create(adir, "Archive", &err), 0);
    struct mailbox *in = open_inbox(), *ar = NULL;
    CHECK_INT_EQ(mailbox_open(adir, "Archive", &ar, &err), 0);
    if (!in || !ar)
        return;
    CHECK_INT_EQ(mailbox_msgs(in)[0].idate, 1500000000);
    uint32_t nu;
    CHECK_INT_EQ(mailbox_copy(in, 1, ar, &nu, &err), 0);
    CHECK_INT_EQ(mailbox_refresh(ar, NULL, NULL, &err), 0);
    CHECK_INT_EQ(mailbox_count(ar), 1);
    CHECK_INT_EQ(mailbox_msgs(ar)[0].idate, 1500000000);
    mailbox_close(in);
    mailbox_close(ar);
    rm_rf(adir);
}

/* COPY counts against the quota in the store: refused with
 * MAILBOX_EQUOTA when over the limit, nothing written; MOVE within the
 * account is free. */
TEST(copy_over_quota_refused)
{
    new_account();
    three_messages(); /* 3 x 2 bytes */
    const char *err;
    CHECK_INT_EQ(folder_create(adir, "Archive", &err), 0);
    struct mailbox *in = open_inbox(), *ar = NULL;
    CHECK_INT_EQ(mailbox_open(adir, "Archive", &ar, &err), 0);
    if (!in || !ar)
        return;
    uint64_t used = 0;
    CHECK_INT_EQ(quota_usage(quota_cache_shared(), adir, &used), 0);
    CHECK_INT_EQ(used, 6);
    mailbox_set_quota(ar, 7);
    uint32_t nu;
    CHECK_INT_EQ(mailbox_copy(in, 1, ar, &nu, &err), MAILBOX_EQUOTA);
    CHECK_INT_EQ(quota_usage(quota_cache_shared(), adir, &used), 0);
    CHECK_INT_EQ(used, 6);
    CHECK_INT_EQ(mailbox_refresh(ar, NULL, NULL, &err), 0);
    CHECK_INT_EQ(mailbox_count(ar), 0);
    CHECK_INT_EQ(mailbox_move(in, 1, ar, &nu, &err), 0); /* net zero */
    CHECK_INT_EQ(quota_usage(quota_cache_shared(), adir, &used), 0);
    CHECK_INT_EQ(used, 6);
    mailbox_set_quota(ar, 8);
    CHECK_INT_EQ(mailbox_copy(in, 2, ar, &nu, &err), 0);
    CHECK_INT_EQ(quota_usage(quota_cache_shared(), adir, &used), 0);
    CHECK_INT_EQ(used, 8);
    mailbox_close(in);
    mailbox_close(ar);
    quota_changed_unknown(adir);
    rm_rf(adir);
}

/* folder_rename(A -> A.B) moved A's new child A.B again (A.B.B). */
TEST(rename_into_own_child_name)
{
    new_account();
    const char *err;
    char **names = NULL;
    CHECK_INT_EQ(folder_create(adir, "A", &err), 0);
    CHECK_INT_EQ(folder_create(adir, "A.C", &err), 0);
    CHECK_INT_EQ(folder_rename(adir, "A", "A.B", &err), 0);
    CHECK_INT_EQ(folder_list(adir, &names, &err), 0);
    if (names) {
        CHECK_STR_EQ(names[0], "INBOX");
        CHECK_STR_EQ(names[1], "A.B");
        CHECK(names[2] != NULL && strcmp(names[2], "A.B.C") == 0);
        CHECK(names[2] == NULL || names[3] == NULL);
    }
    folder_list_free(names);
    CHECK(!exists(adir, ".A.B.B"));
    rm_rf(adir);
}

TEST(folders)
{
    new_account();
    const char *err;
    char **names = NULL;
    CHECK_INT_EQ(folder_create(adir, "Sent", &err), 0);
    CHECK_INT_EQ(folder_create(adir, "A", &err), 0);
    CHECK_INT_EQ(folder_create(adir, "A.B", &err), 0);
    CHECK_INT_EQ(folder_create(adir, "Sent", &err), -1);
    CHECK_INT_EQ(folder_create(adir, "../x", &err), -1);
    CHECK_INT_EQ(folder_create(adir, "a..b", &err), -1);
    CHECK_INT_EQ(folder_create(adir, "inbox", &err), -1);
    CHECK(exists(adir, ".A.B/cur"));
    CHECK_INT_EQ(folder_rename(adir, "A", "C", &err), 0);
    CHECK_INT_EQ(folder_list(adir, &names, &err), 0);
    if (names) {
        CHECK_STR_EQ(names[0], "INBOX");
        CHECK_STR_EQ(names[1], "C");
        CHECK_STR_EQ(names[2], "C.B");
        CHECK_STR_EQ(names[3], "Sent");
        CHECK(names[4] == NULL);
    }
    folder_list_free(names);
    CHECK_INT_EQ(folder_subscribe(adir, "C.B", true, &err), 0);
    CHECK_INT_EQ(folder_subscribe(adir, "inbox", true, &err), 0);
    CHECK_INT_EQ(folder_subscribe(adir, "Sent", true, &err), 0);
    CHECK_INT_EQ(folder_subscribe(adir, "Sent", false, &err), 0);
    char buf[256] = "", p[600];
    snprintf(p, sizeof(p), "%s/subscriptions", adir);
    FILE *f = fopen(p, "r");
    if (f) {
        buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
        fclose(f);
    }
    CHECK_STR_EQ(buf, "V\t2\n\nC\tB\nINBOX\n");
    CHECK_INT_EQ(folder_subscriptions(adir, &names, &err), 0);
    if (names) {
        CHECK_STR_EQ(names[0], "C.B");
        CHECK_STR_EQ(names[1], "INBOX");
        CHECK(names[2] == NULL);
    }
    folder_list_free(names);
    CHECK_INT_EQ(folder_delete(adir, "C.B", &err), 0);
    CHECK(!exists(adir, ".C.B"));
    CHECK_INT_EQ(folder_delete(adir, "C.B", &err), -1);
    CHECK_INT_EQ(folder_delete(adir, "INBOX", &err), -1);
    CHECK_INT_EQ(folder_subscriptions(adir, &names, &err), 0);
    if (names) {
        CHECK_STR_EQ(names[0], "INBOX");
        CHECK(names[1] == NULL);
    }
    folder_list_free(names);
    rm_rf(adir);
}

TEST(keywords_file)
{
    new_account();
    put_file(adir, ".", "dovecot-keywords", "0 $Forwarded\n3 Junk\n");
    struct mailbox *mb = open_inbox();
    if (!mb)
        return;
    CHECK_INT_EQ(mailbox_keyword_index(mb, "$forwarded", false), 0);
    CHECK_INT_EQ(mailbox_keyword_index(mb, "Junk", false), 3);
    CHECK_INT_EQ(mailbox_keyword_index(mb, "$MDNSent", false), -1);
    CHECK_INT_EQ(mailbox_keyword_index(mb, "$MDNSent", true), 1);
    CHECK_STR_EQ(mailbox_keyword_name(mb, 1), "$MDNSent");
    mailbox_close(mb);
    mb = open_inbox();
    if (!mb)
        return;
    CHECK_INT_EQ(mailbox_keyword_index(mb, "$MDNSent", false), 1);
    mailbox_close(mb);
    rm_rf(adir);
}

TEST(view_memory_is_small)
{
    CHECK_INT_EQ(sizeof(struct mailbox_msg), 32); /* 10k messages: 320 KB */
}

int main(void)
{
    RUN(fresh_uids_in_delivery_order_and_stable);
    RUN(files_behind_our_back);
    RUN(rename_behind_our_back_changes_flags);
    RUN(index_deleted_keeps_uids_via_uidlist);
    RUN(index_garbage_rebuilt_with_same_uids);
    RUN(index_truncated_rebuilt_with_same_uids);
    RUN(index_and_uidlist_deleted_new_uidvalidity);
    RUN(dovecot_uidlist_takeover);
    RUN(uidlist_newer_than_index_wins);
    RUN(flags_bump_modseq_and_rename);
    RUN(expunge_records_vanished);
    RUN(two_sessions_see_each_other);
    RUN(copy_and_move);
    RUN(internal_date_is_mtime_and_copy_keeps_it);
    RUN(copy_over_quota_refused);
    RUN(rename_into_own_child_name);
    RUN(folders);
    RUN(keywords_file);
    RUN(view_memory_is_small);
    return check_report();
}
