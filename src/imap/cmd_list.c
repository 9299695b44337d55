/* cmd_list.c: LIST (with LIST-EXTENDED selection and RETURN options,
 * SPECIAL-USE and LIST-STATUS), LSUB and STATUS. Special-use attributes
 * belong to the names of spec §6 (Drafts, Junk, Trash, Sent, "Sent
 * Messages"); such folders are listed only when they exist. Worker. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/session_int.h"
#include "store/store.h"

struct list_opts {
    bool lsub, sel_subscribed, sel_special, recursive, ret_subscribed, ret_special, ret_children;
    bool ext; /* LIST-EXTENDED syntax: selection or return options, pattern list */
    const struct imap_arg *status; /* RETURN (STATUS (...)) items */
};

/* IMAP wildcard match: '*' anything, '%' anything but the separator '.';
 * other bytes match themselves, and the name INBOX also matches where the
 * rest of the pattern is any case of "INBOX" (RFC 3501 5.1). One pass over
 * the pattern keeps, for each prefix of the name, whether the pattern so
 * far matches it: time |pattern| x |name|. (Trying each extent of each
 * wildcard recursively took exponential time: LIST "" "*****...x" with
 * twenty stars kept a worker busy for minutes.) */
static bool match(const char *p, const char *s)
{
    size_t n = strlen(s);
    bool inbox = strcasecmp(s, "INBOX") == 0, m = false;
    bool *cur = calloc(2 * (n + 1), sizeof *cur);
    if (!cur)
        return false;
    bool *next = cur + n + 1;
    cur[0] = true; /* the empty pattern matches the empty prefix */
    for (;; p++) {
        if (inbox && cur[0] && strcasecmp(p, "INBOX") == 0) {
            m = true;
            break;
        }
        if (!*p) {
            m = cur[n];
            break;
        }
        bool any = false, run = false;
        for (size_t j = 0; j <= n; j++) {
            if (*p == '*' || *p == '%') {
                if (*p == '%' && j > 0 && s[j - 1] == '.')
                    run = false; /* '%' does not reach across a separator */
                run = run || cur[j];
                next[j] = run;
            } else {
                next[j] = j > 0 && cur[j - 1] && s[j - 1] == *p;
            }
            any = any || next[j];
        }
        if (!any)
            break;
        bool *t = cur;
        cur = next;
        next = t;
    }
    free(cur < next ? cur : next);
    return m;
}

static const char *special_use(const char *name)
{
    if (strcmp(name, "Drafts") == 0)
        return "\\Drafts";
    if (strcmp(name, "Junk") == 0)
        return "\\Junk";
    if (strcmp(name, "Trash") == 0)
        return "\\Trash";
    if (strcmp(name, "Sent") == 0 || strcmp(name, "Sent Messages") == 0)
        return "\\Sent";
    return NULL;
}

/* One name LIST or LSUB may return: a folder, a level that exists only as
 * the parent of folders (Maildir++ keeps "par.kid.leaf" as the directory
 * .par.kid.leaf alone, so "par" and "par.kid" have none), or a subscribed
 * name whose folder is gone. */
#define LE_EXISTS     0x01
#define LE_SUB        0x02
#define LE_HAS_KIDS   0x04 /* a folder below it exists */
#define LE_HAS_SUBKID 0x08 /* a subscribed name below it */

struct lent {
    char *name; /* points into the folder or subscription lists */
    size_t len; /* of the name, or of a parent: its prefix of name */
    unsigned flags;
};

struct lents {
    struct lent *v;
    size_t n, cap;
};

static int lents_add(struct lents *l, char *name, size_t len, unsigned flags)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        struct lent *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = (struct lent){name, len, flags};
    return 0;
}

/* A name and each of its parent levels. */
static int lents_add_tree(struct lents *l, char *name, unsigned self, unsigned parent)
{
    for (char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.'))
        if (dot > name && lents_add(l, name, (size_t)(dot - name), parent) < 0)
            return -1;
    return lents_add(l, name, strlen(name), self);
}

static bool is_inbox(const struct lent *e)
{
    return e->len == 5 && strncmp(e->name, "INBOX", 5) == 0;
}

static int lent_cmp(const void *a, const void *b)
{
    const struct lent *x = a, *y = b;
    if (is_inbox(x) != is_inbox(y))
        return is_inbox(x) ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : x->len < y->len ? -1 : x->len > y->len;
}

/* Sorted ("INBOX" first), one entry a name, names NUL-terminated copies.
 * On failure l->n is 0 (nothing of it to free but l->v). */
static int lents_build(struct lents *l, char **all, char **subs)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && all[i]; i++)
        rc = lents_add_tree(l, all[i], LE_EXISTS, LE_HAS_KIDS);
    for (size_t i = 0; rc == 0 && subs && subs[i]; i++)
        rc = lents_add_tree(l, subs[i], LE_SUB, LE_HAS_SUBKID);
    if (rc < 0) {
        l->n = 0;
        return -1;
    }
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, lent_cmp);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (k && lent_cmp(&l->v[k - 1], &l->v[i]) == 0)
            l->v[k - 1].flags |= l->v[i].flags;
        else
            l->v[k++] = l->v[i];
    }
    l->n = k;
    for (size_t i = 0; i < l->n; i++) {
        char *c = strndup(l->v[i].name, l->v[i].len);
        if (!c) {
            for (size_t j = 0; j < i; j++)
                free(l->v[j].name);
            l->n = 0;
            return -1;
        }
        l->v[i].name = c;
    }
    return 0;
}

static void lents_free(struct lents *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
}

static void write_status(struct imap_session *s, const char *name, const struct imap_arg *items,
                         size_t n);

static void list_one(struct imap_session *s, const struct list_opts *o, const struct lent *e,
                     bool childinfo)
{
    const char *name = e->name;
    bool exists = e->flags & LE_EXISTS, sub = e->flags & LE_SUB;
    const char *su = exists ? special_use(name) : NULL;
    if (o->sel_special && !su)
        return;
    struct buf attrs = {0};
    if (!exists) /* RFC 5258: \NonExistent (implies \Noselect) in LIST-EXTENDED */
        buf_append_str(&attrs, o->ext && !o->lsub ? "\\NonExistent" : "\\Noselect");
    if (e->flags & LE_HAS_KIDS)
        buf_printf(&attrs, "%s\\HasChildren", attrs.len ? " " : "");
    else if (exists)
        buf_printf(&attrs, "%s\\HasNoChildren", attrs.len ? " " : "");
    if (sub && (o->ret_subscribed || o->sel_subscribed) && !o->lsub)
        buf_printf(&attrs, "%s\\Subscribed", attrs.len ? " " : "");
    if (su && !o->lsub)
        buf_printf(&attrs, "%s%s", attrs.len ? " " : "", su);
    imap_out(s, "* %s (%s) \".\" ", o->lsub ? "LSUB" : "LIST", attrs.data ? attrs.data : "");
    imap_write_quoted_or_literal(&s->out, name, strlen(name));
    if (childinfo)
        imap_out(s, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    imap_out(s, "\r\n");
    buf_free(&attrs);
    if (o->status && exists)
        write_status(s, name, o->status->list, o->status->n);
}

static bool match_any(const char *ref, const struct imap_arg *pv, size_t pn, const char *name)
{
    for (size_t p = 0; p < pn; p++) {
        if (!imap_arg_is_string(&pv[p]))
            continue;
        struct buf full = {0};
        buf_printf(&full, "%s%s", ref, pv[p].str);
        bool m = full.data && match(full.data, name);
        buf_free(&full);
        if (m)
            return true;
    }
    return false;
}

/* LSUB: a subscribed name below e that the pattern matches itself. */
static bool subkid_matched(const struct lents *l, size_t i, const char *ref,
                           const struct imap_arg *pv, size_t pn)
{
    size_t n = strlen(l->v[i].name);
    for (size_t k = i + 1; k < l->n; k++) {
        const struct lent *d = &l->v[k];
        if (strncmp(d->name, l->v[i].name, n) != 0 || d->name[n] != '.')
            break; /* sorted: the names below e follow it */
        if ((d->flags & LE_SUB) && match_any(ref, pv, pn, d->name))
            return true;
    }
    return false;
}

/* Which names a LIST / LSUB returns (RFC 3501 6.3.8/6.3.9, RFC 5258 3). */
static void list_names(struct imap_session *s, const struct list_opts *o, const struct lents *l,
                       const char *ref, const struct imap_arg *pv, size_t pn)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct lent *e = &l->v[i];
        bool sub = e->flags & LE_SUB, subkid = e->flags & LE_HAS_SUBKID;
        if (!match_any(ref, pv, pn, e->name))
            continue;
        if (o->lsub) {
            /* a parent of a subscribed name the pattern does not reach
             * ("%"): returned as \Noselect (RFC 3501 6.3.9) */
            if (sub || (subkid && !subkid_matched(l, i, ref, pv, pn)))
                list_one(s, o, sub ? e : &(struct lent){e->name, e->len, e->flags & ~LE_EXISTS},
                         false);
        } else if (o->sel_subscribed) {
            if (sub || (o->recursive && subkid))
                list_one(s, o, e, o->recursive && subkid);
        } else if (e->flags & (LE_EXISTS | LE_HAS_KIDS)) {
            list_one(s, o, e, false);
        }
    }
}

static int parse_return(struct list_opts *o, const struct imap_arg *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct imap_arg *a = &l->list[i];
        if (imap_arg_atom_eq(a, "SUBSCRIBED"))
            o->ret_subscribed = true;
        else if (imap_arg_atom_eq(a, "SPECIAL-USE"))
            o->ret_special = true;
        else if (imap_arg_atom_eq(a, "CHILDREN"))
            o->ret_children = true;
        else if (imap_arg_atom_eq(a, "STATUS") && i + 1 < l->n && l->list[i + 1].type == IMAP_ARG_LIST)
            o->status = &l->list[++i];
        else
            return -1;
    }
    return 0;
}

static int parse_select(struct list_opts *o, const struct imap_arg *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct imap_arg *a = &l->list[i];
        if (imap_arg_atom_eq(a, "SUBSCRIBED"))
            o->sel_subscribed = true;
        else if (imap_arg_atom_eq(a, "SPECIAL-USE"))
            o->sel_special = true;
        else if (imap_arg_atom_eq(a, "RECURSIVEMATCH"))
            o->recursive = true;
        else if (!imap_arg_atom_eq(a, "REMOTE"))
            return -1;
    }
    /* RFC 5258 3: RECURSIVEMATCH alone (or with REMOTE) is a BAD; the only
     * selection option it can refine here is SUBSCRIBED */
    return o->recursive && !o->sel_subscribed ? -1 : 0;
}

enum imap_cmd_result imap_cmd_list(struct imap_session *s, struct imap_cmd *c)
{
    struct list_opts o = {.lsub = strcmp(c->name, "LSUB") == 0};
    size_t i = 0;
    if (!o.lsub && i < c->n && c->a[i].type == IMAP_ARG_LIST) {
        o.ext = true;
        if (parse_select(&o, &c->a[i++]) < 0)
            return imap_bad(s, c, "Invalid selection options.");
    }
    if (i + 2 > c->n || !imap_arg_is_string(&c->a[i]))
        return imap_bad(s, c, "Invalid arguments.");
    const char *ref = c->a[i++].str;
    const struct imap_arg *pats = &c->a[i++];
    if (i < c->n && (o.lsub || !imap_arg_atom_eq(&c->a[i], "RETURN") || i + 2 != c->n ||
                     c->a[i + 1].type != IMAP_ARG_LIST || parse_return(&o, &c->a[i + 1]) < 0))
        return imap_bad(s, c, "Invalid return options.");
    o.ext |= i < c->n || pats->type == IMAP_ARG_LIST;
    const struct imap_arg *pv = pats->type == IMAP_ARG_LIST ? pats->list : pats;
    size_t pn = pats->type == IMAP_ARG_LIST ? pats->n : 1;
    if (pn == 1 && imap_arg_is_string(pv) && pv->len == 0 && !o.lsub) {
        imap_out(s, "* LIST (\\Noselect) \".\" \"\"\r\n");
        return imap_ok(s, c, "List completed.");
    }
    char **all = NULL, **subs = NULL;
    const char *err;
    if (!imap_account_dir(s) || folder_list(s->account_dir, &all, &err) < 0)
        return imap_no(s, c, "Internal error occurred. Refer to server log for more information.");
    folder_subscriptions(s->account_dir, &subs, &err);
    struct lents l = {0};
    bool built = lents_build(&l, all, subs) == 0;
    if (built)
        list_names(s, &o, &l, ref, pv, pn);
    lents_free(&l);
    folder_list_free(all);
    if (subs)
        folder_list_free(subs);
    if (!built)
        return imap_no(s, c, "Out of memory.");
    return imap_ok(s, c, o.lsub ? "Lsub completed." : "List completed.");
}

static int status_open(struct imap_session *s, const char *name, struct mailbox **mb,
                       bool *borrowed)
{
    const char *err;
    *borrowed = s->mb && strcmp(mailbox_name(s->mb), name) == 0;
    if (*borrowed) {
        *mb = s->mb;
        return 0;
    }
    if (!folder_name_valid(name) || !imap_account_dir(s) ||
        mailbox_open(s->account_dir, name, mb, &err) < 0)
        return -1;
    mailbox_refresh(*mb, NULL, NULL, &err);
    return 0;
}

static void write_status(struct imap_session *s, const char *name, const struct imap_arg *items,
                         size_t n)
{
    struct mailbox *mb;
    bool borrowed;
    if (status_open(s, name, &mb, &borrowed) < 0)
        return;
    size_t count = mailbox_count(mb), unseen = 0, recent = 0;
    uint64_t size = 0;
    /* \Recent: not yet claimed by a session (the selected folder: ours) */
    uint32_t first = UINT32_MAX;
    const char *err;
    if (!borrowed && mailbox_recent(mb, false, &first, &err) < 0)
        first = UINT32_MAX;
    for (size_t i = 0; i < count; i++) {
        uint32_t uid = mailbox_msgs(mb)[i].uid;
        recent += borrowed ? imap_recent(s, uid) : uid >= first;
        unseen += !(mailbox_msgs(mb)[i].flags & MB_SEEN);
        size += mailbox_msgs(mb)[i].vsize;
    }
    imap_out(s, "* STATUS ");
    imap_write_quoted_or_literal(&s->out, name, strlen(name));
    imap_out(s, " (");
    for (size_t i = 0; i < n; i++) {
        const struct imap_arg *a = &items[i];
        const char *sp = i ? " " : "";
        if (imap_arg_atom_eq(a, "MESSAGES"))
            imap_out(s, "%sMESSAGES %zu", sp, count);
        else if (imap_arg_atom_eq(a, "RECENT"))
            imap_out(s, "%sRECENT %zu", sp, recent);
        else if (imap_arg_atom_eq(a, "UIDNEXT"))
            imap_out(s, "%sUIDNEXT %u", sp, mailbox_uidnext(mb));
        else if (imap_arg_atom_eq(a, "UIDVALIDITY"))
            imap_out(s, "%sUIDVALIDITY %u", sp, mailbox_uidvalidity(mb));
        else if (imap_arg_atom_eq(a, "UNSEEN"))
            imap_out(s, "%sUNSEEN %zu", sp, unseen);
        else if (imap_arg_atom_eq(a, "HIGHESTMODSEQ"))
            imap_out(s, "%sHIGHESTMODSEQ %llu", sp, (unsigned long long)mailbox_highestmodseq(mb));
        else if (imap_arg_atom_eq(a, "SIZE"))
            imap_out(s, "%sSIZE %llu", sp, (unsigned long long)size);
    }
    imap_out(s, ")\r\n");
    if (!borrowed)
        mailbox_close(mb);
}

static bool status_items_ok(const struct imap_arg *l)
{
    static const char *const ok[] = {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY",
                                     "UNSEEN", "HIGHESTMODSEQ", "SIZE"};
    for (size_t i = 0; i < l->n; i++) {
        bool found = false;
        for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
            found |= imap_arg_atom_eq(&l->list[i], ok[k]);
        if (!found)
            return false;
    }
    return l->n > 0;
}

enum imap_cmd_result imap_cmd_status(struct imap_session *s, struct imap_cmd *c)
{
    const char *name = c->n == 2 ? imap_mailbox_arg(&c->a[0]) : NULL;
    if (!name || c->a[1].type != IMAP_ARG_LIST || !status_items_ok(&c->a[1]))
        return imap_bad(s, c, "Invalid arguments.");
    struct mailbox *mb;
    bool borrowed;
    if (status_open(s, name, &mb, &borrowed) < 0) {
        imap_tagged(s, c, "NO", "[NONEXISTENT] Mailbox doesn't exist: %s", name);
        return CMD_DONE;
    }
    if (!borrowed)
        mailbox_close(mb);
    write_status(s, name, c->a[1].list, c->a[1].n);
    return imap_ok(s, c, "Status completed.");
}
