/* metrics.h: process-wide counters, gauges and one latency histogram,
 * rendered in the Prometheus text format by /metrics (src/http). Only the
 * loop thread updates them (workers report through their completions), so
 * plain integers suffice. Names follow spec §5.5 (mtail counters). */
#ifndef CM_CORE_METRICS_H
#define CM_CORE_METRICS_H

#include <stdint.h>

struct buf;

enum metric_counter {
    M_DELIVERED_MAIL,
    M_QUOTA_EXCEEDED,
    M_DKIM_SIGNED,
    M_CREATED_ACCOUNTS,
    M_CREATED_CI_ACCOUNTS,
    M_CREATED_NONCI_ACCOUNTS,
    M_REJECTED_REGISTRATIONS,
    M_OUTGOING_ENCRYPTED,
    M_OUTGOING_UNENCRYPTED,
    M_INCOMING_ENCRYPTED,
    M_INCOMING_UNENCRYPTED,
    M_INCOMING_MAILER_DAEMON,
    M_REJECTED_UNENCRYPTED,
    M_QUOTA_EXPIRE_RUNS,
    M_QUOTA_EXPIRE_REMOVED_FILES,
    M_COUNTER_COUNT
};

enum metric_gauge {
    G_CONN_SMTP,
    G_CONN_SUBMISSION,
    G_CONN_IMAP,
    G_CONN_HTTP,
    G_IMAP_IDLE,
    G_QUEUE_LENGTH,
    G_ACCOUNTS,
    G_GAUGE_COUNT
};

void metrics_inc(enum metric_counter c);
void metrics_add(enum metric_counter c, uint64_t n);
uint64_t metrics_get(enum metric_counter c);
void metrics_gauge_set(enum metric_gauge g, int64_t v);
void metrics_gauge_add(enum metric_gauge g, int64_t delta);
int64_t metrics_gauge_get(enum metric_gauge g);
/* Records one delivery latency (submit to stored), in microseconds. */
void metrics_observe_delivery_us(uint64_t us);
/* Appends every metric in the Prometheus text exposition format, then what
 * the extra renderer adds (the store's fsreport gauges). */
int metrics_render(struct buf *out);
void metrics_set_extra(int (*render)(struct buf *out));

#endif
