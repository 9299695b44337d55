/* headers_clean.c: privacy cleanup of the top-level header block (spec §7
 * authclean and lmtp_header_checks, §13.2). Every instance of a listed
 * field goes, continuation lines included; names compare case-insensitively;
 * the header order and every other byte (body included) stay as they were.
 * Works on any input: no line or block limits apply here, only linear scans. */
#include "filter/filter.h"
#include "filter/filter_int.h"

#include <string.h>

static const char *const submission_drop[] = {"Received", "X-Originating-IP", "X-Mailer",
                                              "User-Agent", NULL};
static const char *const delivery_drop[] = {"Received", "DKIM-Signature", "Authentication-Results",
                                            NULL};

/* End of the field starting at p: past its last continuation line. */
static const char *field_end(const char *p, const char *end)
{
    do {
        const char *crlf = memmem(p, (size_t)(end - p), "\r\n", 2);
        p = crlf ? crlf + 2 : end;
    } while (p < end && (*p == ' ' || *p == '\t'));
    return p;
}

static bool name_in(struct span name, const char *const *list)
{
    for (; *list; list++)
        if (span_eq_lit(name, *list, true))
            return true;
    return false;
}

static struct span field_name(const char *p, const char *fend)
{
    const char *eol = memmem(p, (size_t)(fend - p), "\r\n", 2);
    const char *colon = memchr(p, ':', (size_t)((eol ? eol : fend) - p));
    if (!colon)
        return (struct span){p, 0};
    while (colon > p && (colon[-1] == ' ' || colon[-1] == '\t'))
        colon--;
    return (struct span){p, (size_t)(colon - p)};
}

static int clean(const char *msg, size_t len, const char *const *drop, bool subject,
                 struct buf *out)
{
    const char *p = msg, *end = msg + len;
    const char *hend; /* start of the blank line, or end */
    if (len >= 2 && msg[0] == '\r' && msg[1] == '\n') {
        hend = msg;
    } else {
        const char *sep = memmem(msg, len, "\r\n\r\n", 4);
        hend = sep ? sep + 2 : end;
    }
    if (buf_reserve(out, len + 32) < 0)
        return -1;
    out->data[out->len] = '\0'; /* stays a string even if nothing is appended */
    bool subject_done = false;
    while (p < hend) {
        const char *fend = field_end(p, hend);
        struct span name = field_name(p, fend);
        int rc = 0;
        if (name.n && subject && span_eq_lit(name, "Subject", true)) {
            if (!subject_done)
                rc = buf_append_str(out, "Subject: [...]\r\n");
            subject_done = true;
        } else if (!name.n || !name_in(name, drop)) {
            rc = buf_append(out, p, (size_t)(fend - p));
        }
        if (rc < 0)
            return -1;
        p = fend;
    }
    return buf_append(out, hend, (size_t)(end - hend));
}

int filter_clean_submission(const char *msg, size_t len, struct buf *out)
{
    return clean(msg, len, submission_drop, true, out);
}

int filter_clean_delivery(const char *msg, size_t len, struct buf *out)
{
    return clean(msg, len, delivery_drop, false, out);
}
