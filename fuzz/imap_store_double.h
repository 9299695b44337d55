/* imap_store_double.h: an in-memory double of the store interface that
 * src/imap uses (store/mailbox.h folders and views, store_append, quota,
 * metadata tokens), for fuzz_imap_session: one account with a fixed set of
 * folders and messages that is put back cheaply before every input. See
 * imap_store_double.c. */
#ifndef CM_FUZZ_IMAP_STORE_DOUBLE_H
#define CM_FUZZ_IMAP_STORE_DOUBLE_H

#include <stdint.h>

/* Builds the starting state: the message files are written once under
 * files_dir (FETCH and SEARCH read them through the real gz reader); the
 * session may only name account_dir, the account of addr. The quota limit
 * is max_mailbox_size_mb (the fixture fills it but for ~2 KiB). */
void store_double_init(const char *files_dir, const char *account_dir, const char *addr,
                       long max_mailbox_size_mb);
/* Back to the starting state; every mailbox view must be closed. */
void store_double_reset(void);
/* A change another session or a delivery makes to INBOX (kind % 4: a new
 * message, a flag change, an expunge, a new keyword set), announced to the
 * watchers as the real store's callers do. */
void store_double_poke(unsigned kind);
/* Frees everything (at exit; views must be closed). */
void store_double_free(void);

#endif
