/* imap_date.h: RFC 3501 date-time ("17-Jul-1996 02:44:25 -0700") and date
 * ("1-Feb-1994") text, UTC on output. */
#ifndef CM_IMAP_IMAP_DATE_H
#define CM_IMAP_IMAP_DATE_H

#include <stddef.h>
#include <stdint.h>

/* out needs 32 bytes. */
void imap_date_time_format(int64_t t, char *out, size_t cap);
/* date-time -> unix seconds; -1 when malformed. */
int imap_date_time_parse(const char *s, int64_t *t);
/* date (day-month-year) -> unix seconds of 00:00 UTC; -1 when malformed. */
int imap_date_parse(const char *s, int64_t *t);

#endif
