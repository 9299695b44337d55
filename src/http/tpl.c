/* tpl.c: the page templates' only syntax, {{name}}, replaced by a value
 * from the configuration (HTML-escaped unless marked raw). */
#include <stdio.h>
#include <string.h>

#include "http/http_int.h"

int html_escape(struct buf *out, const char *s, size_t len)
{
    int rc = 0;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        rc |= buf_append(out, s + start, i - start);
        rc |= buf_append_str(out, rep);
        start = i + 1;
    }
    rc |= buf_append(out, s + start, len - start);
    return rc ? -1 : 0;
}

static const struct tpl_var *lookup(const struct tpl_var *vars, size_t n, const char *name,
                                    size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0)
            return &vars[i];
    return NULL;
}

int tpl_render(const char *tpl, size_t len, const struct tpl_var *vars, size_t n_vars,
               struct buf *out, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < len) {
        const char *open = memmem(tpl + i, len - i, "{{", 2);
        if (!open)
            return buf_append(out, tpl + i, len - i);
        if (buf_append(out, tpl + i, (size_t)(open - (tpl + i))) < 0)
            return -1;
        const char *name = open + 2;
        const char *close = memmem(name, len - (size_t)(name - tpl), "}}", 2);
        if (!close) {
            snprintf(err, errlen, "unclosed {{ at byte %zu", (size_t)(open - tpl));
            return -1;
        }
        const struct tpl_var *v = lookup(vars, n_vars, name, (size_t)(close - name));
        if (!v) {
            snprintf(err, errlen, "unknown placeholder {{%.*s}}", (int)(close - name) > 40 ? 40 : (int)(close - name), name);
            return -1;
        }
        const char *val = v->value ? v->value : "";
        if ((v->raw ? buf_append_str(out, val) : html_escape(out, val, strlen(val))) < 0)
            return -1;
        i = (size_t)(close + 2 - tpl);
    }
    return 0;
}
