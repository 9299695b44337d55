/* cmd_select.c: SELECT / EXAMINE (with the CONDSTORE and QRESYNC
 * parameters), CLOSE, UNSELECT, EXPUNGE and UID EXPUNGE. Worker thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "imap/seqset.h"
#include "imap/session_int.h"
#include "store/store.h"

static void write_flag_lists(struct imap_session *s)
{
    struct buf kw = {0};
    s->kw_announced = 0;
    for (int i = 0; i < MB_KEYWORDS_MAX; i++) {
        const char *k = mailbox_keyword_name(s->mb, i);
        if (k) {
            buf_printf(&kw, " %s", k);
            s->kw_announced |= 1u << i;
        }
    }
    const char *k = kw.data ? kw.data : "";
    imap_out(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s)\r\n", k);
    imap_out(s, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s%s)] "
                "Flags permitted.\r\n", k, s->readonly ? "" : " \\*");
    buf_free(&kw);
}

void imap_flags_update(struct imap_session *s)
{
    uint32_t now = 0;
    for (int i = 0; s->mb && i < MB_KEYWORDS_MAX; i++)
        if (mailbox_keyword_name(s->mb, i))
            now |= 1u << i;
    if (s->mb && now != s->kw_announced)
        write_flag_lists(s);
}

/* ---- \Recent: the session's UIDs are ranges in s->recent ---- */

void imap_recent_update(struct imap_session *s)
{
    uint32_t first, next = s->mb ? mailbox_uidnext(s->mb) : 0;
    const char *err;
    if (!s->mb || next <= s->recent_next ||
        mailbox_recent(s->mb, !s->readonly, &first, &err) < 0)
        return;
    uint32_t lo = first > s->recent_next ? first : s->recent_next;
    s->recent_next = next;
    if (lo == 0)
        lo = 1;
    if (lo >= next)
        return;
    struct seqset *r = &s->recent;
    if (r->n && r->r[r->n - 1].hi + 1 >= lo) {
        r->r[r->n - 1].hi = next - 1;
        return;
    }
    if (r->n >= SEQSET_MAX_RANGES) /* bounded: the rest is just not \Recent */
        return;
    struct seq_range *nr = realloc(r->r, (r->n + 1) * sizeof *nr);
    if (!nr)
        return;
    r->r = nr;
    r->r[r->n++] = (struct seq_range){lo, next - 1};
}

bool imap_recent(const struct imap_session *s, uint32_t uid)
{
    return s->recent.n && seqset_contains(&s->recent, uid);
}

size_t imap_recent_count(const struct imap_session *s)
{
    size_t k = 0;
    if (!s->mb || !s->recent.n)
        return 0;
    const struct mailbox_msg *m = mailbox_msgs(s->mb);
    for (size_t i = 0; i < mailbox_count(s->mb); i++)
        k += imap_recent(s, m[i].uid);
    return k;
}

uint32_t imap_msg_flags(const struct imap_session *s, uint32_t uid, uint32_t flags)
{
    return imap_recent(s, uid) ? flags | IMAP_FLAG_RECENT : flags;
}

/* QRESYNC (uidvalidity modseq [known-uids ...]): VANISHED (EARLIER) and the
 * flags of what changed since modseq. */
static void qresync(struct imap_session *s, const struct imap_arg *p)
{
    if (p->n < 2 || !imap_arg_is_string(&p->list[0]) || !imap_arg_is_string(&p->list[1]))
        return;
    unsigned long long uv = strtoull(p->list[0].str, NULL, 10);
    unsigned long long ms = strtoull(p->list[1].str, NULL, 10);
    if (uv != mailbox_uidvalidity(s->mb))
        return;
    struct seqset known = {0};
    bool have_known = p->n >= 3 && imap_arg_is_string(&p->list[2]) &&
                      seqset_parse(p->list[2].str, p->list[2].len, mailbox_uidnext(s->mb),
                                   &known) == 0;
    uint32_t *v = NULL;
    size_t n = 0, k = 0;
    bool complete = true;
    const char *err;
    if (mailbox_vanished_since(s->mb, ms, &v, &n, &complete, &err) == 0) {
        if (!complete) { /* history too short: every known UID that is gone */
            free(v);
            v = NULL;
            n = 0;
            size_t cap = 0;
            for (uint32_t u = 1; u < mailbox_uidnext(s->mb) && n < 1000000; u++) {
                if ((have_known && !seqset_contains(&known, u)) || mailbox_find(s->mb, u, NULL))
                    continue;
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    uint32_t *nv = realloc(v, cap * sizeof *v);
                    if (!nv)
                        break;
                    v = nv;
                }
                v[n++] = u;
            }
        }
        for (size_t i = 0; i < n; i++)
            if (!have_known || seqset_contains(&known, v[i]))
                v[k++] = v[i];
        if (k) {
            imap_out(s, "* VANISHED (EARLIER) ");
            seqset_write(&s->out, v, k);
            imap_out(s, "\r\n");
        }
    }
    free(v);
    seqset_free(&known);
    const struct mailbox_msg *m = mailbox_msgs(s->mb);
    for (size_t i = 0; i < mailbox_count(s->mb); i++) {
        if (m[i].modseq <= ms)
            continue;
        imap_out(s, "* %zu FETCH (UID %u FLAGS ", i + 1, m[i].uid);
        imap_write_flags(&s->out, s->mb, imap_msg_flags(s, m[i].uid, m[i].flags));
        imap_out(s, " MODSEQ (%llu))\r\n", (unsigned long long)m[i].modseq);
    }
}

static int ensure_account_dir(struct imap_session *s)
{
    if (s->account_dir)
        return 0;
    char dir[4096];
    if (store_account_dir(s->cfg, s->user, dir, sizeof dir) < 0)
        return -1;
    s->account_dir = strdup(dir);
    return s->account_dir ? 0 : -1;
}

const char *imap_account_dir(struct imap_session *s)
{
    return ensure_account_dir(s) < 0 ? NULL : s->account_dir;
}

static void select_summary(struct imap_session *s)
{
    write_flag_lists(s);
    size_t n = mailbox_count(s->mb);
    const struct mailbox_msg *m = mailbox_msgs(s->mb);
    imap_out(s, "* %zu EXISTS\r\n* %zu RECENT\r\n", n, imap_recent_count(s));
    for (size_t i = 0; i < n; i++) {
        if (!(m[i].flags & MB_SEEN)) {
            imap_out(s, "* OK [UNSEEN %zu] First unseen.\r\n", i + 1);
            break;
        }
    }
    imap_out(s, "* OK [UIDVALIDITY %u] UIDs valid\r\n", mailbox_uidvalidity(s->mb));
    imap_out(s, "* OK [UIDNEXT %u] Predicted next UID\r\n", mailbox_uidnext(s->mb));
    imap_out(s, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
             (unsigned long long)mailbox_highestmodseq(s->mb));
}

enum imap_cmd_result imap_cmd_select(struct imap_session *s, struct imap_cmd *c)
{
    const char *name = c->n >= 1 ? imap_mailbox_arg(&c->a[0]) : NULL;
    if (!name || c->n > 2 || (c->n == 2 && c->a[1].type != IMAP_ARG_LIST))
        return imap_bad(s, c, "Invalid arguments.");
    const struct imap_arg *qr = NULL;
    for (size_t i = 0; c->n == 2 && i < c->a[1].n; i++) {
        const struct imap_arg *p = &c->a[1].list[i];
        if (imap_arg_atom_eq(p, "CONDSTORE"))
            s->condstore = true;
        else if (imap_arg_atom_eq(p, "QRESYNC") && i + 1 < c->a[1].n &&
                 c->a[1].list[i + 1].type == IMAP_ARG_LIST && s->qresync)
            qr = &c->a[1].list[++i];
        else
            return imap_bad(s, c, "Unknown SELECT parameter.");
    }
    if (s->mb) {
        imap_close_mailbox(s);
        if (s->qresync)
            imap_out(s, "* OK [CLOSED] Previous mailbox closed.\r\n");
    }
    const char *err = NULL;
    struct mailbox *mb = NULL;
    if (!folder_name_valid(name) || ensure_account_dir(s) < 0 ||
        mailbox_open(s->account_dir, name, &mb, &err) < 0) {
        imap_tagged(s, c, "NO", "[NONEXISTENT] Mailbox doesn't exist: %s", name);
        return CMD_DONE;
    }
    mailbox_refresh(mb, NULL, NULL, &err);
    s->mb = mb;
    s->readonly = strcmp(c->name, "EXAMINE") == 0;
    s->state = IS_SELECTED;
    imap_recent_update(s); /* SELECT claims; EXAMINE only looks (RFC 3501 6.3.2) */
    s->watch_update = true;
    select_summary(s);
    if (qr)
        qresync(s, qr);
    imap_tagged(s, c, "OK", "[%s] %s completed.", s->readonly ? "READ-ONLY" : "READ-WRITE",
                s->readonly ? "Examine" : "Select");
    return CMD_DONE;
}

/* Expunges \Deleted messages (within set when given). Returns how many. */
static size_t expunge_deleted(struct imap_session *s, const struct seqset *uids)
{
    size_t n = mailbox_count(s->mb), done = 0;
    uint32_t *doomed = malloc((n ? n : 1) * sizeof *doomed);
    if (!doomed)
        return 0;
    const struct mailbox_msg *m = mailbox_msgs(s->mb);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if ((m[i].flags & MB_DELETED) && (!uids || seqset_contains(uids, m[i].uid)))
            doomed[k++] = m[i].uid;
    for (size_t i = 0; i < k; i++) {
        uint64_t modseq;
        const char *err;
        if (mailbox_expunge(s->mb, doomed[i], &modseq, &err) == 0) {
            imap_note(s, STORE_EV_EXPUNGE, mailbox_name(s->mb), doomed[i], 0, modseq);
            done++;
        }
    }
    free(doomed);
    return done;
}

enum imap_cmd_result imap_cmd_close(struct imap_session *s, struct imap_cmd *c)
{
    if (c->n)
        return imap_bad(s, c, "Unexpected arguments.");
    if (!s->readonly)
        expunge_deleted(s, NULL);
    imap_close_mailbox(s);
    return imap_ok(s, c, "Close completed.");
}

enum imap_cmd_result imap_cmd_unselect(struct imap_session *s, struct imap_cmd *c)
{
    if (c->n)
        return imap_bad(s, c, "Unexpected arguments.");
    imap_close_mailbox(s);
    return imap_ok(s, c, "Unselect completed.");
}

enum imap_cmd_result imap_cmd_expunge(struct imap_session *s, struct imap_cmd *c)
{
    struct seqset set = {0};
    if (c->uid) {
        if (c->n != 1 || c->a[0].type != IMAP_ARG_ATOM ||
            seqset_parse(c->a[0].str, c->a[0].len, mailbox_uidnext(s->mb), &set) < 0)
            return imap_bad(s, c, "Invalid uidset.");
    } else if (c->n) {
        return imap_bad(s, c, "Unexpected arguments.");
    }
    if (s->readonly) {
        seqset_free(&set);
        return imap_no(s, c, "Mailbox is read-only.");
    }
    expunge_deleted(s, c->uid ? &set : NULL);
    seqset_free(&set);
    imap_tagged(s, c, "OK", "Expunge completed.");
    return CMD_DONE;
}
