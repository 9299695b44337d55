/* limits.h: every bound on input, buffering, connections and time, in one
 * place. Crossing one gets the protocol's own refusal (SMTP 4xx/5xx, IMAP
 * BAD/BYE, HTTP 4xx/503), never a crash or unbounded memory. */
#ifndef CM_CORE_LIMITS_H
#define CM_CORE_LIMITS_H

/* --- network and connections --- */
#define LIM_READ_CHUNK           (64 * 1024)  /* one shared read buffer on the loop */
#define LIM_CONN_OUTBUF_MAX      (4 * 1024 * 1024) /* unsent bytes before reads pause */
#define LIM_CONN_TOTAL_MAX       60000        /* hard cap on open sockets */
#define LIM_HTTP_CONN_MAX        4096         /* HTTP(S) sessions; beyond: 503 */
#define LIM_LISTEN_BACKLOG       1024
#define LIM_PER_IP_DIVISOR       5            /* per client IP cap = cap // 5 (spec §5.3) */

/* --- timeouts, milliseconds --- */
#define LIM_TLS_HANDSHAKE_MS     (30 * 1000)
#define LIM_SMTP_CMD_MS          (300 * 1000) /* Postfix smtpd_timeout */
#define LIM_SMTP_DATA_MS         (300 * 1000)
#define LIM_IMAP_PRELOGIN_MS     (60 * 1000)
#define LIM_IMAP_AUTOLOGOUT_MS   (30 * 60 * 1000) /* RFC 3501 minimum */
#define LIM_IMAP_IDLE_KEEPALIVE_MS (2 * 60 * 1000) /* Dovecot "still here" */
#define LIM_HTTP_HEADER_MS       (15 * 1000)
#define LIM_HTTP_BODY_MS         (60 * 1000)
#define LIM_HTTP_KEEPALIVE_MS    (75 * 1000)
#define LIM_SHUTDOWN_GRACE_MS    (10 * 1000)  /* sessions may finish within this */

/* --- SMTP --- */
#define LIM_SMTP_LINE            2048   /* command line incl. CRLF (RFC 5321: 512, extensions more) */
#define LIM_SMTP_DATA_LINE       (64 * 1024) /* a DATA line (RFC: 1000; clients exceed it) */
#define LIM_SMTP_RCPT            1000   /* recipients per transaction */
#define LIM_SMTP_AUTH_LINE       4096
#define LIM_SMTP_BAD_CMDS        20     /* errors before the session is closed */

/* --- IMAP --- */
#define LIM_IMAP_LINE            (64 * 1024)
#define LIM_IMAP_LITERAL         (64 * 1024 * 1024) /* APPEND limited by max_message_size too */
#define LIM_IMAP_ARGS            10000
#define LIM_IMAP_DEPTH           16     /* parenthesis nesting */
#define LIM_IMAP_BAD_CMDS        20

/* --- HTTP --- */
#define LIM_HTTP_URL             8192
#define LIM_HTTP_HEADER_BYTES    (16 * 1024)
#define LIM_HTTP_HEADERS         100
#define LIM_HTTP_BODY            (64 * 1024)  /* except /mxdeliv: max_message_size */

/* --- MIME / filter --- */
#define LIM_MIME_DEPTH           8
#define LIM_MIME_PARTS           64
#define LIM_MIME_HEADER_BYTES    (256 * 1024)
#define LIM_MIME_HEADER_LINE     (64 * 1024)

/* --- config --- */
#define LIM_CONFIG_FILE          (1024 * 1024)

#endif
