/* outq_dsn.c: the delivery status notification for our own sender
 * (federation facts §3): pure functions over bytes. */
#include "smtp/outq.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

size_t outq_dsn_headers(const char *msg, size_t len, size_t max, char *msgid,
                        size_t msgid_len)
{
    if (msgid_len)
        msgid[0] = '\0';
    size_t pos = 0, keep = 0;
    bool in_msgid = false;
    size_t idl = 0;
    while (pos < len) {
        const char *line = msg + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) + 1 : len - pos;
        size_t content = ll - (nl ? 1 : 0);
        if (content && line[content - 1] == '\r')
            content--;
        if (content == 0) /* the blank line */
            break;
        if (pos + ll > max)
            break;
        bool cont = line[0] == ' ' || line[0] == '\t';
        if (!cont)
            in_msgid = content >= 11 && strncasecmp(line, "Message-ID:", 11) == 0 && idl == 0;
        if (in_msgid && msgid_len) {
            size_t from = cont ? 0 : 11;
            for (size_t i = from; i < content && idl + 1 < msgid_len; i++) {
                unsigned char c = (unsigned char)line[i];
                if (c == ' ' || c == '\t' || c < 0x20 || c == 0x7f)
                    continue;
                msgid[idl++] = (char)c;
            }
            msgid[idl] = '\0';
        }
        pos += ll;
        keep = pos;
    }
    return keep;
}

static void rfc5322_date(char *out, size_t n, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, n, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* The status code "5.1.2" in a reply, or def. */
static void enh_code(const char *reply, char *out, size_t n, const char *def)
{
    const char *p = reply;
    while (*p && isdigit((unsigned char)*p))
        p++;
    while (*p == ' ' || *p == '-')
        p++;
    size_t k = strspn(p, "0123456789.");
    if (k >= 5 && k < n && (p[0] == '4' || p[0] == '5') && p[1] == '.') {
        memcpy(out, p, k);
        out[k] = '\0';
        return;
    }
    snprintf(out, n, "%s", def);
}

int outq_dsn_build(struct buf *out, const char *domain, const char *to,
                   const struct outq_dsn_rcpt *r, size_t n, const char *headers,
                   size_t headers_len, int64_t arrival, int64_t now, bool expired)
{
    unsigned char rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    char hex[25];
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    char date[64], adate[64];
    rfc5322_date(date, sizeof date, now);
    rfc5322_date(adate, sizeof adate, arrival);
    int rc = 0;
    rc |= buf_printf(out, "From: Mail Delivery System <mailer-daemon@%s>\r\n", domain);
    rc |= buf_printf(out, "To: <%s>\r\n", to);
    rc |= buf_printf(out, "Subject: Undelivered Mail Returned to Sender\r\n");
    rc |= buf_printf(out, "Date: %s\r\n", date);
    rc |= buf_printf(out, "Message-ID: <dsn.%s@%s>\r\n", hex, domain);
    rc |= buf_append_str(out, "Auto-Submitted: auto-replied\r\n");
    rc |= buf_append_str(out, "X-Failed-Recipients: ");
    for (size_t i = 0; i < n; i++)
        rc |= buf_printf(out, "%s%s", i ? ",\r\n " : "", r[i].addr);
    rc |= buf_append_str(out, "\r\nMIME-Version: 1.0\r\n");
    rc |= buf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                          " boundary=\"%s\"\r\n\r\n", hex);
    rc |= buf_append_str(out, "This is a MIME-encapsulated message.\r\n\r\n");
    /* part 1: for people */
    rc |= buf_printf(out, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n"
                          "Content-Description: Notification\r\n\r\n", hex);
    rc |= buf_printf(out, "This is the mail system at %s.\r\n\r\n", domain);
    rc |= buf_append_str(out, expired
                         ? "Your message could not be delivered to the following recipients\r\n"
                           "within the time allowed for delivery:\r\n\r\n"
                         : "Your message could not be delivered to the following recipients:\r\n\r\n");
    for (size_t i = 0; i < n; i++)
        rc |= buf_printf(out, "<%s>: %s\r\n", r[i].addr, r[i].reply);
    rc |= buf_append_str(out, "\r\n");
    /* part 2: for machines */
    rc |= buf_printf(out, "--%s\r\nContent-Type: message/delivery-status\r\n"
                          "Content-Description: Delivery report\r\n\r\n", hex);
    rc |= buf_printf(out, "Reporting-MTA: dns; %s\r\nArrival-Date: %s\r\n", domain, adate);
    for (size_t i = 0; i < n; i++) {
        char enh[16];
        enh_code(r[i].reply, enh, sizeof enh, expired ? "4.4.7" : "5.0.0");
        rc |= buf_printf(out, "\r\nFinal-Recipient: rfc822; %s\r\nOriginal-Recipient: rfc822; %s\r\n"
                              "Action: failed\r\nStatus: %s\r\n", r[i].addr, r[i].addr,
                         enh);
        if (r[i].reply[0] >= '2' && r[i].reply[0] <= '5')
            rc |= buf_printf(out, "Diagnostic-Code: smtp; %s\r\n", r[i].reply);
        rc |= buf_printf(out, "Last-Attempt-Date: %s\r\n", date);
    }
    rc |= buf_append_str(out, "\r\n");
    /* part 3: the original's headers */
    rc |= buf_printf(out, "--%s\r\nContent-Type: text/rfc822-headers\r\n"
                          "Content-Description: Undelivered Message Headers\r\n\r\n", hex);
    rc |= buf_append(out, headers, headers_len);
    if (headers_len && headers[headers_len - 1] != '\n')
        rc |= buf_append_str(out, "\r\n");
    rc |= buf_printf(out, "\r\n--%s--\r\n", hex);
    return rc ? -1 : 0;
}
