/* tls.h: TLS as a sans-I/O engine over OpenSSL 3.
 *
 * A tls_conn never touches a socket: its owner (core/net.c) feeds it the
 * ciphertext read from the peer and receives, through struct tls_io, the
 * ciphertext to send and the plaintext to hand to the session. Custom BIOs
 * read straight from the caller's buffer and write straight to io->send, and
 * SSL_MODE_RELEASE_BUFFERS is set, so an idle connection holds no record
 * buffers.
 *
 * struct tls_server holds the server-side SSL_CTXs (one per policy) built
 * from the configured certificate mode (§1.3 "Derived TLS settings"):
 * external (tls_external_cert_and_key), self-signed (domain starting with
 * `_` or an IPv4 literal: EC P-256, generated once into <state_dir>/tls/),
 * or ACME (the ACME client's <state_dir>/acme/live/{fullchain,privkey}, else
 * acmetool's <acme_acmetool_dir>/live/<domain>/{fullchain,privkey}, else a
 * temporary self-signed certificate until the client has one). Reloading
 * builds new contexts; connections already open keep the ones they started
 * with, so nothing is dropped. */
#ifndef CM_CORE_TLS_H
#define CM_CORE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct evp_pkey_st;
struct x509_st;
struct tls_server;
struct tls_client;
struct tls_conn;

enum tls_policy {
    TLS_POLICY_CLIENT, /* submission 587/465, IMAP 143/993: TLS 1.3 minimum */
    TLS_POLICY_MX,     /* port 25: TLS 1.2 minimum */
    TLS_POLICY_HTTPS,  /* https port: TLS 1.2 minimum, but a ClientHello whose
                          ALPN list names "smtp" or "imap" needs TLS 1.3 */
};

struct tls_io {
    /* ciphertext ready for the peer */
    void (*send)(void *ud, const uint8_t *p, size_t n);
    /* plaintext from the peer, for the session */
    void (*recv)(void *ud, const uint8_t *p, size_t n);
    /* the handshake completed (ALPN, version and SNI are known now) */
    void (*handshake_done)(void *ud);
};

/* Builds the server contexts from cfg, generating the self-signed
 * certificate when the mode asks for it and it does not exist yet.
 * Returns 0, or -1 with a reason in err. */
int tls_server_new(struct tls_server **out, const struct config *cfg, char *err, size_t errlen);
/* Re-reads certificate and key (SIGHUP). On failure the old contexts stay. */
int tls_server_reload(struct tls_server *ts, char *err, size_t errlen);
void tls_server_free(struct tls_server *ts);
/* The certificate file the current contexts were built from. */
const char *tls_server_cert_in_use(const struct tls_server *ts);

/* ACME mode: where the ACME client stores the certificate it obtained
 * (<state_dir>/acme/live/fullchain and .../privkey). 0, or -1 (too long). */
int tls_acme_paths(const char *state_dir, char *cert, char *key, size_t len);

/* tls-alpn-01 (RFC 8737): on the HTTPS policy a ClientHello offering ALPN
 * "acme-tls/1" is answered with the certificate the lookup returns for its
 * SNI name (borrowed: it stays valid until the lookup is called again or
 * unset), or fails the handshake when it returns false. The connection's
 * ALPN then reads "acme-tls/1" and the owner closes it after the handshake.
 * Loop thread only. */
#define TLS_ALPN_ACME "acme-tls/1"
typedef bool (*tls_acme_lookup)(void *ud, const char *name, struct x509_st **cert,
                                struct evp_pkey_st **key);
void tls_server_set_acme(struct tls_server *ts, tls_acme_lookup lookup, void *ud);

/* Client side (outbound SMTP, HTTPS): trust anchors from the system store
 * plus ca_file when it is not NULL (a missing or bad ca_file is an error).
 * TLS 1.2 minimum. Keeps sessions for resumption (tls_conn_resumed). */
int tls_client_new(struct tls_client **out, const char *ca_file, char *err, size_t errlen);
void tls_client_free(struct tls_client *tc);

/* A server-side connection under the given policy. ALPN offered: "smtp",
 * "imap", "http/1.1" (HTTPS policy only; other policies ignore ALPN). */
struct tls_conn *tls_conn_new_server(struct tls_server *ts, enum tls_policy policy,
                                     const struct tls_io *io, void *ud);
/* A client-side connection. `host` is sent as SNI and, when verify is true,
 * checked against the certificate (a name, or an IP literal). alpn is a
 * NULL-terminated list or NULL. The handshake starts at once (output is
 * emitted through io->send). */
struct tls_conn *tls_conn_new_client(struct tls_client *tc, const char *host, bool verify,
                                     const char *const *alpn, const struct tls_io *io, void *ud);

/* Feeds ciphertext from the peer. Drives the handshake, then hands
 * plaintext to io->recv. Returns 0, or -1 on a fatal TLS error (then *err
 * says why, e.g. "unsupported protocol"); the connection must be closed.
 * The bytes are read in place and not kept past the call. io->recv and
 * io->handshake_done may call tls_conn_write and tls_conn_shutdown (after
 * which no more plaintext is delivered), but must not free t or feed it.
 * A close_notify from the peer ends delivery cleanly: 0 is returned and
 * tls_conn_peer_closed() becomes true. */
int tls_conn_feed(struct tls_conn *t, const uint8_t *p, size_t n, const char **err);
/* Encrypts plaintext (only after the handshake); output goes to io->send.
 * Returns 0 or -1. */
int tls_conn_write(struct tls_conn *t, const uint8_t *p, size_t n, const char **err);
/* Emits a close_notify alert through io->send. */
void tls_conn_shutdown(struct tls_conn *t);
void tls_conn_free(struct tls_conn *t);

bool tls_conn_established(const struct tls_conn *t);
bool tls_conn_peer_closed(const struct tls_conn *t); /* close_notify received */
const char *tls_conn_alpn(const struct tls_conn *t);    /* "" when none */
const char *tls_conn_version(const struct tls_conn *t); /* "TLSv1.3" ... */
/* Client side: the handshake resumed a session of an earlier connection to
 * the same host (tls_client keeps the last session per host name and
 * verification mode; one from an unverified handshake is never offered
 * where verification is asked for). */
bool tls_conn_resumed(const struct tls_conn *t);
const char *tls_conn_sni(const struct tls_conn *t);     /* NULL when none */

#endif
