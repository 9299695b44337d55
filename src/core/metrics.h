/* metrics.h: process-wide counters, gauges and two latency histograms,
 * rendered in the Prometheus text format by /metrics (src/http). Counters
 * and gauges are relaxed atomics, so the code where an event happens counts
 * it, on the loop thread or on a worker. Names follow spec §5.5 (mtail
 * counters). Every exported name moves when its event happens; a metric for
 * a feature the server does not have yet (federation, DKIM, push) comes
 * with that feature. tests/integration/test_metrics.py drives each one. */
#ifndef CM_CORE_METRICS_H
#define CM_CORE_METRICS_H

#include <stdint.h>

struct buf;

enum metric_counter {
    M_DELIVERED_MAIL,
    M_QUOTA_EXCEEDED,
    M_CREATED_ACCOUNTS,
    M_CREATED_CI_ACCOUNTS,
    M_CREATED_NONCI_ACCOUNTS,
    M_REJECTED_REGISTRATIONS,
    M_OUTGOING_ENCRYPTED,
    M_OUTGOING_UNENCRYPTED,
    M_REJECTED_UNENCRYPTED,
    M_QUOTA_EXPIRE_RUNS,
    M_QUOTA_EXPIRE_REMOVED_FILES,
    M_INCOMING_ENCRYPTED,      /* mail from other relays (25, /mxdeliv) */
    M_INCOMING_UNENCRYPTED,
    M_INCOMING_MAILER_DAEMON,
    M_INCOMING_ACCEPTED,       /* incoming_mail{result=...}: the decision */
    M_INCOMING_REFUSED_INVALID,     /* 500: no parse, no From */
    M_INCOMING_REFUSED_UNENCRYPTED, /* 523 */
    M_INCOMING_REFUSED_DKIM,        /* 554 5.7.1 */
    M_INCOMING_REFUSED_TEMPFAIL,    /* 451 4.7.5: key lookup failed */
    M_DKIM_PASS,               /* dkim_verify{result=...}: one per message verified */
    M_DKIM_FAIL,
    M_DKIM_TEMPERROR,
    M_DKIM_NONE,
    M_MXDELIV_200, /* POST /mxdeliv answers by status (mxdeliv_requests{status=...}) */
    M_MXDELIV_400,
    M_MXDELIV_405,
    M_MXDELIV_413,
    M_MXDELIV_503,
    M_MXDELIV_OTHER,
    M_OUTQ_MXDELIV_DELIVERED, /* outbound_deliveries{path,outcome}: one per destination attempt */
    M_OUTQ_MXDELIV_DEFERRED,
    M_OUTQ_MXDELIV_BOUNCED,
    M_OUTQ_SMTP_DELIVERED,
    M_OUTQ_SMTP_DEFERRED,
    M_OUTQ_SMTP_BOUNCED,
    M_OUTQ_DNS_FAIL,          /* outbound_dns_failures: MX/address lookups that failed */
    M_SMTPC_CONN_NEW,         /* outbound_smtp_connections_total{kind=new|reused}: per delivery */
    M_SMTPC_CONN_REUSED,
    M_PUSH_200,               /* push_requests{status=...}: notification server answers */
    M_PUSH_410,
    M_PUSH_OTHER,             /* any other HTTP status */
    M_PUSH_ERROR,             /* no answer: connection, TLS, timeout */
    M_PUSH_RETRIES,           /* push_retries: attempts failed and scheduled again */
    M_PUSH_DROPS,             /* push_drops: items given up (5 attempts or 5 h) */
    M_PUSH_COALESCED,         /* push_coalesced: deliveries to a token already pending */
    M_ACME_ORDER_VALID,       /* acme_orders_total{result=...}: certificate orders by outcome */
    M_ACME_ORDER_FAILED,      /* error: network, ACME error, invalid challenge (retried) */
    M_ACME_ORDER_REFUSED,     /* not attempted: a CAA accounturi binds another account */
    M_COUNTER_COUNT
};

enum metric_gauge {
    G_CONN_SMTP, /* the four connection gauges are set from net.c at scrape */
    G_CONN_SUBMISSION,
    G_CONN_IMAP,
    G_CONN_HTTP,
    G_IMAP_IDLE,
    G_QUEUE_LENGTH, /* files in <state_dir>/queue: counted at start, then +/- */
    G_ACCOUNTS,     /* account dirs with a password file: counted at start, then +/- */
    G_QUEUE_OLDEST_AGE, /* seconds since the oldest queued message arrived (runner, 1 s) */
    G_PUSH_QUEUE_LENGTH, /* files in <mailboxes_dir>/pending_notifications */
    G_ACME_CERT_EXPIRY,  /* Unix time the served ACME-mode certificate expires */
    G_ACME_NEXT_RENEWAL, /* Unix time of the ACME client's next order attempt */
    G_GAUGE_COUNT
};

void metrics_inc(enum metric_counter c);
void metrics_add(enum metric_counter c, uint64_t n);
uint64_t metrics_get(enum metric_counter c);
void metrics_gauge_set(enum metric_gauge g, int64_t v);
void metrics_gauge_add(enum metric_gauge g, int64_t delta);
int64_t metrics_gauge_get(enum metric_gauge g);
/* Records one delivery latency (submit to stored), in microseconds. Loop
 * thread only. */
void metrics_observe_delivery_us(uint64_t us);
/* Records one delivery -> notification server answer (first attempt of a
 * push item), in microseconds. Loop thread only. */
void metrics_observe_push_us(uint64_t us);
/* Appends every metric in the Prometheus text exposition format, then what
 * the extra renderer adds (the store's fsreport gauges). */
int metrics_render(struct buf *out);
void metrics_set_extra(int (*render)(struct buf *out));

#endif
