/* session.c: the IMAP session state machine core (see session.h): command
 * assembly through the sans-I/O reader, dispatch by state, the worker /
 * loop split, tagged replies with the untagged updates before them,
 * notification queueing, timeouts and shutdown. The commands themselves
 * live in cmd_*.c, one file per family. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/limits.h"
#include "core/metrics.h"
#include "imap/session_int.h"
#include "store/store.h"

static const struct imap_cmd_def commands[] = {
    {"CAPABILITY", imap_cmd_capability, CF_ANY},
    {"NOOP", imap_cmd_noop, CF_ANY | CF_WORKER},
    {"LOGOUT", imap_cmd_logout, CF_ANY},
    {"ID", imap_cmd_id, CF_ANY},
    {"STARTTLS", imap_cmd_starttls, CF_NOTAUTH},
    {"LOGIN", imap_cmd_login, CF_NOTAUTH},
    {"AUTHENTICATE", imap_cmd_authenticate, CF_NOTAUTH},
    {"ENABLE", imap_cmd_enable, CF_AUTH},
    {"NAMESPACE", imap_cmd_namespace, CF_AUTH},
    {"COMPRESS", imap_cmd_compress, CF_AUTH},
    {"CHECK", imap_cmd_noop, CF_SELECTED | CF_WORKER},
    {"SELECT", imap_cmd_select, CF_AUTH | CF_WORKER | CF_SNAPSHOT},
    {"EXAMINE", imap_cmd_select, CF_AUTH | CF_WORKER | CF_SNAPSHOT},
    {"CLOSE", imap_cmd_close, CF_SELECTED | CF_WORKER},
    {"UNSELECT", imap_cmd_unselect, CF_SELECTED | CF_WORKER},
    {"EXPUNGE", imap_cmd_expunge, CF_SELECTED | CF_WORKER},
    {"FETCH", imap_cmd_fetch, CF_SELECTED | CF_WORKER | CF_NOEXPUNGE},
    {"STORE", imap_cmd_store, CF_SELECTED | CF_WORKER | CF_NOEXPUNGE},
    {"SEARCH", imap_cmd_search, CF_SELECTED | CF_WORKER | CF_NOEXPUNGE | CF_SLOW},
    {"COPY", imap_cmd_copy, CF_SELECTED | CF_WORKER | CF_NOEXPUNGE},
    {"MOVE", imap_cmd_copy, CF_SELECTED | CF_WORKER},
    {"APPEND", imap_cmd_append, CF_AUTH | CF_WORKER},
    {"LIST", imap_cmd_list, CF_AUTH | CF_WORKER},
    {"LSUB", imap_cmd_list, CF_AUTH | CF_WORKER},
    {"STATUS", imap_cmd_status, CF_AUTH | CF_WORKER},
    {"CREATE", imap_cmd_create, CF_AUTH | CF_WORKER},
    {"DELETE", imap_cmd_delete, CF_AUTH | CF_WORKER},
    {"RENAME", imap_cmd_rename, CF_AUTH | CF_WORKER},
    {"SUBSCRIBE", imap_cmd_subscribe, CF_AUTH | CF_WORKER},
    {"UNSUBSCRIBE", imap_cmd_subscribe, CF_AUTH | CF_WORKER},
    {"GETMETADATA", imap_cmd_getmetadata, CF_AUTH | CF_WORKER},
    {"SETMETADATA", imap_cmd_setmetadata, CF_AUTH | CF_WORKER},
    {"GETQUOTAROOT", imap_cmd_getquotaroot, CF_AUTH | CF_WORKER},
    {"GETQUOTA", imap_cmd_getquota, CF_AUTH | CF_WORKER},
    {"IDLE", imap_cmd_idle, CF_AUTH},
};

static void process(struct imap_session *s, const char *p, size_t n);

struct imap_session *imap_session_new(const struct config *cfg, bool tls,
                                      void (*wake)(void *ud), void *ud)
{
    struct imap_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = cfg;
    s->tls = tls;
    s->wake = wake;
    s->wake_ud = ud;
    /* Before login only what LOGIN/AUTHENTICATE need: a few KiB per
     * connection (login_limits() widens them). */
    imap_reader_init(&s->rd, LIM_IMAP_PRELOGIN_LITERAL);
    imap_reader_set_limits(&s->rd, LIM_IMAP_PRELOGIN_LINE, LIM_IMAP_PRELOGIN_LITERAL,
                           LIM_IMAP_PRELOGIN_LINE + LIM_IMAP_PRELOGIN_LITERAL);
    spool_init(&s->append_spool, NULL);
    struct buf caps = {0};
    imap_capabilities(s, &caps);
    imap_out(s, "* OK [CAPABILITY %.*s] %s ready.\r\n", (int)caps.len, caps.data ? caps.data : "",
             cfg->mail_domain);
    buf_free(&caps);
    return s;
}

/* After login: lines of LIM_IMAP_LINE, literals of LIM_IMAP_CMD_LITERAL,
 * and the message of an APPEND (up to max_message_size + 1, so that one
 * byte too many gets NO [LIMIT]) streaming into a spool file past
 * LIM_IMAP_APPEND_MEM bytes in memory. */
static void login_limits(struct imap_session *s)
{
    size_t max_ext = LIM_IMAP_LITERAL;
    if (s->cfg->max_message_size > 0 && (size_t)s->cfg->max_message_size < LIM_IMAP_LITERAL)
        max_ext = (size_t)s->cfg->max_message_size + 1;
    imap_reader_set_limits(&s->rd, LIM_IMAP_LINE, LIM_IMAP_CMD_LITERAL,
                           LIM_IMAP_CMD_LITERAL + 8 * LIM_IMAP_LINE);
    const char *st = s->cfg->state_dir;
    if (!st || !*st)
        return; /* no spool: APPEND up to LIM_IMAP_CMD_LITERAL */
    size_t n = strlen(st) + sizeof "/spool";
    s->spool_dir = malloc(n);
    if (!s->spool_dir)
        return; /* no APPEND beyond the in-memory literal size */
    snprintf(s->spool_dir, n, "%s/spool", st);
    if (mkdir(s->spool_dir, 0700) < 0 && errno != EEXIST) {
        free(s->spool_dir);
        s->spool_dir = NULL;
        return;
    }
    spool_init(&s->append_spool, s->spool_dir);
    s->append_spool.mem_max = LIM_IMAP_APPEND_MEM;
    imap_reader_set_ext(&s->rd, &s->append_spool, max_ext);
}

static void free_cmd(struct imap_session *s)
{
    struct imap_cmd *c = s->cur;
    if (!c)
        return;
    if (c->free_state && c->state)
        c->free_state(c->state);
    imap_args_free(&c->args);
    free(c);
    s->cur = NULL;
}

static void wipe_free(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

void imap_session_free(struct imap_session *s)
{
    if (!s)
        return;
    if (s->mode == IM_IDLE)
        metrics_gauge_add(G_IMAP_IDLE, -1);
    free_cmd(s);
    imap_close_mailbox(s);
    if (s->watch)
        store_unwatch(s->watch);
    free(s->watch_folder);
    imap_reader_free(&s->rd);
    spool_reset(&s->append_spool);
    free(s->spool_dir);
    buf_free(&s->out);
    buf_free(&s->in);
    free(s->user);
    free(s->account_dir);
    wipe_free(&s->login_user);
    wipe_free(&s->login_pass);
    free(s->turn_pending);
    for (size_t i = 0; i < s->n_tokens; i++)
        free(s->tokens[i]);
    free(s->tokens);
    for (size_t i = 0; i < s->n_notes; i++)
        free(s->notes[i].folder);
    free(s);
}

struct buf *imap_session_out(struct imap_session *s) { return &s->out; }
enum imap_action_kind imap_session_action(const struct imap_session *s) { return s->act; }
bool imap_session_idling(const struct imap_session *s) { return s->mode == IM_IDLE; }
bool imap_session_compress_active(const struct imap_session *s) { return s->compress; }
const char *imap_session_login_user(const struct imap_session *s) { return s->login_user; }
const char *imap_session_login_password(const struct imap_session *s) { return s->login_pass; }

bool imap_session_want_read(const struct imap_session *s)
{
    return s->act == IMAP_ACT_NONE && s->mode != IM_CLOSED;
}

bool imap_session_authenticated(const struct imap_session *s) { return s->state != IS_NOTAUTH; }

unsigned imap_session_timeout_ms(const struct imap_session *s)
{
    if (s->mode == IM_IDLE)
        return LIM_IMAP_IDLE_KEEPALIVE_MS;
    return s->state == IS_NOTAUTH ? LIM_IMAP_PRELOGIN_MS : LIM_IMAP_AUTOLOGOUT_MS;
}

static void bye(struct imap_session *s, const char *text)
{
    imap_out(s, "* BYE %s\r\n", text);
    s->mode = IM_CLOSED;
    s->act = IMAP_ACT_CLOSE;
}

void imap_session_timeout(struct imap_session *s)
{
    if (s->mode == IM_CLOSED)
        return;
    if (s->mode == IM_IDLE) {
        imap_out(s, "* OK Still here\r\n");
        return;
    }
    if (s->act != IMAP_ACT_NONE)
        return; /* an action is running: its completion re-arms the timer */
    bye(s, "Disconnected for inactivity.");
}

void imap_session_shutdown(struct imap_session *s)
{
    if (s->mode == IM_CLOSED)
        return;
    if (s->act != IMAP_ACT_NONE) {
        s->shutdown_pending = true;
        return;
    }
    bye(s, "Server shutting down.");
}

size_t imap_session_footprint(const struct imap_session *s)
{
    size_t n = sizeof *s + s->out.cap + s->in.cap + s->rd.cmd.cap + s->append_spool.mem.cap;
    if (s->user)
        n += strlen(s->user) + 1;
    if (s->account_dir)
        n += strlen(s->account_dir) + 1;
    if (s->watch_folder)
        n += strlen(s->watch_folder) + 1;
    if (s->mb)
        n += mailbox_count(s->mb) * sizeof(struct mailbox_msg);
    return n;
}

/* ---------------------------------------------------------------- output */

enum imap_cmd_result imap_ok(struct imap_session *s, struct imap_cmd *c, const char *text)
{
    imap_tagged(s, c, "OK", "%s", text);
    return CMD_DONE;
}

enum imap_cmd_result imap_no(struct imap_session *s, struct imap_cmd *c, const char *text)
{
    imap_tagged(s, c, "NO", "%s", text);
    return CMD_DONE;
}

enum imap_cmd_result imap_bad(struct imap_session *s, struct imap_cmd *c, const char *reason)
{
    s->errors++;
    imap_out(s, "%s BAD Error in IMAP command %s: %s\r\n", c->tag, c->name, reason);
    return CMD_DONE;
}

void imap_tagged(struct imap_session *s, struct imap_cmd *c, const char *status,
                 const char *fmt, ...)
{
    /* Changes that raced a SELECT are not appended to its summary: a client
     * that reads UIDNEXT from the summary (Delta Chat does, to decide
     * whether to fetch before IDLE) would take them as already known. The
     * next command, or IDLE's start, reports them. */
    unsigned fl = c->def ? c->def->flags : 0;
    if (s->mb && !(fl & CF_SNAPSHOT) && !((fl & CF_NOEXPUNGE) && !c->uid))
        imap_updates(s);
    if (strcmp(status, "OK") == 0)
        s->errors = 0;
    buf_printf(&s->out, "%s %s ", c->tag, status);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    buf_append(&s->out, "\r\n", 2);
}

void imap_capabilities(const struct imap_session *s, struct buf *b)
{
    buf_append_str(b, "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE");
    if (s->state == IS_NOTAUTH)
        buf_append_str(b, s->tls ? " AUTH=PLAIN" : " STARTTLS LOGINDISABLED");
    buf_append_str(b, " NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS"
                      " SPECIAL-USE ESEARCH CONDSTORE QRESYNC QUOTA METADATA");
    if (s->cfg->imap_compress && !s->compress)
        buf_append_str(b, " COMPRESS=DEFLATE");
    buf_append_str(b, " XDELTAPUSH XCHATMAIL");
}

void imap_note(struct imap_session *s, int kind, const char *folder, uint32_t uid,
               uint32_t flags, uint64_t modseq)
{
    for (size_t i = 0; i < s->n_notes; i++) {
        struct imap_note *n = &s->notes[i];
        if (n->kind == kind && strcmp(n->folder, folder) == 0) {
            n->uid = uid, n->flags = flags, n->modseq = modseq;
            return;
        }
    }
    if (s->n_notes == IMAP_NOTES_MAX)
        return; /* watchers of other folders still see it at their next refresh */
    char *f = strdup(folder);
    if (!f)
        return;
    s->notes[s->n_notes++] = (struct imap_note){(uint8_t)kind, uid, flags, modseq, f};
}

static void send_notes(struct imap_session *s)
{
    for (size_t i = 0; i < s->n_notes; i++) {
        struct imap_note *n = &s->notes[i];
        struct store_event ev = {(enum store_event_kind)n->kind, s->user, n->folder, n->uid,
                                 n->flags, n->modseq, s->watch};
        if (s->user)
            store_notify(&ev);
        free(n->folder);
    }
    s->n_notes = 0;
}

/* Keeps the store watch on the selected folder (loop thread). */
static void update_watch(struct imap_session *s)
{
    s->watch_update = false;
    const char *want = s->mb ? mailbox_name(s->mb) : NULL;
    if (s->watch && want && s->watch_folder && strcmp(want, s->watch_folder) == 0)
        return;
    if (s->watch) {
        store_unwatch(s->watch);
        s->watch = NULL;
    }
    free(s->watch_folder);
    s->watch_folder = NULL;
    if (!want || !s->user)
        return;
    s->watch_folder = strdup(want);
    if (s->watch_folder)
        s->watch = store_watch(s->user, s->watch_folder, imap_idle_event, s);
}

/* --------------------------------------------------------------- commands */

static const struct imap_cmd_def *find_def(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void finish_command(struct imap_session *s)
{
    free_cmd(s);
    spool_reset(&s->append_spool); /* an APPEND's message (file and mapping) */
    imap_reader_next(&s->rd);
    if (s->errors >= LIM_IMAP_BAD_CMDS && s->mode != IM_CLOSED)
        bye(s, "Too many invalid IMAP commands.");
}

/* UID FETCH -> FETCH with c->uid; the arguments start after the name. */
static const char *uid_subcommand(struct imap_cmd *c)
{
    static const char *const subs[] = {"FETCH", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE"};
    if (c->n == 0 || c->a[0].type != IMAP_ARG_ATOM)
        return NULL;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcasecmp(c->a[0].str, subs[i]) == 0)
            return subs[i];
    return NULL;
}

static bool state_allows(struct imap_session *s, struct imap_cmd *c)
{
    unsigned f = c->def->flags;
    if (s->state == IS_NOTAUTH && !(f & CF_NOTAUTH)) {
        imap_out(s, "%s NO Not logged in.\r\n", c->tag); /* Dovecot's pre-login text */
        return false;
    }
    if (s->state != IS_NOTAUTH && (f & CF_NOTAUTH) && !(f & CF_AUTH) && !(f & CF_SELECTED)) {
        imap_out(s, "%s BAD Error in IMAP command %s: Already logged in.\r\n", c->tag, c->name);
        s->errors++;
        return false;
    }
    if ((f & CF_SELECTED) && s->state != IS_SELECTED) {
        imap_out(s, "%s BAD No mailbox selected.\r\n", c->tag);
        s->errors++;
        return false;
    }
    return true;
}

static void run_result(struct imap_session *s, enum imap_cmd_result r)
{
    if (r == CMD_DONE)
        finish_command(s);
}

static void start_command(struct imap_session *s, const char *cmd, size_t len)
{
    char tag[IMAP_TAG_MAX], name[IMAP_NAME_MAX];
    const char *rest, *err;
    size_t restlen;
    if (imap_split_command(cmd, len, tag, sizeof tag, name, sizeof name, &rest, &restlen,
                           &err) < 0) {
        imap_out(s, "* BAD %s\r\n", err);
        s->errors++;
        finish_command(s);
        return;
    }
    struct imap_cmd *c = calloc(1, sizeof *c);
    if (!c) {
        bye(s, "Out of memory.");
        return;
    }
    s->cur = c;
    memcpy(c->tag, tag, sizeof tag);
    memcpy(c->name, name, sizeof name);
    if (imap_parse_args_ext(rest, restlen, imap_reader_ext_marker(&s->rd), &c->args, &err) < 0) {
        run_result(s, imap_bad(s, c, err));
        return;
    }
    c->a = c->args.v;
    c->n = c->args.n;
    if (strcmp(name, "UID") == 0) {
        const char *sub = uid_subcommand(c);
        if (!sub) {
            run_result(s, imap_bad(s, c, "Unknown command."));
            return;
        }
        snprintf(c->name, sizeof c->name, "UID %s", sub);
        c->uid = true;
        c->def = find_def(sub);
        c->a++;
        c->n--;
    } else {
        c->def = find_def(name);
    }
    if (!c->def) {
        run_result(s, imap_bad(s, c, "Unknown command."));
        return;
    }
    if (!state_allows(s, c)) {
        finish_command(s);
        return;
    }
    if (c->def->flags & CF_WORKER) {
        s->act = IMAP_ACT_WORK;
        s->busy = true;
        return;
    }
    run_result(s, c->def->fn(s, c));
}

static void on_command(struct imap_session *s)
{
    size_t len;
    const char *cmd = imap_reader_command(&s->rd, &len);
    if (s->mode == IM_IDLE) {
        imap_idle_done(s, cmd, len);
        imap_reader_next(&s->rd);
        spool_reset(&s->append_spool); /* an APPEND sent instead of DONE */
    } else if (s->mode == IM_AUTH_CONT) {
        imap_auth_continue(s, cmd, len);
        imap_reader_next(&s->rd);
    } else {
        start_command(s, cmd, len);
    }
}

static void process(struct imap_session *s, const char *p, size_t n)
{
    while (n > 0 && s->act == IMAP_ACT_NONE && s->mode != IM_CLOSED) {
        size_t used = 0;
        enum imap_read_result r = imap_reader_feed(&s->rd, p, n, &used);
        p += used;
        n -= used;
        if (r == IMAP_READ_CONTINUE) {
            imap_out(s, "+ OK\r\n");
        } else if (r == IMAP_READ_ERROR) {
            /* tagged when the command had a tag: the client waits for it */
            imap_out(s, "%s BAD Error in IMAP command: %s\r\n",
                     s->rd.error_tag[0] ? s->rd.error_tag : "*", s->rd.error);
            if (++s->errors >= LIM_IMAP_BAD_CMDS)
                bye(s, "Too many invalid IMAP commands.");
        } else if (r == IMAP_READ_COMMAND) {
            on_command(s);
        }
    }
    if (n > 0 && s->mode != IM_CLOSED && s->act != IMAP_ACT_STARTTLS)
        buf_append(&s->in, p, n); /* the owner stops reading while an action runs */
}

void imap_session_input(struct imap_session *s, const char *p, size_t n)
{
    if (s->mode == IM_CLOSED)
        return;
    if (s->act != IMAP_ACT_NONE) {
        if (s->act != IMAP_ACT_STARTTLS)
            buf_append(&s->in, p, n);
        return;
    }
    process(s, p, n);
}

struct buf *imap_session_pending_input(struct imap_session *s) { return &s->in; }

/* After an action: the buffered input, then a deferred shutdown. */
static void continue_input(struct imap_session *s)
{
    if (s->act != IMAP_ACT_NONE)
        return;
    if (s->in.len > 0) {
        struct buf in = s->in;
        s->in = (struct buf){0};
        process(s, in.data, in.len);
        buf_free(&in);
    }
    if (s->shutdown_pending && s->act == IMAP_ACT_NONE && s->mode != IM_CLOSED)
        bye(s, "Server shutting down.");
}

/* Worker thread. Runs the current command and hands back what became of
 * it; s->act, s->busy, s->in and the rest of the loop's fields stay as the
 * loop left them (IMAP_ACT_WORK), so input that arrives meanwhile is only
 * buffered. The loop applies the result in imap_session_resume_work(). */
enum imap_work_result imap_session_work(struct imap_session *s)
{
    enum imap_cmd_result r = s->cur->def->fn(s, s->cur);
    return r == CMD_MORE ? IMAP_WORK_MORE : r == CMD_ASYNC ? IMAP_WORK_ASYNC : IMAP_WORK_DONE;
}

bool imap_session_work_slow(const struct imap_session *s)
{
    return s->act == IMAP_ACT_WORK && s->cur && s->cur->def && (s->cur->def->flags & CF_SLOW);
}

void imap_session_cancel(struct imap_session *s) { atomic_store(&s->cancelled, true); }

void imap_session_resume_work(struct imap_session *s, enum imap_work_result r)
{
    s->act = r == IMAP_WORK_MORE ? IMAP_ACT_WORK : r == IMAP_WORK_ASYNC ? IMAP_ACT_TURN
                                                                        : IMAP_ACT_NONE;
    s->busy = r != IMAP_WORK_DONE;
    send_notes(s);
    if (s->watch_update || (s->mb == NULL) != (s->watch == NULL))
        update_watch(s);
    if (s->act == IMAP_ACT_WORK || s->act == IMAP_ACT_TURN)
        return;
    if (s->mode != IM_CLOSED)
        finish_command(s);
    continue_input(s);
}

void imap_session_resume_login(struct imap_session *s, int result)
{
    wipe_free(&s->login_pass);
    s->act = IMAP_ACT_NONE;
    struct imap_cmd *c = s->cur;
    if (result == 0) {
        s->user = s->login_user; /* normalised by cmd_auth */
        s->login_user = NULL;
        s->state = IS_AUTH;
        login_limits(s);
        struct buf caps = {0};
        imap_capabilities(s, &caps);
        imap_out(s, "%s OK [CAPABILITY %.*s] Logged in\r\n", c->tag, (int)caps.len,
                 caps.data ? caps.data : "");
        buf_free(&caps);
    } else {
        wipe_free(&s->login_user);
        if (result == 3) { /* STORE_LOGIN_TRY_AGAIN */
            imap_out(s, "%s NO [UNAVAILABLE] Temporary authentication failure.\r\n", c->tag);
        } else {
            imap_out(s, "%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", c->tag);
            if (++s->auth_fails >= LIM_AUTH_FAILS) { /* issue 16: close after N */
                finish_command(s);
                bye(s, "Too many authentication failures.");
                return;
            }
        }
    }
    finish_command(s);
    continue_input(s);
}

void imap_session_resume_starttls(struct imap_session *s)
{
    s->act = IMAP_ACT_NONE;
    s->tls = true;
    buf_free(&s->in); /* nothing sent before the handshake counts */
    finish_command(s);
}

void imap_session_resume_turn(struct imap_session *s, const char *line)
{
    s->act = IMAP_ACT_NONE;
    s->busy = false;
    imap_metadata_turn_done(s, line);
    finish_command(s);
    continue_input(s);
}

void imap_session_resume(struct imap_session *s)
{
    s->act = IMAP_ACT_NONE;
    finish_command(s);
    continue_input(s);
}

/* ----------------------------------------------------------------- helpers */

const char *imap_mailbox_arg(const struct imap_arg *a)
{
    if (!imap_arg_is_string(a) || memchr(a->str, '\0', a->len))
        return NULL;
    if (strcasecmp(a->str, "INBOX") == 0)
        return "INBOX";
    return a->str;
}

void imap_close_mailbox(struct imap_session *s)
{
    if (s->mb) {
        mailbox_close(s->mb);
        s->mb = NULL;
    }
    seqset_free(&s->recent);
    s->recent_next = 0;
    s->kw_announced = 0;
    s->watch_update = true;
    if (s->state == IS_SELECTED)
        s->state = IS_AUTH;
}

bool imap_session_hibernate(struct imap_session *s)
{
    if (s->mode != IM_IDLE || s->act != IMAP_ACT_NONE)
        return false;
    if (s->mb)
        mailbox_suspend(s->mb);
    return true;
}
