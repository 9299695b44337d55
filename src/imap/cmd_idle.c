/* cmd_idle.c: IDLE (RFC 2177) without delay. At IDLE start the changes
 * since the last command are reported; then every store notification for
 * the selected folder refreshes the view and writes EXISTS / EXPUNGE (or
 * VANISHED) / FETCH FLAGS in the same loop turn, and wakes the owner to
 * flush. Nothing else runs while idle: no buffers are held. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/metrics.h"
#include "imap/seqset.h"
#include "imap/session_int.h"
#include "store/store.h"

struct upd {
    struct imap_session *s;
    bool appended;
    uint32_t *vanished;
    size_t nv, capv;
};

static void on_change(void *ud, const struct mailbox_change *ch)
{
    struct upd *u = ud;
    struct imap_session *s = u->s;
    if (ch->kind == MB_CHANGE_APPEND) {
        u->appended = true;
    } else if (ch->kind == MB_CHANGE_EXPUNGE) {
        if (!s->qresync) {
            imap_out(s, "* %u EXPUNGE\r\n", ch->seq);
            return;
        }
        if (u->nv == u->capv) {
            size_t cap = u->capv ? u->capv * 2 : 16;
            uint32_t *v = realloc(u->vanished, cap * sizeof *v);
            if (!v)
                return;
            u->vanished = v;
            u->capv = cap;
        }
        u->vanished[u->nv++] = ch->uid;
    } else {
        imap_flags_update(s); /* keywords another session added */
        imap_out(s, "* %u FETCH (UID %u FLAGS ", ch->seq, ch->uid);
        imap_write_flags(&s->out, s->mb, imap_msg_flags(s, ch->uid, ch->flags));
        if (s->condstore)
            imap_out(s, " MODSEQ (%llu)", (unsigned long long)ch->modseq);
        imap_out(s, ")\r\n");
    }
}

void imap_updates(struct imap_session *s)
{
    if (!s->mb)
        return;
    const char *err;
    struct upd u = {.s = s};
    mailbox_sync(s->mb, false, &err);
    mailbox_refresh(s->mb, on_change, &u, &err);
    if (u.nv) {
        imap_out(s, "* VANISHED ");
        seqset_write(&s->out, u.vanished, u.nv);
        imap_out(s, "\r\n");
    }
    free(u.vanished);
    imap_flags_update(s);
    if (u.appended) {
        imap_recent_update(s);
        imap_out(s, "* %zu EXISTS\r\n* %zu RECENT\r\n", mailbox_count(s->mb),
                 imap_recent_count(s));
    }
}

enum imap_cmd_result imap_cmd_idle(struct imap_session *s, struct imap_cmd *c)
{
    if (c->n)
        return imap_bad(s, c, "Unexpected arguments.");
    s->mode = IM_IDLE;
    metrics_gauge_add(G_IMAP_IDLE, 1);
    imap_out(s, "+ idling\r\n");
    imap_updates(s);
    imap_reader_next(&s->rd);
    return CMD_ASYNC; /* the command stays current until DONE */
}

void imap_idle_done(struct imap_session *s, const char *line, size_t len)
{
    struct imap_cmd *c = s->cur;
    s->mode = IM_CMD;
    metrics_gauge_add(G_IMAP_IDLE, -1);
    if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
        imap_tagged(s, c, "OK", "Idle completed.");
    else
        imap_bad(s, c, "Expected DONE.");
    if (c->free_state && c->state)
        c->free_state(c->state);
    imap_args_free(&c->args);
    free(c);
    s->cur = NULL;
}

void imap_idle_event(void *ud, const struct store_event *ev)
{
    struct imap_session *s = ud;
    if (s->mode != IM_IDLE || s->act != IMAP_ACT_NONE || !s->mb)
        return; /* reported with the next command's reply */
    size_t before = s->out.len;
    imap_updates(s);
    if (s->out.len != before && s->wake)
        s->wake(s->wake_ud);
}
