/* rules.c: the filter's decisions (spec §3.3-3.6 with the decisions at the
 * head of the spec): what is encrypted, what is a Secure-Join request, and
 * the outgoing and incoming verdicts with their exact SMTP reply texts.
 * Pure: the caller logs (filter_log_lines), checks DKIM and re-injects. */
#include "filter/filter.h"
#include "filter/filter_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_UNENCRYPTED "523 Encryption Needed: Invalid Unencrypted Mail"
#define REPLY_NOMEM "451 4.3.0 Temporary failure: out of memory"

struct entity {
    struct span hdr, body;
    struct content_type ct;
};

static int load_entity(struct span e, struct entity *out)
{
    if (mime_split(e, &out->hdr, &out->body) < 0)
        return -1;
    return mime_content_type(out->hdr, &out->ct);
}

/* Transfer-decoded body, trimmed, equal to lit? 1 / 0, -1 out of memory. */
static int body_trim_eq(const struct entity *e, const char *lit, const char *lit2, bool nocase)
{
    struct span dec;
    char *owned;
    if (mime_decode(mime_cte(e->hdr), e->body, &dec, &owned) < 0)
        return -1;
    struct span t = span_trim(dec);
    int eq = span_eq_lit(t, lit, nocase) || (lit2 && span_eq_lit(t, lit2, nocase));
    free(owned);
    return eq;
}

static int armored_part_ok(const struct entity *e, enum filter_direction dir)
{
    struct span dec;
    char *owned;
    if (mime_decode(mime_cte(e->hdr), e->body, &dec, &owned) < 0)
        return -1;
    int ok = filter_armor_ok(dec.p, dec.n, dir);
    free(owned);
    return ok;
}

/* 1 encrypted, 0 not, -1 out of memory. */
static int check_encrypted(const char *msg, size_t len, enum filter_direction dir)
{
    struct entity top, p1, p2;
    struct span parts[2];
    if (load_entity((struct span){msg, len}, &top) < 0 ||
        !ct_is(&top.ct, "multipart", "encrypted") || !top.ct.has_boundary)
        return 0;
    if (mime_parts(top.body, top.ct.boundary, parts, 2) != 2) /* decision 1 */
        return 0;
    if (load_entity(parts[0], &p1) < 0 || load_entity(parts[1], &p2) < 0)
        return 0;
    if (!ct_is(&p1.ct, "application", "pgp-encrypted") ||
        !ct_is(&p2.ct, "application", "octet-stream"))
        return 0; /* also covers "no sub-part is multipart" */
    int rc = body_trim_eq(&p1, "Version: 1", NULL, false);
    if (rc <= 0)
        return rc;
    return armored_part_ok(&p2, dir);
}

/* 1 Secure-Join request, 0 not, -1 out of memory. */
static int check_securejoin(const char *msg, size_t len)
{
    struct entity top, part;
    struct span parts[1], v;
    if (load_entity((struct span){msg, len}, &top) < 0)
        return 0;
    if (hdr_find(top.hdr, "Secure-Join", &v) <= 0)
        return 0;
    v = span_trim(v);
    if (!span_eq_lit(v, "vc-request", false) && !span_eq_lit(v, "vg-request", false))
        return 0;
    if (!ct_is(&top.ct, "multipart", NULL) || !top.ct.has_boundary ||
        mime_parts(top.body, top.ct.boundary, parts, 1) != 1)
        return 0;
    if (load_entity(parts[0], &part) < 0 || !ct_is(&part.ct, "text", "plain"))
        return 0;
    return body_trim_eq(&part, "secure-join: vc-request", "secure-join: vg-request", true);
}

bool filter_is_encrypted(const char *msg, size_t len, enum filter_direction dir)
{
    return check_encrypted(msg, len, dir) == 1;
}

bool filter_is_securejoin(const char *msg, size_t len) { return check_securejoin(msg, len) == 1; }

/* ---- verdicts ---- */

static void set_reply(struct filter_result *r, int code, enum filter_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_reply(struct filter_result *r, int code, enum filter_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reply, sizeof r->reply, fmt, ap);
    va_end(ap);
    for (char *c = r->reply; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    r->code = code;
    r->kind = kind;
}

static void set_accept(struct filter_result *r, enum filter_kind kind)
{
    r->code = 0;
    r->reply[0] = '\0';
    r->kind = kind;
}

/* Parse check and From extraction shared by both directions: 0 go on,
 * 1 a 500 reply was set. */
static int common_prelude(const char *msg, size_t len, struct filter_result *r)
{
    struct span hdr, body;
    struct hdr_iter it;
    struct hdr_field f;
    int rc;
    *r = (struct filter_result){.kind = FILTER_KIND_INVALID};
    if (mime_split((struct span){msg, len}, &hdr, &body) < 0) {
        set_reply(r, 500, FILTER_KIND_INVALID, "500 Failed to parse message: header block too large");
        return 1;
    }
    hdr_iter_init(&it, hdr);
    while ((rc = hdr_next(&it, &f)) > 0)
        ;
    if (rc < 0) {
        set_reply(r, 500, FILTER_KIND_INVALID, "500 Failed to parse message: header line too long");
        return 1;
    }
    char raw[FILTER_REPLY_MAX];
    if (filter_from_address(msg, len, r->from_addr, raw, sizeof raw) != 1) {
        r->from_addr[0] = '\0';
        set_reply(r, 500, FILTER_KIND_INVALID, "500 Invalid FROM header: %s", raw);
        return 1;
    }
    return 0;
}

/* Header value trimmed and unfolded equals lit exactly? */
static bool header_is(struct span hdr, const char *name, const char *lit)
{
    struct span v;
    char text[128];
    if (hdr_find(hdr, name, &v) <= 0)
        return false;
    hdr_value_text(v, text, sizeof text);
    return strcmp(text, lit) == 0;
}

static bool is_asm_to_self(const char *msg, size_t len, const struct filter_envelope *env,
                           const char *from)
{
    struct entity top;
    if (env->n_rcpts != 1 || !env->rcpts[0] || !addr_eq_nocase(env->rcpts[0], from))
        return false;
    if (load_entity((struct span){msg, len}, &top) < 0)
        return false;
    return header_is(top.hdr, "Subject", "Autocrypt Setup Message") &&
           ct_is(&top.ct, "multipart", "mixed");
}

/* Encrypted or Secure-Join: sets the kind and returns 1; 0 neither; -1 OOM. */
static int encrypted_kind(const char *msg, size_t len, enum filter_direction dir,
                          struct filter_result *r)
{
    int rc = check_encrypted(msg, len, dir);
    if (rc == 1)
        set_accept(r, FILTER_KIND_ENCRYPTED);
    if (rc != 0)
        return rc;
    rc = check_securejoin(msg, len);
    if (rc == 1)
        set_accept(r, FILTER_KIND_SECUREJOIN);
    return rc;
}

static int out_of_memory(struct filter_result *r)
{
    set_reply(r, 451, FILTER_KIND_INVALID, REPLY_NOMEM);
    return -1;
}

int filter_outgoing(const char *msg, size_t len, const struct filter_envelope *env,
                    struct filter_result *r)
{
    if (common_prelude(msg, len, r))
        return 0;
    const char *mail_from = env->mail_from ? env->mail_from : "";
    if (!addr_eq_nocase(r->from_addr, mail_from)) {
        set_reply(r, 500, FILTER_KIND_INVALID, "500 Invalid FROM %s for %s", r->from_addr, mail_from);
        return 0;
    }
    int rc = encrypted_kind(msg, len, FILTER_OUTGOING, r);
    if (rc < 0)
        return out_of_memory(r);
    if (rc == 1)
        return 0;
    if (is_asm_to_self(msg, len, env, r->from_addr))
        set_accept(r, FILTER_KIND_ASM_SELF);
    else
        set_reply(r, 523, FILTER_KIND_REJECTED, REPLY_UNENCRYPTED);
    return 0;
}

static bool is_mailer_daemon_report(const char *msg, size_t len, const char *from)
{
    struct entity top;
    struct span v;
    if (strncmp(from, "mailer-daemon@", 14) != 0)
        return false;
    if (load_entity((struct span){msg, len}, &top) < 0 || !ct_is(&top.ct, "multipart", "report"))
        return false;
    return hdr_find(top.hdr, "Auto-Submitted", &v) > 0 && span_trim(v).n > 0;
}

static bool rcpt_syntax_ok(const char *rcpt)
{
    return rcpt && rcpt[0] && strchr(rcpt, '@') && !strchr(rcpt, '/');
}

int filter_incoming(const char *msg, size_t len, const struct filter_envelope *env,
                    filter_rcpt_enforced_fn enforced, void *ud, struct filter_result *r)
{
    if (common_prelude(msg, len, r))
        return 0;
    r->null_sender = !addr_eq_nocase(r->from_addr, env->mail_from ? env->mail_from : "");
    int rc = encrypted_kind(msg, len, FILTER_INCOMING, r);
    if (rc < 0)
        return out_of_memory(r);
    if (rc == 1)
        return 0;
    if (is_mailer_daemon_report(msg, len, r->from_addr)) {
        set_accept(r, FILTER_KIND_MAILER_DAEMON);
        return 0;
    }
    for (size_t i = 0; i < env->n_rcpts; i++) {
        const char *rcpt = env->rcpts[i];
        if (!rcpt_syntax_ok(rcpt) || !enforced || enforced(ud, rcpt)) {
            set_reply(r, 523, FILTER_KIND_REJECTED, REPLY_UNENCRYPTED);
            return 0;
        }
    }
    set_accept(r, FILTER_KIND_CLEARTEXT_OK);
    return 0;
}

int filter_log_lines(enum filter_direction dir, const struct filter_result *r,
                     char lines[2][FILTER_REPLY_MAX])
{
    const char *who = dir == FILTER_OUTGOING ? "Outgoing" : "Incoming";
    switch (r->kind) {
    case FILTER_KIND_INVALID: return 0;
    case FILTER_KIND_ENCRYPTED:
    case FILTER_KIND_SECUREJOIN:
        snprintf(lines[0], FILTER_REPLY_MAX, "%s: Filtering encrypted mail.", who);
        return 1;
    default: break;
    }
    snprintf(lines[0], FILTER_REPLY_MAX, "%s: Filtering unencrypted mail.", who);
    if (r->kind == FILTER_KIND_REJECTED) {
        snprintf(lines[1], FILTER_REPLY_MAX, "Rejected unencrypted mail from: %s", r->from_addr);
        return 2;
    }
    if (r->kind == FILTER_KIND_MAILER_DAEMON) {
        snprintf(lines[1], FILTER_REPLY_MAX, "Incoming: Filtering mailer-daemon message from %s",
                 r->from_addr);
        return 2;
    }
    return 1;
}
