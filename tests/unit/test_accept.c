/* test_accept.c: the acceptance pipeline without any session: per-origin
 * rules (outgoing for submission, incoming with enforceE2EEincoming for
 * MX), registered checks only for their origins and able to refuse, one
 * result per recipient (a full mailbox does not withhold the message from
 * the others unless all_or_nothing, which takes every copy back), and the
 * delivered file in the Maildir; the DKIM stage for MX and /mxdeliv (with
 * its resolver stopped, so no network: unsigned 554, signed 451 because
 * the key could not be fetched, address literal exempt, submission not
 * verified). */
#include "check.h"

#include "core/config.h"
#include "dkim/dkim.h"
#include "smtp/accept_int.h"
#include "smtp/smtp.h"
#include "store/maildir.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

static char tmpdir[256], mboxes[300], queue[300];
static struct config cfg;
static uv_loop_t loop;

static void mkaccount(const char *addr, bool enforce)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", mboxes, addr);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/%s/password", mboxes, addr);
    FILE *f = fopen(p, "w");
    fputs("x", f);
    fclose(f);
    if (enforce) {
        snprintf(p, sizeof p, "%s/%s/enforceE2EEincoming", mboxes, addr);
        fclose(fopen(p, "w"));
    }
}

static void setup(long quota_mb)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_accept.XXXXXX");
    if (!mkdtemp(tmpdir))
        abort();
    snprintf(mboxes, sizeof mboxes, "%s/mail", tmpdir);
    snprintf(queue, sizeof queue, "%s/queue", tmpdir);
    mkdir(mboxes, 0700);
    mkdir(queue, 0700);
    memset(&cfg, 0, sizeof cfg);
    cfg.mail_domain = "example.org";
    cfg.mailboxes_dir = mboxes;
    cfg.max_mailbox_size_mb = quota_mb;
    uv_loop_init(&loop);
    CHECK_INT_EQ(accept_init(&loop, &cfg, queue), 0);
}

static void teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    accept_free();
    uv_loop_close(&loop);
    quota_cache_shared_free();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "rm failed\n");
}

static size_t files_in(const char *addr, const char *sub)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s/%s", mboxes, addr, sub);
    DIR *d = opendir(p);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static char *load(const char *name, size_t *len)
{
    char p[300];
    snprintf(p, sizeof p, "tests/data/filter/%s", name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    static char b[1 << 20];
    *len = fread(b, 1, sizeof b, f);
    fclose(f);
    return b;
}

static char *fixture(const char *name, size_t *len)
{
    return load(name, len); /* From: alice@example.org, CRLF */
}

struct got {
    bool called;
    struct accept_result res;
    enum accept_rcpt_status st[4];
};

static void on_result(void *ud, const struct accept_result *res)
{
    struct got *g = ud;
    g->called = true;
    g->res = *res;
    for (size_t i = 0; i < res->n_rcpts && i < 4; i++)
        g->st[i] = res->rcpts[i].status;
    g->res.rcpts = NULL;
}

static void run(enum accept_origin origin, const char *data, size_t len, const char *from,
                const char *const *rcpts, const bool *local, size_t n, bool aon, struct got *g)
{
    struct accept_msg m = {.origin = origin, .data = data, .len = len, .mail_from = from,
                           .rcpts = rcpts, .local = local, .n_rcpts = n, .all_or_nothing = aon};
    memset(g, 0, sizeof *g);
    CHECK(accept_message(&m, on_result, g) != NULL);
    CHECK(!g->called); /* never from inside the call */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(g->called);
}

/* Fills bob's mailbox near its 1 MiB quota with one stored file. */
static void fill(const char *addr)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/%s", mboxes, addr);
    static char big[1048000]; /* 576 bytes left: no room for a message */
    memset(big, 'x', sizeof big);
    struct store_rcpt r = {.dir = dir};
    struct store_opts o = {.quota = quota_cache_shared(), .max_mailbox_size_mb = 1,
                           .no_fsync = true};
    CHECK_INT_EQ(store_deliver(big, sizeof big, &r, 1, &o), 1);
}

TEST(mx_per_recipient_results_full_mailbox_does_not_withhold)
{
    setup(1);
    mkaccount("bob@example.net", false);
    mkaccount("carol@example.net", false);
    fill("bob@example.net");
    size_t len;
    const char *msg = fixture("encrypted.eml", &len);
    CHECK(msg != NULL);
    const char *rcpts[] = {"bob@example.net", "carol@example.net"};
    bool local[] = {true, true};
    cfg.mail_domain = "example.net";
    struct got g;
    run(ACCEPT_MX, msg, len, "alice@example.org", rcpts, local, 2, false, &g);
    CHECK_INT_EQ(g.res.code, 0);
    CHECK_INT_EQ(g.st[0], ACCEPT_OVERQUOTA);
    CHECK_INT_EQ(g.st[1], ACCEPT_DELIVERED);
    CHECK_INT_EQ(files_in("carol@example.net", "new"), 1);
    CHECK_INT_EQ(files_in("bob@example.net", "new"), 1); /* only the filler */
    teardown();
}

TEST(submission_all_or_nothing_takes_copies_back)
{
    setup(1);
    cfg.mail_domain = "example.net";
    mkaccount("bob@example.net", false);
    mkaccount("carol@example.net", false);
    fill("bob@example.net");
    size_t len;
    const char *msg = fixture("encrypted.eml", &len);
    const char *rcpts[] = {"carol@example.net", "bob@example.net", "dave@remote.test"};
    bool local[] = {true, true, false};
    struct got g;
    run(ACCEPT_SUBMISSION, msg, len, "alice@example.org", rcpts, local, 3, true, &g);
    CHECK_INT_EQ(g.res.code, 0);
    CHECK_INT_EQ(g.st[0], ACCEPT_WITHDRAWN);
    CHECK_INT_EQ(g.st[1], ACCEPT_OVERQUOTA);
    CHECK_INT_EQ(g.st[2], ACCEPT_WITHDRAWN);
    CHECK(!g.res.queued);
    CHECK_INT_EQ(files_in("carol@example.net", "new"), 0);
    uint64_t used = 1;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/carol@example.net", mboxes);
    CHECK_INT_EQ(quota_usage(quota_cache_shared(), dir, &used), 0);
    CHECK_INT_EQ(used, 0);
    DIR *d = opendir(queue);
    struct dirent *de;
    size_t nq = 0;
    while (d && (de = readdir(d)))
        nq += de->d_name[0] != '.';
    if (d)
        closedir(d);
    CHECK_INT_EQ(nq, 0);
    teardown();
}

TEST(origin_rules_incoming_enforce_and_outgoing)
{
    setup(0);
    cfg.mail_domain = "example.net";
    mkaccount("bob@example.net", true);
    mkaccount("carol@example.net", false);
    size_t len;
    const char *msg = fixture("plain.eml", &len);
    const char *bob[] = {"bob@example.net"}, *carol[] = {"carol@example.net"};
    bool local[] = {true};
    struct got g;
    run(ACCEPT_MX, msg, len, "alice@example.org", bob, local, 1, false, &g);
    CHECK_INT_EQ(g.res.code, 523); /* bob enforces encryption */
    CHECK_INT_EQ(g.st[0], ACCEPT_NOT_TRIED);
    CHECK_INT_EQ(files_in("bob@example.net", "new"), 0);
    run(ACCEPT_MX, msg, len, "alice@example.org", carol, local, 1, false, &g);
    CHECK_INT_EQ(g.res.code, 0); /* carol does not */
    CHECK_INT_EQ(g.st[0], ACCEPT_DELIVERED);
    CHECK_INT_EQ(files_in("carol@example.net", "new"), 1);
    run(ACCEPT_SUBMISSION, msg, len, "alice@example.org", carol, local, 1, true, &g);
    CHECK_INT_EQ(g.res.code, 523); /* outgoing rules: always */
    teardown();
}

static int mx_calls, sub_calls;

static int refuse_mx(void *ud, struct accept_check *c)
{
    (void)ud;
    if (c->origin == ACCEPT_SUBMISSION) {
        sub_calls++;
        return 0;
    }
    mx_calls++;
    CHECK(c->filter && c->filter->code == 0);
    c->code = 554;
    snprintf(c->reply, sizeof c->reply, "554 5.7.1 No valid DKIM signature found");
    return 0;
}

TEST(registered_check_runs_for_its_origin_only)
{
    setup(0);
    cfg.mail_domain = "example.net";
    mkaccount("carol@example.net", false);
    CHECK_INT_EQ(accept_add_check(ACCEPT_ORIGIN_BIT(ACCEPT_MX) | ACCEPT_ORIGIN_BIT(ACCEPT_MXDELIV),
                                  refuse_mx, NULL),
                 0);
    size_t len;
    const char *msg = fixture("encrypted.eml", &len);
    const char *carol[] = {"carol@example.net"};
    bool local[] = {true};
    struct got g;
    run(ACCEPT_MXDELIV, msg, len, "alice@example.org", carol, local, 1, false, &g);
    CHECK_INT_EQ(g.res.code, 554);
    CHECK_STR_EQ(g.res.reply, "554 5.7.1 No valid DKIM signature found");
    CHECK_INT_EQ(files_in("carol@example.net", "new"), 0);
    run(ACCEPT_SUBMISSION, msg, len, "alice@example.org", carol, local, 1, true, &g);
    CHECK_INT_EQ(g.res.code, 0);
    CHECK_INT_EQ(g.st[0], ACCEPT_DELIVERED);
    CHECK_INT_EQ(mx_calls, 1);
    CHECK_INT_EQ(sub_calls, 0);
    teardown();
}

TEST(cancel_before_the_checks_finish_stores_nothing)
{
    setup(0);
    cfg.mail_domain = "example.net";
    mkaccount("carol@example.net", false);
    size_t len;
    const char *msg = fixture("encrypted.eml", &len);
    const char *carol[] = {"carol@example.net"};
    bool local[] = {true};
    struct accept_msg m = {.origin = ACCEPT_SUBMISSION, .data = msg, .len = len,
                           .mail_from = "alice@example.org", .rcpts = carol, .local = local,
                           .n_rcpts = 1, .all_or_nothing = true};
    struct got g = {0};
    struct accept_job *j = accept_message(&m, on_result, &g);
    CHECK(j != NULL);
    accept_cancel(j);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(g.called && g.res.cancelled);
    CHECK_INT_EQ(files_in("carol@example.net", "new"), 0);
    teardown();
}

/* The fixture with "alice@example.org" replaced by `from` (header and
 * envelope), signed for d=example.org when `signed_`. */
static char *variant(const char *from, bool signed_, size_t *len)
{
    size_t n;
    const char *msg = fixture("encrypted.eml", &n);
    struct buf out = {0};
    if (signed_) {
        char key[400];
        snprintf(key, sizeof key, "%s/dkim.pem", tmpdir);
        bool created;
        const char *why;
        struct dkim_signkey *k = dkim_signkey_load(key, true, &created, &why);
        CHECK(k != NULL);
        struct dkim_signer *sg = dkim_signer_new(k, "example.org", "sel", 0, &why);
        CHECK(sg != NULL);
        CHECK_INT_EQ(dkim_signer_feed(sg, msg, n), 0);
        CHECK_INT_EQ(dkim_signer_finish(sg, &out, &why), 0);
        dkim_signer_free(sg);
        dkim_signkey_free(k);
    }
    const char *p = msg, *end = msg + n, *hit;
    while ((hit = memmem(p, (size_t)(end - p), "alice@example.org", 17))) {
        buf_append(&out, p, (size_t)(hit - p));
        buf_append_str(&out, from);
        p = hit + 17;
    }
    buf_append(&out, p, (size_t)(end - p));
    *len = out.len;
    return buf_steal_str(&out);
}

TEST(dkim_stage_for_mx_origins)
{
    setup(0);
    cfg.mail_domain = "example.net";
    mkaccount("carol@example.net", false);
    static char server[] = "127.0.0.1:9";
    cfg.dns_servers[0] = server;
    cfg.n_dns_servers = 1;
    char err[200];
    CHECK_INT_EQ(accept_dkim_init(&loop, &cfg, err, sizeof err), 0);
    accept_dkim_stop(); /* every key lookup fails temporarily, at once */
    const char *carol[] = {"carol@example.net"};
    bool local[] = {true};
    struct got g;
    size_t len;
    char *unsigned_msg = variant("alice@example.org", false, &len);
    run(ACCEPT_MX, unsigned_msg, len, "alice@example.org", carol, local, 1, true, &g);
    CHECK_INT_EQ(g.res.code, 554);
    CHECK_STR_EQ(g.res.reply, "554 5.7.1 No DKIM signature found");
    run(ACCEPT_SUBMISSION, unsigned_msg, len, "alice@example.org", carol, local, 1, true, &g);
    CHECK_INT_EQ(g.res.code, 0); /* submission is not verified */
    CHECK_INT_EQ(files_in("carol@example.net", "new"), 1);
    free(unsigned_msg);
    char *signed_msg = variant("alice@example.org", true, &len);
    CHECK(memmem(signed_msg, len, "DKIM-Signature:", 15) == signed_msg);
    run(ACCEPT_MXDELIV, signed_msg, len, "alice@example.org", carol, local, 1, true, &g);
    CHECK_INT_EQ(g.res.code, 451);
    CHECK_STR_EQ(g.res.reply, DKIM_REPLY_TEMP);
    CHECK_INT_EQ(files_in("carol@example.net", "new"), 1);
    free(signed_msg);
    char *literal = variant("alice@[192.0.2.1]", false, &len);
    run(ACCEPT_MX, literal, len, "alice@[192.0.2.1]", carol, local, 1, true, &g);
    CHECK_INT_EQ(g.res.code, 0); /* address literal: exempt */
    CHECK_INT_EQ(g.st[0], ACCEPT_DELIVERED);
    CHECK_INT_EQ(files_in("carol@example.net", "new"), 2);
    free(literal);
    teardown();
    accept_dkim_free();
    cfg.n_dns_servers = 0;
}

int main(void)
{
    RUN(mx_per_recipient_results_full_mailbox_does_not_withhold);
    RUN(submission_all_or_nothing_takes_copies_back);
    RUN(origin_rules_incoming_enforce_and_outgoing);
    RUN(cancel_before_the_checks_finish_stores_nothing);
    RUN(dkim_stage_for_mx_origins);
    RUN(registered_check_runs_for_its_origin_only); /* last: checks stay registered */
    return check_report();
}
