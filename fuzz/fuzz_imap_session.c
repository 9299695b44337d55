/* fuzz_imap_session.c: drives the whole IMAP session state machine (the
 * reader and parser, command dispatch by state, the session's modes, every
 * command family and its replies) with arbitrary bytes, performing every
 * action synchronously: worker commands inline, logins against one fixed
 * account, TURN answering every other time, STARTTLS and COMPRESS resumed
 * at once.
 *
 * The store underneath is an in-memory double (imap_store_double.c, linked
 * instead of cm_store, see CMakeLists.txt): INBOX with six messages of
 * different MIME shapes, Sent, an empty Archive.2024, subscriptions and a
 * push token, put back after each input. With the real store an input
 * cost ~5 ms of file system and SQLite work (~200 inputs/s in a 30 s run);
 * now the IMAP code under ASan, UBSan and coverage, and libFuzzer's own
 * bookkeeping (see also -fno-sanitize-address-use-after-scope in
 * CMakeLists.txt). The store's own code has its fuzzers and tests.
 *
 * The first input byte: bits 0-5 pick the chunk size (1-64) so that
 * commands split at any point; bit 6 lets "another session" change INBOX
 * after each chunk that ends a line, up to POKES_MAX times (a delivery, a
 * flag change, an expunge, a new keyword: the IDLE and unsolicited-update
 * paths); bit 7 starts without TLS and
 * without the automatic login, leaving STARTTLS, LOGIN and AUTHENTICATE to
 * the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "imap/session.h"
#include "imap_store_double.h"
#include "store/accounts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define USER "fuzzuser1@example.org"
#define PASS "fuzzpass123"
#define PASS_BUSY "tryagain!" /* the store is busy for this password */
#define POKES_MAX 16          /* changes from elsewhere in one input */

static struct config cfg;
static char root[128], mboxes[192];
static unsigned turns, wakes;
static bool trace; /* FUZZ_IMAP_TRACE=1: the server's replies on stderr */

/* The account store would find or refuse: only USER exists, nothing is
 * created. */
static enum store_login_result login(const char *user, const char *pass)
{
    char addr[STORE_ADDR_MAX + 1];
    const char *why;
    if (!user || !pass || store_addr_normalize(&cfg, user, addr, sizeof addr, &why) < 0 ||
        strcmp(addr, USER) != 0)
        return STORE_LOGIN_REFUSED;
    if (strcmp(pass, PASS_BUSY) == 0)
        return STORE_LOGIN_TRY_AGAIN;
    return strcmp(pass, PASS) == 0 ? STORE_LOGIN_OK : STORE_LOGIN_WRONG_PASSWORD;
}

static void run(struct imap_session *s)
{
    for (int guard = 0; guard < 100000; guard++) {
        switch (imap_session_action(s)) {
        case IMAP_ACT_WORK:
            imap_session_resume_work(s, imap_session_work(s));
            break;
        case IMAP_ACT_LOGIN:
            imap_session_resume_login(
                s, (int)login(imap_session_login_user(s), imap_session_login_password(s)));
            break;
        case IMAP_ACT_TURN:
            imap_session_resume_turn(s, turns++ % 2 ? NULL : "1700000000:c2VjcmV0\n");
            break;
        case IMAP_ACT_STARTTLS: imap_session_resume_starttls(s); break;
        case IMAP_ACT_COMPRESS: imap_session_resume(s); break;
        default:
            if (trace)
                fwrite(imap_session_out(s)->data, 1, imap_session_out(s)->len, stderr);
            /* the connection would send and drop it; kept allocated here
             * (re-growing it per chunk was a tenth of the time) */
            buf_reset(imap_session_out(s));
            return;
        }
    }
}

static void wake(void *ud)
{
    (*(unsigned *)ud)++;
}

/* One session: maybe the login, the bytes in pieces of `chunk` (each
 * maybe followed by a change of INBOX from elsewhere), then the end. */
static void session(const uint8_t *data, size_t size, size_t chunk, bool pokes, bool plain)
{
    struct imap_session *s = imap_session_new(&cfg, !plain, wake, &wakes);
    if (!s)
        return;
    if (!plain) {
        static const char hello[] = "L LOGIN " USER " " PASS "\r\n";
        imap_session_input(s, hello, sizeof hello - 1);
        run(s);
    }
    unsigned poke = 0;
    for (size_t i = 0; i < size; i += chunk) {
        size_t n = size - i < chunk ? size - i : chunk;
        imap_session_input(s, (const char *)data + i, n);
        run(s);
        if (imap_session_action(s) == IMAP_ACT_CLOSE)
            break;
        if (pokes && poke < POKES_MAX && data[i + n - 1] == '\n') {
            store_double_poke(poke++);
            run(s);
        }
        if (imap_session_want_read(s) && imap_session_timeout_ms(s) && imap_session_hibernate(s))
            run(s);
    }
    (void)imap_session_footprint(s);
    imap_session_timeout(s);
    imap_session_shutdown(s);
    run(s);
    imap_session_free(s);
}

static void cleanup(void)
{
    store_double_free();
    rmdir(root);
}

static void init(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/cm-fuzz-imap-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(root))
        abort();
    /* the account directory is only a name: the double keeps the account */
    snprintf(mboxes, sizeof mboxes, "%s/mail", root);
    cfg.mail_domain = "example.org";
    cfg.mailboxes_dir = mboxes;
    cfg.nocreate_file = "/nonexistent/nocreate";
    cfg.username_min_length = 9;
    cfg.username_max_length = 9;
    cfg.password_min_length = 9;
    cfg.max_load_1m = 1000;
    cfg.max_mailbox_size_mb = 1;
    cfg.max_message_size = 1 << 16;
    cfg.imap_compress = true;
    cfg.iroh_relay = "";
    cfg.privacy_mail = "privacy@example.org";
    cfg.turn_socket_path = "/nonexistent";
#ifdef CM_FUZZ_APPVERSIONS
    setenv("CM_APPVERSIONS_FILE", CM_FUZZ_APPVERSIONS, 1);
#endif
    trace = getenv("FUZZ_IMAP_TRACE") != NULL;
    if (!trace) /* the store double's refusals are expected */
        log_set_level((enum log_level)(LOGL_ERROR + 1));
    char account[sizeof mboxes + STORE_ADDR_MAX + 2];
    if (store_account_dir(&cfg, USER, account, sizeof account) < 0)
        abort();
    store_double_init(root, account, USER, cfg.max_mailbox_size_mb);
    atexit(cleanup);
}

/* libFuzzer defaults for this harness, before the command line's flags
 * (which win). An input here covers thousands of features, and entropic
 * scheduling keeps every feature seen fewer than
 * entropic_feature_frequency_threshold (255) times in a list that it
 * searches linearly for each feature of each run: that took 45-85 % of the
 * time (2,000 instead of 4,500 runs per CPU second in 15 s runs). At 16 the
 * list stays short and the schedule still favours inputs with rare
 * features (-entropic=0 was slower: fewer new inputs found).
 * -max_len=384: a session of up to ~11 short commands; the run time of an
 * input grows with its length (len_control lets inputs grow to ~700 bytes
 * within a 12 s run, at ~30 % fewer runs per second). With 512, 10 s runs
 * here did 4,400-7,500 exec/s (40,000 runs with one seed: 5.9-8.5 s), with
 * 384 5,500-8,200 (4.9 s) at the same coverage (cov 4,590-4,680 either
 * way). A longer campaign passes its own -max_len. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const defaults[] = {"-entropic_feature_frequency_threshold=16",
                                           "-max_len=384"};
    size_t nd = sizeof defaults / sizeof defaults[0];
    static char **v; /* kept for the life of the process */
    v = calloc((size_t)*argc + nd + 1, sizeof *v);
    if (!v || *argc < 1)
        return 0;
    v[0] = (*argv)[0];
    for (size_t i = 0; i < nd; i++)
        v[1 + i] = (char *)defaults[i];
    for (int i = 1; i < *argc; i++)
        v[nd + (size_t)i] = (*argv)[i];
    *argc += (int)nd;
    *argv = v;
    return 0;
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
    turns = 0;
    session(data + 1, size - 1, 1 + data[0] % 64, data[0] & 0x40, data[0] & 0x80);
    /* now, not before the next input: an input that leaves more memory
     * allocated than it found makes libFuzzer run a leak check */
    store_double_reset();
    return 0;
}
