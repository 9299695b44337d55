/* cmd_copy.c: COPY / MOVE and their UID forms, with UIDPLUS's
 * [COPYUID uidvalidity src-uids dst-uids] (for MOVE as an untagged OK
 * before the EXPUNGEs, RFC 6851) and [TRYCREATE]. Worker thread. */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "imap/seqset.h"
#include "imap/session_int.h"
#include "store/store.h"

enum imap_cmd_result imap_cmd_copy(struct imap_session *s, struct imap_cmd *c)
{
    bool move = strstr(c->name, "MOVE") != NULL;
    struct seqset set;
    const char *name = c->n == 2 ? imap_mailbox_arg(&c->a[1]) : NULL;
    if (!name || imap_parse_msgset(s, &c->a[0], c->uid, &set) < 0)
        return imap_bad(s, c, "Invalid arguments.");
    if (move && s->readonly) {
        seqset_free(&set);
        return imap_no(s, c, "Mailbox is read-only.");
    }
    struct mailbox *dst = NULL;
    const char *err;
    if (!folder_name_valid(name) || mailbox_open(s->account_dir, name, &dst, &err) < 0) {
        seqset_free(&set);
        imap_tagged(s, c, "NO", "[TRYCREATE] Mailbox doesn't exist: %s", name);
        return CMD_DONE;
    }
    /* the store checks each copy against the quota; over it, the copies
     * made so far are removed again (RFC 3501 6.4.7: all or nothing) */
    mailbox_set_quota(dst, quota_limit_bytes(s->cfg->max_mailbox_size_mb));
    bool overquota = false;
    size_t n = mailbox_count(s->mb), k = 0;
    uint32_t *src = malloc((n ? n : 1) * sizeof *src), *out = malloc((n ? n : 1) * sizeof *out);
    const struct mailbox_msg *m = mailbox_msgs(s->mb);
    for (size_t i = 0; src && out && i < n; i++) {
        if (!seqset_contains(&set, c->uid ? m[i].uid : (uint32_t)(i + 1)))
            continue;
        int rc = move ? mailbox_move(s->mb, m[i].uid, dst, &out[k], &err)
                      : mailbox_copy(s->mb, m[i].uid, dst, &out[k], &err);
        if (rc == MAILBOX_EQUOTA) {
            overquota = true;
            break;
        }
        if (rc == 0)
            src[k++] = m[i].uid;
    }
    seqset_free(&set);
    if (overquota) { /* MOVE never gets here within one account */
        uint64_t ms;
        for (size_t j = 0; j < k; j++)
            if (mailbox_expunge(dst, out[j], &ms, &err) < 0)
                log_warn("imap: copy undo: %s", err);
        mailbox_close(dst);
        free(src);
        free(out);
        return imap_no(s, c, "[OVERQUOTA] " QUOTA_REASON);
    }
    for (size_t j = 0; j < k; j++) {
        uint32_t seq;
        const struct mailbox_msg *sm = mailbox_find(s->mb, src[j], &seq);
        imap_note(s, STORE_EV_APPEND, name, out[j], sm ? sm->flags : 0, 0);
        if (move)
            imap_note(s, STORE_EV_EXPUNGE, mailbox_name(s->mb), src[j], 0, 0);
    }
    uint32_t uv = mailbox_uidvalidity(dst);
    mailbox_close(dst);
    struct buf code = {0};
    if (k) {
        buf_printf(&code, "[COPYUID %u ", uv);
        seqset_write(&code, src, k);
        buf_append(&code, " ", 1);
        seqset_write(&code, out, k);
        buf_append_str(&code, "] ");
    }
    free(src);
    free(out);
    const char *cd = code.data ? code.data : "";
    if (move) {
        if (k)
            imap_out(s, "* OK %.*sMoved UIDs.\r\n", (int)code.len, cd);
        imap_tagged(s, c, "OK", "Move completed.");
    } else {
        imap_tagged(s, c, "OK", "%sCopy completed.", cd);
    }
    buf_free(&code);
    return CMD_DONE;
}
