/* fuzz_imap_session.c: drives the whole IMAP session state machine with
 * arbitrary bytes after a real login, performing every action
 * synchronously: commands on the "worker" inline, TURN failing,
 * STARTTLS/COMPRESS resumed at once. The first byte picks the chunk size so
 * commands split at any point.
 *
 * Speed, with the real store underneath (it ran at ~230 executions per
 * second when every input wrote to a tree on disk that grew without end):
 *  - the mail tree lives on tmpfs (/dev/shm, else $TMPDIR or /tmp) and is
 *    built once: the account is created and given messages, flags, a
 *    folder, a subscription and metadata; that account directory is kept
 *    as the template every input starts from;
 *  - before each input the account is put back to the template only when
 *    the previous input changed it (stat of the files the store writes);
 *  - opened folders are kept: the link step wraps mailbox_open and
 *    mailbox_close (CMakeLists.txt, -Wl,--wrap), so a SELECT of a folder
 *    that an earlier input opened takes the same struct mailbox, synced and
 *    refreshed, instead of opening SQLite, reading its schema and preparing
 *    its statements again. A reset closes them all for real.
 * The tree is removed at exit. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "imap/session.h"
#include "store/accounts.h"
#include "store/mailbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define USER "fuzzuser1@example.org"
#define PASS "fuzzpass123"

static struct config cfg;
static char root[128], mboxes[192], account[256], tmpl[256];

/* ---- folders kept open across inputs (see the top) ---- */

int __real_mailbox_open(const char *account_dir, const char *name, struct mailbox **out,
                        const char **err);
void __real_mailbox_close(struct mailbox *mb);
int __wrap_mailbox_open(const char *account_dir, const char *name, struct mailbox **out,
                        const char **err);
void __wrap_mailbox_close(struct mailbox *mb);

#define KEPT_MAX 8
static struct {
    struct mailbox *mb;
    bool in_use;
} kept[KEPT_MAX];

static void no_change(void *ud, const struct mailbox_change *ch)
{
    (void)ud, (void)ch;
}

int __wrap_mailbox_open(const char *account_dir, const char *name, struct mailbox **out,
                        const char **err)
{
    for (int i = 0; i < KEPT_MAX; i++) {
        struct mailbox *mb = kept[i].mb;
        if (mb && !kept[i].in_use && strcmp(mailbox_name(mb), name) == 0 &&
            mailbox_sync(mb, false, err) == 0 && mailbox_refresh(mb, no_change, NULL, err) == 0) {
            kept[i].in_use = true;
            *out = mb;
            return 0;
        }
    }
    int rc = __real_mailbox_open(account_dir, name, out, err);
    for (int i = 0; rc == 0 && i < KEPT_MAX; i++)
        if (!kept[i].mb) {
            kept[i].mb = *out;
            kept[i].in_use = true;
            break;
        }
    return rc;
}

void __wrap_mailbox_close(struct mailbox *mb)
{
    for (int i = 0; mb && i < KEPT_MAX; i++)
        if (kept[i].mb == mb) {
            kept[i].in_use = false;
            return;
        }
    __real_mailbox_close(mb);
}

static void close_kept(void)
{
    for (int i = 0; i < KEPT_MAX; i++) {
        if (kept[i].mb)
            __real_mailbox_close(kept[i].mb);
        kept[i].mb = NULL;
        kept[i].in_use = false;
    }
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

/* One session: login, the given bytes in pieces of `chunk`, then the end. */
static void session(const uint8_t *data, size_t size, size_t chunk)
{
    struct imap_session *s = imap_session_new(&cfg, true, NULL, NULL);
    if (!s)
        return;
    static const char login[] = "L LOGIN " USER " " PASS "\r\n";
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
}

/* rm -r of `name` in the directory dfd (no symlinks are followed). */
static void rm_at(int dfd, const char *name)
{
    if (unlinkat(dfd, name, 0) == 0)
        return;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (de->d_type == DT_DIR)
            rm_at(dirfd(d), de->d_name);
        else if (unlinkat(dirfd(d), de->d_name, 0) < 0)
            rm_at(dirfd(d), de->d_name);
    }
    closedir(d);
    unlinkat(dfd, name, AT_REMOVEDIR);
}

static void rm_tree(const char *path)
{
    rm_at(AT_FDCWD, path);
}

/* cp -a of directory `from` to `to` (regular files and directories). */
static int copy_tree(int from_parent, const char *from, int to_parent, const char *to)
{
    /* message files are never written in place (flags rename, expunge
     * unlinks): linked, not copied; everything else is copied */
    bool link_files = !strcmp(from, "cur") || !strcmp(from, "new") || !strcmp(from, "tmp");
    int src = openat(from_parent, from, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (src < 0 || mkdirat(to_parent, to, 0700) < 0)
        return -1;
    int dst = openat(to_parent, to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fdopendir(src);
    if (dst < 0 || !d)
        abort();
    struct dirent *de;
    char buf[65536];
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(src, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            abort();
        if (S_ISDIR(st.st_mode)) {
            if (copy_tree(src, de->d_name, dst, de->d_name) < 0)
                abort();
            continue;
        }
        if (link_files && linkat(src, de->d_name, dst, de->d_name, 0) == 0)
            continue;
        int in = openat(src, de->d_name, O_RDONLY | O_CLOEXEC);
        int out = openat(dst, de->d_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777);
        if (in < 0 || out < 0)
            abort();
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                abort();
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        futimens(out, times);
        close(in);
        close(out);
    }
    closedir(d);
    struct stat st;
    if (fstat(src, &st) == 0) { /* after filling it: the index compares them */
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        futimens(dst, times);
    }
    close(dst);
    return 0;
}

/* What moves when the session changes the account: the mtimes of the
 * message directories (a file created, renamed or removed), the link count
 * of the folder directories (a folder created or removed) and the inode and
 * mtime of every other file the store writes (replaced by rename, or the
 * SQLite index written in place). The folder directories' own mtimes are
 * left out: SQLite creates and removes -wal and -shm there as connections
 * come and go. A kept connection keeps its -wal file: empty until the
 * session writes to the index (only a checkpoint, when it is closed for
 * real at a reset, writes the database file itself). */
#define DIR_ONLY 1 /* compare inode and link count only */
#define WAL 2      /* absent = empty; else size and mtime */
static const struct {
    const char *path;
    int how;
} watched[] = {
    {"", DIR_ONLY}, {"cur", 0}, {"new", 0}, {"tmp", 0}, {MAILBOX_INDEX_NAME, 0},
    {MAILBOX_INDEX_NAME "-wal", WAL}, {".Sent/" MAILBOX_INDEX_NAME "-wal", WAL},
    {"dovecot-uidlist", 0}, {"dovecot-keywords", 0}, {"dovecot-uidvalidity", 0},
    {"maildirsize", 0}, {"metadata.json", 0}, {"subscriptions", 0}, {".Sent", DIR_ONLY},
    {".Sent/cur", 0}, {".Sent/new", 0}, {".Sent/tmp", 0}, {".Sent/" MAILBOX_INDEX_NAME, 0},
    {".Sent/dovecot-uidlist", 0}, {".Sent/dovecot-keywords", 0}};
#define N_WATCHED (sizeof watched / sizeof watched[0])
static struct stat tmpl_state[N_WATCHED];

static void watched_state(struct stat *out)
{
    char path[512];
    for (size_t i = 0; i < N_WATCHED; i++) {
        snprintf(path, sizeof path, "%s/%s", account, watched[i].path);
        if (stat(path, &out[i]) < 0)
            memset(&out[i], 0, sizeof out[i]);
    }
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_nlink == b->st_nlink && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static bool same_state(const struct stat *a, const struct stat *b)
{
    for (size_t i = 0; i < N_WATCHED; i++) {
        if (watched[i].how == DIR_ONLY) {
            if (a[i].st_ino != b[i].st_ino || a[i].st_nlink != b[i].st_nlink)
                return false;
        } else if (watched[i].how == WAL && (!a[i].st_ino || !b[i].st_ino)) {
            if (a[i].st_size || b[i].st_size) /* created by a kept connection: empty */
                return false;
        } else if (!same_file(&a[i], &b[i])) {
            return false;
        }
    }
    return true;
}

/* Puts the account back to the template when the last input changed it. */
static void reset_account(void)
{
    struct stat now[N_WATCHED];
    watched_state(now);
    if (same_state(now, tmpl_state))
        return;
    close_kept();
    rm_tree(account);
    if (copy_tree(AT_FDCWD, tmpl, AT_FDCWD, account) < 0)
        abort();
    watched_state(tmpl_state);
}

/* Regular files in <account>/<sub>/cur and new. */
static int messages_in(const char *sub)
{
    int n = 0;
    char path[512];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s%s", account, sub, i ? "new" : "cur");
        DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL)
            n += de->d_name[0] != '.';
        if (d)
            closedir(d);
    }
    return n;
}

static void cleanup(void)
{
    close_kept();
    rm_tree(root);
}

static void init(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/cm-fuzz-imap-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(root))
        abort();
    atexit(cleanup);
    snprintf(mboxes, sizeof mboxes, "%s/mail", root);
    snprintf(account, sizeof account, "%s/%s", mboxes, USER);
    snprintf(tmpl, sizeof tmpl, "%s/template", root);
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
    /* The starting state of every input: two INBOX messages (one seen and
     * flagged), a Sent folder with one message, a subscription, metadata. */
    static const char seed[] =
        "a APPEND INBOX {63+}\r\n"
        "From: a@example.org\r\nSubject: one\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n\r\n"
        "b APPEND INBOX (\\Seen \\Flagged) {103+}\r\n"
        "From: b@example.org\r\nTo: fuzzuser1@example.org\r\nSubject: two\r\n"
        "Content-Type: text/plain\r\n\r\nsecond body\r\n\r\n"
        "c CREATE Sent\r\n"
        "d APPEND Sent {28+}\r\nSubject: sent\r\n\r\nsent body\r\n\r\n"
        "e SUBSCRIBE Sent\r\n"
        "f SETMETADATA INBOX (/private/comment \"c\")\r\ng LOGOUT\r\n";
    session((const uint8_t *)seed, sizeof seed - 1, sizeof seed);
    /* Message directories a minute old, then both folders selected once:
     * their indexes record settled mtimes, so a later SELECT that changes
     * nothing writes nothing (younger mtimes force a rescan each time). */
    static const char *const dirs[] = {"cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"};
    struct timespec old[2] = {{time(NULL) - 60, 0}, {time(NULL) - 60, 0}};
    char path[512];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", account, dirs[i]);
        if (utimensat(AT_FDCWD, path, old, 0) < 0)
            abort();
    }
    static const char settle[] = "a SELECT INBOX\r\nb SELECT Sent\r\nc LOGOUT\r\n";
    session((const uint8_t *)settle, sizeof settle - 1, sizeof settle);
    if (messages_in("") != 2 || messages_in(".Sent/") != 1) {
        fprintf(stderr, "fuzz_imap_session: the seed session did not build the template\n");
        abort();
    }
    close_kept();
    if (copy_tree(AT_FDCWD, account, AT_FDCWD, tmpl) < 0)
        abort();
    watched_state(tmpl_state);
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
    reset_account();
    size_t chunk = 1 + data[0] % 64;
    session(data + 1, size - 1, chunk);
    return 0;
}
