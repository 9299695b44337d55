/* test_filter_mime.c: From address extraction, header field walking,
 * Content-Type parameters, multipart splitting and transfer decoding. */
#include "check.h"

#include <stdlib.h>

#include "filter/filter.h"
#include "filter/filter_int.h"

static struct span S(const char *s) { return (struct span){s, strlen(s)}; }

struct acase {
    const char *in, *out; /* out NULL = no address */
};

static const struct acase addr_cases[] = {
    {"<Alice@Example.ORG>", "alice@example.org"},
    {"alice@example.org", "alice@example.org"},
    {" Alice Liddell <alice@example.org>", "alice@example.org"},
    {"\"Doe, John\" <j@x.example>", "j@x.example"},
    {"Doe, John <j@x.example>", "j@x.example"},
    {"j@x.example (John Doe)", "j@x.example"},
    {"(c) j @ x . example", "j@x.example"},
    {"(a (nested) c) <j@x.example>", "j@x.example"},
    {"Friends: a@b.example, c@d.example;", "a@b.example"},
    {"Empty:; b@c.example", "b@c.example"},
    {"undisclosed-recipients:;", NULL},
    {"=?utf-8?q?J=C3=B6rg?= <joerg@x.example>", "joerg@x.example"},
    {"<@route.example:j@x.example>", "j@x.example"},
    {"\"quoted local\"@x.example", "\"quoted local\"@x.example"},
    {"\"a@b\" <c@d.example>", "c@d.example"},
    {"foo@bar.example <x@y.example>", "x@y.example"},
    {"j@[1.2.3.4]", "j@[1.2.3.4]"},
    {"<j@[IPv6:::1]>", "j@[ipv6:::1]"},
    {"first.last@sub.Example.org", "first.last@sub.example.org"},
    {"a@b.example, c@d.example", "a@b.example"},
    {"Name\r\n <folded@x.example>", "folded@x.example"},
    {"<>", NULL},
    {"<> b@c.example", "b@c.example"},
    {"", NULL},
    {"nobody", NULL},
    {"a@", NULL},
    {"@b.example", NULL},
    {"\"unterminated <a@b.example>", NULL},
    {"<a@b.example", "a@b.example"},
};

TEST(first_address)
{
    char out[FILTER_ADDR_MAX];
    for (size_t i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
        const struct acase *c = &addr_cases[i];
        int rc = filter_parse_first_address(c->in, strlen(c->in), out);
        if (c->out) {
            CHECK_INT_EQ(rc, 0);
            CHECK_STR_EQ(out, c->out);
        } else {
            if (rc == 0)
                fprintf(stderr, "'%s' gave '%s'\n", c->in, out);
            CHECK_INT_EQ(rc, -1);
        }
    }
    char longv[600];
    memset(longv, 'a', sizeof longv);
    memcpy(longv + 590, "@x.example", 10);
    CHECK_INT_EQ(filter_parse_first_address(longv, sizeof longv, out), -1);
}

TEST(from_header)
{
    char addr[FILTER_ADDR_MAX], raw[64];
    const char *m = "Received: x\r\nfrom : Bob <BOB@x.example>\r\nFrom: other@x.example\r\n\r\nb";
    CHECK_INT_EQ(filter_from_address(m, strlen(m), addr, raw, sizeof raw), 1);
    CHECK_STR_EQ(addr, "bob@x.example");
    CHECK_STR_EQ(raw, "Bob <BOB@x.example>");
    const char *none = "To: a@b\r\n\r\nFrom: x@y\r\n";
    CHECK_INT_EQ(filter_from_address(none, strlen(none), addr, raw, sizeof raw), 0);
    CHECK_STR_EQ(raw, "");
    const char *bad = "From: Undisclosed\r\n\r\n";
    CHECK_INT_EQ(filter_from_address(bad, strlen(bad), addr, raw, sizeof raw), 0);
    CHECK_STR_EQ(raw, "Undisclosed");
    const char *nohdr = "\r\nFrom: x@y\r\n";
    CHECK_INT_EQ(filter_from_address(nohdr, strlen(nohdr), addr, raw, sizeof raw), 0);
}

TEST(header_fields)
{
    const char *h = "A: 1\r\nB:\r\n folded\r\n\tmore\r\nno colon line\r\nC : 3";
    struct hdr_iter it;
    struct hdr_field f;
    hdr_iter_init(&it, S(h));
    CHECK_INT_EQ(hdr_next(&it, &f), 1);
    CHECK(span_eq_lit(f.name, "A", false) && span_eq_lit(f.value, " 1", false));
    CHECK_INT_EQ(hdr_next(&it, &f), 1);
    CHECK(span_eq_lit(f.name, "B", false));
    CHECK(span_eq_lit(f.value, "\r\n folded\r\n\tmore", false));
    CHECK_INT_EQ(f.whole.n, strlen("B:\r\n folded\r\n\tmore\r\n"));
    char text[32];
    hdr_value_text(f.value, text, sizeof text);
    CHECK_STR_EQ(text, "folded more");
    CHECK_INT_EQ(hdr_next(&it, &f), 1);
    CHECK_INT_EQ(f.name.n, 0);
    CHECK_INT_EQ(hdr_next(&it, &f), 1);
    CHECK(span_eq_lit(f.name, "C", false) && span_eq_lit(f.value, " 3", false));
    CHECK_INT_EQ(hdr_next(&it, &f), 0);
    hdr_value_text(S("  a very long value  "), text, 5);
    CHECK_STR_EQ(text, "a ve");
}

TEST(content_type)
{
    struct content_type ct;
    const char *h = "Content-Type: Multipart/Encrypted (c); protocol=\"application/pgp-encrypted\";\r\n"
                    " Boundary = \"a \\\"b\\\" c\"\r\n";
    CHECK_INT_EQ(mime_content_type(S(h), &ct), 0);
    CHECK(ct_is(&ct, "multipart", "encrypted"));
    CHECK(ct.has_boundary);
    CHECK_STR_EQ(ct.boundary, "a \"b\" c");
    CHECK_INT_EQ(mime_content_type(S("Subject: x\r\n"), &ct), 0);
    CHECK(ct_is(&ct, "text", "plain") && !ct.has_boundary);
    CHECK_INT_EQ(mime_content_type(S("Content-Type: garbage\r\n"), &ct), 0);
    CHECK(ct_is(&ct, "text", "plain"));
    CHECK_INT_EQ(mime_content_type(S("Content-Type: multipart/mixed; boundary=\r\n"), &ct), 0);
    CHECK(ct_is(&ct, "multipart", "mixed") && !ct.has_boundary);
    CHECK_INT_EQ(mime_content_type(S("content-type: multipart/mixed; x=1; boundary=b1; boundary=b2"),
                                   &ct), 0);
    CHECK_STR_EQ(ct.boundary, "b1");
    CHECK_INT_EQ(mime_content_type(S("Content-Type: multipart/encrypted; protocol=application/"
                                     "pgp-encrypted; x=\"a;b\"; =; boundary=b3"), &ct), 0);
    CHECK_STR_EQ(ct.boundary, "b3");
    CHECK_INT_EQ(mime_content_type(S("Content-Type: multipart/mixed; boundary=\"unterminated"),
                                   &ct), 0);
    CHECK(!ct.has_boundary);
    CHECK_INT_EQ(mime_cte(S("Content-Transfer-Encoding: BASE64 \r\n")), CTE_BASE64);
    CHECK_INT_EQ(mime_cte(S("Content-Transfer-Encoding: Quoted-Printable\r\n")),
                 CTE_QUOTED_PRINTABLE);
    CHECK_INT_EQ(mime_cte(S("Content-Transfer-Encoding: 7bit\r\n")), CTE_IDENTITY);
    CHECK_INT_EQ(mime_cte(S("X: y\r\n")), CTE_IDENTITY);
}

TEST(multipart_split)
{
    struct span parts[3];
    const char *b1 = "preamble\r\n--b \t\r\nA\r\n--bx\r\n--b\r\n\r\nB\r\n--b--\r\nepilogue\r\n--b\r\nC\r\n";
    CHECK_INT_EQ(mime_parts(S(b1), "b", parts, 3), 2);
    CHECK(span_eq_lit(parts[0], "A\r\n--bx", false));
    CHECK(span_eq_lit(parts[1], "\r\nB", false));
    const char *b2 = "--b\r\nA\r\n--b\r\n--b\r\nC"; /* empty middle part, no close */
    CHECK_INT_EQ(mime_parts(S(b2), "b", parts, 3), 3);
    CHECK(span_eq_lit(parts[0], "A", false));
    CHECK_INT_EQ(parts[1].n, 0);
    CHECK(span_eq_lit(parts[2], "C", false));
    CHECK_INT_EQ(mime_parts(S(b2), "b", parts, 1), 2); /* "more than 1" */
    CHECK_INT_EQ(mime_parts(S("no delimiter"), "b", parts, 3), 0);
    CHECK_INT_EQ(mime_parts(S("--b--\r\n"), "b", parts, 3), 0);
    CHECK_INT_EQ(mime_parts(S("--b"), "b", parts, 3), 1);
    CHECK_INT_EQ(parts[0].n, 0);
    struct span h, body;
    CHECK_INT_EQ(mime_split(S("A: 1\r\n\r\nbody"), &h, &body), 0);
    CHECK(span_eq_lit(h, "A: 1\r\n", false) && span_eq_lit(body, "body", false));
    CHECK_INT_EQ(mime_split(S("\r\nbody"), &h, &body), 0);
    CHECK(h.n == 0 && span_eq_lit(body, "body", false));
    CHECK_INT_EQ(mime_split(S("A: 1\r\n"), &h, &body), 0);
    CHECK(h.n == 6 && body.n == 0);
}

TEST(transfer_decoding)
{
    struct span out;
    char *owned;
    CHECK_INT_EQ(mime_decode(CTE_BASE64, S("VmVy\r\nc2lvbjogMQ==\r\n"), &out, &owned), 0);
    CHECK(span_eq_lit(out, "Version: 1", false));
    free(owned);
    CHECK_INT_EQ(mime_decode(CTE_QUOTED_PRINTABLE, S("Ver=\r\nsion:=201=3D=ZZ="), &out, &owned), 0);
    CHECK(span_eq_lit(out, "Version: 1==ZZ=", false));
    free(owned);
    CHECK_INT_EQ(mime_decode(CTE_IDENTITY, S("x"), &out, &owned), 0);
    CHECK(owned == NULL && span_eq_lit(out, "x", false));
}

int main(void)
{
    RUN(first_address);
    RUN(from_header);
    RUN(header_fields);
    RUN(content_type);
    RUN(multipart_split);
    RUN(transfer_decoding);
    return check_report();
}
