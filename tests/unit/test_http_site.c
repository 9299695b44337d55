/* test_http_site.c: the rate limiter (core/gcra), templates, URL helpers,
 * the /metrics allow-list, /new credentials, well-known documents and QR. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/config.h"
#include "core/gcra.h"
#include "http/http_int.h"

#define MS 1000000ull

TEST(gcra_burst_then_rate)
{
    struct gcra *g = gcra_new(500 * MS, 5, 16); /* 2/s, burst 5 */
    uint64_t t = 1000 * MS, retry = 0;
    for (int i = 0; i < 6; i++)
        CHECK(gcra_allow(g, "1.2.3.4", 7, t, NULL));
    CHECK(!gcra_allow(g, "1.2.3.4", 7, t, &retry));
    CHECK_INT_EQ(retry, 500 * MS);
    CHECK(gcra_allow(g, "5.6.7.8", 7, t, NULL)); /* other keys unaffected */
    CHECK(!gcra_allow(g, "1.2.3.4", 7, t + 499 * MS, NULL));
    CHECK(gcra_allow(g, "1.2.3.4", 7, t + 500 * MS, NULL));
    CHECK(!gcra_allow(g, "1.2.3.4", 7, t + 500 * MS, NULL));
    CHECK(gcra_allow(g, "1.2.3.4", 7, t + 10000 * MS, NULL));
    gcra_free(g);
}

TEST(gcra_bounded_table)
{
    struct gcra *g = gcra_new(1000 * MS, 0, 4);
    char k[16];
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "k%d", i);
        CHECK(gcra_allow(g, k, strlen(k), 0, NULL));
    }
    CHECK_INT_EQ(gcra_size(g), 4);
    CHECK(!gcra_allow(g, "new", 3, 500 * MS, NULL)); /* full of live entries */
    CHECK(gcra_allow(g, "new", 3, 1000 * MS, NULL)); /* all drained: swept */
    CHECK_INT_EQ(gcra_size(g), 1);
    gcra_free(g);
    CHECK(gcra_new(0, 1, 1) == NULL);
}

TEST(templates)
{
    struct tpl_var v[] = {{"a", "<x&y>", false}, {"b", "<b>", true}};
    struct buf out = {0};
    char err[100] = "";
    CHECK_INT_EQ(tpl_render("1{{a}}2{{b}}3", 13, v, 2, &out, err, sizeof err), 0);
    CHECK_STR_EQ(out.data, "1&lt;x&amp;y&gt;2<b>3");
    buf_reset(&out);
    CHECK_INT_EQ(tpl_render("x{{c}}", 6, v, 2, &out, err, sizeof err), -1);
    CHECK(strstr(err, "{{c}}") != NULL);
    CHECK_INT_EQ(tpl_render("x{{a", 4, v, 2, &out, err, sizeof err), -1);
    CHECK(strstr(err, "unclosed") != NULL);
    buf_free(&out);
}

TEST(url_helpers)
{
    struct buf b = {0};
    CHECK_INT_EQ(url_decode("a%20b+c%3f", 10, true, 100, &b), 0);
    CHECK_STR_EQ(b.data, "a b c?");
    buf_free(&b);
    CHECK_INT_EQ(url_decode("a%2", 3, false, 100, &b), -1);
    buf_free(&b);
    CHECK_INT_EQ(url_decode("a%00", 4, false, 100, &b), -1);
    buf_free(&b);
    CHECK_INT_EQ(url_decode("abcd", 4, false, 3, &b), -1);
    buf_free(&b);
    size_t n = 0;
    const char *v = url_query_param("/q?x=1&data=ab%20c&y", "data", &n);
    CHECK(v && n == 6 && strncmp(v, "ab%20c", 6) == 0);
    CHECK(url_query_param("/q?xdata=1", "data", &n) == NULL);
    CHECK(url_query_param("/q", "data", &n) == NULL);
    CHECK_INT_EQ(url_encode(&b, "a@[1] b/~", "@[]"), 0);
    CHECK_STR_EQ(b.data, "a@[1]%20b%2F~");
    buf_free(&b);
}

TEST(metrics_allow_list)
{
    CHECK(ip_allowed("127.0.0.1", ""));
    CHECK(ip_allowed("127.5.6.7", NULL));
    CHECK(ip_allowed("::1", ""));
    CHECK(ip_allowed("::ffff:127.0.0.1", ""));
    CHECK(!ip_allowed("10.1.2.3", ""));
    CHECK(ip_allowed("10.1.2.3", "192.168.0.1, 10.0.0.0/8"));
    CHECK(!ip_allowed("11.1.2.3", "10.0.0.0/8"));
    CHECK(ip_allowed("2001:db8::5", "2001:db8::/32"));
    CHECK(!ip_allowed("2001:db9::5", "2001:db8::/32"));
    CHECK(ip_allowed("::ffff:10.0.0.9", "10.0.0.0/24"));
    CHECK(!ip_allowed("10.0.0.9", "garbage, 10.0.0.0/99"));
    CHECK(!ip_allowed("not-an-ip", "0.0.0.0/0"));
    CHECK(ip_allowed("8.8.8.8", "0.0.0.0/0"));
}

static void cfg_for(struct config *c, const char *ini)
{
    struct config_errors errs = {0};
    memset(c, 0, sizeof *c);
    CHECK_INT_EQ(config_parse_string(ini, c, &errs, false), 0);
}

TEST(new_credentials)
{
    struct config c;
    cfg_for(&c, "[params]\nmail_domain = _chat.example\n");
    struct buf json = {0};
    CHECK_INT_EQ(newacct_json(&c, &json), 0);
    CHECK(strncmp(json.data, "{\"email\": \"", 11) == 0);
    const char *at = strchr(json.data + 11, '@');
    CHECK(at && at - (json.data + 11) == 9);
    CHECK(strstr(json.data, "@_chat.example\", \"password\": \"") != NULL);
    CHECK(strstr(json.data, "\"dclogin_url\": \"dclogin:") != NULL);
    CHECK(strstr(json.data, "&v=1&ic=3\"}") != NULL);
    buf_free(&json);
    struct buf e = {0}, p = {0};
    CHECK_INT_EQ(newacct_credentials(&c, &e, &p), 0);
    CHECK_INT_EQ(p.len, 12);
    for (size_t i = 0; i < 9; i++)
        CHECK(strchr("abcdefghijklmnopqrstuvwxyz0123456789", e.data[i]) != NULL);
    for (size_t i = 0; i < p.len; i++)
        CHECK(p.data[i] > 0x20 && p.data[i] < 0x7f);
    buf_free(&e);
    buf_free(&p);
    config_free(&c);
}

TEST(dclogin_ipv4)
{
    struct config c;
    cfg_for(&c, "[params]\nmail_domain = 1.2.3.4\n");
    struct buf u = {0};
    CHECK_INT_EQ(newacct_dclogin(&c, "abc@[1.2.3.4]", "p w&%", &u), 0);
    CHECK_STR_EQ(u.data, "dclogin:abc@[1.2.3.4]?p=p%20w%26%25&v=1&ih=1.2.3.4&sh=1.2.3.4&ic=3");
    buf_free(&u);
    struct buf json = {0};
    CHECK_INT_EQ(newacct_json(&c, &json), 0);
    CHECK(strstr(json.data, "@[1.2.3.4]\"") != NULL);
    buf_free(&json);
    config_free(&c);
}

TEST(wellknown_docs)
{
    struct config c;
    cfg_for(&c, "[params]\nmail_domain = chat.example\n");
    struct buf b = {0};
    CHECK_INT_EQ(mta_sts_txt(&c, &b), 0);
    CHECK_STR_EQ(b.data, "version: STSv1\nmode: enforce\nmx: chat.example\nmax_age: 2419200\n");
    buf_reset(&b);
    CHECK_INT_EQ(autoconfig_xml(&c, &b), 0);
    const char *order[] = {"<port>993</port>\n      <socketType>SSL", "<port>143</port>\n      <socketType>STARTTLS",
                           "<port>443</port>\n      <socketType>SSL", "<port>465</port>\n      <socketType>SSL",
                           "<port>587</port>\n      <socketType>STARTTLS", "<port>443</port>\n      <socketType>SSL"};
    const char *at = b.data;
    for (size_t i = 0; i < 6; i++) {
        const char *f = strstr(at, order[i]);
        CHECK(f != NULL);
        at = f ? f + 1 : at;
    }
    CHECK(strstr(b.data, "<displayName>chat.example chatmail</displayName>") != NULL);
    buf_free(&b);
    config_free(&c);
}

TEST(qr_and_builtin)
{
    struct buf svg = {0};
    CHECK_INT_EQ(qr_svg("DCACCOUNT:https://chat.example/new", 34, &svg), 0);
    CHECK(strncmp(svg.data, "<svg", 4) == 0 && strstr(svg.data, "</svg>"));
    buf_free(&svg);
    CHECK_INT_EQ(qr_svg("", 0, &svg), -1);
    CHECK(www_builtin_find("layout.html") && www_builtin_find("layout.html")->len > 100);
    CHECK(www_builtin_find("robots.txt") && strstr(www_builtin_find("robots.txt")->data, "Disallow: /"));
    CHECK(www_builtin_find("nope") == NULL);
    CHECK_STR_EQ(content_type_for("a/b.CSS"), "text/css; charset=utf-8");
    CHECK_STR_EQ(content_type_for("x.unknown"), "application/octet-stream");
}

int main(void)
{
    RUN(gcra_burst_then_rate);
    RUN(gcra_bounded_table);
    RUN(templates);
    RUN(url_helpers);
    RUN(metrics_allow_list);
    RUN(new_credentials);
    RUN(dclogin_ipv4);
    RUN(wellknown_docs);
    RUN(qr_and_builtin);
    return check_report();
}
