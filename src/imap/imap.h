/* imap.h: the IMAP module's public face: the session handlers for 143,
 * 993 and the https port with ALPN "imap". */
#ifndef CM_IMAP_IMAP_H
#define CM_IMAP_IMAP_H

#include "core/net.h"

extern const struct session_ops imap_session_ops;

#endif
