/* canon_header.c: header field canonicalisation (RFC 6376 §3.4.1, §3.4.2). */
#include "dkim/dkim_int.h"

int dkim_canon_header(enum dkim_canon canon, const char *field, size_t len, struct buf *out)
{
    if (canon == DKIM_CANON_SIMPLE) {
        if (buf_append(out, field, len) < 0)
            return -1;
        if (len < 2 || field[len - 2] != '\r' || field[len - 1] != '\n')
            return buf_append(out, "\r\n", 2);
        return 0;
    }
    if (len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n')
        len -= 2;
    size_t colon = 0;
    while (colon < len && field[colon] != ':')
        colon++;
    size_t name_end = colon;
    while (name_end > 0 && (field[name_end - 1] == ' ' || field[name_end - 1] == '\t'))
        name_end--;
    if (buf_reserve(out, len + 3) < 0)
        return -1;
    for (size_t i = 0; i < name_end; i++) {
        char ch = field[i];
        out->data[out->len++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    out->data[out->len++] = ':';
    bool wsp = false, started = false;
    for (size_t i = colon + 1; i < len; i++) {
        char ch = field[i];
        if (ch == '\r' && i + 1 < len && field[i + 1] == '\n') {
            i++; /* unfold: CRLF goes, the WSP after it counts as WSP */
            continue;
        }
        if (ch == ' ' || ch == '\t') {
            wsp = true;
            continue;
        }
        if (wsp && started)
            out->data[out->len++] = ' ';
        wsp = false;
        started = true;
        out->data[out->len++] = ch;
    }
    out->data[out->len++] = '\r';
    out->data[out->len++] = '\n';
    return 0;
}
