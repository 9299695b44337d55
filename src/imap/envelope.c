/* envelope.c: RFC 3501 ENVELOPE from a header block: date, subject, the
 * address lists (sender and reply-to default to from) with each address as
 * (name adl mailbox host), in-reply-to and message-id. Values stay raw
 * (encoded words untouched), unfolded; groups become RFC 3501 group
 * markers: (NIL NIL "name" NIL) ... (NIL NIL NIL NIL). */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_mime.h"
#include "imap/session_int.h"

#define ENV_VALUE_MAX 8192

static void write_field(struct buf *b, struct span hdr, const char *name)
{
    struct span v;
    char text[ENV_VALUE_MAX];
    if (hdr_find(hdr, name, &v) != 1) {
        buf_append_str(b, "NIL");
        return;
    }
    hdr_value_text(v, text, sizeof text);
    imap_write_quoted_or_literal(b, text, strlen(text));
}

/* RFC 5322 address lists, read leniently: quoted strings, comments,
 * angle addresses with an optional source route, and groups. */
#define ADDR_PART_MAX 1024

struct addr_acc {
    char phrase[ADDR_PART_MAX];  /* display name words, or a bare addr-spec */
    char comment[ADDR_PART_MAX]; /* the last comment */
    char route[ADDR_PART_MAX];   /* <@a,@b:x@y> source route */
    char addr[ADDR_PART_MAX];    /* inside <...> */
    size_t pl, cl, rl, al;
    bool angle, space; /* saw <...>; a word boundary is pending in phrase */
};

static void acc_put(char *dst, size_t *len, char c)
{
    if (*len + 1 < ADDR_PART_MAX)
        dst[(*len)++] = c;
    dst[*len] = '\0';
}

static void acc_word_char(struct addr_acc *a, char c)
{
    if (a->space && a->pl)
        acc_put(a->phrase, &a->pl, ' ');
    a->space = false;
    acc_put(a->phrase, &a->pl, c);
}

/* Empties a (the lengths say what the parts hold; each stays terminated). */
static void acc_reset(struct addr_acc *a)
{
    a->pl = a->cl = a->rl = a->al = 0;
    a->phrase[0] = a->comment[0] = a->route[0] = a->addr[0] = '\0';
    a->angle = a->space = false;
}

static void write_str_or_nil(struct buf *b, const char *p, size_t n)
{
    if (p)
        imap_write_quoted_or_literal(b, p, n);
    else
        buf_append_str(b, "NIL");
}

/* Emits the mailbox collected in a (if any) as (name adl mailbox host) and
 * resets a. A bare addr-spec's comment is its name, as Dovecot does. */
static bool acc_flush(struct buf *b, struct addr_acc *a)
{
    const char *name = NULL, *addr = a->phrase;
    size_t nl = 0, al = a->pl;
    if (a->angle) {
        name = a->pl ? a->phrase : NULL;
        nl = a->pl;
        addr = a->addr;
        al = a->al;
    }
    if (!name && a->cl) {
        name = a->comment;
        nl = a->cl;
    }
    bool any = al > 0;
    if (any && !a->angle) { /* an addr-spec has no spaces: "a . b @ c" = "a.b@c" */
        size_t k = 0;
        for (size_t i = 0; i < al; i++)
            if (a->phrase[i] != ' ')
                a->phrase[k++] = a->phrase[i];
        al = k;
    }
    if (any) {
        const char *at = memrchr(addr, '@', al);
        buf_append(b, "(", 1);
        imap_write_nstring(b, name, nl);
        buf_append(b, " ", 1);
        write_str_or_nil(b, a->rl ? a->route : NULL, a->rl);
        buf_append(b, " ", 1);
        imap_write_quoted_or_literal(b, addr, at ? (size_t)(at - addr) : al);
        buf_append(b, " ", 1);
        write_str_or_nil(b, at ? at + 1 : NULL, at ? (size_t)(addr + al - at - 1) : 0);
        buf_append(b, ")", 1);
    }
    acc_reset(a);
    return any;
}

/* Writes the addresses of one header value; false when there are none. */
static bool write_address_list(struct buf *b, const char *t)
{
    struct addr_acc acc, *a = &acc;
    acc_reset(a);
    bool any = false, in_group = false;
    for (const char *q = t; *q; q++) {
        char c = *q;
        if (c == '"') { /* quoted string: one word of the phrase */
            if (a->space && a->pl)
                acc_put(a->phrase, &a->pl, ' ');
            a->space = false;
            for (q++; *q && *q != '"'; q++) {
                if (*q == '\\' && q[1])
                    q++;
                acc_put(a->phrase, &a->pl, *q);
            }
            if (!*q) { /* unterminated: no address to make of it */
                acc_reset(a);
                break;
            }
        } else if (c == '(') { /* comment, nested */
            int depth = 1;
            a->cl = 0;
            a->comment[0] = '\0';
            for (q++; *q && depth; q++) {
                if (*q == '\\' && q[1]) {
                    acc_put(a->comment, &a->cl, *++q);
                    continue;
                }
                depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
                if (depth)
                    acc_put(a->comment, &a->cl, *q);
            }
            q--;
            a->space = true;
        } else if (c == '<') { /* angle address, maybe with a source route */
            a->angle = true;
            a->al = a->rl = 0;
            a->addr[0] = a->route[0] = '\0';
            for (q++; *q && *q != '>'; q++) {
                if (*q == '"') {
                    for (q++; *q && *q != '"'; q++) {
                        if (*q == '\\' && q[1])
                            q++;
                        acc_put(a->addr, &a->al, *q);
                    }
                    if (!*q)
                        break;
                } else if (*q == ':' && a->al && a->addr[0] == '@') {
                    memcpy(a->route, a->addr, a->al + 1);
                    a->rl = a->al;
                    a->al = 0;
                    a->addr[0] = '\0';
                } else if (*q != ' ' && *q != '\t') {
                    acc_put(a->addr, &a->al, *q);
                }
            }
            if (!*q)
                break;
        } else if (c == ':' && !a->angle && !in_group) { /* group start */
            buf_append_str(b, "(NIL NIL ");
            imap_write_quoted_or_literal(b, a->phrase, a->pl);
            buf_append_str(b, " NIL)");
            any = in_group = true;
            acc_reset(a);
        } else if (c == ',') {
            any |= acc_flush(b, a);
        } else if (c == ';') {
            any |= acc_flush(b, a);
            if (in_group)
                buf_append_str(b, "(NIL NIL NIL NIL)");
            in_group = false;
        } else if (c == ' ' || c == '\t') {
            a->space = true;
        } else {
            acc_word_char(a, c);
        }
    }
    any |= acc_flush(b, a);
    if (in_group) /* "group: a@b" without its ';' */
        buf_append_str(b, "(NIL NIL NIL NIL)");
    return any;
}

static bool write_addresses(struct buf *b, struct span hdr, const char *name)
{
    struct span v;
    char text[ENV_VALUE_MAX];
    if (hdr_find(hdr, name, &v) != 1)
        return false;
    hdr_value_text(v, text, sizeof text);
    size_t start = b->len;
    buf_append(b, "(", 1);
    if (!write_address_list(b, text)) {
        b->len = start;
        return false;
    }
    buf_append(b, ")", 1);
    return true;
}

static void addresses_or_nil(struct buf *b, struct span hdr, const char *name,
                             const char *fallback)
{
    if (write_addresses(b, hdr, name))
        return;
    if (!fallback || !write_addresses(b, hdr, fallback))
        buf_append_str(b, "NIL");
}

void imap_write_envelope(struct buf *b, struct span hdr)
{
    buf_append(b, "(", 1);
    write_field(b, hdr, "Date");
    buf_append(b, " ", 1);
    write_field(b, hdr, "Subject");
    buf_append(b, " ", 1);
    addresses_or_nil(b, hdr, "From", NULL);
    buf_append(b, " ", 1);
    addresses_or_nil(b, hdr, "Sender", "From");
    buf_append(b, " ", 1);
    addresses_or_nil(b, hdr, "Reply-To", "From");
    buf_append(b, " ", 1);
    addresses_or_nil(b, hdr, "To", NULL);
    buf_append(b, " ", 1);
    addresses_or_nil(b, hdr, "Cc", NULL);
    buf_append(b, " ", 1);
    addresses_or_nil(b, hdr, "Bcc", NULL);
    buf_append(b, " ", 1);
    write_field(b, hdr, "In-Reply-To");
    buf_append(b, " ", 1);
    write_field(b, hdr, "Message-ID");
    buf_append(b, ")", 1);
}
