/* acme_client_int.h: private to src/acme: the client's state (one struct
 * acme per process) and the steps the files of the order flow share:
 * client.c (requests, the order, start/stop), account.c (which account key),
 * caa.c (the CAA accounturi check before ordering). Loop thread only. */
#ifndef CM_ACME_CLIENT_INT_H
#define CM_ACME_CLIENT_INT_H

#include "acme/acme_int.h"
#include "core/buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct curlm;
struct curlm_result;
struct dns;
struct dns_req;
struct tls_server;

#define URL_MAX 1024
#define N_NAMES 3
#define ANSWER_MAX (256 * 1024)
#define N_TOKS 4096
#define POLLS_MAX 60
#define RETRY_FIRST_S 5
#define RETRY_MAX_S 3600
#define RETRY_INVALID_S 900 /* after a failed validation */

enum chall { CH_HTTP01, CH_ALPN01 };

struct acme;
typedef void (*step_fn)(struct acme *a, const struct curlm_result *r);

struct acme {
    uv_loop_t *loop;
    struct curlm *curl;
    struct tls_server *ts;
    uv_timer_t timer;
    void (*timer_fn)(struct acme *a);
    char *state_dir, *dir_url, *ca_file, *email, *acmetool_dir;
    char names[N_NAMES][256];
    enum chall prefs[2];
    size_t n_prefs;
    /* account */
    EVP_PKEY *acct;
    char jwk[ACME_JWK_MAX], thumb[64], kid[URL_MAX], acct_from[4200];
    bool only_existing; /* acmetool's key: newAccount with onlyReturnExisting */
    /* directory */
    char u_nonce[URL_MAX], u_account[URL_MAX], u_order[URL_MAX];
    char nonce[256];
    /* the order in progress */
    char order[URL_MAX], finalize[URL_MAX], cert_url[URL_MAX];
    char authz[N_NAMES][URL_MAX];
    bool responded[N_NAMES];
    size_t n_authz, cur;
    unsigned polls;
    EVP_PKEY *cert_key;
    /* challenges being served */
    char http_token[N_NAMES][128], key_auth[N_NAMES][256], alpn_name[N_NAMES][256];
    X509 *alpn_cert[N_NAMES];
    EVP_PKEY *alpn_key[N_NAMES];
    /* the request in flight */
    char p_url[URL_MAX];            /* of the request in flight (for messages) */
    char s_url[URL_MAX];            /* of the signed request being made */
    step_fn user_next;              /* gets the signed request's answer */
    char *p_payload;
    bool p_pem;
    int p_bad_nonce;
    step_fn p_next;
    struct buf body;
    unsigned failures;
    unsigned fail_floor_s; /* the next acme_fail waits at least this long */
    bool stopping;
    /* CAA check (RFC 8659 accounturi) before ordering with our own account */
    struct dns *dns;
    struct dns_req *caa_req;
    char caa_name[256];
};

/* Logs why the order failed, counts it, drops the order's state and arms
 * a retry with backoff (the served certificate stays). */
void acme_fail(struct acme *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs fn after ms (replacing whatever was armed). */
void acme_arm(struct acme *a, uint64_t ms, void (*fn)(struct acme *));
/* From the directory (or, with an account known, from newOrder). */
void acme_start_order(struct acme *a);
void acme_new_order(struct acme *a);
/* acme_new_order, unless a CAA record binds issuance to another account
 * (checked only for our own account, not for one taken over). */
void acme_caa_then_order(struct acme *a);
/* Our account key, else acmetool's (onlyReturnExisting), else a new one in
 * <state_dir>/acme/account.key; sets jwk and thumb. 0, or -1 with err. */
int acme_account_load(struct acme *a, char *err, size_t errlen);

#endif
