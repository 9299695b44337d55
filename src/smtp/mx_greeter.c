/* mx_greeter.c: port 25 until the federation issue brings inbound mail
 * (incoming filter, DKIM verification): greeting, EHLO/HELO, STARTTLS (with
 * the plaintext-injection guard), NOOP, RSET, QUIT, the over-cap refusal,
 * the shutdown and timeout replies. Everything else is answered "502 5.5.2".
 * Submission (587, 465, ALPN smtp) is served by submission.c. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/limits.h"
#include "core/lines.h"
#include "core/log.h"
#include "smtp/smtp.h"

struct greeter {
    struct conn *c;
    struct lines in;
    unsigned errors;
};

static const char *domain(struct conn *c) { return conn_config(c)->mail_domain; }

static void *greeter_open(struct conn *c)
{
    struct greeter *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->c = c;
    g->in.max = LIM_SMTP_LINE;
    conn_printf(c, "220 %s ESMTP chatmaild\r\n", domain(c));
    conn_set_timeout(c, LIM_SMTP_CMD_MS);
    return g;
}

static bool verb_is(const char *line, size_t len, const char *verb)
{
    size_t vl = strlen(verb);
    return len >= vl && strncasecmp(line, verb, vl) == 0 && (len == vl || line[vl] == ' ');
}

static void ehlo_reply(struct greeter *g)
{
    struct conn *c = g->c;
    conn_printf(c, "250-%s\r\n250-PIPELINING\r\n250-SIZE %ld\r\n", domain(c),
                conn_config(c)->max_message_size);
    if (!conn_is_tls(c))
        conn_printf(c, "250-STARTTLS\r\n");
    conn_printf(c, "250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n");
}

/* Returns false when the session must stop reading this chunk. */
static bool greeter_line(struct greeter *g, const char *line, size_t len)
{
    struct conn *c = g->c;
    if (verb_is(line, len, "EHLO")) {
        ehlo_reply(g);
    } else if (verb_is(line, len, "HELO")) {
        conn_printf(c, "250 %s\r\n", domain(c));
    } else if (verb_is(line, len, "STARTTLS")) {
        if (conn_is_tls(c)) {
            conn_printf(c, "554 5.5.1 Error: TLS already active\r\n");
            return true;
        }
        conn_printf(c, "220 2.0.0 Ready to start TLS\r\n");
        conn_starttls(c);
        return false; /* whatever followed in plaintext is discarded */
    } else if (verb_is(line, len, "NOOP") || verb_is(line, len, "RSET")) {
        conn_printf(c, "250 2.0.0 Ok\r\n");
    } else if (verb_is(line, len, "QUIT")) {
        conn_printf(c, "221 2.0.0 Bye\r\n");
        conn_close(c);
        return false;
    } else {
        conn_printf(c, "502 5.5.2 Error: command not recognized\r\n");
        if (++g->errors >= LIM_SMTP_BAD_CMDS) {
            conn_printf(c, "421 4.7.0 %s Error: too many errors\r\n", domain(c));
            conn_close(c);
            return false;
        }
    }
    return true;
}

static void greeter_data(void *s, const char *p, size_t n)
{
    struct greeter *g = s;
    const char *line;
    size_t len;
    enum lines_result r;
    conn_set_timeout(g->c, LIM_SMTP_CMD_MS);
    while ((r = lines_next(&g->in, &p, &n, &line, &len)) != LINES_NONE) {
        if (r == LINES_TOO_LONG) {
            conn_printf(g->c, "500 5.5.0 Error: line too long\r\n");
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
    conn_printf(g->c, "421 4.4.2 %s Error: timeout exceeded\r\n", domain(g->c));
    conn_close(g->c);
}

static void greeter_shutdown(void *s)
{
    struct greeter *g = s;
    conn_printf(g->c, "421 4.3.2 %s Service shutting down\r\n", domain(g->c));
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
    conn_printf(c, "421 4.7.0 %s Error: too many connections\r\n", domain(c));
}

static void greeter_starttls_done(void *s)
{
    struct greeter *g = s;
    conn_set_timeout(g->c, LIM_SMTP_CMD_MS);
}

const struct session_ops smtp_mx_ops = {
    .name = "smtp", .open = greeter_open, .data = greeter_data,
    .starttls_done = greeter_starttls_done, .timeout = greeter_timeout,
    .shutdown = greeter_shutdown, .closed = greeter_closed, .refuse = greeter_refuse,
};
