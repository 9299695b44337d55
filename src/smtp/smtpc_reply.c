/* smtpc_reply.c: SMTP reply parser for the outbound client (see smtpc_reply.h). */
#include "smtp/smtpc_reply.h"

#include <string.h>
#include <strings.h>

void smtpc_reply_init(struct smtpc_reply_parser *p)
{
    memset(p, 0, sizeof *p);
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

size_t smtpc_enh_code(const char *s, size_t n, int cls)
{
    if (n < 5 || s[0] != (char)('0' + cls) || s[1] != '.')
        return 0;
    size_t i = 2;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (i < n && is_digit(s[i]) && d < 4)
            i++, d++;
        if (d == 0 || d > 3)
            return 0;
        if (part == 0) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
    }
    return (i == n || s[i] == ' ') ? i : 0;
}

static void append_text(struct smtpc_reply_parser *p, const char *s, size_t n)
{
    size_t room = sizeof p->reply.text - 1 - p->text_len;
    if (p->text_len > 0 && room > 0 && n > 0) {
        p->reply.text[p->text_len++] = ' ';
        room--;
    }
    if (n > room)
        n = room;
    for (size_t i = 0; i < n; i++) /* keep logs printable */
        p->reply.text[p->text_len + i] =
            ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    p->text_len += n;
    p->reply.text[p->text_len] = 0;
}

static bool word_is(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    return n == wl && strncasecmp(s, w, wl) == 0;
}

static void ehlo_keyword(struct smtpc_caps *c, const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && s[k] != ' ')
        k++;
    if (word_is(s, k, "PIPELINING"))
        c->pipelining = true;
    else if (word_is(s, k, "STARTTLS"))
        c->starttls = true;
    else if (word_is(s, k, "8BITMIME"))
        c->eightbitmime = true;
    else if (word_is(s, k, "SMTPUTF8"))
        c->smtputf8 = true;
    else if (word_is(s, k, "CHUNKING"))
        c->chunking = true;
    else if (word_is(s, k, "SIZE")) {
        c->size = true;
        uint64_t v = 0;
        size_t i = k;
        while (i < n && s[i] == ' ')
            i++;
        for (; i < n && is_digit(s[i]); i++) {
            if (v > (UINT64_MAX - 9) / 10) { /* absurd: treat as no limit */
                v = 0;
                break;
            }
            v = v * 10 + (uint64_t)(s[i] - '0');
        }
        c->size_max = v;
    }
}

/* One complete line (without its line end). 1 = last line, 0 = more, -1. */
static int take_line(struct smtpc_reply_parser *p, const char *s, size_t n)
{
    if (n < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' || !is_digit(s[2]))
        return p->why = "reply line without a valid code", -1;
    if (n > 3 && s[3] != ' ' && s[3] != '-')
        return p->why = "reply code not followed by space or hyphen", -1;
    int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (p->lines == 0) {
        memset(&p->reply, 0, sizeof p->reply);
        memset(&p->caps, 0, sizeof p->caps);
        p->text_len = 0;
        p->reply.code = code;
    } else if (code != p->reply.code) {
        return p->why = "multiline reply with differing codes", -1;
    }
    if (++p->lines > SMTPC_REPLY_LINES)
        return p->why = "reply has too many lines", -1;
    const char *t = n > 4 ? s + 4 : s + n;
    size_t tn = n > 4 ? n - 4 : 0;
    size_t e = smtpc_enh_code(t, tn, code / 100);
    if (e > 0) {
        if (p->lines == 1)
            memcpy(p->reply.enh, t, e), p->reply.enh[e] = 0;
        t += e;
        tn -= e;
        while (tn > 0 && *t == ' ')
            t++, tn--;
    }
    if (p->lines > 1)
        ehlo_keyword(&p->caps, t, tn);
    append_text(p, t, tn);
    return (n == 3 || s[3] == ' ') ? 1 : 0;
}

int smtpc_reply_feed(struct smtpc_reply_parser *p, const char *data, size_t n, size_t *used)
{
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(data + i, '\n', n - i);
        size_t chunk = nl ? (size_t)(nl - (data + i)) : n - i;
        if (p->len + chunk > sizeof p->line - 1) {
            p->why = "reply line too long";
            return SMTPC_RP_ERR;
        }
        memcpy(p->line + p->len, data + i, chunk);
        p->len += chunk;
        i += chunk;
        if (!nl)
            break;
        i++; /* the LF */
        size_t ln = p->len;
        if (ln > 0 && p->line[ln - 1] == '\r')
            ln--;
        p->len = 0;
        int r = take_line(p, p->line, ln);
        if (r < 0)
            return SMTPC_RP_ERR;
        if (r == 1) {
            p->lines = 0;
            *used = i;
            return SMTPC_RP_DONE;
        }
    }
    *used = n;
    return SMTPC_RP_MORE;
}
