/* test_http_request.c: the sans-I/O HTTP request reader. */
#include <string.h>

#include "check.h"
#include "http/request.h"

static enum http_read_result feed_all(struct http_reader *r, const char *s, size_t *used)
{
    return http_reader_feed(r, s, strlen(s), used);
}

TEST(simple_get_and_pipelining)
{
    struct http_reader r;
    http_reader_init(&r, 1024);
    const char *in = "GET /new?x=1 HTTP/1.1\r\nHost: Relay1.TEST:443\r\nX-A: 1\r\nX-Mail-To: a\r\n"
                     "X-MAIL-TO: b\r\nEmpty:\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t used;
    CHECK_INT_EQ(feed_all(&r, in, &used), HTTP_READ_DONE);
    CHECK_INT_EQ(r.req.method, HTTP_GET);
    CHECK_STR_EQ(http_req_url(&r.req), "/new?x=1");
    const char *path;
    size_t pl = http_req_path(&r.req, &path);
    CHECK(pl == 4 && memcmp(path, "/new", 4) == 0);
    char host[64];
    http_req_host(&r.req, host, sizeof host);
    CHECK_STR_EQ(host, "relay1.test");
    CHECK_STR_EQ(http_req_header(&r.req, "x-a"), "1");
    CHECK_STR_EQ(http_req_header_nth(&r.req, "x-mail-to", 1), "b");
    CHECK_STR_EQ(http_req_header(&r.req, "empty"), "");
    CHECK(http_req_header_nth(&r.req, "x-mail-to", 2) == NULL);
    CHECK(r.req.keep_alive);
    http_reader_next(&r);
    size_t used2;
    CHECK_INT_EQ(http_reader_feed(&r, in + used, strlen(in) - used, &used2), HTTP_READ_DONE);
    CHECK_STR_EQ(http_req_url(&r.req), "/");
    http_reader_free(&r);
}

TEST(absolute_form)
{
    struct http_reader r;
    http_reader_init(&r, 1024);
    size_t used;
    CHECK_INT_EQ(feed_all(&r, "POST https://_relay1.test/new?a HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &used),
                 HTTP_READ_DONE);
    const char *path;
    size_t pl = http_req_path(&r.req, &path);
    CHECK(pl == 4 && memcmp(path, "/new", 4) == 0);
    http_reader_next(&r);
    CHECK_INT_EQ(feed_all(&r, "GET http://host HTTP/1.1\r\n\r\n", &used), HTTP_READ_DONE);
    pl = http_req_path(&r.req, &path);
    CHECK(pl == 1 && path[0] == '/');
    http_reader_free(&r);
}

TEST(body_and_limits)
{
    struct http_reader r;
    http_reader_init(&r, 5);
    size_t used;
    CHECK_INT_EQ(feed_all(&r, "POST /new HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", &used),
                 HTTP_READ_MORE);
    CHECK_INT_EQ(feed_all(&r, "cde", &used), HTTP_READ_DONE);
    CHECK(r.req.body.len == 5 && memcmp(r.req.body.data, "abcde", 5) == 0);
    http_reader_next(&r);
    CHECK_INT_EQ(feed_all(&r, "POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\n", &used),
                 HTTP_READ_ERROR);
    CHECK_INT_EQ(r.error_status, 413);
    http_reader_free(&r);
}

TEST(errors)
{
    struct http_reader r;
    size_t used;
    http_reader_init(&r, 0);
    CHECK_INT_EQ(feed_all(&r, "NONSENSE\r\n\r\n", &used), HTTP_READ_ERROR);
    CHECK_INT_EQ(r.error_status, 400);
    http_reader_free(&r);

    http_reader_init(&r, 0);
    char big[20000];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    CHECK_INT_EQ(feed_all(&r, "GET / HTTP/1.1\r\nX: ", &used), HTTP_READ_MORE);
    CHECK_INT_EQ(feed_all(&r, big, &used), HTTP_READ_ERROR);
    CHECK_INT_EQ(r.error_status, 431);
    http_reader_free(&r);

    http_reader_init(&r, 0);
    CHECK_INT_EQ(feed_all(&r, "GET /", &used), HTTP_READ_MORE);
    CHECK_INT_EQ(feed_all(&r, big, &used), HTTP_READ_ERROR);
    CHECK_INT_EQ(r.error_status, 414);
    http_reader_free(&r);
}

TEST(upgrade)
{
    struct http_reader r;
    http_reader_init(&r, 0);
    const char *in = "GET /relay HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nRAW";
    size_t used;
    CHECK_INT_EQ(feed_all(&r, in, &used), HTTP_READ_DONE);
    CHECK(r.req.upgrade);
    CHECK_INT_EQ(strlen(in) - used, 3); /* the upgraded bytes stay with the caller */
    http_reader_free(&r);
}

int main(void)
{
    RUN(simple_get_and_pipelining);
    RUN(absolute_form);
    RUN(body_and_limits);
    RUN(errors);
    RUN(upgrade);
    return check_report();
}
