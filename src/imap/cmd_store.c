/* cmd_store.c: STORE / UID STORE (FLAGS, +FLAGS, -FLAGS, .SILENT) with
 * CONDSTORE's UNCHANGEDSINCE (failures in [MODIFIED set]), and the flag
 * list parser shared with APPEND. Worker thread. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/seqset.h"
#include "imap/session_int.h"
#include "store/store.h"

static int one_flag(struct imap_session *s, const char *f, bool create, uint32_t *flags)
{
    static const char *const sys[] = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
                                      "\\Draft"};
    if (f[0] == '\\') {
        for (int i = 0; i < 5; i++) {
            if (strcasecmp(f, sys[i]) == 0) {
                *flags |= 1u << i;
                return 0;
            }
        }
        return strcasecmp(f, "\\Recent") == 0 ? 0 : -1;
    }
    int k = s->mb ? mailbox_keyword_index(s->mb, f, create) : -1;
    if (k >= 0)
        *flags |= MB_KEYWORD(k);
    return 0; /* keywords beyond the 26 Maildir letters are dropped, as Dovecot does */
}

int imap_parse_flags(struct imap_session *s, const struct imap_arg *a, size_t n, bool create,
                     uint32_t *flags)
{
    *flags = 0;
    for (size_t i = 0; i < n; i++) {
        if ((a[i].type != IMAP_ARG_ATOM && a[i].type != IMAP_ARG_NIL) || one_flag(s, a[i].str, create, flags) < 0)
            return -1;
    }
    return 0;
}

struct store_req {
    enum mailbox_flag_op op;
    bool silent;
    uint32_t flags;
    uint64_t unchangedsince;
};

static int parse_store(struct imap_session *s, struct imap_cmd *c, struct store_req *r)
{
    size_t i = 1;
    if (i < c->n && c->a[i].type == IMAP_ARG_LIST) {
        const struct imap_arg *l = &c->a[i++];
        if (l->n != 2 || !imap_arg_atom_eq(&l->list[0], "UNCHANGEDSINCE") ||
            l->list[1].type != IMAP_ARG_ATOM)
            return -1;
        r->unchangedsince = strtoull(l->list[1].str, NULL, 10);
        s->condstore = true;
    }
    if (i + 2 != c->n || c->a[i].type != IMAP_ARG_ATOM)
        return -1;
    const char *w = c->a[i].str;
    r->op = *w == '+' ? MB_FLAGS_ADD : *w == '-' ? MB_FLAGS_REMOVE : MB_FLAGS_SET;
    if (*w == '+' || *w == '-')
        w++;
    if (strcasecmp(w, "FLAGS.SILENT") == 0)
        r->silent = true;
    else if (strcasecmp(w, "FLAGS") != 0)
        return -1;
    const struct imap_arg *fl = &c->a[i + 1];
    bool list = fl->type == IMAP_ARG_LIST;
    return imap_parse_flags(s, list ? fl->list : fl, list ? fl->n : 1, r->op != MB_FLAGS_REMOVE,
                            &r->flags);
}

static void store_one(struct imap_session *s, struct imap_cmd *c, const struct store_req *r,
                      size_t idx, struct buf *modified)
{
    uint32_t uid = mailbox_msgs(s->mb)[idx].uid, old = mailbox_msgs(s->mb)[idx].flags, nf;
    uint64_t ms;
    const char *err;
    int rc = mailbox_set_flags(s->mb, uid, r->op, r->flags, r->unchangedsince, &nf, &ms, &err);
    if (rc == 1) {
        buf_printf(modified, "%s%u", modified->len ? "," : "", c->uid ? uid : (uint32_t)idx + 1);
        return;
    }
    if (rc < 0)
        return;
    if (nf != old)
        imap_note(s, STORE_EV_FLAGS, mailbox_name(s->mb), uid, nf, ms);
    if (r->silent && !(s->condstore && r->unchangedsince))
        return;
    imap_out(s, "* %zu FETCH (", idx + 1);
    if (c->uid)
        imap_out(s, "UID %u ", uid);
    imap_out(s, "FLAGS ");
    imap_write_flags(&s->out, s->mb, imap_msg_flags(s, uid, nf));
    if (s->condstore)
        imap_out(s, " MODSEQ (%llu)", (unsigned long long)ms);
    imap_out(s, ")\r\n");
}

enum imap_cmd_result imap_cmd_store(struct imap_session *s, struct imap_cmd *c)
{
    struct store_req r = {0};
    struct seqset set;
    if (c->n < 3 || imap_parse_msgset(s, &c->a[0], c->uid, &set) < 0)
        return imap_bad(s, c, "Invalid messageset");
    if (parse_store(s, c, &r) < 0) {
        seqset_free(&set);
        return imap_bad(s, c, "Invalid STORE arguments.");
    }
    if (s->readonly) {
        seqset_free(&set);
        return imap_no(s, c, "Mailbox is read-only.");
    }
    imap_flags_update(s); /* a keyword new to the folder: FLAGS before the FETCHes */
    struct buf modified = {0};
    for (size_t i = 0; i < mailbox_count(s->mb); i++) {
        const struct mailbox_msg *m = &mailbox_msgs(s->mb)[i];
        if (seqset_contains(&set, c->uid ? m->uid : (uint32_t)(i + 1)))
            store_one(s, c, &r, i, &modified);
    }
    seqset_free(&set);
    if (modified.len)
        imap_tagged(s, c, "OK", "[MODIFIED %.*s] Conditional store failed.", (int)modified.len,
                    modified.data);
    else
        imap_tagged(s, c, "OK", "Store completed.");
    buf_free(&modified);
    return CMD_DONE;
}
