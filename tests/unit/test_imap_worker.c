/* test_imap_worker.c: the worker / loop split of the IMAP session machine.
 * Input that arrives while a command runs on a worker (pipelining clients
 * send the next commands without waiting) is only buffered: nothing is
 * parsed or run until the loop applied the worker's result, and every
 * command is answered exactly once, in order (issue 11: a worker that
 * cleared the action itself let the loop run the command a second time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/config.h"
#include "imap/session.h"
#include "store/accounts.h"

static char root[64], mboxes[128], nocreate[128];
static struct config cfg;

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/cm-imapw-XXXXXX");
    if (!mkdtemp(root))
        abort();
    snprintf(mboxes, sizeof mboxes, "%s/mail", root);
    snprintf(nocreate, sizeof nocreate, "%s/nocreate", root);
    cfg.mail_domain = "example.org";
    cfg.mailboxes_dir = mboxes;
    cfg.nocreate_file = nocreate;
    cfg.username_min_length = 9;
    cfg.username_max_length = 9;
    cfg.password_min_length = 9;
    cfg.max_load_1m = 1000;
    cfg.max_mailbox_size_mb = 100;
    cfg.max_message_size = 1 << 20;
    cfg.iroh_relay = "https://example.org";
    cfg.privacy_mail = "privacy@example.org";
    cfg.turn_socket_path = "/nonexistent";
    store_pw_set_argon2_limits(1, 8192);
}

static void teardown(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", root);
}

static struct buf got; /* every reply byte of the session under test */

static void take_output(struct imap_session *s)
{
    struct buf *o = imap_session_out(s);
    buf_append(&got, o->data ? o->data : "", o->len);
    buf_free(o);
}

/* Performs actions until none is left; `between` is fed after the first
 * worker run and before its result is applied, as a pipelining client's
 * next TLS record arrives on the loop while the worker is busy. */
static void run(struct imap_session *s, const char *between)
{
    for (;;) {
        enum imap_action_kind a = imap_session_action(s);
        if (a == IMAP_ACT_WORK) {
            enum imap_work_result r = imap_session_work(s);
            if (between) {
                size_t before = imap_session_out(s)->len;
                imap_session_input(s, between, strlen(between));
                /* buffered only: no parse, no reply, the action stays */
                CHECK_INT_EQ(imap_session_action(s), IMAP_ACT_WORK);
                CHECK_INT_EQ(imap_session_out(s)->len, before);
                between = NULL;
            }
            imap_session_resume_work(s, r);
        } else if (a == IMAP_ACT_LOGIN) {
            struct store_login_outcome o;
            store_login_sync(&cfg, imap_session_login_user(s), imap_session_login_password(s), &o);
            imap_session_resume_login(s, (int)o.result);
        } else {
            break;
        }
        take_output(s);
    }
    take_output(s);
}

/* Number of lines in `got` that start with "<tag> ". */
static int tagged(const char *tag, const char *status)
{
    char want[64];
    snprintf(want, sizeof want, "%s %s", tag, status);
    int n = 0;
    buf_append(&got, "", 1);
    for (const char *p = got.data; p && *p;) {
        if (strncmp(p, want, strlen(want)) == 0)
            n++;
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    got.len--;
    return n;
}

TEST(input_during_worker_run_is_only_buffered)
{
    struct imap_session *s = imap_session_new(&cfg, true, NULL, NULL);
    const char *login = "a LOGIN userw1234@example.org password123\r\n";
    imap_session_input(s, login, strlen(login));
    run(s, NULL);
    CHECK_INT_EQ(tagged("a", "OK"), 1);
    got.len = 0;
    const char *first = "b CREATE x\r\n";
    imap_session_input(s, first, strlen(first));
    CHECK_INT_EQ(imap_session_action(s), IMAP_ACT_WORK);
    run(s, "c CREATE y\r\nd LIST \"\" \"*\"\r\ne LSUB \"\" \"*\"\r\nf NOOP\r\n");
    CHECK_INT_EQ(tagged("b", "OK"), 1);
    CHECK_INT_EQ(tagged("c", "OK"), 1);
    CHECK_INT_EQ(tagged("d", "OK"), 1);
    CHECK_INT_EQ(tagged("e", "OK"), 1);
    CHECK_INT_EQ(tagged("f", "OK"), 1);
    buf_append(&got, "", 1);
    const char *b = strstr(got.data, "b OK"), *c = strstr(got.data, "c OK"),
               *f = strstr(got.data, "f OK");
    CHECK(b && c && f && b < c && c < f);
    CHECK(strstr(got.data, "ALREADYEXISTS") == NULL);
    CHECK_INT_EQ(imap_session_action(s), IMAP_ACT_NONE);
    got.len = 0;
    imap_session_free(s);
}

TEST(shutdown_during_worker_run_waits_for_the_reply)
{
    struct imap_session *s = imap_session_new(&cfg, true, NULL, NULL);
    const char *in = "a LOGIN userw5678@example.org password123\r\nb LIST \"\" \"*\"\r\n";
    imap_session_input(s, in, strlen(in));
    while (imap_session_action(s) == IMAP_ACT_LOGIN) {
        struct store_login_outcome o;
        store_login_sync(&cfg, imap_session_login_user(s), imap_session_login_password(s), &o);
        imap_session_resume_login(s, (int)o.result);
    }
    take_output(s);
    CHECK_INT_EQ(imap_session_action(s), IMAP_ACT_WORK);
    enum imap_work_result r = imap_session_work(s);
    imap_session_shutdown(s); /* deferred: the loop has not applied r yet */
    CHECK_INT_EQ(imap_session_action(s), IMAP_ACT_WORK);
    imap_session_resume_work(s, r);
    take_output(s);
    buf_append(&got, "", 1);
    const char *ok = strstr(got.data, "b OK"), *bye = strstr(got.data, "* BYE Server shutting");
    CHECK(ok && bye && ok < bye);
    CHECK_INT_EQ(imap_session_action(s), IMAP_ACT_CLOSE);
    got.len = 0;
    imap_session_free(s);
}

int main(void)
{
    setup();
    RUN(input_during_worker_run_is_only_buffered);
    RUN(shutdown_during_worker_run_waits_for_the_reply);
    teardown();
    buf_free(&got);
    return check_report();
}
