/* cmd_misc.c: CAPABILITY, NOOP/CHECK, LOGOUT, ID, ENABLE, NAMESPACE and
 * COMPRESS DEFLATE (the owner switches the transport after the OK). */
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "imap/session_int.h"
#include "store/store.h"

enum imap_cmd_result imap_cmd_capability(struct imap_session *s, struct imap_cmd *c)
{
    struct buf caps = {0};
    imap_capabilities(s, &caps);
    imap_out(s, "* CAPABILITY %.*s\r\n", (int)caps.len, caps.data ? caps.data : "");
    buf_free(&caps);
    return imap_ok(s, c, "Capability completed.");
}

/* Worker: a sync picks up deliveries; imap_tagged reports them. */
enum imap_cmd_result imap_cmd_noop(struct imap_session *s, struct imap_cmd *c)
{
    const char *err;
    if (s->mb)
        mailbox_sync(s->mb, false, &err);
    return imap_ok(s, c, strcmp(c->name, "CHECK") == 0 ? "Check completed." : "NOOP completed.");
}

enum imap_cmd_result imap_cmd_logout(struct imap_session *s, struct imap_cmd *c)
{
    imap_out(s, "* BYE Logging out\r\n%s OK Logout completed.\r\n", c->tag);
    s->mode = IM_CLOSED;
    s->act = IMAP_ACT_CLOSE;
    return CMD_DONE;
}

/* The client's ID is not logged or kept (privacy); we answer Dovecot's. */
enum imap_cmd_result imap_cmd_id(struct imap_session *s, struct imap_cmd *c)
{
    if (c->n != 1 || (c->a[0].type != IMAP_ARG_NIL && c->a[0].type != IMAP_ARG_LIST))
        return imap_bad(s, c, "Invalid parameters");
    imap_out(s, "* ID (\"name\" \"Dovecot\")\r\n");
    return imap_ok(s, c, "ID completed.");
}

enum imap_cmd_result imap_cmd_enable(struct imap_session *s, struct imap_cmd *c)
{
    if (c->n == 0)
        return imap_bad(s, c, "Missing arguments.");
    struct buf en = {0};
    for (size_t i = 0; i < c->n; i++) {
        if (c->a[i].type != IMAP_ARG_ATOM) {
            buf_free(&en);
            return imap_bad(s, c, "Invalid arguments.");
        }
        if (strcasecmp(c->a[i].str, "CONDSTORE") == 0 && !s->condstore) {
            s->condstore = true;
            buf_append_str(&en, " CONDSTORE");
        } else if (strcasecmp(c->a[i].str, "QRESYNC") == 0 && !s->qresync) {
            s->qresync = true;
            s->condstore = true;
            buf_append_str(&en, " QRESYNC");
        }
    }
    imap_out(s, "* ENABLED%.*s\r\n", (int)en.len, en.data ? en.data : "");
    buf_free(&en);
    return imap_ok(s, c, "Enabled.");
}

enum imap_cmd_result imap_cmd_namespace(struct imap_session *s, struct imap_cmd *c)
{
    imap_out(s, "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
    return imap_ok(s, c, "Namespace completed.");
}

enum imap_cmd_result imap_cmd_compress(struct imap_session *s, struct imap_cmd *c)
{
    if (c->n != 1 || !imap_arg_atom_eq(&c->a[0], "DEFLATE"))
        return imap_bad(s, c, "Unknown compression mechanism.");
    if (!s->cfg->imap_compress)
        return imap_no(s, c, "Compression is disabled.");
    if (s->compress) {
        imap_out(s, "%s NO [COMPRESSIONACTIVE] Compression already active.\r\n", c->tag);
        return CMD_DONE;
    }
    imap_out(s, "%s OK Begin compression.\r\n", c->tag);
    s->compress = true;
    s->act = IMAP_ACT_COMPRESS;
    return CMD_ASYNC;
}

enum imap_cmd_result imap_cmd_starttls(struct imap_session *s, struct imap_cmd *c)
{
    if (s->tls) {
        imap_out(s, "%s BAD TLS is already active.\r\n", c->tag);
        return CMD_DONE;
    }
    imap_out(s, "%s OK Begin TLS negotiation now.\r\n", c->tag);
    s->act = IMAP_ACT_STARTTLS;
    return CMD_ASYNC;
}
