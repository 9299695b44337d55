/* config_value.c: parsers for single chatmail.ini values — integers, size
 * strings (§1.2), numbers, booleans, ports, domains, IP addresses and DNS
 * server entries. Pure functions over strings; each returns NULL when the
 * value is good, else a short reason that ends up in `--check` output. */
#include "core/limits.h"
#include "core/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/* Parses [+]digits (surrounding whitespace allowed) into *out. */
static const char *parse_digits(const char *s, long *out)
{
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '+')
        s++;
    if (!isdigit((unsigned char)*s))
        return "not an integer";
    long v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';
        if (v > (LONG_MAX - d) / 10)
            return "out of range";
        v = v * 10 + d;
    }
    while (isspace((unsigned char)*s))
        s++;
    if (*s)
        return "not an integer";
    *out = v;
    return NULL;
}

static bool looks_negative(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s[0] == '-' && isdigit((unsigned char)s[1]);
}

const char *cfg_parse_long(const char *s, long *out)
{
    if (looks_negative(s))
        return "must not be negative";
    return parse_digits(s, out);
}

const char *cfg_parse_port(const char *s, int *out)
{
    long v;
    const char *why = parse_digits(s, &v);
    if (why && looks_negative(s))
        return "port out of range 0..65535";
    if (why)
        return why;
    if (v > 65535)
        return "port out of range 0..65535";
    *out = (int)v;
    return NULL;
}

/* "HH:MM" (24-hour, UTC) -> minutes of the day. */
const char *cfg_parse_time(const char *s, int *minutes)
{
    const char *why = "not a time of day HH:MM";
    if (strlen(s) != 5 || s[2] != ':')
        return why;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return why;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return why;
    *minutes = h * 60 + m;
    return NULL;
}

const char *cfg_parse_bool(const char *s, bool *out)
{
    static const char *const on[] = {"true", "yes", "on", "1"};
    static const char *const off[] = {"false", "no", "off", "0", ""};
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++)
        if (strcasecmp(s, on[i]) == 0)
            return *out = true, NULL;
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
        if (strcasecmp(s, off[i]) == 0)
            return *out = false, NULL;
    return "not a boolean (true/false, yes/no, on/off, 1/0)";
}

const char *cfg_parse_double(const char *s, double *out)
{
    if (!*s || strspn(s, "0123456789.eE+- \t") != strlen(s))
        return "not a number";
    if (looks_negative(s) || (s[0] == '-' && s[1] == '.'))
        return "must not be negative";
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (end == s || *end || errno == ERANGE || !isfinite(v))
        return "not a number";
    if (v < 0)
        return "must not be negative";
    *out = v;
    return NULL;
}

/* §1.2: strip, uppercase, drop one trailing B; G = x1024, M = x1, none = MB. */
/* "172800", "172800s", "2880m", "48h", "2d" (spaces around allowed). */
const char *cfg_parse_duration(const char *s, long *secs)
{
    const char *why_bad = "not a duration (an integer with optional s, m, h or d suffix, e.g. 2d)";
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    long mult = 1;
    if (n) {
        switch (tolower((unsigned char)s[n - 1])) {
        case 's': mult = 1, n--; break;
        case 'm': mult = 60, n--; break;
        case 'h': mult = 3600, n--; break;
        case 'd': mult = 86400, n--; break;
        default: break;
        }
    }
    char num[32];
    if (n == 0 || n >= sizeof num)
        return why_bad;
    memcpy(num, s, n);
    num[n] = '\0';
    if (looks_negative(num))
        return "must not be negative";
    long v;
    if (parse_digits(num, &v))
        return why_bad;
    if (v > LONG_MAX / mult)
        return "out of range";
    *secs = v * mult;
    return NULL;
}

const char *cfg_parse_size(const char *s, long *out)
{
    const char *why_bad = "not a size (an integer with optional M or G suffix, e.g. 500M, 2G)";
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n && toupper((unsigned char)s[n - 1]) == 'B')
        n--;
    long mult = 1;
    if (n && toupper((unsigned char)s[n - 1]) == 'G')
        mult = 1024, n--;
    else if (n && toupper((unsigned char)s[n - 1]) == 'M')
        n--;
    char num[32];
    if (n == 0 || n >= sizeof num)
        return why_bad;
    memcpy(num, s, n);
    num[n] = '\0';
    if (looks_negative(num))
        return "must not be negative";
    long v;
    if (parse_digits(num, &v))
        return why_bad;
    if (v > LONG_MAX / mult)
        return "out of range";
    *out = v * mult;
    return NULL;
}

int config_parse_size_mb(const char *s, long *mb)
{
    return s && cfg_parse_size(s, mb) == NULL ? 0 : -1;
}

/* Letters, digits, '-', '_' and '.' between non-empty labels: the value is
 * also used as a directory name, so '/', '..' and the like never pass. */
const char *cfg_check_domain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return "must not be empty";
    if (n > LIM_DOMAIN_LEN)
        return "longer than 253 characters";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.')
            return "contains characters not valid in a domain name "
                   "(only letters, digits, '-', '_' and '.')";
    }
    if (s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return "has an empty label (leading, trailing or double '.')";
    return NULL;
}

const char *cfg_check_ip(const char *s)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1)
        return NULL;
    return "not an IPv4 or IPv6 address";
}

/* "1.2.3.4", "1.2.3.4:53", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:53" */
const char *cfg_check_dns_server(const char *s)
{
    const char *why = "not ip, ip:port or [ipv6]:port";
    char host[64];
    const char *port = NULL;
    unsigned char addr[16];
    int family = AF_INET;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || (size_t)(close - s - 1) >= sizeof host)
            return why;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        family = AF_INET6;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return why;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':'))
            family = AF_INET6, colon = NULL; /* bare IPv6, no port */
        size_t hl = colon ? (size_t)(colon - s) : strlen(s);
        if (hl >= sizeof host)
            return why;
        memcpy(host, s, hl);
        host[hl] = '\0';
        port = colon ? colon + 1 : NULL;
    }
    if (inet_pton(family, host, addr) != 1)
        return why;
    int p;
    if (port && (!*port || strspn(port, "0123456789") != strlen(port) ||
                 cfg_parse_port(port, &p) || p == 0))
        return "port out of range 1..65535";
    return NULL;
}

const char *cfg_log_level_name(const char *s)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i]) == 0)
            return names[i];
    if (strcasecmp(s, "warning") == 0)
        return "warn";
    return NULL;
}
