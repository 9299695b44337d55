/* greeter.c: the IMAP front door until the full IMAP4rev1 server lands:
 * greeting with capabilities, CAPABILITY, NOOP, STARTTLS (with the
 * plaintext-injection guard), LOGOUT, the over-cap refusal and the
 * shutdown/timeout BYE. Other commands get a tagged BAD. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/limits.h"
#include "core/lines.h"
#include "imap/imap.h"

struct greeter {
    struct conn *c;
    struct lines in;
    unsigned errors;
};

static void capabilities(struct conn *c, char *out, size_t outlen)
{
    snprintf(out, outlen, "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE %s XDELTAPUSH XCHATMAIL",
             conn_is_tls(c) ? "AUTH=PLAIN" : "STARTTLS LOGINDISABLED");
}

static void *greeter_open(struct conn *c)
{
    struct greeter *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->c = c;
    g->in.max = LIM_IMAP_LINE;
    char caps[256];
    capabilities(c, caps, sizeof caps);
    conn_printf(c, "* OK [CAPABILITY %s] %s ready.\r\n", caps, conn_config(c)->mail_domain);
    conn_set_timeout(c, LIM_IMAP_PRELOGIN_MS);
    return g;
}

/* Splits "tag command ..." ; returns false when there is no tag. */
static bool split_tag(const char *line, size_t len, char *tag, size_t taglen, const char **cmd,
                      size_t *cmdlen)
{
    const char *sp = memchr(line, ' ', len);
    size_t tl = sp ? (size_t)(sp - line) : len;
    if (tl == 0 || tl >= taglen)
        return false;
    for (size_t i = 0; i < tl; i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch <= ' ' || ch >= 0x7f || strchr("(){%*\"\\+", ch))
            return false;
    }
    memcpy(tag, line, tl);
    tag[tl] = '\0';
    *cmd = sp ? sp + 1 : line + len;
    *cmdlen = sp ? len - tl - 1 : 0;
    return true;
}

static bool is_cmd(const char *cmd, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(cmd, name, len) == 0;
}

/* Too many consecutive bad commands end the session (Dovecot does too). */
static bool count_error(struct greeter *g)
{
    if (++g->errors < LIM_IMAP_BAD_CMDS)
        return true;
    conn_printf(g->c, "* BYE Too many invalid IMAP commands.\r\n");
    conn_close(g->c);
    return false;
}

static bool greeter_line(struct greeter *g, const char *line, size_t len)
{
    struct conn *c = g->c;
    char tag[64], caps[256];
    const char *cmd;
    size_t cl;
    if (!split_tag(line, len, tag, sizeof tag, &cmd, &cl)) {
        conn_printf(c, "* BAD Error in IMAP command received by server.\r\n");
        return count_error(g);
    } else if (is_cmd(cmd, cl, "CAPABILITY")) {
        capabilities(c, caps, sizeof caps);
        conn_printf(c, "* CAPABILITY %s\r\n%s OK Capability completed.\r\n", caps, tag);
    } else if (is_cmd(cmd, cl, "NOOP")) {
        conn_printf(c, "%s OK NOOP completed.\r\n", tag);
    } else if (is_cmd(cmd, cl, "STARTTLS")) {
        if (conn_is_tls(c)) {
            conn_printf(c, "%s BAD TLS is already active.\r\n", tag);
            return true;
        }
        conn_printf(c, "%s OK Begin TLS negotiation now.\r\n", tag);
        conn_starttls(c);
        return false;
    } else if (is_cmd(cmd, cl, "LOGOUT")) {
        conn_printf(c, "* BYE Logging out\r\n%s OK Logout completed.\r\n", tag);
        conn_close(c);
        return false;
    } else {
        conn_printf(c, "%s BAD Error in IMAP command received by server.\r\n", tag);
        return count_error(g);
    }
    g->errors = 0;
    return true;
}

static void greeter_data(void *s, const char *p, size_t n)
{
    struct greeter *g = s;
    const char *line;
    size_t len;
    enum lines_result r;
    conn_set_timeout(g->c, LIM_IMAP_PRELOGIN_MS);
    while ((r = lines_next(&g->in, &p, &n, &line, &len)) != LINES_NONE) {
        if (r == LINES_TOO_LONG) {
            conn_printf(g->c, "* BAD Command line too long.\r\n");
            continue;
        }
        if (!greeter_line(g, line, len)) {
            lines_free(&g->in);
            return;
        }
    }
}

static void greeter_timeout(void *s)
{
    struct greeter *g = s;
    conn_printf(g->c, "* BYE Disconnected for inactivity.\r\n");
    conn_close(g->c);
}

static void greeter_shutdown(void *s)
{
    struct greeter *g = s;
    conn_printf(g->c, "* BYE Server shutting down.\r\n");
    conn_close(g->c);
}

static void greeter_closed(void *s)
{
    struct greeter *g = s;
    lines_free(&g->in);
    free(g);
}

static void greeter_refuse(struct conn *c)
{
    conn_printf(c, "* BYE Too many connections, try again later.\r\n");
}

static void greeter_starttls_done(void *s)
{
    struct greeter *g = s;
    conn_set_timeout(g->c, LIM_IMAP_PRELOGIN_MS);
}

const struct session_ops imap_session_ops = {
    .name = "imap", .open = greeter_open, .data = greeter_data,
    .starttls_done = greeter_starttls_done, .timeout = greeter_timeout,
    .shutdown = greeter_shutdown, .closed = greeter_closed, .refuse = greeter_refuse,
};
