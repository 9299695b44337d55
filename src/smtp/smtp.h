/* smtp.h: the SMTP module's public face: session handlers for the
 * listeners that core/net.c dispatches to SMTP. */
#ifndef CM_SMTP_SMTP_H
#define CM_SMTP_SMTP_H

#include "core/net.h"

/* Submission (587 STARTTLS, 465, https port with ALPN "smtp") and MX (25). */
extern const struct session_ops smtp_submission_ops;
extern const struct session_ops smtp_mx_ops;

#endif
