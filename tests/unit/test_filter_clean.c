/* test_filter_clean.c: privacy header cleanup on submission (authclean) and
 * local delivery (lmtp_header_checks). */
#include "check.h"

#include "core/buf.h"
#include "filter/filter.h"

static void clean_eq(int (*fn)(const char *, size_t, struct buf *), const char *in,
                     const char *want)
{
    struct buf out = {0};
    CHECK_INT_EQ(fn(in, strlen(in), &out), 0);
    CHECK_INT_EQ(out.len, strlen(want));
    CHECK_STR_EQ(out.data ? out.data : "", want);
    buf_free(&out);
}

TEST(submission)
{
    clean_eq(filter_clean_submission,
             "Received: from [192.0.2.1] (helo)\r\n\tby relay; Tue, 1 Jun 2027\r\n"
             "From: <a@x.example>\r\n"
             "X-Mailer: Foo 1.0\r\n"
             "SUBJECT: secret\r\n plans\r\n"
             "user-agent: Bar\r\n"
             "X-Originating-IP: [192.0.2.1]\r\n"
             "Subject: second\r\n"
             "Received-SPF: pass\r\n"
             "X-Mailer-Version: 2\r\n"
             "To: <b@y.example>\r\n"
             "\r\n"
             "Received: in the body stays\r\nSubject: so does this\r\n",
             "From: <a@x.example>\r\n"
             "Subject: [...]\r\n"
             "Received-SPF: pass\r\n"
             "X-Mailer-Version: 2\r\n"
             "To: <b@y.example>\r\n"
             "\r\n"
             "Received: in the body stays\r\nSubject: so does this\r\n");
}

TEST(submission_without_subject)
{
    clean_eq(filter_clean_submission, "From: a\r\nReceived: x\r\n\r\nbody",
             "From: a\r\n\r\nbody");
    clean_eq(filter_clean_submission, "From: a\r\nSubject:\r\n", "From: a\r\nSubject: [...]\r\n");
    clean_eq(filter_clean_submission, "Subject: x", "Subject: [...]\r\n");
    clean_eq(filter_clean_submission, "\r\nReceived: body only\r\n", "\r\nReceived: body only\r\n");
    clean_eq(filter_clean_submission, "", "");
}

TEST(delivery)
{
    clean_eq(filter_clean_delivery,
             "DKIM-Signature: v=1; a=rsa-sha256; d=x.example;\r\n b=abc\r\n def\r\n"
             "Authentication-Results: mx; dkim=pass\r\n"
             "received: by mx\r\n"
             "X-Mailer: kept here\r\n"
             "Subject: kept too\r\n"
             "\r\nbody\r\n",
             "X-Mailer: kept here\r\n"
             "Subject: kept too\r\n"
             "\r\nbody\r\n");
    clean_eq(filter_clean_delivery, "Received : spaced name\r\nA: b\r\n\r\n", "A: b\r\n\r\n");
    clean_eq(filter_clean_delivery, " leading continuation\r\nA: b\r\n\r\n",
             " leading continuation\r\nA: b\r\n\r\n");
}

int main(void)
{
    RUN(submission);
    RUN(submission_without_subject);
    RUN(delivery);
    return check_report();
}
