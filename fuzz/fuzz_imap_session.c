/* fuzz_imap_session.c: drives the whole IMAP session state machine with
 * arbitrary bytes after a real login (accounts and Maildir in a temporary
 * directory), performing every action synchronously: commands on the
 * "worker" inline, TURN failing, STARTTLS/COMPRESS resumed at once. The
 * first byte picks the chunk size so commands split at any point. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "imap/session.h"
#include "store/accounts.h"
#include "store/mailbox.h"

static struct config cfg;
static char mboxes[128];

static void init(void)
{
    static char root[64] = "/tmp/cm-fuzz-imap-XXXXXX";
    if (!mkdtemp(root))
        abort();
    snprintf(mboxes, sizeof mboxes, "%s/mail", root);
    cfg.mail_domain = "example.org";
    cfg.mailboxes_dir = mboxes;
    cfg.nocreate_file = "/nonexistent/nocreate";
    cfg.username_min_length = 9;
    cfg.username_max_length = 9;
    cfg.password_min_length = 9;
    cfg.max_load_1m = 1000;
    cfg.max_mailbox_size_mb = 10;
    cfg.max_message_size = 1 << 16;
    cfg.imap_compress = true;
    cfg.iroh_relay = "";
    cfg.turn_socket_path = "/nonexistent";
    store_pw_set_argon2_limits(1, 8192);
}

static void run(struct imap_session *s)
{
    for (int guard = 0; guard < 100000; guard++) {
        switch (imap_session_action(s)) {
        case IMAP_ACT_WORK:
            imap_session_resume_work(s, imap_session_work(s));
            break;
        case IMAP_ACT_LOGIN: {
            struct store_login_outcome o;
            store_login_sync(&cfg, imap_session_login_user(s), imap_session_login_password(s), &o);
            imap_session_resume_login(s, (int)o.result);
            break;
        }
        case IMAP_ACT_TURN: imap_session_resume_turn(s, NULL); break;
        case IMAP_ACT_STARTTLS: imap_session_resume_starttls(s); break;
        case IMAP_ACT_COMPRESS: imap_session_resume(s); break;
        default: buf_free(imap_session_out(s)); return;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    if (size == 0)
        return 0;
    size_t chunk = 1 + data[0] % 64;
    data++, size--;
    struct imap_session *s = imap_session_new(&cfg, true, NULL, NULL);
    if (!s)
        return 0;
    static const char login[] = "L LOGIN fuzzuser1@example.org fuzzpass123\r\n";
    imap_session_input(s, login, sizeof login - 1);
    run(s);
    for (size_t i = 0; i < size; i += chunk) {
        size_t n = size - i < chunk ? size - i : chunk;
        imap_session_input(s, (const char *)data + i, n);
        run(s);
        if (imap_session_action(s) == IMAP_ACT_CLOSE)
            break;
    }
    imap_session_timeout(s);
    imap_session_shutdown(s);
    run(s);
    imap_session_free(s);
    return 0;
}
