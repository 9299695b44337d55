/* ipcount.h: open sessions per client IP and protocol, for the per-IP
 * connection caps (spec §5.3). A small open-addressing hash table keyed by
 * the IP text; an entry lives while a connection references it. */
#ifndef CM_CORE_IPCOUNT_H
#define CM_CORE_IPCOUNT_H

struct ipcount;
struct ipcount_table;

struct ipcount_table *ipcount_table_new(void);
void ipcount_table_free(struct ipcount_table *t);
/* Finds or adds the entry of ip and takes a reference; NULL if out of memory
 * (all calls below accept NULL and then count nothing). */
struct ipcount *ipcount_acquire(struct ipcount_table *t, const char *ip);
void ipcount_release(struct ipcount_table *t, struct ipcount *e);
unsigned ipcount_get(const struct ipcount *e, int proto);
void ipcount_inc(struct ipcount *e, int proto);
void ipcount_dec(struct ipcount_table *t, struct ipcount *e, int proto);

#endif
