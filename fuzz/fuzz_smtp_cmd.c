/* fuzz_smtp_cmd.c: libFuzzer harness for the SMTP command parser, the AUTH
 * decoders and the DATA/BDAT decoders. The first byte selects the target;
 * invariants (error replies well-formed, accepted addresses valid, base64
 * round trip, split-independence of the data decoder) trap when broken. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/base64.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int rc, const char *err)
{
    if (rc < 0 && (strlen(err) < 4 || err[0] < '4' || err[0] > '5' || strpbrk(err, "\r\n")))
        __builtin_trap();
}

static void check_addr(const char *addr, bool null_ok)
{
    if (!addr[0] && null_ok)
        return;
    if (smtp_addr_valid(addr, strlen(addr), NULL) < 0)
        __builtin_trap();
}

static void fuzz_args(const char *p, size_t n)
{
    char err[SMTP_ERR_MAX] = "";
    struct smtp_cmd c;
    if (smtp_parse_line(p, n, &c, err) < 0) {
        check_err(-1, err);
        return;
    }
    struct smtp_mail_args m;
    struct smtp_rcpt_args r;
    struct smtp_auth_args a;
    uint64_t sz;
    bool last;
    int rc = smtp_parse_mail(c.arg, c.arg_len, &m, err);
    check_err(rc, err);
    if (rc == 0)
        check_addr(m.addr, true);
    rc = smtp_parse_rcpt(c.arg, c.arg_len, &r, err);
    check_err(rc, err);
    if (rc == 0)
        check_addr(r.addr, false);
    check_err(smtp_parse_helo(c.arg, c.arg_len, true, err), err);
    check_err(smtp_parse_auth(c.arg, c.arg_len, &a, err), err);
    check_err(smtp_parse_bdat(c.arg, c.arg_len, &sz, &last, err), err);
}

static void fuzz_base64(const char *p, size_t n)
{
    unsigned char raw[4096];
    char back[8192];
    long k = base64_decode(p, n, raw, sizeof raw);
    if (k < 0)
        return;
    /* canonical input only: unused bits must be zero to round-trip */
    if (base64_encode(raw, (size_t)k, back, sizeof back) != (long)n)
        __builtin_trap();
    struct smtp_auth_creds c;
    char v[SMTP_AUTH_USER_MAX + 1];
    smtp_auth_plain_decode(p, n, &c);
    if (smtp_auth_login_decode(p, n, v, sizeof v) == 0 && strlen(v) == 0)
        __builtin_trap();
}

static int sink(void *ctx, const char *p, size_t n)
{
    return buf_append(ctx, p, n);
}

static void fuzz_data(const char *p, size_t n, size_t split, bool bdat)
{
    struct buf a = {0}, b = {0};
    struct smtp_data da, db;
    smtp_data_init(&da, 4096, sink, &a);
    smtp_data_init(&db, 4096, sink, &b);
    size_t ua = 0, ub1 = 0, ub2 = 0;
    enum smtp_data_status sa, sb;
    if (split > n)
        split = n;
    if (bdat) {
        sa = smtp_bdat_feed(&da, p, n);
        sb = smtp_bdat_feed(&db, p, split);
        if (sb == SMTP_DATA_MORE)
            sb = smtp_bdat_feed(&db, p + split, n - split);
    } else {
        sa = smtp_data_feed(&da, p, n, &ua);
        sb = smtp_data_feed(&db, p, split, &ub1);
        if (sb == SMTP_DATA_MORE)
            sb = smtp_data_feed(&db, p + split, n - split, &ub2), ub1 += ub2;
    }
    if (sa != sb || (sa == SMTP_DATA_END && ua != ub1))
        __builtin_trap();
    if ((sa == SMTP_DATA_MORE || sa == SMTP_DATA_END) && smtp_data_ok(&da) != smtp_data_ok(&db))
        __builtin_trap();
    if ((sa == SMTP_DATA_MORE || sa == SMTP_DATA_END) && smtp_data_ok(&da)) {
        if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
            __builtin_trap();
        /* decoded DATA never contains a bare LF */
        for (size_t i = 0; i < a.len; i++) {
            if (a.data[i] == '\n' && (i == 0 || a.data[i - 1] != '\r'))
                __builtin_trap();
        }
    }
    buf_free(&a);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    switch (data[0] % 4) {
    case 0:
        fuzz_args(p, n);
        break;
    case 1:
        fuzz_base64(p, n);
        break;
    case 2:
        fuzz_data(p, n, data[1] * n / 256, false);
        break;
    default:
        fuzz_data(p, n, data[1] * n / 256, true);
        break;
    }
    return 0;
}
