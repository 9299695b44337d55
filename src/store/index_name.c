/* index_name.c: the little of Dovecot's Maildir file-name grammar the UID
 * index needs: base/info split, ",S=" and ",W=" sizes, the "<secs>.M<usecs>"
 * timestamp, ":2,<flags>" letters, and generating a new unique name for
 * COPY, as the index wants them (MB_* flags), on top of mdname.c. */
#include "store/index_int.h"
#include "store/mailbox.h"
#include "store/maildir.h"

#include <string.h>

/* Letter of each MB_* system flag bit, in bit order. */
static const char sys_letters[5] = {'S', 'R', 'F', 'T', 'D'};

static uint32_t letter_flag(char c)
{
    for (int i = 0; i < 5; i++)
        if (sys_letters[i] == c)
            return 1u << i;
    if (c >= 'a' && c <= 'z')
        return MB_KEYWORD(c - 'a');
    return 0;
}

/* MB_* flags from the Maildir letters mdname_parse found. */
static uint32_t mb_flags(const struct mdname *m)
{
    uint32_t f = 0;
    if (m->flags & MDF_SEEN)
        f |= MB_SEEN;
    if (m->flags & MDF_REPLIED)
        f |= MB_ANSWERED;
    if (m->flags & MDF_FLAGGED)
        f |= MB_FLAGGED;
    if (m->flags & MDF_TRASHED)
        f |= MB_DELETED;
    if (m->flags & MDF_DRAFT)
        f |= MB_DRAFT;
    for (int i = 0; i < MB_KEYWORDS_MAX; i++)
        if (m->keywords & (1u << i))
            f |= MB_KEYWORD(i);
    return f;
}

int idxname_parse(const char *fname, struct idxname *out)
{
    size_t len = strlen(fname);
    struct mdname m;
    memset(out, 0, sizeof(*out));
    if (len > LIM_MAILDIR_NAME || fname[0] == '.' || mdname_parse(fname, len, &m) < 0 ||
        m.base_len == 0)
        return -1;
    out->base_len = m.base_len;
    out->info = m.base_len < len ? fname + m.base_len + 1 : NULL;
    out->flags = m.has_info ? mb_flags(&m) : 0;
    out->size = m.has_size ? m.size : 0;
    out->vsize = m.has_vsize ? m.vsize : 0;
    out->secs = m.has_secs ? m.secs : -1;
    out->usecs = m.usecs;
    return 0;
}

int idxname_info(const char *old_info, uint32_t flags, char *out, size_t cap)
{
    char letters[64];
    size_t n = 0;
    /* Unknown upper-case letters of the old info survive (Dovecot keeps
     * flags it does not know); everything is written in ASCII order. */
    if (old_info && old_info[0] == '2' && old_info[1] == ',')
        for (const char *p = old_info + 2; *p && *p != ',' && n < 26; p++)
            if (*p >= 'A' && *p <= 'Z' && !letter_flag(*p) && !memchr(letters, *p, n))
                letters[n++] = *p;
    for (int i = 0; i < 5; i++)
        if (flags & (1u << i))
            letters[n++] = sys_letters[i];
    for (int i = 0; i < MB_KEYWORDS_MAX; i++)
        if (flags & MB_KEYWORD(i))
            letters[n++] = (char)('a' + i);
    for (size_t i = 1; i < n; i++) /* insertion sort, n <= 57 */
        for (size_t j = i; j > 0 && letters[j - 1] > letters[j]; j--) {
            char t = letters[j];
            letters[j] = letters[j - 1];
            letters[j - 1] = t;
        }
    if (n + 3 > cap)
        return -1;
    out[0] = '2';
    out[1] = ',';
    memcpy(out + 2, letters, n);
    out[n + 2] = '\0';
    return 0;
}

int idxname_generate(struct buf *out, uint64_t size, uint64_t vsize)
{
    char name[MDNAME_MAX + 1];
    int n = mdname_new(name, sizeof name, size, vsize);
    return n < 0 ? -1 : buf_append(out, name, (size_t)n);
}
