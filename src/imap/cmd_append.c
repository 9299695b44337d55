/* cmd_append.c: APPEND (with LITERAL+ and synchronising literals, both
 * handled by the reader; a message beyond LIM_IMAP_APPEND_MEM reaches us
 * in the session's spool file, never whole in memory): flags, internal date, quota check
 * ([OVERQUOTA]), [TRYCREATE] for a missing folder, and UIDPLUS's
 * [APPENDUID]. Watchers of the folder are notified. Worker thread. The
 * file itself is written by store (store_append: durable, quota-counted). */
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "imap/imap_date.h"
#include "imap/session_int.h"
#include "store/store.h"

/* fd >= 0: the message is in that file (the spool), copied in chunks. */
static enum imap_cmd_result store_message(struct imap_session *s, struct imap_cmd *c,
                                          const char *name, const char *data, size_t len,
                                          int fd, uint32_t flags, int64_t idate)
{
    struct mailbox *mb = NULL;
    const char *err;
    if (mailbox_open(s->account_dir, name, &mb, &err) < 0) {
        imap_tagged(s, c, "NO", "[TRYCREATE] Mailbox doesn't exist: %s", name);
        return CMD_DONE;
    }
    struct store_opts o = {.compress = s->cfg->store_compress,
                           .quota = quota_cache_shared(),
                           .max_mailbox_size_mb = s->cfg->max_mailbox_size_mb};
    uint32_t uid = 0;
    uint64_t modseq = 0;
    int e = 0;
    enum store_status st =
        fd >= 0 ? store_append_fd(mb, s->account_dir, fd, len, flags, idate, &o, &uid, &modseq, &e)
                : store_append(mb, s->account_dir, data, len, flags, idate, &o, &uid, &modseq, &e);
    uint32_t uidvalidity = mailbox_uidvalidity(mb);
    mailbox_close(mb);
    if (st == STORE_EQUOTA)
        return imap_no(s, c, "[OVERQUOTA] " QUOTA_REASON);
    if (st != STORE_OK) {
        log_error("imap: append failed: %s", strerror(e));
        return imap_no(s, c, "Internal error occurred. Refer to server log for more information.");
    }
    if (!uid) /* stored durably; its UID comes with the next sync */
        return imap_ok(s, c, "Append completed.");
    imap_note(s, STORE_EV_APPEND, name, uid, flags, modseq);
    imap_tagged(s, c, "OK", "[APPENDUID %u %u] Append completed.", uidvalidity, uid);
    return CMD_DONE;
}

enum imap_cmd_result imap_cmd_append(struct imap_session *s, struct imap_cmd *c)
{
    /* the reader spools only the last literal of an APPEND: anywhere else
     * (a mailbox name) it is no message */
    for (size_t k = 0; k + 1 < c->n; k++)
        if (c->a[k].ext)
            return imap_bad(s, c, "Invalid arguments.");
    const char *name = c->n >= 2 ? imap_mailbox_arg(&c->a[0]) : NULL;
    if (!name || c->n > 4 || !imap_account_dir(s))
        return imap_bad(s, c, "Invalid arguments.");
    size_t i = 1;
    uint32_t flags = 0;
    int64_t idate = 0;
    if (c->a[i].type == IMAP_ARG_LIST && i + 1 < c->n) {
        bool sel = s->mb && strcmp(mailbox_name(s->mb), name) == 0;
        if (imap_parse_flags(s, c->a[i].list, c->a[i].n, sel, &flags) < 0)
            return imap_bad(s, c, "Invalid flags.");
        if (!sel)
            flags &= 0x1f; /* keywords need the folder's keyword file: selected only */
        i++;
    }
    if (c->a[i].type == IMAP_ARG_STRING && i + 1 < c->n) {
        if (imap_date_time_parse(c->a[i].str, &idate) < 0)
            return imap_bad(s, c, "Invalid internal date.");
        i++;
    }
    if (i + 1 != c->n || c->a[i].type != IMAP_ARG_LITERAL)
        return imap_bad(s, c, "Invalid arguments.");
    const char *data = c->a[i].str;
    size_t len = c->a[i].len;
    int fd = -1;
    if (c->a[i].ext && !s->rd.ext_failed && s->append_spool.fd >= 0 && !s->cfg->store_compress) {
        fd = s->append_spool.fd; /* copied from the file in chunks: never in memory */
        len = s->append_spool.size;
    } else if (c->a[i].ext) { /* streamed into the spool by the reader */
        if (s->rd.ext_failed || spool_view(&s->append_spool, &data, &len) < 0) {
            log_error("imap: append spool failed");
            return imap_no(s, c, "[SERVERBUG] Cannot store the message now.");
        }
    }
    if (s->cfg->max_message_size > 0 && len > (size_t)s->cfg->max_message_size)
        return imap_no(s, c, "[LIMIT] Message too large.");
    return store_message(s, c, name, data, len, fd, flags, idate);
}
