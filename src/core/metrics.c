/* metrics.c: counters, gauges and the latency histograms (see
 * metrics.h), rendered in the Prometheus text format. */
#include "core/metrics.h"

#include "core/buf.h"

#include <stdatomic.h>

/* A labelled series names its family; only the family's first series
 * carries the help text (and prints HELP and TYPE). */
static const struct {
    const char *name, *help, *family;
} counter_info[M_COUNTER_COUNT] = {
    [M_DELIVERED_MAIL] = {"delivered_mail", "Messages stored into a local mailbox", NULL},
    [M_QUOTA_EXCEEDED] = {"quota_exceeded", "Deliveries refused because a mailbox was full", NULL},
    [M_CREATED_ACCOUNTS] = {"created_accounts", "Accounts created on first login", NULL},
    [M_CREATED_CI_ACCOUNTS] = {"created_ci_accounts", "Created accounts whose address contains ci-", NULL},
    [M_CREATED_NONCI_ACCOUNTS] = {"created_nonci_accounts", "Created accounts, others", NULL},
    [M_REJECTED_REGISTRATIONS] = {"rejected_registrations", "Account creations refused", NULL},
    [M_OUTGOING_ENCRYPTED] = {"outgoing_encrypted_mail_count", "Submitted encrypted messages", NULL},
    [M_OUTGOING_UNENCRYPTED] = {"outgoing_unencrypted_mail_count", "Submitted unencrypted messages", NULL},
    [M_REJECTED_UNENCRYPTED] = {"rejected_unencrypted_mail_count", "Unencrypted messages refused", NULL},
    [M_QUOTA_EXPIRE_RUNS] = {"quota_expire_runs", "Quota trims that removed messages", NULL},
    [M_QUOTA_EXPIRE_REMOVED_FILES] = {"quota_expire_removed_files", "Messages removed by quota trims", NULL},
    [M_INCOMING_ENCRYPTED] = {"incoming_encrypted_mail_count", "Received encrypted messages", NULL},
    [M_INCOMING_UNENCRYPTED] = {"incoming_unencrypted_mail_count", "Received unencrypted messages", NULL},
    [M_INCOMING_MAILER_DAEMON] = {"incoming_mailer_daemon_mail_count", "Received mailer-daemon reports", NULL},
    [M_INCOMING_ACCEPTED] = {"incoming_mail{result=\"accepted\"}",
                             "Messages from other relays by decision", "incoming_mail"},
    [M_INCOMING_REFUSED_INVALID] = {"incoming_mail{result=\"invalid\"}", NULL, "incoming_mail"},
    [M_INCOMING_REFUSED_UNENCRYPTED] = {"incoming_mail{result=\"unencrypted\"}", NULL, "incoming_mail"},
    [M_INCOMING_REFUSED_DKIM] = {"incoming_mail{result=\"dkim\"}", NULL, "incoming_mail"},
    [M_INCOMING_REFUSED_TEMPFAIL] = {"incoming_mail{result=\"tempfail\"}", NULL, "incoming_mail"},
    [M_DKIM_PASS] = {"dkim_verify{result=\"pass\"}", "DKIM verdicts on mail from other relays",
                     "dkim_verify"},
    [M_DKIM_FAIL] = {"dkim_verify{result=\"fail\"}", NULL, "dkim_verify"},
    [M_DKIM_TEMPERROR] = {"dkim_verify{result=\"temperror\"}", NULL, "dkim_verify"},
    [M_DKIM_NONE] = {"dkim_verify{result=\"none\"}", NULL, "dkim_verify"},
    [M_MXDELIV_200] = {"mxdeliv_requests{status=\"200\"}", "Requests to /mxdeliv by HTTP status",
                       "mxdeliv_requests"},
    [M_MXDELIV_400] = {"mxdeliv_requests{status=\"400\"}", NULL, "mxdeliv_requests"},
    [M_MXDELIV_405] = {"mxdeliv_requests{status=\"405\"}", NULL, "mxdeliv_requests"},
    [M_MXDELIV_413] = {"mxdeliv_requests{status=\"413\"}", NULL, "mxdeliv_requests"},
    [M_MXDELIV_503] = {"mxdeliv_requests{status=\"503\"}", NULL, "mxdeliv_requests"},
    [M_MXDELIV_OTHER] = {"mxdeliv_requests{status=\"other\"}", NULL, "mxdeliv_requests"},
    [M_OUTQ_MXDELIV_DELIVERED] = {"outbound_deliveries{path=\"mxdeliv\",outcome=\"delivered\"}",
                                  "Outbound delivery attempts per destination by path and outcome",
                                  "outbound_deliveries"},
    [M_OUTQ_MXDELIV_DEFERRED] = {"outbound_deliveries{path=\"mxdeliv\",outcome=\"deferred\"}",
                                 NULL, "outbound_deliveries"},
    [M_OUTQ_MXDELIV_BOUNCED] = {"outbound_deliveries{path=\"mxdeliv\",outcome=\"bounced\"}",
                                NULL, "outbound_deliveries"},
    [M_OUTQ_SMTP_DELIVERED] = {"outbound_deliveries{path=\"smtp\",outcome=\"delivered\"}",
                               NULL, "outbound_deliveries"},
    [M_OUTQ_SMTP_DEFERRED] = {"outbound_deliveries{path=\"smtp\",outcome=\"deferred\"}",
                              NULL, "outbound_deliveries"},
    [M_OUTQ_SMTP_BOUNCED] = {"outbound_deliveries{path=\"smtp\",outcome=\"bounced\"}",
                             NULL, "outbound_deliveries"},
    [M_OUTQ_DNS_FAIL] = {"outbound_dns_failures", "MX and address lookups of the queue that failed",
                         NULL},
    [M_SMTPC_CONN_NEW] = {"outbound_smtp_connections_total{kind=\"new\"}",
                          "Outbound SMTP deliveries by connection: opened for it or reused",
                          "outbound_smtp_connections_total"},
    [M_SMTPC_CONN_REUSED] = {"outbound_smtp_connections_total{kind=\"reused\"}", NULL,
                             "outbound_smtp_connections_total"},
    [M_PUSH_200] = {"push_requests{status=\"200\"}",
                    "Push notification requests by answer (error: none came)", "push_requests"},
    [M_PUSH_410] = {"push_requests{status=\"410\"}", NULL, "push_requests"},
    [M_PUSH_OTHER] = {"push_requests{status=\"other\"}", NULL, "push_requests"},
    [M_PUSH_ERROR] = {"push_requests{status=\"error\"}", NULL, "push_requests"},
    [M_PUSH_RETRIES] = {"push_retries", "Push notification attempts that failed and are retried",
                        NULL},
    [M_PUSH_DROPS] = {"push_drops", "Push notifications given up after 5 attempts or 5 hours",
                      NULL},
    [M_PUSH_COALESCED] = {"push_coalesced",
                          "Deliveries that added no notification: one was pending for the token",
                          NULL},
    [M_ACME_ORDER_VALID] = {"acme_orders_total{result=\"valid\"}",
                            "ACME certificate orders by outcome", "acme_orders_total"},
    [M_ACME_ORDER_FAILED] = {"acme_orders_total{result=\"failed\"}", NULL, "acme_orders_total"},
    [M_ACME_ORDER_REFUSED] = {"acme_orders_total{result=\"refused\"}", NULL,
                              "acme_orders_total"},
};

static const struct {
    const char *name, *help;
} gauge_info[G_GAUGE_COUNT] = {
    [G_CONN_SMTP] = {"connections{protocol=\"smtp\"}", NULL},
    [G_CONN_SUBMISSION] = {"connections{protocol=\"submission\"}", NULL},
    [G_CONN_IMAP] = {"connections{protocol=\"imap\"}", NULL},
    [G_CONN_HTTP] = {"connections{protocol=\"http\"}", NULL},
    [G_IMAP_IDLE] = {"imap_idle_sessions", "IMAP sessions in IDLE"},
    [G_QUEUE_LENGTH] = {"queue_length", "Messages waiting in the outbound queue"},
    [G_ACCOUNTS] = {"accounts", "Accounts known to the server"},
    [G_QUEUE_OLDEST_AGE] = {"queue_oldest_age_seconds", "Age of the oldest queued message"},
    [G_PUSH_QUEUE_LENGTH] = {"push_queue_length", "Push notifications waiting (files)"},
    [G_ACME_CERT_EXPIRY] = {"acme_certificate_expiry_seconds",
                            "Unix time the served certificate expires (ACME mode)"},
    [G_ACME_NEXT_RENEWAL] = {"acme_next_renewal_seconds",
                             "Unix time of the next ACME order attempt"},
};

/* Histogram bucket bounds in microseconds. */
static const uint64_t bucket_us[] = {250, 500, 1000, 2000, 5000, 10000, 25000, 50000,
                                     100000, 250000, 500000, 1000000};
#define N_BUCKETS (sizeof bucket_us / sizeof bucket_us[0])

static _Atomic uint64_t counters[M_COUNTER_COUNT];
static _Atomic int64_t gauges[G_GAUGE_COUNT];
struct hist {
    uint64_t b[N_BUCKETS + 1];
    uint64_t sum_us, count;
};
static struct hist h_delivery, h_push;

void metrics_inc(enum metric_counter c) { metrics_add(c, 1); }
void metrics_add(enum metric_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}
uint64_t metrics_get(enum metric_counter c)
{
    return atomic_load_explicit(&counters[c], memory_order_relaxed);
}
void metrics_gauge_set(enum metric_gauge g, int64_t v)
{
    atomic_store_explicit(&gauges[g], v, memory_order_relaxed);
}
void metrics_gauge_add(enum metric_gauge g, int64_t d)
{
    atomic_fetch_add_explicit(&gauges[g], d, memory_order_relaxed);
}
int64_t metrics_gauge_get(enum metric_gauge g)
{
    return atomic_load_explicit(&gauges[g], memory_order_relaxed);
}

static void observe(struct hist *h, uint64_t us)
{
    size_t i = 0;
    while (i < N_BUCKETS && us > bucket_us[i])
        i++;
    h->b[i]++;
    h->sum_us += us;
    h->count++;
}

void metrics_observe_delivery_us(uint64_t us) { observe(&h_delivery, us); }
void metrics_observe_push_us(uint64_t us) { observe(&h_push, us); }

static int render_histogram(struct buf *out, const struct hist *h, const char *name,
                            const char *help)
{
    int rc = buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += h->b[i];
        rc |= buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bucket_us[i] / 1e6,
                         (unsigned long long)cum);
    }
    cum += h->b[N_BUCKETS];
    rc |= buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    rc |= buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, (double)h->sum_us / 1e6, name,
                     (unsigned long long)h->count);
    return rc;
}

static int (*extra_render)(struct buf *out);

void metrics_set_extra(int (*render)(struct buf *out)) { extra_render = render; }

int metrics_render(struct buf *out)
{
    int rc = 0;
    for (int i = 0; i < M_COUNTER_COUNT; i++) {
        const char *fam = counter_info[i].family ? counter_info[i].family : counter_info[i].name;
        if (counter_info[i].help)
            rc |= buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", fam, counter_info[i].help,
                             fam);
        rc |= buf_printf(out, "%s %llu\n", counter_info[i].name,
                         (unsigned long long)metrics_get((enum metric_counter)i));
    }
    rc |= buf_append_str(out, "# HELP connections Open sessions per protocol\n"
                              "# TYPE connections gauge\n");
    for (int i = 0; i < G_GAUGE_COUNT; i++) {
        if (gauge_info[i].help)
            rc |= buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", gauge_info[i].name,
                             gauge_info[i].help, gauge_info[i].name);
        rc |= buf_printf(out, "%s %lld\n", gauge_info[i].name, (long long)metrics_gauge_get((enum metric_gauge)i));
    }
    rc |= render_histogram(out, &h_delivery, "delivery_latency_seconds",
                           "Time from end of DATA to durable local delivery");
    rc |= render_histogram(out, &h_push, "push_latency_seconds",
                           "Time from local delivery to the notification server's first answer");
    if (extra_render)
        rc |= extra_render(out);
    return rc ? -1 : 0;
}
