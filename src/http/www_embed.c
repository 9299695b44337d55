/* www_embed.c: the files of www/ (page templates, style sheet, robots.txt)
 * built into the binary with the assembler's .incbin, so the server needs
 * no data directory. Each file is followed by a NUL byte. CM_WWW_DIR is the
 * source tree's www/, read by the assembler at build time only (set for this
 * file alone by CMakeLists.txt). */
#include <stddef.h>
#include <string.h>

#include "http/http_int.h"

#define WWW_EMBED(sym, file)                                                          \
    __asm__(".pushsection .rodata\n"                                                  \
            ".global " #sym "\n.hidden " #sym "\n" #sym ":\n"                         \
            ".incbin \"" CM_WWW_DIR "/" file "\"\n"                                   \
            ".global " #sym "_end\n.hidden " #sym "_end\n" #sym "_end:\n"             \
            ".byte 0\n.popsection\n");                                                \
    extern const char sym[], sym##_end[];

WWW_EMBED(cm_www_layout, "layout.html")
WWW_EMBED(cm_www_index, "index.html")
WWW_EMBED(cm_www_info, "info.html")
WWW_EMBED(cm_www_privacy, "privacy.html")
WWW_EMBED(cm_www_invite_acme, "invite-acme.html")
WWW_EMBED(cm_www_invite_self, "invite-self.html")
WWW_EMBED(cm_www_robots, "robots.txt")
WWW_EMBED(cm_www_style, "style.css")

#define ENTRY(file, sym) {file, sym, 0}

/* Lengths are filled in on first use (the end labels are not constants). */
static struct www_file files[] = {
    ENTRY("layout.html", cm_www_layout),
    ENTRY("index.html", cm_www_index),
    ENTRY("info.html", cm_www_info),
    ENTRY("privacy.html", cm_www_privacy),
    ENTRY("invite-acme.html", cm_www_invite_acme),
    ENTRY("invite-self.html", cm_www_invite_self),
    ENTRY("robots.txt", cm_www_robots),
    ENTRY("style.css", cm_www_style),
    {NULL, NULL, 0},
};

static const char *const ends[] = {
    cm_www_layout_end, cm_www_index_end, cm_www_info_end, cm_www_privacy_end,
    cm_www_invite_acme_end, cm_www_invite_self_end, cm_www_robots_end, cm_www_style_end,
};

const struct www_file *www_builtin_find(const char *name)
{
    for (size_t i = 0; files[i].name; i++) {
        if (files[i].len == 0)
            files[i].len = (size_t)(ends[i] - files[i].data);
        if (strcmp(files[i].name, name) == 0)
            return &files[i];
    }
    return NULL;
}
