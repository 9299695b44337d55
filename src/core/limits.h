/* limits.h: every bound on input, buffering, connections and time, in one
 * place. Crossing one gets the protocol's own refusal (SMTP 4xx/5xx, IMAP
 * BAD/BYE, HTTP 4xx/503), never a crash or unbounded memory. */
#ifndef CM_CORE_LIMITS_H
#define CM_CORE_LIMITS_H

/* --- network and connections --- */
#define LIM_READ_CHUNK           (64 * 1024)  /* one shared read buffer on the loop */
#define LIM_CONN_OUTBUF_MAX      (256 * 1024) /* unsent bytes before reads pause (a bound per connection) */
#define LIM_CONN_TOTAL_MAX       60000        /* hard cap on open sockets */
#define LIM_FD_RESERVE_MIN       16     /* descriptors kept for sessions' files and logs */
#define LIM_REFUSE_LOG_MS        10000  /* "connections refused" at most this often */
#define LIM_LISTEN_BACKLOG       1024
#define LIM_EMFILE_LOG_MS        10000  /* "out of file descriptors" at most this often */
#define LIM_PER_IP_DIVISOR       5            /* per client IP cap = cap // 5 (spec §5.3) */

/* --- timeouts, milliseconds --- */
#define LIM_TLS_HANDSHAKE_MS     (10 * 1000)  /* total, from accept (or STARTTLS); bytes do not extend it */
#define LIM_SMTP_CMD_MS          (300 * 1000) /* Postfix smtpd_timeout */
#define LIM_SMTP_DATA_MS         (300 * 1000)
#define LIM_IMAP_PRELOGIN_MS     (60 * 1000)
#define LIM_IMAP_AUTOLOGOUT_MS   (30 * 60 * 1000) /* RFC 3501 minimum */
#define LIM_IMAP_HIBERNATE_MS    (30 * 1000)  /* quiet IDLE sessions drop their index connection (Dovecot: 30 s) */
#define LIM_IMAP_IDLE_KEEPALIVE_MS (2 * 60 * 1000) /* Dovecot "still here" */
#define LIM_HTTP_HEADER_MS       (15 * 1000)
#define LIM_HTTP_BODY_MS         (60 * 1000)
#define LIM_HTTP_KEEPALIVE_MS    (75 * 1000)
#define LIM_MEMORY_TRIM_MS       (30 * 1000)  /* freed heap pages go back to the kernel */
#define LIM_SHUTDOWN_GRACE_MS    (10 * 1000)  /* sessions may finish within this */

/* --- SMTP --- */
#define LIM_SMTP_LINE            2048   /* command line incl. CRLF (RFC 5321: 512, extensions more) */
#define LIM_SMTP_DATA_LINE       (64 * 1024) /* a DATA line (RFC: 1000; clients exceed it) */
#define LIM_SMTP_RCPT            1000   /* recipients per transaction */
#define LIM_SMTP_AUTH_LINE       4096
#define LIM_RATELIMIT_KEYS           100000 /* senders tracked by the GCRA */
#define LIM_SMTP_BAD_CMDS        20     /* errors before the session is closed */

/* --- failed authentication (IMAP and SMTP, core/authfail.h) --- */
#define LIM_AUTH_FAILS               3      /* failures before the connection is closed */
#define LIM_AUTH_FAIL_DELAY_MS       2000   /* before a failure is answered (Dovecot) */
#define LIM_AUTH_FAIL_PENALTY_MS     15000  /* ... when the address fails too often */
#define LIM_AUTH_FAIL_BURST          10     /* failures per address at once, then */
#define LIM_AUTH_FAIL_INTERVAL_MS    6000   /* one per this (10 a minute) */
#define LIM_AUTH_FAIL_KEYS           65536  /* addresses tracked */
#define LIM_AUTH_FAIL_USER           128    /* bytes of the user name logged */

/* --- IMAP --- */
#define LIM_IMAP_LINE            (64 * 1024)
#define LIM_IMAP_LITERAL         (64 * 1024 * 1024) /* APPEND limited by max_message_size too */
#define LIM_IMAP_ARGS            10000
#define LIM_IMAP_DEPTH           16     /* parenthesis nesting */
#define LIM_IMAP_BAD_CMDS        20
/* Memory before login: LOGIN/AUTHENTICATE need a few KiB (issue 16). */
#define LIM_IMAP_PRELOGIN_LINE   8192
#define LIM_IMAP_PRELOGIN_LITERAL 8192
/* After login: literals of commands other than APPEND; an APPEND literal
 * beyond LIM_IMAP_APPEND_MEM streams into a spool file, never whole in RAM. */
#define LIM_IMAP_CMD_LITERAL     (64 * 1024)
#define LIM_IMAP_APPEND_MEM      (64 * 1024)
/* SEARCH: keys per command and bytes scanned per command ([LIMIT]), and the
 * separate pool its work runs on (core/workpool.h). */
#define LIM_IMAP_SEARCH_KEYS     100
#define LIM_IMAP_SEARCH_SCAN     ((uint64_t)512 * 1024 * 1024)
#define LIM_IMAP_SLOW_WORKERS    2
#define LIM_IMAP_TOKENS          16     /* device tokens remembered per session */

/* --- HTTP --- */
#define LIM_HTTP_URL             8192
#define LIM_HTTP_HEADER_BYTES    (16 * 1024)
#define LIM_HTTP_HEADERS         100
#define LIM_HTTP_BODY            (64 * 1024)  /* except /mxdeliv: max_message_size */
/* POST /mxdeliv: room for LIM_SMTP_RCPT "X-MAIL-TO: <256-byte address>" lines */
#define LIM_HTTP_MXDELIV_HEADERS       (LIM_SMTP_RCPT + 32)
#define LIM_HTTP_MXDELIV_HEADER_BYTES  (LIM_SMTP_RCPT * 272 + LIM_HTTP_HEADER_BYTES)

/* --- MIME / filter --- */
#define LIM_MIME_DEPTH           8
#define LIM_MIME_PARTS           64
#define LIM_MIME_HEADER_BYTES    (256 * 1024)
#define LIM_MIME_HEADER_LINE     (64 * 1024)

/* --- config --- */
#define LIM_CONFIG_FILE          (1024 * 1024)

/* --- HTTP (site, proxy, /new) --- */
#define LIM_HTTP_QR_DATA             1024                   /* /qr.svg?data= after decoding */
#define LIM_HTTP_SITE_FILES          1000                   /* www_folder: files loaded */
#define LIM_HTTP_SITE_BYTES          (64 * 1024 * 1024)     /* www_folder: total bytes loaded */
#define LIM_HTTP_SITE_DEPTH          8                      /* www_folder: directory depth */
#define LIM_HTTP_PROXY_IDLE_MS       (10 * 60 * 1000)       /* proxied stream without traffic */
#define LIM_HTTP_PROXY_BUF           (1024 * 1024)          /* queued bytes before the other side pauses */
#define LIM_HTTP_NEW_KEYS            4096                   /* /new rate limiter: client IPs tracked */

/* --- store (accounts, index, metadata) --- */
#define LIM_LOGIN_PER_IP_DEFAULT     8                      /* logins in flight per client IP */
#define LIM_LOGIN_QUEUE              4096                   /* logins waiting for a worker slot */
#define LIM_LOGIN_QUEUE_PER_IP       256                    /* of those, from one client IP */
#define LIM_LOGIN_INFLIGHT_CAP       2048                   /* the highest `total` we accept */
#define LIM_LOGIN_IP                 64                     /* bytes of a client IP string */
#define LIM_KEYWORDS_FILE            (64 * 1024)            /* bytes of dovecot-keywords */
#define LIM_KEYWORD_NAME             128                    /* bytes of one keyword */
#define LIM_METADATA_FILE            (1024 * 1024)          /* bytes of metadata.json we read */
#define LIM_SUBS_FILE                (1024 * 1024)          /* bytes of a subscriptions file */
#define LIM_FOLDERS                  10000                  /* folders of one account */
#define LIM_STORE_LOCK_TIMEOUT_MS    5000                   /* password.lock, metadata.json.lock */
#define LIM_STORE_PWFILE_MAX         4096                   /* bytes read from a password file */
#define LIM_STORE_PATH               4352                   /* mailboxes_dir + address + file name */
#define LIM_MD_DEPTH                 32                     /* nesting of skipped values */
#define LIM_CRED_CACHE_SLOTS         4096                   /* cached verified credentials */
#define LIM_CRED_CACHE_TTL           3600                   /* seconds */
#define LIM_UIDLIST_BYTES            (64u * 1024 * 1024)    /* bigger files are ignored */
#define LIM_MAILDIR_NAME             255                    /* bytes of one file name */
#define LIM_PW_ARGON2_PARALLEL       2                      /* argon2 computations at once (x memlimit); below the login bound */

/* --- config and TLS --- */
#define LIM_DOMAIN_LEN               253                    /* RFC 1035 name length in text form */
#define LIM_CONFIG_UNUSED_NAMES      64                     /* names listed in `unused`; then "..." */
#define LIM_TLS_PATH                 4096                   /* certificate and key paths */
#define LIM_TLS_READ_CHUNK           16384                  /* one TLS record of plaintext */
#define LIM_TLS_ALPN_NAME            15                     /* longer selected names read as "" */
#define LIM_TLS_HOST                 256                    /* SNI / verified host name */
#define LIM_SELFSIGNED_DAYS          36500                  /* self-signed certificate validity (§13.4) */
#define LIM_TLS_NAME                 300                    /* "mta-sts." + a 253-byte domain */

#endif
