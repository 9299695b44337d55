/* bodystructure.c: the MIME part tree of a message (parse, find by part
 * number) and RFC 3501 BODY / BODYSTRUCTURE output. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/limits.h"
#include "imap/imap_mime.h"
#include "imap/session_int.h"

static int parse_entity(struct span e, struct imap_part *p, int depth);

static int parse_children(struct imap_part *p, int depth)
{
    if (p->message) {
        p->sub = calloc(1, sizeof *p->sub);
        if (!p->sub)
            return -1;
        p->nsub = 1;
        return parse_entity(p->body, p->sub, depth + 1);
    }
    struct span parts[LIM_MIME_PARTS];
    size_t n = mime_parts(p->body, p->ct.boundary, parts, LIM_MIME_PARTS);
    if (n > LIM_MIME_PARTS)
        n = LIM_MIME_PARTS;
    if (n == 0) {
        p->multipart = false; /* no delimiter: an opaque leaf */
        return 0;
    }
    p->sub = calloc(n, sizeof *p->sub);
    if (!p->sub)
        return -1;
    p->nsub = n;
    for (size_t i = 0; i < n; i++)
        if (parse_entity(parts[i], &p->sub[i], depth + 1) < 0)
            return -1;
    return 0;
}

static int parse_entity(struct span e, struct imap_part *p, int depth)
{
    memset(p, 0, sizeof *p);
    if (mime_split(e, &p->hdr, &p->body) < 0) {
        p->hdr = (struct span){e.p, 0};
        p->body = e;
    }
    mime_content_type(p->hdr, &p->ct);
    if (depth >= LIM_MIME_DEPTH)
        return 0;
    p->multipart = strcmp(p->ct.type, "multipart") == 0 && p->ct.has_boundary;
    p->message = ct_is(&p->ct, "message", "rfc822");
    if (p->multipart || p->message)
        return parse_children(p, depth);
    return 0;
}

int imap_mime_parse(const char *p, size_t n, struct imap_part *root)
{
    return parse_entity((struct span){p, n}, root, 0);
}

static void free_children(struct imap_part *p)
{
    for (size_t i = 0; i < p->nsub; i++)
        free_children(&p->sub[i]);
    free(p->sub);
    p->sub = NULL;
    p->nsub = 0;
}

void imap_mime_free(struct imap_part *root) { free_children(root); }

/* RFC 3501 6.4.5 part numbers. Inside a message (the root or an
 * encapsulated message/rfc822), a multipart body's parts are numbered 1..n
 * and a single-part body is part 1, the message entity itself (its body is
 * what BODY[n] returns: for a message/rfc822 part, the whole inner
 * message). The next number below a message/rfc822 part counts inside its
 * encapsulated message; below a multipart part, among its parts. */
const struct imap_part *imap_mime_find(const struct imap_part *root, const char *spec,
                                       const char **rest)
{
    const struct imap_part *p = NULL, *msg = root, *multi = NULL;
    const char *s = spec;
    while (*s >= '0' && *s <= '9') {
        unsigned long k = strtoul(s, (char **)&s, 10);
        if (k == 0)
            return NULL;
        if (msg)
            multi = msg->multipart ? msg : NULL;
        if (multi) {
            if (k > multi->nsub)
                return NULL;
            p = &multi->sub[k - 1];
        } else if (msg && k == 1) {
            p = msg;
        } else {
            return NULL;
        }
        msg = p->message && p->nsub == 1 ? &p->sub[0] : NULL;
        multi = !msg && p->multipart ? p : NULL;
        if (*s == '.')
            s++;
        else if (*s)
            return NULL;
    }
    *rest = s;
    return p ? p : root;
}

/* ---- Content-Type parameters and other header values ---- */

static void hdr_text(struct span hdr, const char *name, char *out, size_t cap)
{
    struct span v;
    out[0] = '\0';
    if (hdr_find(hdr, name, &v) == 1)
        hdr_value_text(v, out, cap);
}

static void write_nstr(struct buf *b, const char *s)
{
    if (!s || !*s)
        buf_append_str(b, "NIL");
    else
        imap_write_quoted_or_literal(b, s, strlen(s));
}

/* ";"-separated key=value parameters after the first token of a value. */
static void write_params(struct buf *b, const char *v)
{
    const char *p = strchr(v, ';');
    bool any = false;
    while (p && *p) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *eq = strchr(p, '=');
        const char *semi = strchr(p, ';');
        if (!eq || (semi && semi < eq))
            break;
        char key[128], val[1024];
        size_t kl = (size_t)(eq - p);
        while (kl && (p[kl - 1] == ' ' || p[kl - 1] == '\t'))
            kl--;
        if (kl == 0 || kl >= sizeof key)
            break;
        memcpy(key, p, kl);
        key[kl] = '\0';
        const char *q = eq + 1;
        while (*q == ' ')
            q++;
        size_t vl = 0;
        if (*q == '"') {
            q++;
            while (*q && *q != '"' && vl < sizeof val - 1) {
                if (*q == '\\' && q[1])
                    q++;
                val[vl++] = *q++;
            }
            if (*q == '"')
                q++;
        } else {
            while (*q && *q != ';' && *q != ' ' && vl < sizeof val - 1)
                val[vl++] = *q++;
        }
        val[vl] = '\0';
        buf_append_str(b, any ? " " : "(");
        any = true;
        for (char *k = key; *k; k++)
            if (*k >= 'a' && *k <= 'z')
                *k = (char)(*k - 32);
        write_nstr(b, key);
        buf_append(b, " ", 1);
        imap_write_quoted_or_literal(b, val, vl);
        p = strchr(q, ';');
    }
    buf_append_str(b, any ? ")" : "NIL");
}

static size_t count_lines(struct span s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.n; i++)
        n += s.p[i] == '\n';
    if (s.n && s.p[s.n - 1] != '\n')
        n++;
    return n;
}

static void write_disposition(struct buf *b, struct span hdr)
{
    char v[1024];
    hdr_text(hdr, "Content-Disposition", v, sizeof v);
    if (!v[0]) {
        buf_append_str(b, "NIL");
        return;
    }
    size_t tl = strcspn(v, "; \t");
    buf_append(b, "(", 1);
    imap_write_quoted_or_literal(b, v, tl);
    buf_append(b, " ", 1);
    write_params(b, v);
    buf_append(b, ")", 1);
}

static void write_leaf(struct buf *b, const struct imap_part *p, bool ext)
{
    char v[1024], id[512], desc[512], enc[64];
    hdr_text(p->hdr, "Content-Type", v, sizeof v);
    hdr_text(p->hdr, "Content-ID", id, sizeof id);
    hdr_text(p->hdr, "Content-Description", desc, sizeof desc);
    hdr_text(p->hdr, "Content-Transfer-Encoding", enc, sizeof enc);
    buf_append(b, "(", 1);
    write_nstr(b, p->ct.type);
    buf_append(b, " ", 1);
    write_nstr(b, p->ct.subtype);
    buf_append(b, " ", 1);
    if (v[0])
        write_params(b, v);
    else if (strcmp(p->ct.type, "text") == 0)
        buf_append_str(b, "(\"CHARSET\" \"us-ascii\")");
    else
        buf_append_str(b, "NIL");
    buf_append(b, " ", 1);
    write_nstr(b, id);
    buf_append(b, " ", 1);
    write_nstr(b, desc);
    buf_printf(b, " \"%s\" %zu", enc[0] ? enc : "7bit", p->body.n);
    if (p->message && p->nsub == 1) {
        buf_append(b, " ", 1);
        imap_write_envelope(b, p->sub[0].hdr);
        buf_append(b, " ", 1);
        imap_write_bodystructure(b, &p->sub[0], ext);
        buf_printf(b, " %zu", count_lines(p->body));
    } else if (strcmp(p->ct.type, "text") == 0) {
        buf_printf(b, " %zu", count_lines(p->body));
    }
    if (ext) {
        buf_append_str(b, " NIL ");
        write_disposition(b, p->hdr);
        buf_append_str(b, " NIL NIL");
    }
    buf_append(b, ")", 1);
}

void imap_write_bodystructure(struct buf *b, const struct imap_part *p, bool ext)
{
    if (!p->multipart) {
        write_leaf(b, p, ext);
        return;
    }
    buf_append(b, "(", 1);
    for (size_t i = 0; i < p->nsub; i++)
        imap_write_bodystructure(b, &p->sub[i], ext);
    buf_append(b, " ", 1);
    write_nstr(b, p->ct.subtype);
    if (ext) {
        char v[1024];
        hdr_text(p->hdr, "Content-Type", v, sizeof v);
        buf_append(b, " ", 1);
        write_params(b, v);
        buf_append(b, " ", 1);
        write_disposition(b, p->hdr);
        buf_append_str(b, " NIL NIL");
    }
    buf_append(b, ")", 1);
}
