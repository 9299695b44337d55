/* imap_date.c: IMAP date and date-time text (imap_date.h). */
#include "imap/imap_date.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void imap_date_time_format(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, cap, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int month_index(const char *m)
{
    for (int i = 0; i < 12; i++)
        if (strncasecmp(m, months[i], 3) == 0)
            return i;
    return -1;
}

static int parse_dmy(const char *s, struct tm *tm, int *used)
{
    int d, y, n = 0;
    char mon[4] = {0};
    if (sscanf(s, " %2d-%3c-%4d%n", &d, mon, &y, &n) != 3 || d < 1 || d > 31 || y < 1900 ||
        y > 9999)
        return -1;
    int m = month_index(mon);
    if (m < 0)
        return -1;
    memset(tm, 0, sizeof *tm);
    tm->tm_mday = d;
    tm->tm_mon = m;
    tm->tm_year = y - 1900;
    *used = n;
    return 0;
}

int imap_date_parse(const char *s, int64_t *t)
{
    struct tm tm;
    int n;
    if (parse_dmy(s, &tm, &n) < 0 || s[n] != '\0')
        return -1;
    *t = (int64_t)timegm(&tm);
    return 0;
}

int imap_date_time_parse(const char *s, int64_t *t)
{
    struct tm tm;
    int n, hh, mm, ss, zone, k = 0;
    char sign;
    if (parse_dmy(s, &tm, &n) < 0)
        return -1;
    if (sscanf(s + n, " %2d:%2d:%2d %c%4d%n", &hh, &mm, &ss, &sign, &zone, &k) != 5 ||
        s[n + k] != '\0' || (sign != '+' && sign != '-') || hh > 23 || mm > 59 || ss > 60)
        return -1;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    int64_t off = (zone / 100) * 3600 + (zone % 100) * 60;
    *t = (int64_t)timegm(&tm) - (sign == '+' ? off : -off);
    return 0;
}
