/* test_filter.c: table-driven verdicts of filter_outgoing/filter_incoming on
 * the real-shaped fixtures in tests/data/filter (made by make_fixtures.py
 * with GnuPG; no gpg needed here). */
#include "check.h"

#include <stdbool.h>
#include <stdlib.h>

#include "filter/filter.h"

#define A "alice@example.org"
#define B "bob@example.net"
#define UNENC "523 Encryption Needed: Invalid Unencrypted Mail"

static char *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/filter/%s", CM_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = malloc(1 << 20);
    *len = data ? fread(data, 1, 1 << 20, f) : 0;
    fclose(f);
    return data;
}

struct row {
    const char *file, *mail_from, *rcpt;
    int out_code;
    enum filter_kind out_kind;
    int in_code;
    enum filter_kind in_kind;
    bool null_sender;
    const char *out_reply; /* checked when non-NULL */
};

#define ENC FILTER_KIND_ENCRYPTED
#define SJ FILTER_KIND_SECUREJOIN
#define REJ FILTER_KIND_REJECTED
#define INV FILTER_KIND_INVALID

static const struct row rows[] = {
    {"encrypted.eml", A, B, 0, ENC, 0, ENC, false, ""},
    {"encrypted-gpg-raw.eml", A, B, 0, ENC, 0, ENC, false, NULL},
    {"encrypted-skesk.eml", A, B, 0, ENC, 0, ENC, false, NULL},
    {"encrypted-legacy.eml", A, B, 0, ENC, 0, ENC, false, NULL},
    {"encrypted-partial.eml", A, B, 0, ENC, 0, ENC, false, NULL},
    {"encrypted-nocrc-padding.eml", A, B, 0, ENC, 0, ENC, false, NULL},
    {"encrypted-crc-mismatch.eml", A, B, 0, ENC, 0, ENC, false, NULL},
    {"encrypted-b64-cte.eml", A, B, 0, ENC, 0, ENC, false, NULL},
    {"encrypted.eml", "ALICE@Example.ORG", B, 0, ENC, 0, ENC, false, NULL},
    {"armor-version-header.eml", A, B, 523, REJ, 0, ENC, false, UNENC},
    {"armor-comment-header.eml", A, B, 523, REJ, 0, ENC, false, UNENC},
    {"encrypted-from-mismatch.eml", A, B, 500, INV, 0, ENC, true,
     "500 Invalid FROM mallory@example.org for alice@example.org"},
    {"literal.eml", A, B, 523, REJ, 523, REJ, false, UNENC},
    {"truncated-armor.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"bad-base64.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"bad-crc-line.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"packets-past-end.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"esk-after-seipd.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"empty-payload.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"trailing-garbage.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"version-2.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"three-parts.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"one-part.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"nested-multipart.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"fake-encrypted.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"plain.eml", A, B, 523, REJ, 523, REJ, false, UNENC},
    {"mdn.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"asm.eml", A, A, 0, FILTER_KIND_ASM_SELF, 523, REJ, false, ""},
    {"asm.eml", A, "ALICE@example.org", 0, FILTER_KIND_ASM_SELF, 523, REJ, false, NULL},
    {"asm-folded-subject.eml", A, A, 0, FILTER_KIND_ASM_SELF, 523, REJ, false, NULL},
    {"asm.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"securejoin-vc.eml", A, B, 0, SJ, 0, SJ, false, NULL},
    {"securejoin-vg.eml", A, B, 0, SJ, 0, SJ, false, NULL},
    {"securejoin-vc-qp.eml", A, B, 0, SJ, 0, SJ, false, NULL},
    {"securejoin-vc-fake.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"securejoin-vc-two-parts.eml", A, B, 523, REJ, 523, REJ, false, NULL},
    {"mailer-daemon.eml", "", B, 500, INV, 0, FILTER_KIND_MAILER_DAEMON, true,
     "500 Invalid FROM mailer-daemon@mx.example.net for "},
    {"mailer-daemon-no-autosubmitted.eml", "", B, 500, INV, 523, REJ, true, NULL},
    {"no-from.eml", A, B, 500, INV, 500, INV, false, "500 Invalid FROM header: "},
    {"bad-from.eml", A, B, 500, INV, 500, INV, false,
     "500 Invalid FROM header: undisclosed sender"},
};

static bool always(void *ud, const char *rcpt)
{
    (void)rcpt;
    ++*(int *)ud;
    return true;
}

static bool never(void *ud, const char *rcpt)
{
    (void)ud;
    (void)rcpt;
    return false;
}

static void check_row(const struct row *t)
{
    size_t len;
    char *msg = load(t->file, &len);
    CHECK(msg != NULL);
    if (!msg)
        return;
    const char *rcpts[] = {t->rcpt};
    struct filter_envelope env = {t->mail_from, rcpts, 1};
    struct filter_result r;
    CHECK_INT_EQ(filter_outgoing(msg, len, &env, &r), 0);
    if (r.code != t->out_code || r.kind != t->out_kind)
        fprintf(stderr, "outgoing %s -> %d %s\n", t->file, r.code, r.reply);
    CHECK_INT_EQ(r.code, t->out_code);
    CHECK_INT_EQ(r.kind, t->out_kind);
    if (t->out_reply)
        CHECK_STR_EQ(r.reply, t->out_reply);
    int calls = 0;
    CHECK_INT_EQ(filter_incoming(msg, len, &env, always, &calls, &r), 0);
    if (r.code != t->in_code || r.kind != t->in_kind)
        fprintf(stderr, "incoming %s -> %d %s\n", t->file, r.code, r.reply);
    CHECK_INT_EQ(r.code, t->in_code);
    CHECK_INT_EQ(r.kind, t->in_kind);
    CHECK_INT_EQ(r.null_sender, t->null_sender);
    if (t->in_kind == REJ)
        CHECK_STR_EQ(r.reply, UNENC);
    free(msg);
}

TEST(fixture_table)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        check_row(&rows[i]);
}

TEST(incoming_cleartext_ok_and_recipient_rules)
{
    size_t len;
    char *msg = load("plain.eml", &len);
    CHECK(msg != NULL);
    if (!msg)
        return;
    struct filter_result r;
    const char *ok[] = {"bob@example.net", "carol@example.net"};
    struct filter_envelope env = {A, ok, 2};
    filter_incoming(msg, len, &env, never, NULL, &r);
    CHECK_INT_EQ(r.code, 0);
    CHECK_INT_EQ(r.kind, FILTER_KIND_CLEARTEXT_OK);
    CHECK_STR_EQ(r.from_addr, A);
    CHECK(!r.null_sender);
    const char *bad[][1] = {{""}, {"bob"}, {"../x@example.net"}};
    for (size_t i = 0; i < 3; i++) {
        struct filter_envelope e2 = {A, bad[i], 1};
        filter_incoming(msg, len, &e2, never, NULL, &r);
        CHECK_INT_EQ(r.code, 523);
    }
    filter_incoming(msg, len, &env, NULL, NULL, &r); /* no callback: enforced */
    CHECK_INT_EQ(r.code, 523);
    struct filter_envelope none = {A, NULL, 0};
    filter_incoming(msg, len, &none, always, &(int){0}, &r);
    CHECK_INT_EQ(r.kind, FILTER_KIND_CLEARTEXT_OK);
    free(msg);
}

TEST(log_lines)
{
    char lines[2][FILTER_REPLY_MAX];
    struct filter_result r = {.kind = FILTER_KIND_ENCRYPTED};
    CHECK_INT_EQ(filter_log_lines(FILTER_OUTGOING, &r, lines), 1);
    CHECK_STR_EQ(lines[0], "Outgoing: Filtering encrypted mail.");
    r.kind = FILTER_KIND_REJECTED;
    snprintf(r.from_addr, sizeof r.from_addr, "%s", A);
    CHECK_INT_EQ(filter_log_lines(FILTER_INCOMING, &r, lines), 2);
    CHECK_STR_EQ(lines[0], "Incoming: Filtering unencrypted mail.");
    CHECK_STR_EQ(lines[1], "Rejected unencrypted mail from: alice@example.org");
    r.kind = FILTER_KIND_MAILER_DAEMON;
    CHECK_INT_EQ(filter_log_lines(FILTER_INCOMING, &r, lines), 2);
    CHECK_STR_EQ(lines[1], "Incoming: Filtering mailer-daemon message from alice@example.org");
    r.kind = FILTER_KIND_ASM_SELF;
    CHECK_INT_EQ(filter_log_lines(FILTER_OUTGOING, &r, lines), 1);
    CHECK_STR_EQ(lines[0], "Outgoing: Filtering unencrypted mail.");
    r.kind = FILTER_KIND_INVALID;
    CHECK_INT_EQ(filter_log_lines(FILTER_OUTGOING, &r, lines), 0);
}

TEST(parse_errors)
{
    /* header block without end over the bound */
    size_t n = (256 * 1024) + 100;
    char *big = malloc(n);
    CHECK(big != NULL);
    if (!big)
        return;
    memset(big, 'a', n);
    memcpy(big, "From: <a@b>\r\nX: ", 16);
    struct filter_envelope env = {"a@b", NULL, 0};
    struct filter_result r;
    filter_outgoing(big, n, &env, &r);
    CHECK_STR_EQ(r.reply, "500 Failed to parse message: header block too large");
    /* one header line over the bound inside a small enough block */
    size_t m = 70 * 1024;
    memcpy(big + m, "\r\n\r\nbody", 8);
    filter_outgoing(big, m + 8, &env, &r);
    CHECK_STR_EQ(r.reply, "500 Failed to parse message: header line too long");
    free(big);
    filter_outgoing("", 0, &env, &r);
    CHECK_STR_EQ(r.reply, "500 Invalid FROM header: ");
    const char *ctl = "From: a\x01\r\n b\r\n\r\n";
    filter_outgoing(ctl, strlen(ctl), &env, &r);
    CHECK_STR_EQ(r.reply, "500 Invalid FROM header: a? b");
}

int main(void)
{
    RUN(fixture_table);
    RUN(incoming_cleartext_ok_and_recipient_rules);
    RUN(log_lines);
    RUN(parse_errors);
    return check_report();
}
