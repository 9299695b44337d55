/* imap_write.c: IMAP output primitives: formatted untagged/tagged lines,
 * strings as atom, quoted string or literal (whichever RFC 3501 allows for
 * the bytes), NIL, and flag lists with keywords. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "imap/session_int.h"
#include "store/store.h"

void imap_out(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
}

void imap_out_raw(struct imap_session *s, const void *p, size_t n) { buf_append(&s->out, p, n); }

static bool quotable(const char *p, size_t n)
{
    if (n > 1024)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == 0 || c == '\r' || c == '\n' || c >= 0x80)
            return false;
    }
    return true;
}

static bool atom_safe(const char *p, size_t n)
{
    if (n == 0 || n > 256)
        return false;
    if (n == 3 && strncasecmp(p, "NIL", 3) == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c))
            return false;
    }
    return true;
}

void imap_write_quoted_or_literal(struct buf *b, const char *p, size_t n)
{
    if (!quotable(p, n)) {
        buf_printf(b, "{%zu}\r\n", n);
        buf_append(b, p, n);
        return;
    }
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == '\\')
            buf_append(b, "\\", 1);
        buf_append(b, &p[i], 1);
    }
    buf_append(b, "\"", 1);
}

void imap_write_astring(struct buf *b, const char *p, size_t n)
{
    if (atom_safe(p, n))
        buf_append(b, p, n);
    else
        imap_write_quoted_or_literal(b, p, n);
}

void imap_write_nstring(struct buf *b, const char *p, size_t n)
{
    if (!p)
        buf_append_str(b, "NIL");
    else
        imap_write_quoted_or_literal(b, p, n);
}

void imap_write_flags(struct buf *b, const struct mailbox *mb, uint32_t flags)
{
    static const char *const sys[] = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
                                      "\\Draft"};
    bool first = true;
    buf_append(b, "(", 1);
    for (int i = 0; i < 5; i++) {
        if (flags & (1u << i)) {
            buf_printf(b, "%s%s", first ? "" : " ", sys[i]);
            first = false;
        }
    }
    if (flags & IMAP_FLAG_RECENT) {
        buf_printf(b, "%s\\Recent", first ? "" : " ");
        first = false;
    }
    for (int i = 0; i < MB_KEYWORDS_MAX; i++) {
        const char *kw = (flags & MB_KEYWORD(i)) && mb ? mailbox_keyword_name(mb, i) : NULL;
        if (kw) {
            buf_printf(b, "%s%s", first ? "" : " ", kw);
            first = false;
        }
    }
    buf_append(b, ")", 1);
}
