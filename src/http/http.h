/* http.h: the HTTP module's public face: session handlers for the https
 * port (default of the ALPN dispatch) and the plain http port. */
#ifndef CM_HTTP_HTTP_H
#define CM_HTTP_HTTP_H

#include "core/net.h"

extern const struct session_ops http_session_ops;

#endif
