/* store.h: the public face of src/store, the only code that touches the
 * mail tree (<mailboxes_dir>/<addr>/...). It is three parts:
 *
 *   store/accounts.h  addresses, password schemes, create-on-login (§2.4),
 *                     last login, metadata.json (push tokens), async login
 *   store/maildir.h   Dovecot file names, durable delivery, gzip, quota and
 *                     its trim, expiry and the fsreport gauges
 *   store/mailbox.h   one folder as IMAP sees it (UIDs, flags, MODSEQ, the
 *                     index rebuildable from the Maildir, dovecot-uidlist),
 *                     folders, and the change registry that wakes IDLE
 *
 * Every change to the mail tree goes through these functions - delivery
 * (store_deliver*), APPEND (store_append), COPY/MOVE, expunge, the undo of
 * a delivery (store_undeliver), expiry and the quota trim - and each keeps
 * the shared quota cache exact (or drops the entry so the next use scans).
 * No other module opens a file under mailboxes_dir for writing.
 *
 * Other modules include this header (the build gives them the three parts
 * only because this one includes them: see CMakeLists.txt); accounts_int.h,
 * index_int.h and sqlheap.h are private to src/store.
 *
 * Everything on disk stays readable by Dovecot and chatmail's tools, so a
 * relay can move over by pointing mailboxes_dir at its data, and back. */
#ifndef CM_STORE_STORE_H
#define CM_STORE_STORE_H

#include "store/accounts.h"
#include "store/mailbox.h"
#include "store/maildir.h"

#endif
