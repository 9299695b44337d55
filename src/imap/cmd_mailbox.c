/* cmd_mailbox.c: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE on the
 * account's Maildir++ folders (store's folder functions). Worker. */
#include <string.h>

#include "imap/session_int.h"
#include "store/store.h"

#define MB_ERR "Internal error occurred. Refer to server log for more information."

static const char *name_arg(struct imap_cmd *c, size_t i)
{
    const char *n = i < c->n ? imap_mailbox_arg(&c->a[i]) : NULL;
    if (!n)
        return NULL;
    size_t len = strlen(n);
    return len && n[len - 1] == '.' ? NULL : n; /* "A." (CREATE's trailing separator) */
}

enum imap_cmd_result imap_cmd_create(struct imap_session *s, struct imap_cmd *c)
{
    const char *name = c->n == 1 ? imap_mailbox_arg(&c->a[0]) : NULL;
    if (!name)
        return imap_bad(s, c, "Invalid arguments.");
    char trimmed[MAILBOX_NAME_MAX + 2];
    size_t len = strlen(name);
    if (len && len <= MAILBOX_NAME_MAX + 1 && name[len - 1] == '.') {
        memcpy(trimmed, name, len - 1);
        trimmed[len - 1] = '\0';
        name = trimmed;
    }
    const char *err;
    if (strcmp(name, "INBOX") == 0)
        return imap_no(s, c, "[ALREADYEXISTS] Mailbox already exists");
    if (!folder_name_valid(name))
        return imap_no(s, c, "[CANNOT] Invalid mailbox name");
    if (!imap_account_dir(s) || folder_create(s->account_dir, name, &err) < 0)
        return imap_no(s, c, "[ALREADYEXISTS] Mailbox already exists");
    return imap_ok(s, c, "Create completed.");
}

enum imap_cmd_result imap_cmd_delete(struct imap_session *s, struct imap_cmd *c)
{
    const char *name = c->n == 1 ? name_arg(c, 0) : NULL;
    const char *err;
    if (!name)
        return imap_bad(s, c, "Invalid arguments.");
    if (strcmp(name, "INBOX") == 0)
        return imap_no(s, c, "INBOX can't be deleted.");
    if (s->mb && strcmp(mailbox_name(s->mb), name) == 0)
        imap_close_mailbox(s);
    if (!imap_account_dir(s) || folder_delete(s->account_dir, name, &err) < 0) {
        imap_tagged(s, c, "NO", "[NONEXISTENT] Mailbox doesn't exist: %s", name);
        return CMD_DONE;
    }
    return imap_ok(s, c, "Delete completed.");
}

enum imap_cmd_result imap_cmd_rename(struct imap_session *s, struct imap_cmd *c)
{
    const char *from = c->n == 2 ? name_arg(c, 0) : NULL, *to = from ? name_arg(c, 1) : NULL;
    const char *err;
    if (!from || !to)
        return imap_bad(s, c, "Invalid arguments.");
    if (strcmp(from, "INBOX") == 0)
        return imap_no(s, c, "[CANNOT] Renaming INBOX is not supported.");
    if (!folder_name_valid(to))
        return imap_no(s, c, "[CANNOT] Invalid mailbox name");
    if (s->mb && strcmp(mailbox_name(s->mb), from) == 0)
        imap_close_mailbox(s);
    if (!imap_account_dir(s) || folder_rename(s->account_dir, from, to, &err) < 0) {
        imap_tagged(s, c, "NO", "[NONEXISTENT] Mailbox doesn't exist: %s", from);
        return CMD_DONE;
    }
    return imap_ok(s, c, "Rename completed.");
}

enum imap_cmd_result imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *c)
{
    bool on = strcmp(c->name, "SUBSCRIBE") == 0;
    const char *name = c->n == 1 ? name_arg(c, 0) : NULL;
    const char *err;
    if (!name)
        return imap_bad(s, c, "Invalid arguments.");
    if (!imap_account_dir(s) || folder_subscribe(s->account_dir, name, on, &err) < 0)
        return imap_no(s, c, MB_ERR);
    return imap_ok(s, c, on ? "Subscribe completed." : "Unsubscribe completed.");
}
