/* smtp_parse.c: SMTP command-line, path, ESMTP parameter and AUTH decoding
 * (see smtp_parse.h). Every function reads only the bytes it is given and
 * writes only into caller-provided, bounded buffers. */
#include "smtp/smtp_parse.h"

#include "core/base64.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SYNTAX_MAIL "501 5.5.4 Syntax: MAIL FROM:<address>"
#define SYNTAX_RCPT "501 5.5.4 Syntax: RCPT TO:<address>"
#define BAD_SENDER "501 5.1.7 Bad sender address syntax"
#define BAD_RCPT "501 5.1.3 Bad recipient address syntax"

static void set_err(char *err, const char *text)
{
    if (err)
        snprintf(err, SMTP_ERR_MAX, "%s", text);
}

/* Length of a well-formed UTF-8 sequence starting at p, or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t need;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    unsigned cp = c & (0x3fu >> (need - 1));
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

static const struct {
    const char *name;
    enum smtp_verb verb;
} verbs[] = {
    {"HELO", SMTP_V_HELO}, {"EHLO", SMTP_V_EHLO}, {"MAIL", SMTP_V_MAIL},
    {"RCPT", SMTP_V_RCPT}, {"DATA", SMTP_V_DATA}, {"BDAT", SMTP_V_BDAT},
    {"RSET", SMTP_V_RSET}, {"NOOP", SMTP_V_NOOP}, {"QUIT", SMTP_V_QUIT},
    {"VRFY", SMTP_V_VRFY}, {"HELP", SMTP_V_HELP}, {"STARTTLS", SMTP_V_STARTTLS},
    {"AUTH", SMTP_V_AUTH},
};

int smtp_parse_line(const char *line, size_t len, struct smtp_cmd *cmd, char *err)
{
    const unsigned char *u = (const unsigned char *)line;
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x20 || u[i] == 0x7f) {
            if (u[i] != '\t') {
                set_err(err, "500 5.5.2 Error: bad syntax");
                return -1;
            }
        }
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0) {
            set_err(err, "500 5.5.2 Error: bad UTF-8 syntax");
            return -1;
        }
        i += n;
    }
    size_t v = 0;
    while (v < len && line[v] != ' ')
        v++;
    cmd->verb = SMTP_V_UNKNOWN;
    for (size_t k = 0; k < sizeof verbs / sizeof verbs[0]; k++) {
        if (strlen(verbs[k].name) == v && strncasecmp(line, verbs[k].name, v) == 0)
            cmd->verb = verbs[k].verb;
    }
    size_t a = v;
    while (a < len && line[a] == ' ')
        a++;
    size_t end = len;
    while (end > a && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    cmd->arg = line + a;
    cmd->arg_len = end - a;
    return 0;
}

/* --- addresses --- */

static bool is_atext(unsigned char c)
{
    if (c >= 0x80)
        return true;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool is_letdig(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Local part at s[0..n); returns its length (up to the '@'), or 0. */
static size_t scan_local(const unsigned char *s, size_t n)
{
    size_t i = 0;
    if (n && s[0] == '"') {
        for (i = 1; i < n && s[i] != '"'; i++) {
            if (s[i] == '\\') {
                if (++i >= n || s[i] < 0x20 || s[i] == 0x7f)
                    return 0;
            } else if (s[i] < 0x20 || s[i] == 0x7f) {
                return 0;
            }
        }
        return i < n ? i + 1 : 0;
    }
    bool dot_ok = false;
    for (; i < n && s[i] != '@'; i++) {
        if (s[i] == '.') {
            if (!dot_ok)
                return 0;
            dot_ok = false;
        } else if (is_atext(s[i])) {
            dot_ok = true;
        } else {
            return 0;
        }
    }
    return dot_ok ? i : 0;
}

static bool domain_valid(const unsigned char *s, size_t n)
{
    if (n >= 2 && s[0] == '[') {
        if (s[n - 1] != ']' || n < 3)
            return false;
        for (size_t i = 1; i + 1 < n; i++) {
            if (!is_letdig(s[i]) && !strchr(".:-", s[i]))
                return false;
        }
        return true;
    }
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (is_letdig(s[i]) || s[i] == '_' || (s[i] == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return n > 0;
}

int smtp_addr_valid(const char *addr, size_t len, bool *utf8)
{
    const unsigned char *s = (const unsigned char *)addr;
    if (len == 0 || len > SMTP_ADDR_MAX)
        return -1;
    size_t l = scan_local(s, len);
    if (l == 0 || l >= len || s[l] != '@')
        return -1;
    if (!domain_valid(s + l + 1, len - l - 1))
        return -1;
    bool any = false;
    for (size_t i = 0; i < len; i++)
        any |= s[i] >= 0x80;
    if (utf8)
        *utf8 = any;
    return 0;
}

/* Finds the end of the path starting at p (after "FROM:"/"TO:" and
 * spaces): sets the mailbox span and returns the index after the path, or
 * (size_t)-1. */
static size_t scan_path(const char *p, size_t n, size_t *mb, size_t *mb_len)
{
    size_t i = 0;
    if (n == 0)
        return (size_t)-1;
    if (p[0] != '<') { /* lenient: bare address */
        while (i < n && p[i] != ' ')
            i++;
        *mb = 0;
        *mb_len = i;
        return i;
    }
    bool quoted = false;
    for (i = 1; i < n; i++) {
        if (quoted && p[i] == '\\' && i + 1 < n)
            i++;
        else if (p[i] == '"')
            quoted = !quoted;
        else if (!quoted && p[i] == '>')
            break;
    }
    if (i >= n)
        return (size_t)-1;
    *mb = 1;
    *mb_len = i - 1;
    if (*mb_len && p[1] == '@') { /* source route "@a,@b:" is ignored */
        const char *colon = memchr(p + 1, ':', *mb_len);
        if (!colon)
            return (size_t)-1;
        size_t skip = (size_t)(colon - (p + 1)) + 1;
        *mb += skip;
        *mb_len -= skip;
    }
    return i + 1;
}

/* Parses "<keyword>:" + path; returns the index of the parameters or -1. */
static long parse_path(const char *arg, size_t len, const char *kw, bool null_ok, char *addr,
                       bool *utf8, const char *syntax, const char *bad, char *err)
{
    size_t kl = strlen(kw);
    if (len < kl || strncasecmp(arg, kw, kl) != 0) {
        set_err(err, syntax);
        return -1;
    }
    size_t i = kl;
    while (i < len && arg[i] == ' ')
        i++;
    size_t mb = 0, mb_len = 0;
    size_t end = scan_path(arg + i, len - i, &mb, &mb_len);
    if (end == (size_t)-1) {
        set_err(err, i < len ? bad : syntax);
        return -1;
    }
    const char *m = arg + i + mb;
    *utf8 = false;
    if (mb_len == 0 && mb == 1 && null_ok) {
        addr[0] = '\0';
    } else if (smtp_addr_valid(m, mb_len, utf8) < 0) {
        set_err(err, bad);
        return -1;
    } else {
        memcpy(addr, m, mb_len);
        addr[mb_len] = '\0';
    }
    i += end;
    if (i < len && arg[i] != ' ') {
        set_err(err, bad);
        return -1;
    }
    return (long)i;
}

/* --- ESMTP parameters --- */

static bool xtext_valid(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '+') {
            if (i + 2 >= n)
                return false;
            for (int k = 1; k <= 2; k++) {
                unsigned char h = (unsigned char)v[i + (size_t)k];
                if (!((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F')))
                    return false;
            }
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return true;
}

struct param {
    const char *key, *val; /* val NULL when there is no '=' */
    size_t key_len, val_len;
};

/* Next space-separated parameter at *pos; returns 1, 0 at the end. */
static int next_param(const char *s, size_t len, size_t *pos, struct param *p)
{
    size_t i = *pos;
    while (i < len && s[i] == ' ')
        i++;
    if (i >= len)
        return 0;
    size_t start = i;
    while (i < len && s[i] != ' ')
        i++;
    *pos = i;
    p->key = s + start;
    const char *eq = memchr(p->key, '=', i - start);
    p->key_len = eq ? (size_t)(eq - p->key) : i - start;
    p->val = eq ? eq + 1 : NULL;
    p->val_len = eq ? (size_t)(s + i - (eq + 1)) : 0;
    return 1;
}

static bool key_is(const struct param *p, const char *name)
{
    return strlen(name) == p->key_len && strncasecmp(p->key, name, p->key_len) == 0;
}

static bool val_is(const struct param *p, const char *v)
{
    return p->val && strlen(v) == p->val_len && strncasecmp(p->val, v, p->val_len) == 0;
}

static void unsupported(const struct param *p, char *err)
{
    size_t n = p->val ? (size_t)(p->val - p->key) + p->val_len : p->key_len;
    if (err)
        snprintf(err, SMTP_ERR_MAX, "555 5.5.4 Unsupported option: %.*s", (int)(n > 64 ? 64 : n),
                 p->key);
}

static int parse_size(const struct param *p, int64_t *out, char *err)
{
    int64_t v = 0;
    if (!p->val || p->val_len == 0 || p->val_len > 18)
        goto bad;
    for (size_t i = 0; i < p->val_len; i++) {
        if (p->val[i] < '0' || p->val[i] > '9')
            goto bad;
        v = v * 10 + (p->val[i] - '0');
    }
    *out = v;
    return 0;
bad:
    set_err(err, "501 5.5.4 Bad message size syntax");
    return -1;
}

static int mail_param(const struct param *p, struct smtp_mail_args *m, char *err)
{
    if (key_is(p, "SIZE"))
        return parse_size(p, &m->size, err);
    if (key_is(p, "BODY")) {
        if (val_is(p, "7BIT"))
            m->body = SMTP_BODY_7BIT;
        else if (val_is(p, "8BITMIME"))
            m->body = SMTP_BODY_8BITMIME;
        else if (val_is(p, "BINARYMIME"))
            m->body = SMTP_BODY_BINARYMIME;
        else
            return set_err(err, "501 5.5.4 Unsupported BODY parameter"), -1;
        return 0;
    }
    if (key_is(p, "SMTPUTF8") && !p->val)
        return m->smtputf8 = true, 0;
    if (key_is(p, "RET")) {
        if (val_is(p, "FULL"))
            m->ret = SMTP_RET_FULL;
        else if (val_is(p, "HDRS"))
            m->ret = SMTP_RET_HDRS;
        else
            return set_err(err, "501 5.5.4 Bad RET parameter syntax"), -1;
        return 0;
    }
    if (key_is(p, "ENVID")) {
        if (!p->val || p->val_len == 0 || p->val_len > SMTP_ENVID_MAX ||
            !xtext_valid(p->val, p->val_len))
            return set_err(err, "501 5.5.4 Bad ENVID parameter syntax"), -1;
        memcpy(m->envid, p->val, p->val_len);
        m->envid[p->val_len] = '\0';
        return 0;
    }
    if (key_is(p, "AUTH")) {
        if (m->has_auth)
            return set_err(err, "503 5.5.4 Error: multiple AUTH= options"), -1;
        if (!p->val || p->val_len == 0 || !xtext_valid(p->val, p->val_len))
            return set_err(err, "501 5.5.4 Bad AUTH parameter syntax"), -1;
        return m->has_auth = true, 0;
    }
    unsupported(p, err);
    return -1;
}

int smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out, char *err)
{
    memset(out, 0, sizeof *out);
    out->size = -1;
    long pos = parse_path(arg, len, "FROM:", true, out->addr, &out->addr_utf8, SYNTAX_MAIL,
                          BAD_SENDER, err);
    if (pos < 0)
        return -1;
    size_t i = (size_t)pos;
    struct param p;
    while (next_param(arg, len, &i, &p)) {
        if (mail_param(&p, out, err) < 0)
            return -1;
    }
    return 0;
}

static int parse_notify(const struct param *p, unsigned *out)
{
    if (val_is(p, "NEVER"))
        return *out = SMTP_NOTIFY_NEVER, 0;
    if (!p->val || p->val_len == 0)
        return -1;
    unsigned bits = 0;
    size_t i = 0;
    while (i <= p->val_len) {
        size_t j = i;
        while (j < p->val_len && p->val[j] != ',')
            j++;
        struct param one = {.key = "", .val = p->val + i, .val_len = j - i};
        if (val_is(&one, "SUCCESS"))
            bits |= SMTP_NOTIFY_SUCCESS;
        else if (val_is(&one, "FAILURE"))
            bits |= SMTP_NOTIFY_FAILURE;
        else if (val_is(&one, "DELAY"))
            bits |= SMTP_NOTIFY_DELAY;
        else
            return -1;
        i = j + 1;
    }
    *out = bits;
    return 0;
}

static int parse_orcpt(const struct param *p, char *out)
{
    if (!p->val || p->val_len == 0 || p->val_len > SMTP_ORCPT_MAX)
        return -1;
    const char *semi = memchr(p->val, ';', p->val_len);
    if (!semi || semi == p->val)
        return -1;
    for (const char *c = p->val; c < semi; c++) {
        if (!is_letdig((unsigned char)*c) && *c != '-')
            return -1;
    }
    size_t rest = p->val_len - (size_t)(semi + 1 - p->val);
    if (rest == 0 || !xtext_valid(semi + 1, rest))
        return -1;
    memcpy(out, p->val, p->val_len);
    out[p->val_len] = '\0';
    return 0;
}

int smtp_parse_rcpt(const char *arg, size_t len, struct smtp_rcpt_args *out, char *err)
{
    memset(out, 0, sizeof *out);
    long pos =
        parse_path(arg, len, "TO:", false, out->addr, &out->addr_utf8, SYNTAX_RCPT, BAD_RCPT, err);
    if (pos < 0)
        return -1;
    size_t i = (size_t)pos;
    struct param p;
    while (next_param(arg, len, &i, &p)) {
        if (key_is(&p, "NOTIFY")) {
            if (parse_notify(&p, &out->notify) < 0)
                return set_err(err, "501 5.5.4 Error: Bad NOTIFY parameter syntax"), -1;
        } else if (key_is(&p, "ORCPT")) {
            if (parse_orcpt(&p, out->orcpt) < 0)
                return set_err(err, "501 5.5.4 Error: Bad ORCPT parameter syntax"), -1;
        } else {
            unsupported(&p, err);
            return -1;
        }
    }
    return 0;
}

int smtp_parse_helo(const char *arg, size_t len, bool ehlo, char *err)
{
    if (len == 0 || memchr(arg, ' ', len)) {
        set_err(err, ehlo ? "501 5.5.4 Syntax: EHLO hostname" : "501 Syntax: HELO hostname");
        return -1;
    }
    if (!domain_valid((const unsigned char *)arg, len)) {
        set_err(err, "501 5.5.2 Helo command rejected: Invalid name");
        return -1;
    }
    return 0;
}

int smtp_parse_auth(const char *arg, size_t len, struct smtp_auth_args *out, char *err)
{
    memset(out, 0, sizeof *out);
    size_t m = 0;
    while (m < len && arg[m] != ' ')
        m++;
    if (m == 0) {
        set_err(err, "501 5.5.4 Syntax: AUTH mechanism");
        return -1;
    }
    if (m == 5 && strncasecmp(arg, "PLAIN", 5) == 0)
        out->mech = SMTP_AUTH_MECH_PLAIN;
    else if (m == 5 && strncasecmp(arg, "LOGIN", 5) == 0)
        out->mech = SMTP_AUTH_MECH_LOGIN;
    size_t i = m;
    while (i < len && arg[i] == ' ')
        i++;
    if (i < len) {
        if (memchr(arg + i, ' ', len - i)) {
            set_err(err, "501 5.5.4 Syntax: AUTH mechanism");
            return -1;
        }
        out->initial = arg + i;
        out->initial_len = len - i;
    }
    return 0;
}

int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last, char *err)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < len && arg[i] >= '0' && arg[i] <= '9' && i < 18)
        v = v * 10 + (uint64_t)(arg[i++] - '0');
    *last = false;
    if (i == 0 || (i < len && arg[i] != ' '))
        goto bad;
    while (i < len && arg[i] == ' ')
        i++;
    if (i < len) {
        if (len - i != 4 || strncasecmp(arg + i, "LAST", 4) != 0)
            goto bad;
        *last = true;
    }
    *size = v;
    return 0;
bad:
    set_err(err, "501 5.5.4 Syntax: BDAT count [LAST]");
    return -1;
}

/* --- base64 and AUTH --- */

#define PLAIN_MAX (SMTP_AUTH_USER_MAX * 2 + SMTP_AUTH_PASS_MAX + 2)

int smtp_auth_plain_decode(const char *b64, size_t len, struct smtp_auth_creds *out)
{
    unsigned char raw[PLAIN_MAX + 3];
    memset(out, 0, sizeof *out);
    if (len > (PLAIN_MAX + 2) / 3 * 4)
        return -2;
    long n = base64_decode(b64, len, raw, sizeof raw);
    if (n < 0)
        return -1;
    unsigned char *z1 = memchr(raw, '\0', (size_t)n);
    unsigned char *z2 = z1 ? memchr(z1 + 1, '\0', (size_t)(raw + n - (z1 + 1))) : NULL;
    if (!z2 || memchr(z2 + 1, '\0', (size_t)(raw + n - (z2 + 1))))
        return -2;
    size_t zl = (size_t)(z1 - raw), ul = (size_t)(z2 - z1 - 1), pl = (size_t)(raw + n - z2 - 1);
    if (ul == 0 || pl == 0 || ul > SMTP_AUTH_USER_MAX || pl > SMTP_AUTH_PASS_MAX)
        return -2;
    if (zl && (zl != ul || strncasecmp((char *)raw, (char *)z1 + 1, ul) != 0))
        return -2;
    memcpy(out->user, z1 + 1, ul);
    memcpy(out->pass, z2 + 1, pl);
    explicit_bzero(raw, sizeof raw);
    return 0;
}

int smtp_auth_login_decode(const char *b64, size_t len, char *out, size_t cap)
{
    if (cap < 2)
        return -2;
    out[0] = '\0';
    long n = base64_decode(b64, len, (unsigned char *)out, cap - 1);
    if (n < 0)
        return len > (cap + 1) / 3 * 4 ? -2 : -1;
    if (n == 0 || memchr(out, '\0', (size_t)n)) {
        explicit_bzero(out, cap);
        return -2;
    }
    out[n] = '\0';
    return 0;
}
