/* cmd_list.c: LIST (with LIST-EXTENDED selection and RETURN options,
 * SPECIAL-USE and LIST-STATUS), LSUB and STATUS. Special-use attributes
 * belong to the names of spec §6 (Drafts, Junk, Trash, Sent, "Sent
 * Messages"); such folders are listed only when they exist. Worker. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/session_int.h"
#include "store/mailbox.h"

struct list_opts {
    bool lsub, sel_subscribed, sel_special, ret_subscribed, ret_special, ret_children;
    const struct imap_arg *status; /* RETURN (STATUS (...)) items */
};

/* IMAP wildcard match: '*' anything, '%' anything but the separator '.'. */
static bool match(const char *p, const char *s)
{
    for (; *p; p++, s++) {
        if (*p == '*' || *p == '%') {
            for (const char *t = s;; t++) {
                if (match(p + 1, t))
                    return true;
                if (!*t || (*p == '%' && *t == '.'))
                    return false;
            }
        }
        if (!*s || (*p != *s && !(strncasecmp(s, "INBOX", 5) == 0 && s[5] == '\0' &&
                                 strcasecmp(p, "INBOX") == 0)))
            return false;
    }
    return *s == '\0';
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

static bool in_list(char **names, const char *name)
{
    for (size_t i = 0; names && names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static bool has_children(char **all, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; all[i]; i++)
        if (strncmp(all[i], name, n) == 0 && all[i][n] == '.')
            return true;
    return false;
}

static void write_status(struct imap_session *s, const char *name, const struct imap_arg *items,
                         size_t n);

static void list_one(struct imap_session *s, const struct list_opts *o, char **all, char **subs,
                     const char *name)
{
    bool sub = in_list(subs, name);
    const char *su = special_use(name);
    if ((o->lsub || o->sel_subscribed) && !sub)
        return;
    if (o->sel_special && !su)
        return;
    struct buf attrs = {0};
    buf_append_str(&attrs, has_children(all, name) ? "\\HasChildren" : "\\HasNoChildren");
    if (sub && (o->ret_subscribed || o->sel_subscribed) && !o->lsub)
        buf_append_str(&attrs, " \\Subscribed");
    if (su && !o->lsub)
        buf_printf(&attrs, " %s", su);
    imap_out(s, "* %s (%s) \".\" ", o->lsub ? "LSUB" : "LIST", attrs.data);
    imap_write_quoted_or_literal(&s->out, name, strlen(name));
    imap_out(s, "\r\n");
    buf_free(&attrs);
    if (o->status)
        write_status(s, name, o->status->list, o->status->n);
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
        else if (!imap_arg_atom_eq(a, "REMOTE") && !imap_arg_atom_eq(a, "RECURSIVEMATCH"))
            return -1;
    }
    return 0;
}

enum cmd_result cmd_list(struct imap_session *s, struct imap_cmd *c)
{
    struct list_opts o = {.lsub = strcmp(c->name, "LSUB") == 0};
    size_t i = 0;
    if (!o.lsub && i < c->n && c->a[i].type == IMAP_ARG_LIST && parse_select(&o, &c->a[i++]) < 0)
        return imap_bad(s, c, "Invalid selection options.");
    if (i + 2 > c->n || !imap_arg_is_string(&c->a[i]))
        return imap_bad(s, c, "Invalid arguments.");
    const char *ref = c->a[i++].str;
    const struct imap_arg *pats = &c->a[i++];
    if (i < c->n && (o.lsub || !imap_arg_atom_eq(&c->a[i], "RETURN") || i + 2 != c->n ||
                     c->a[i + 1].type != IMAP_ARG_LIST || parse_return(&o, &c->a[i + 1]) < 0))
        return imap_bad(s, c, "Invalid return options.");
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
    for (size_t k = 0; all[k]; k++) {
        for (size_t p = 0; p < pn; p++) {
            if (!imap_arg_is_string(&pv[p]))
                continue;
            struct buf full = {0};
            buf_printf(&full, "%s%s", ref, pv[p].str);
            bool m = full.data && match(full.data, all[k]);
            buf_free(&full);
            if (m) {
                list_one(s, &o, all, subs, all[k]);
                break;
            }
        }
    }
    folder_list_free(all);
    if (subs)
        folder_list_free(subs);
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
    size_t count = mailbox_count(mb), unseen = 0;
    uint64_t size = 0;
    for (size_t i = 0; i < count; i++) {
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
            imap_out(s, "%sRECENT 0", sp);
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

enum cmd_result cmd_status(struct imap_session *s, struct imap_cmd *c)
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
