/* test_dns.c: core/dns without a DNS server: the dns_servers forms, a
 * lookup against a loopback port where nobody listens (temporary failure,
 * never NXDOMAIN), cancel, stop with a request in flight (CANCELLED) and
 * after stop (answered at once), and a loop that closes with no handle
 * left. The answers themselves are tested in
 * tests/integration/test_dns_resolver.py against a real server. */
#include "check.h"
#include "core/dns.h"

#include <arpa/inet.h>

TEST(server_forms)
{
    struct dns_server s;
    CHECK_INT_EQ(dns_parse_server("192.0.2.1", &s), 0);
    CHECK(s.family == AF_INET && s.port == 53 && s.addr[0] == 192 && s.addr[3] == 1);
    CHECK_INT_EQ(dns_parse_server("192.0.2.1:5353", &s), 0);
    CHECK_INT_EQ(s.port, 5353);
    CHECK_INT_EQ(dns_parse_server("2001:db8::1", &s), 0);
    CHECK(s.family == AF_INET6 && s.port == 53 && s.addr[0] == 0x20 && s.addr[15] == 1);
    CHECK_INT_EQ(dns_parse_server("[2001:db8::1]", &s), 0);
    CHECK_INT_EQ(s.port, 53);
    CHECK_INT_EQ(dns_parse_server("[::1]:54", &s), 0);
    CHECK(s.family == AF_INET6 && s.port == 54 && s.addr[15] == 1);
    const char *bad[] = {"", "x", "1.2.3", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536",
                         "1.2.3.4:5a", "[::1", "[::1]x", "[::1]:", "[1.2.3.4]:53", "::1:99999",
                         "1.2.3.4:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (dns_parse_server(bad[i], &s) == 0)
            fprintf(stderr, "accepted %s\n", bad[i]);
        CHECK_INT_EQ(dns_parse_server(bad[i], &s), -1);
    }
}

struct seen {
    int calls;
    enum dns_status status;
};

static void on_txt(void *arg, const struct dns_txt_result *r)
{
    struct seen *s = arg;
    s->calls++;
    s->status = r->status;
}

TEST(lookups_fail_temporarily_and_stop_cancels)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *servers[] = {"127.0.0.1:1"};
    struct dns_options o = {.servers = servers, .n_servers = 1, .timeout_ms = 100, .tries = 1};
    const char *why = NULL;
    struct dns *d = dns_start(&loop, &o, &why);
    CHECK(d != NULL);
    struct seen a = {0}, b = {0}, c = {0}, e = {0};
    CHECK(dns_txt(d, "a.example", on_txt, &a) != NULL);
    struct dns_req *rb = dns_txt(d, "b.example", on_txt, &b);
    dns_cancel(rb);
    CHECK(dns_txt(d, "", on_txt, &e) == NULL); /* a bad name is answered at once */
    CHECK_INT_EQ(e.calls, 1);
    CHECK_INT_EQ(e.status, DNS_BADNAME);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(a.calls, 1);
    CHECK_INT_EQ(a.status, DNS_TEMPFAIL);
    /* c-ares may learn of the refused port while sending b (ICMP from a's
     * datagram) and answer b inside dns_txt: then the call returned NULL
     * and there was nothing to cancel; otherwise the cancel held */
    CHECK_INT_EQ(b.calls, rb ? 0 : 1);
    CHECK_INT_EQ(dns_pending(d), 0);
    /* one in flight when stopping: its callback says CANCELLED */
    CHECK(dns_txt(d, "c.example", on_txt, &c) != NULL);
    dns_stop(d);
    CHECK_INT_EQ(c.calls, 1);
    CHECK_INT_EQ(c.status, DNS_CANCELLED);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);

    CHECK(dns_start(&loop, &(struct dns_options){.servers = (const char *[]){"nope"}, .n_servers = 1},
                    &why) == NULL);
    CHECK_STR_EQ(why, "bad dns_servers entry");
}

int main(void)
{
    RUN(server_forms);
    RUN(lookups_fail_temporarily_and_stop_cancels);
    return check_report();
}
