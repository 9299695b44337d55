/* fuzz_smtp_session.c: drives a whole SMTP session machine with arbitrary
 * bytes. The first bytes choose mode, TLS and size limit; the input is fed
 * in pieces whose sizes come from the input, and every action is resumed
 * with a result derived from the next input byte. Traps on a reply that is
 * not CRLF-terminated or on a session that stops making progress. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "smtp/smtp_ratelimit.h"
#include "smtp/smtp_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct cursor {
    const uint8_t *p;
    size_t n, off;
};

static uint8_t next_byte(struct cursor *c)
{
    return c->off < c->n ? c->p[c->off++] : 0;
}

static void check_out(struct smtp_session *s)
{
    struct buf *out = smtp_session_out(s);
    if (out->len &&
        (out->len < 2 || out->data[out->len - 2] != '\r' || out->data[out->len - 1] != '\n'))
        __builtin_trap();
    buf_consume(out, out->len);
}

/* Resumes actions until none is pending; returns false on CLOSE. */
static bool resume_all(struct smtp_session *s, struct cursor *c, bool *tls_pending)
{
    const struct smtp_action *a;
    int guard = 0;
    while ((a = smtp_session_action(s)) != NULL) {
        check_out(s);
        if (++guard > 100000)
            __builtin_trap();
        uint8_t b = next_byte(c);
        switch (a->kind) {
        case SMTP_ACT_STARTTLS:
            *tls_pending = true;
            return true;
        case SMTP_ACT_AUTH:
            smtp_session_resume_auth(s, (enum smtp_auth_result)(b % 3), "x\r\ny");
            break;
        case SMTP_ACT_CHECK_RCPT:
            smtp_session_resume_rcpt(s, (enum smtp_rcpt_result)(b % 5));
            break;
        case SMTP_ACT_DATA_CHUNK:
            smtp_session_resume_chunk(s, b % 8 != 0);
            break;
        case SMTP_ACT_DATA_ABORT:
            smtp_session_resume(s);
            break;
        case SMTP_ACT_MESSAGE_DONE:
            smtp_session_resume_message(s, b % 2 ? "250 2.0.0 Ok: queued as X" : "523 no\r\n");
            break;
        default:
            return false;
        }
    }
    check_out(s);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    struct smtp_ratelimit *rl = smtp_ratelimit_new(60, 3, 8);
    struct smtp_session_config cfg = {
        .mode = data[0] & 1 ? SMTP_MODE_MX : SMTP_MODE_SUBMISSION,
        .mail_domain = "example.org",
        .max_message_size = 64 + (uint64_t)data[1] * 64,
        .implicit_tls = (data[0] & 2) != 0,
        .ratelimit = rl,
    };
    struct smtp_session *s = smtp_session_new(&cfg);
    struct cursor c = {data + 3, size - 3, 0};
    size_t piece_max = 1 + data[2] % 64;
    bool tls_pending = false, open = true;
    uint64_t now = 0;
    while (open && c.off < c.n) {
        size_t n = 1 + next_byte(&c) % piece_max;
        if (n > c.n - c.off)
            n = c.n - c.off;
        if (smtp_session_want_read(s))
            smtp_session_input(s, c.p + c.off, n, now);
        c.off += n;
        now += 100000000ull;
        open = resume_all(s, &c, &tls_pending);
        if (tls_pending) {
            tls_pending = false;
            smtp_session_resume_tls(s);
            open = resume_all(s, &c, &tls_pending);
        }
    }
    smtp_session_free(s);
    smtp_ratelimit_free(rl);
    return 0;
}
