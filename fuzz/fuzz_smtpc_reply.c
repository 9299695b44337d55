/* fuzz_smtpc_reply.c: libFuzzer harness for the outbound SMTP client's
 * reply parser and transaction state machine. Invariants trap when broken:
 * the parser never reports more bytes used than given, codes are in range,
 * texts are NUL-terminated and printable; feeding in one piece or byte by
 * byte gives the same replies; the state machine ends with every recipient
 * answered when its status is 0. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtpc_proto.h"
#include "smtp/smtpc_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    int code[64];
    size_t n;
    int err;
};

static void check_reply(const struct smtpc_reply *r)
{
    if (r->code < 200 || r->code > 559)
        __builtin_trap();
    if (memchr(r->text, 0, sizeof r->text) == NULL || memchr(r->enh, 0, sizeof r->enh) == NULL)
        __builtin_trap();
    for (const char *t = r->text; *t; t++)
        if ((unsigned char)*t < 0x20)
            __builtin_trap();
}

static void parse(const char *p, size_t n, size_t step, struct seen *s)
{
    struct smtpc_reply_parser rp;
    smtpc_reply_init(&rp);
    memset(s, 0, sizeof *s);
    size_t off = 0;
    while (off < n) {
        size_t chunk = n - off < step ? n - off : step, used = 0;
        int r = smtpc_reply_feed(&rp, p + off, chunk, &used);
        if (used > chunk)
            __builtin_trap();
        if (r == SMTPC_RP_ERR) {
            s->err = 1;
            return;
        }
        if (r == SMTPC_RP_DONE) {
            check_reply(&rp.reply);
            if (s->n < 64)
                s->code[s->n] = rp.reply.code;
            s->n++;
        }
        off += used;
    }
}

static void run_proto(const char *p, size_t n, uint8_t mode)
{
    static const char *const rcpts[] = {"a@x.example", "b@x.example", "c@x.example"};
    struct smtpc_reply out[3];
    bool fin[3];
    struct smtpc_proto_job j = {
        .helo = "me.example", .mail_from = "s@me.example", .rcpts = rcpts,
        .n_rcpts = 1 + mode % 3, .msg = ".a\r\nb", .len = 5,
        .tls = (enum smtpc_tls_need)((mode / 3) % 3),
    };
    struct smtpc_proto sp;
    smtpc_proto_init(&sp, &j, out, fin);
    size_t step = 1 + mode / 9;
    for (size_t off = 0; off < n && !smtpc_proto_done(&sp); off += step) {
        size_t c = n - off < step ? n - off : step;
        enum smtpc_event ev = smtpc_proto_input(&sp, p + off, c);
        while (smtpc_proto_body(&sp, step))
            ;
        buf_reset(smtpc_proto_output(&sp));
        if (ev == SMTPC_EV_STARTTLS)
            smtpc_proto_tls_ready(&sp);
    }
    if (smtpc_proto_done(&sp) && sp.status == SMTPC_OK)
        for (size_t i = 0; i < j.n_rcpts; i++)
            if (!fin[i])
                __builtin_trap();
    smtpc_proto_free(&sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    struct seen whole, bytes;
    parse(p, n, n ? n : 1, &whole);
    parse(p, n, 1, &bytes);
    if (whole.err != bytes.err || whole.n != bytes.n ||
        memcmp(whole.code, bytes.code, sizeof whole.code) != 0)
        __builtin_trap();
    run_proto(p, n, data[0]);
    return 0;
}
