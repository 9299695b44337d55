/* tags.c: the tag-list tokenizer of RFC 6376 §3.2, shared by the
 * DKIM-Signature and the key record parsers. Pure: bytes in, spans out.
 *   tag-list  = tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec  = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *   tag-name  = ALPHA *ALNUMPUNC          tag-value = VALCHARs and FWS
 * CR and LF count as folding whitespace here (the field arrives unfolded or
 * folded; either way they only separate). Empty tag-specs are refused
 * except after the last ';'. */
#include "dkim/dkim_int.h"

#include <string.h>
#include <strings.h>

bool dkim_is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void dkim_tagit_init(struct dkim_tagit *it, const char *p, size_t len)
{
    it->p = p;
    it->len = len;
    it->pos = 0;
}

static void skip_fws(const struct dkim_tagit *it, size_t *i)
{
    while (*i < it->len && dkim_is_wsp((unsigned char)it->p[*i]))
        (*i)++;
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnumpunc(unsigned char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

/* VALCHAR = %x21-3A / %x3C-7E; 8-bit bytes pass (UTF-8 in z= copies). */
static bool is_valchar(unsigned char c)
{
    return (c >= 0x21 && c <= 0x7e && c != ';') || c >= 0x80;
}

int dkim_tag_next(struct dkim_tagit *it, struct dkim_tag *t, const char **why)
{
    size_t i = it->pos;
    skip_fws(it, &i);
    if (i >= it->len) {
        it->pos = i;
        return 0;
    }
    size_t name_start = i;
    if (!is_alpha((unsigned char)it->p[i])) {
        *why = it->p[i] == ';' ? "empty tag-spec" : "bad tag name";
        return -1;
    }
    while (i < it->len && is_alnumpunc((unsigned char)it->p[i]))
        i++;
    t->name = it->p + name_start;
    t->name_len = i - name_start;
    skip_fws(it, &i);
    if (i >= it->len || it->p[i] != '=') {
        *why = "tag without '='";
        return -1;
    }
    i++;
    t->raw_start = i;
    size_t end = i;
    while (end < it->len && it->p[end] != ';')
        end++;
    t->raw_end = end;
    size_t vs = i, ve = end;
    while (vs < ve && dkim_is_wsp((unsigned char)it->p[vs]))
        vs++;
    while (ve > vs && dkim_is_wsp((unsigned char)it->p[ve - 1]))
        ve--;
    for (size_t k = vs; k < ve; k++) {
        unsigned char c = (unsigned char)it->p[k];
        if (!is_valchar(c) && !dkim_is_wsp(c)) {
            *why = "bad character in tag value";
            return -1;
        }
    }
    t->val = it->p + vs;
    t->val_len = ve - vs;
    it->pos = end < it->len ? end + 1 : end;
    return 1;
}

bool dkim_tag_is(const struct dkim_tag *t, const char *name)
{
    size_t n = strlen(name);
    return t->name_len == n && memcmp(t->name, name, n) == 0;
}

int dkim_tag_compact(const struct dkim_tag *t, char *out, size_t cap, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < t->val_len; i++) {
        unsigned char c = (unsigned char)t->val[i];
        if (dkim_is_wsp(c))
            continue;
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *out_len = o;
    return 0;
}

void dkim_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

bool dkim_tag_list_has(const struct dkim_tag *t, const char *word)
{
    size_t wl = strlen(word), i = 0;
    while (i < t->val_len) {
        size_t st = i;
        while (i < t->val_len && t->val[i] != ':')
            i++;
        size_t a = st, b = i;
        while (a < b && dkim_is_wsp((unsigned char)t->val[a]))
            a++;
        while (b > a && dkim_is_wsp((unsigned char)t->val[b - 1]))
            b--;
        if (b - a == wl && strncasecmp(t->val + a, word, wl) == 0)
            return true;
        i++;
    }
    return false;
}
