/* outq_smtponly.c: the "SMTP only" mark of MX hosts (federation facts §3).
 * A host whose /mxdeliv failed and whose SMTP then delivered is tried over
 * SMTP first for OUTQ_SMTPONLY_SECS, so its mail does not pay for a
 * failing HTTPS request each time; an SMTP connect, TLS or I/O error
 * clears the mark (the host may have moved to a relay that has /mxdeliv).
 * The mark is not renewed by later SMTP deliveries: once it ends,
 * /mxdeliv is tried again. Loop thread; at most OUTQ_SMTPONLY_MAX hosts
 * (the oldest mark goes first). */
#include "smtp/outq.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct mark {
    char *host;
    int64_t until;
};

static struct mark *marks;
static size_t n_marks;

static struct mark *find(const char *host)
{
    for (size_t i = 0; i < n_marks; i++)
        if (strcasecmp(marks[i].host, host) == 0)
            return &marks[i];
    return NULL;
}

static void drop(struct mark *m)
{
    free(m->host);
    *m = marks[--n_marks];
}

bool outq_smtponly_is(const char *host, int64_t now)
{
    struct mark *m = find(host);
    if (m && m->until <= now) {
        drop(m);
        m = NULL;
    }
    return m != NULL;
}

bool outq_smtponly_mark(const char *host, int64_t now)
{
    if (outq_smtponly_is(host, now))
        return false; /* not renewed: /mxdeliv is tried again when it ends */
    if (n_marks >= OUTQ_SMTPONLY_MAX) {
        size_t oldest = 0;
        for (size_t i = 1; i < n_marks; i++)
            if (marks[i].until < marks[oldest].until)
                oldest = i;
        drop(&marks[oldest]);
    }
    struct mark *v = realloc(marks, (n_marks + 1) * sizeof *v);
    if (!v)
        return false;
    marks = v;
    char *h = strdup(host);
    if (!h)
        return false;
    marks[n_marks++] = (struct mark){h, now + OUTQ_SMTPONLY_SECS};
    return true;
}

bool outq_smtponly_clear(const char *host)
{
    struct mark *m = find(host);
    if (m)
        drop(m);
    return m != NULL;
}

size_t outq_smtponly_count(void) { return n_marks; }

void outq_smtponly_free(void)
{
    while (n_marks)
        drop(&marks[0]);
    free(marks);
    marks = NULL;
}
