/* append_file.h: storing an APPENDed message file (see append_file.c). */
#ifndef CM_IMAP_APPEND_FILE_H
#define CM_IMAP_APPEND_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes data into folder_dir (tmp/ then cur/ when flags, else new/).
 * flags: MB_* bits. name (cap bytes) gets the file name, *in_cur where it
 * went. 0 or -1 (errno). */
int imap_append_file(const char *folder_dir, const char *data, size_t len, uint32_t flags,
                     int64_t idate, char *name, size_t cap, bool *in_cur);

#endif
