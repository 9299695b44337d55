/* cmd_fetch.c: FETCH and UID FETCH with every RFC 3501 item (FLAGS, UID,
 * INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE, BODY[section]
 * and BODY.PEEK with <partial>, RFC822, RFC822.HEADER, RFC822.TEXT, the
 * ALL/FAST/FULL macros), MODSEQ and the CHANGEDSINCE / VANISHED modifiers.
 * Worker thread. Output is produced message by message; past
 * FETCH_OUT_CHUNK queued bytes the command yields (CMD_MORE) and resumes
 * after the owner drained the output: memory stays at one message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "imap/imap_date.h"
#include "imap/imap_mime.h"
#include "imap/seqset.h"
#include "imap/session_int.h"
#include "store/store.h"

#define FETCH_OUT_CHUNK (256 * 1024)
#define FETCH_ITEMS_MAX 64
#define FETCH_HEADER_MAX (256 * 1024)

enum fkind { F_UID, F_FLAGS, F_IDATE, F_SIZE, F_MODSEQ, F_ENV, F_BODY, F_BS, F_SECTION };

struct fitem {
    enum fkind kind;
    bool peek, partial;
    char name[16];     /* BODY / RFC822 / RFC822.HEADER / RFC822.TEXT */
    const char *sect;  /* inside the brackets (for F_SECTION) */
    size_t sect_len;
    uint64_t off, cnt;
};

struct fetch_state {
    struct fitem it[FETCH_ITEMS_MAX];
    size_t n;
    struct seqset set;
    size_t next; /* view index to continue at */
    uint64_t changedsince;
    bool need_body, need_hdr, set_seen, has_flags, has_uid, has_modseq;
    struct buf msg;
};

static void free_state(void *p)
{
    struct fetch_state *f = p;
    seqset_free(&f->set);
    buf_free(&f->msg);
    free(f);
}

int imap_parse_msgset(struct imap_session *s, const struct imap_arg *a, bool uid,
                      struct seqset *out)
{
    if (a->type != IMAP_ARG_ATOM)
        return -1;
    size_t n = mailbox_count(s->mb);
    uint32_t star = uid ? (n ? mailbox_msgs(s->mb)[n - 1].uid : 0) : (uint32_t)n;
    return seqset_parse(a->str, a->len, star, out);
}

static int add_item(struct fetch_state *f, enum fkind k)
{
    if (f->n == FETCH_ITEMS_MAX)
        return -1;
    f->it[f->n++] = (struct fitem){.kind = k};
    return 0;
}

static int add_section(struct fetch_state *f, const char *name, const char *sect, size_t len,
                       bool peek)
{
    if (add_item(f, F_SECTION) < 0)
        return -1;
    struct fitem *it = &f->it[f->n - 1];
    snprintf(it->name, sizeof it->name, "%s", name);
    it->sect = sect;
    it->sect_len = len;
    it->peek = peek;
    bool hdr_only = len >= 6 && strncasecmp(sect, "HEADER", 6) == 0;
    if (hdr_only)
        f->need_hdr = true;
    else
        f->need_body = true;
    if (!peek)
        f->set_seen = true;
    return 0;
}

/* BODY[...]<o.c> / BODY.PEEK[...] */
static int parse_body_item(struct fetch_state *f, const char *s)
{
    bool peek = strncasecmp(s, "BODY.PEEK[", 10) == 0;
    const char *open = strchr(s, '['), *close = strrchr(s, ']');
    if (!open || !close || close < open || (!peek && (size_t)(open - s) != 4))
        return -1;
    if (add_section(f, "BODY", open + 1, (size_t)(close - open - 1), peek) < 0)
        return -1;
    struct fitem *it = &f->it[f->n - 1];
    if (close[1] == '<') {
        char *e;
        it->off = strtoull(close + 2, &e, 10);
        if (*e != '.')
            return -1;
        it->cnt = strtoull(e + 1, &e, 10);
        if (*e != '>' || e[1] || it->cnt == 0)
            return -1;
        it->partial = true;
    } else if (close[1]) {
        return -1;
    }
    for (size_t i = 0; i < it->sect_len; i++)
        if (it->sect[i] == '\r' || it->sect[i] == '\n')
            return -1;
    return 0;
}

static int parse_item(struct fetch_state *f, const struct imap_arg *a)
{
    if (a->type != IMAP_ARG_ATOM)
        return -1;
    const char *s = a->str;
    if (strncasecmp(s, "BODY[", 5) == 0 || strncasecmp(s, "BODY.PEEK[", 10) == 0)
        return parse_body_item(f, s);
    static const struct { const char *n; enum fkind k; } simple[] = {
        {"UID", F_UID}, {"FLAGS", F_FLAGS}, {"INTERNALDATE", F_IDATE}, {"RFC822.SIZE", F_SIZE},
        {"MODSEQ", F_MODSEQ}, {"ENVELOPE", F_ENV}, {"BODY", F_BODY}, {"BODYSTRUCTURE", F_BS}};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        if (strcasecmp(s, simple[i].n) == 0) {
            if (simple[i].k == F_ENV || simple[i].k == F_BODY || simple[i].k == F_BS)
                f->need_body |= simple[i].k != F_ENV, f->need_hdr = true;
            return add_item(f, simple[i].k);
        }
    }
    if (strcasecmp(s, "RFC822") == 0)
        return add_section(f, "RFC822", "", 0, false);
    if (strcasecmp(s, "RFC822.HEADER") == 0)
        return add_section(f, "RFC822.HEADER", "HEADER", 6, true);
    if (strcasecmp(s, "RFC822.TEXT") == 0)
        return add_section(f, "RFC822.TEXT", "TEXT", 4, false);
    bool all = strcasecmp(s, "ALL") == 0, full = strcasecmp(s, "FULL") == 0;
    if (all || full || strcasecmp(s, "FAST") == 0) {
        int r = add_item(f, F_FLAGS) | add_item(f, F_IDATE) | add_item(f, F_SIZE);
        if (all || full)
            r |= add_item(f, F_ENV), f->need_hdr = true;
        if (full)
            r |= add_item(f, F_BODY), f->need_body = true;
        return r;
    }
    return -1;
}

/* (CHANGEDSINCE n [VANISHED]) */
static int parse_modifiers(struct imap_session *s, struct imap_cmd *c, struct fetch_state *f,
                           const struct imap_arg *l, bool *vanished)
{
    for (size_t i = 0; i < l->n; i++) {
        if (imap_arg_atom_eq(&l->list[i], "CHANGEDSINCE") && i + 1 < l->n &&
            l->list[i + 1].type == IMAP_ARG_ATOM) {
            f->changedsince = strtoull(l->list[++i].str, NULL, 10);
            s->condstore = true;
        } else if (imap_arg_atom_eq(&l->list[i], "VANISHED") && c->uid && s->qresync) {
            *vanished = true;
        } else {
            return -1;
        }
    }
    return *vanished && !f->changedsince ? -1 : 0;
}

static void write_vanished(struct imap_session *s, struct fetch_state *f)
{
    uint32_t *v = NULL;
    size_t n = 0, k = 0;
    bool complete;
    const char *err;
    if (mailbox_vanished_since(s->mb, f->changedsince, &v, &n, &complete, &err) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (seqset_contains(&f->set, v[i]))
            v[k++] = v[i];
    if (k) {
        imap_out(s, "* VANISHED (EARLIER) ");
        seqset_write(&s->out, v, k);
        imap_out(s, "\r\n");
    }
    free(v);
}

static enum imap_cmd_result fetch_setup(struct imap_session *s, struct imap_cmd *c)
{
    struct fetch_state *f = calloc(1, sizeof *f);
    if (!f)
        return imap_no(s, c, "Out of memory.");
    c->state = f;
    c->free_state = free_state;
    if (c->n < 2 || c->n > 3 || imap_parse_msgset(s, &c->a[0], c->uid, &f->set) < 0)
        return imap_bad(s, c, "Invalid messageset");
    const struct imap_arg *items = &c->a[1];
    int bad = 0;
    if (items->type == IMAP_ARG_LIST) {
        for (size_t i = 0; i < items->n && !bad; i++)
            bad = parse_item(f, &items->list[i]);
        bad |= items->n == 0;
    } else {
        bad = parse_item(f, items);
    }
    bool vanished = false;
    if (!bad && c->n == 3)
        bad = c->a[2].type != IMAP_ARG_LIST || parse_modifiers(s, c, f, &c->a[2], &vanished);
    if (bad)
        return imap_bad(s, c, "Invalid fetch items.");
    for (size_t i = 0; i < f->n; i++) {
        f->has_flags |= f->it[i].kind == F_FLAGS;
        f->has_uid |= f->it[i].kind == F_UID;
        f->has_modseq |= f->it[i].kind == F_MODSEQ;
    }
    if (f->has_modseq)
        s->condstore = true;
    if (vanished)
        write_vanished(s, f);
    return CMD_MORE;
}

/* ---- sections ---- */

static bool field_listed(struct span name, const char *list, size_t len)
{
    const char *p = list, *end = list + len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '(' || *p == ')' || *p == '"'))
            p++;
        const char *w = p;
        while (p < end && *p != ' ' && *p != ')' && *p != '"')
            p++;
        if ((size_t)(p - w) == name.n && strncasecmp(w, name.p, name.n) == 0)
            return true;
    }
    return false;
}

static void header_fields(struct buf *o, struct span hdr, const char *list, size_t len, bool not)
{
    struct hdr_iter it;
    struct hdr_field fl;
    hdr_iter_init(&it, hdr);
    while (hdr_next(&it, &fl) == 1)
        if (fl.name.n && field_listed(fl.name, list, len) != not)
            buf_append(o, fl.whole.p, fl.whole.n);
    buf_append(o, "\r\n", 2);
}

/* The bytes of a section into o. 0, or -1 when there is no such part. */
static int section_bytes(const struct imap_part *root, const struct buf *msg, const char *sect,
                         size_t len, struct buf *o)
{
    char spec[512];
    if (len >= sizeof spec)
        return -1;
    memcpy(spec, sect, len);
    spec[len] = '\0';
    if (len == 0)
        return buf_append(o, msg->data, msg->len);
    const char *rest;
    const struct imap_part *p = imap_mime_find(root, spec, &rest);
    if (!p)
        return -1;
    bool numbered = rest != spec;
    const struct imap_part *m = numbered && p->message && p->nsub ? &p->sub[0] : p;
    if (*rest == '\0')
        return buf_append(o, p->body.p, p->body.n);
    if (strcasecmp(rest, "MIME") == 0 && numbered) {
        buf_append(o, p->hdr.p, p->hdr.n);
        return buf_append(o, "\r\n", 2);
    }
    if (numbered && !p->message)
        return -1;
    if (strcasecmp(rest, "TEXT") == 0)
        return buf_append(o, m->body.p, m->body.n);
    if (strcasecmp(rest, "HEADER") == 0) {
        buf_append(o, m->hdr.p, m->hdr.n);
        return buf_append(o, "\r\n", 2);
    }
    bool not = strncasecmp(rest, "HEADER.FIELDS.NOT ", 18) == 0;
    if (not || strncasecmp(rest, "HEADER.FIELDS ", 14) == 0) {
        const char *l = rest + (not ? 18 : 14);
        header_fields(o, m->hdr, l, strlen(l), not);
        return 0;
    }
    return -1;
}

static void write_section(struct imap_session *s, const struct fitem *it,
                          const struct imap_part *root, const struct buf *msg)
{
    struct buf o = {0};
    bool ok = section_bytes(root, msg, it->sect, it->sect_len, &o) == 0;
    if (strcmp(it->name, "BODY") == 0)
        imap_out(s, "BODY[%.*s]", (int)it->sect_len, it->sect);
    else
        imap_out(s, "%s", it->name);
    const char *p = o.data ? o.data : "";
    size_t n = o.len;
    if (it->partial) {
        imap_out(s, "<%llu>", (unsigned long long)it->off);
        size_t off = it->off > n ? n : (size_t)it->off;
        p += off;
        n -= off;
        if (n > it->cnt)
            n = (size_t)it->cnt;
    }
    if (!ok && !it->partial) {
        imap_out(s, " NIL");
    } else {
        imap_out(s, " {%zu}\r\n", n);
        imap_out_raw(s, p, n);
    }
    buf_free(&o);
}

static void write_item(struct imap_session *s, struct fetch_state *f, const struct fitem *it,
                       const struct mailbox_msg *m, const struct imap_part *root)
{
    char date[40];
    switch (it->kind) {
    case F_UID: imap_out(s, "UID %u", m->uid); break;
    case F_FLAGS:
        imap_out(s, "FLAGS ");
        imap_write_flags(&s->out, s->mb, imap_msg_flags(s, m->uid, m->flags));
        break;
    case F_IDATE:
        imap_date_time_format(m->idate, date, sizeof date);
        imap_out(s, "INTERNALDATE \"%s\"", date);
        break;
    case F_SIZE: imap_out(s, "RFC822.SIZE %u", m->vsize); break;
    case F_MODSEQ: imap_out(s, "MODSEQ (%llu)", (unsigned long long)m->modseq); break;
    case F_ENV:
        imap_out(s, "ENVELOPE ");
        imap_write_envelope(&s->out, root->hdr);
        break;
    case F_BODY:
    case F_BS:
        imap_out(s, "%s ", it->kind == F_BS ? "BODYSTRUCTURE" : "BODY");
        imap_write_bodystructure(&s->out, root, it->kind == F_BS);
        break;
    case F_SECTION: write_section(s, it, root, &f->msg); break;
    }
}

static void fetch_one(struct imap_session *s, struct fetch_state *f, size_t idx)
{
    struct mailbox_msg m = mailbox_msgs(s->mb)[idx];
    struct imap_part root = {0};
    bool have = false;
    if (f->need_body || f->need_hdr) {
        struct buf path = {0};
        int rc = mailbox_msg_path(s->mb, m.uid, &path);
        if (rc == 0) {
            rc = f->need_body ? imap_read_message(path.data, &f->msg, (size_t)1 << 30)
                              : imap_read_header(path.data, &f->msg, FETCH_HEADER_MAX);
        }
        buf_free(&path);
        if (rc < 0)
            return; /* expunged meanwhile: the next update reports it */
        have = imap_mime_parse(f->msg.data ? f->msg.data : "", f->msg.len, &root) == 0;
    }
    bool seen_now = false;
    if (f->set_seen && !s->readonly && !(m.flags & MB_SEEN)) {
        uint32_t nf;
        uint64_t ms;
        const char *err;
        if (mailbox_set_flags(s->mb, m.uid, MB_FLAGS_ADD, MB_SEEN, 0, &nf, &ms, &err) == 0) {
            m.flags = nf, m.modseq = ms, seen_now = true;
            imap_note(s, STORE_EV_FLAGS, mailbox_name(s->mb), m.uid, nf, ms);
        }
    }
    imap_out(s, "* %zu FETCH (", idx + 1);
    bool first = true;
    if (!f->has_uid && (s->cur->uid || 0)) {
        imap_out(s, "UID %u", m.uid);
        first = false;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (!have && f->it[i].kind >= F_ENV)
            continue;
        imap_out(s, "%s", first ? "" : " ");
        first = false;
        write_item(s, f, &f->it[i], &m, &root);
    }
    if (seen_now && !f->has_flags) {
        imap_out(s, "%sFLAGS ", first ? "" : " ");
        imap_write_flags(&s->out, s->mb, imap_msg_flags(s, m.uid, m.flags));
        first = false;
    }
    if ((f->changedsince || (s->condstore && seen_now)) && !f->has_modseq)
        imap_out(s, "%sMODSEQ (%llu)", first ? "" : " ", (unsigned long long)m.modseq);
    imap_out(s, ")\r\n");
    imap_mime_free(&root);
    buf_free(&f->msg);
}

enum imap_cmd_result imap_cmd_fetch(struct imap_session *s, struct imap_cmd *c)
{
    if (!c->state) {
        enum imap_cmd_result r = fetch_setup(s, c);
        if (r != CMD_MORE)
            return r;
    }
    struct fetch_state *f = c->state;
    size_t n = mailbox_count(s->mb);
    while (f->next < n) {
        size_t i = f->next++;
        const struct mailbox_msg *m = &mailbox_msgs(s->mb)[i];
        if (!seqset_contains(&f->set, c->uid ? m->uid : (uint32_t)(i + 1)))
            continue;
        if (f->changedsince && m->modseq <= f->changedsince)
            continue;
        fetch_one(s, f, i);
        if (s->out.len > FETCH_OUT_CHUNK)
            return CMD_MORE;
    }
    return imap_ok(s, c, "Fetch completed.");
}
