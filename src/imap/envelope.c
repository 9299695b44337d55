/* envelope.c: RFC 3501 ENVELOPE from a header block: date, subject, the
 * address lists (sender and reply-to default to from) with each address as
 * (name adl mailbox host), in-reply-to and message-id. Values stay raw
 * (encoded words untouched), unfolded; groups are flattened. */
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

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

/* One address "Name <a@b>" or "a@b" into (name NIL mailbox host). */
static bool write_address(struct buf *b, const char *p, size_t n)
{
    trim(&p, &n);
    const char *colon = memchr(p, ':', n), *lt = memchr(p, '<', n);
    if (colon && (!lt || colon < lt) && !memchr(p, '"', (size_t)(colon - p))) {
        n -= (size_t)(colon + 1 - p); /* "group: a@b" -> "a@b" */
        p = colon + 1;
        trim(&p, &n);
    }
    if (n && p[n - 1] == ';')
        n--;
    trim(&p, &n);
    if (n == 0)
        return false;
    const char *name = NULL, *addr = p;
    size_t nl = 0, al = n;
    lt = memchr(p, '<', n);
    const char *gt = lt ? memchr(lt, '>', (size_t)(p + n - lt)) : NULL;
    if (lt && gt) {
        name = p;
        nl = (size_t)(lt - p);
        trim(&name, &nl);
        if (nl >= 2 && name[0] == '"' && name[nl - 1] == '"') {
            name++;
            nl -= 2;
        }
        addr = lt + 1;
        al = (size_t)(gt - lt - 1);
    }
    trim(&addr, &al);
    const char *at = memrchr(addr, '@', al);
    buf_append(b, "(", 1);
    imap_write_nstring(b, nl ? name : NULL, nl);
    buf_append_str(b, " NIL ");
    imap_write_quoted_or_literal(b, addr, at ? (size_t)(at - addr) : al);
    buf_append(b, " ", 1);
    if (at)
        imap_write_quoted_or_literal(b, at + 1, (size_t)(addr + al - at - 1));
    else
        buf_append_str(b, "NIL");
    buf_append(b, ")", 1);
    return true;
}

static bool write_addresses(struct buf *b, struct span hdr, const char *name)
{
    struct span v;
    char text[ENV_VALUE_MAX];
    if (hdr_find(hdr, name, &v) != 1)
        return false;
    hdr_value_text(v, text, sizeof text);
    size_t start = b->len;
    bool any = false, quoted = false;
    int angle = 0;
    const char *item = text;
    buf_append(b, "(", 1);
    for (const char *q = text;; q++) {
        if (*q == '"' && (q == text || q[-1] != '\\'))
            quoted = !quoted;
        else if (!quoted && *q == '<')
            angle++;
        else if (!quoted && *q == '>' && angle)
            angle--;
        if (*q == '\0' || (*q == ',' && !quoted && !angle)) {
            any |= write_address(b, item, (size_t)(q - item));
            item = q + 1;
        }
        if (*q == '\0')
            break;
    }
    if (!any) {
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
