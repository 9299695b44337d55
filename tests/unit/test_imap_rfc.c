/* test_imap_rfc.c: the pure parts of issue 11's IMAP fixes - part numbers
 * inside message/rfc822 (imap_mime_find), ENVELOPE address lists (comments,
 * groups, source routes, broken input) - and the store's \Recent watermark
 * (claimed once, kept across reopen, a rebuilt index starts at the uidlist's
 * next UID, a lost one makes nothing recent) and keyword reload on refresh. */
#include "check.h"

#include "core/buf.h"
#include "imap/imap_mime.h"
#include "store/mailbox.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- part numbers ---- */

static const char *body_of_section(const struct imap_part *root, const char *spec,
                                   char *out, size_t cap)
{
    const char *rest;
    const struct imap_part *p = imap_mime_find(root, spec, &rest);
    if (!p)
        return NULL;
    size_t n = p->body.n < cap - 1 ? p->body.n : cap - 1;
    memcpy(out, p->body.p, n);
    out[n] = '\0';
    return out;
}

TEST(mime_find_inside_message_rfc822)
{
    const char *msg = "Subject: outer\r\nContent-Type: message/rfc822\r\n\r\n"
                      "Subject: inner\r\nContent-Type: message/rfc822\r\n\r\n"
                      "Subject: deepest\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                      "--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\ntwo\r\n--b--\r\n";
    struct imap_part root;
    CHECK_INT_EQ(imap_mime_parse(msg, strlen(msg), &root), 0);
    char b[512];
    const char *rest;
    /* 1: the body of the top message = the whole inner message */
    CHECK(body_of_section(&root, "1", b, sizeof b) && strncmp(b, "Subject: inner\r\n", 16) == 0);
    const struct imap_part *p = imap_mime_find(&root, "1.HEADER", &rest);
    CHECK(p == &root && strcmp(rest, "HEADER") == 0 && p->message);
    /* 1.1: part 1 of the inner (single-part) message = the deepest message */
    CHECK(body_of_section(&root, "1.1", b, sizeof b) && strncmp(b, "Subject: deepest", 16) == 0);
    CHECK_STR_EQ(body_of_section(&root, "1.1.1", b, sizeof b), "one");
    CHECK_STR_EQ(body_of_section(&root, "1.1.2", b, sizeof b), "two");
    p = imap_mime_find(&root, "1.1.2.MIME", &rest);
    CHECK(p && strcmp(rest, "MIME") == 0 && p->hdr.n == 25); /* "Content-Type: text/html\r\n" */
    CHECK(imap_mime_find(&root, "2", &rest) == NULL);
    CHECK(imap_mime_find(&root, "1.2", &rest) == NULL);
    CHECK(imap_mime_find(&root, "1.1.3", &rest) == NULL);
    CHECK(imap_mime_find(&root, "1.1.1.1", &rest) == NULL); /* a text leaf has no parts */
    CHECK(imap_mime_find(&root, "0", &rest) == NULL);
    imap_mime_free(&root);

    /* a single-part text message: 1 is its body, nothing below */
    const char *plain = "Subject: p\r\n\r\nbody\r\n";
    CHECK_INT_EQ(imap_mime_parse(plain, strlen(plain), &root), 0);
    CHECK_STR_EQ(body_of_section(&root, "1", b, sizeof b), "body\r\n");
    CHECK(imap_mime_find(&root, "1.1", &rest) == NULL);
    CHECK(imap_mime_find(&root, "TEXT", &rest) == &root && strcmp(rest, "TEXT") == 0);
    imap_mime_free(&root);
}

/* ---- ENVELOPE address lists ---- */

static const char *envelope(const char *hdr, struct buf *b)
{
    buf_reset(b);
    imap_write_envelope(b, (struct span){hdr, strlen(hdr)});
    buf_append(b, "", 1);
    return b->data;
}

TEST(envelope_addresses)
{
    struct buf b = {0};
    CHECK_STR_EQ(envelope("From: user@domain.test (Real Name)\r\n", &b),
                 "(NIL NIL ((\"Real Name\" NIL \"user\" \"domain.test\")) "
                 "((\"Real Name\" NIL \"user\" \"domain.test\")) "
                 "((\"Real Name\" NIL \"user\" \"domain.test\")) NIL NIL NIL NIL NIL)");
    CHECK_STR_EQ(envelope("To: undisclosed-recipients:;\r\n", &b),
                 "(NIL NIL NIL NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
                 "NIL NIL NIL NIL)");
    CHECK_STR_EQ(envelope("Cc: G: a@x, \"Q; R\" <b@y>;, c@z (z)\r\n", &b),
                 "(NIL NIL NIL NIL NIL NIL ((NIL NIL \"G\" NIL)(NIL NIL \"a\" \"x\")"
                 "(\"Q; R\" NIL \"b\" \"y\")(NIL NIL NIL NIL)(\"z\" NIL \"c\" \"z\")) NIL NIL NIL)");
    CHECK_STR_EQ(envelope("To: <@r1,@r2:x@y>, local\r\n", &b),
                 "(NIL NIL NIL NIL NIL ((NIL \"@r1,@r2\" \"x\" \"y\")(NIL NIL \"local\" NIL)) "
                 "NIL NIL NIL NIL)");
    CHECK_STR_EQ(envelope("To: Name (c (nested)) <n@x>\r\n", &b),
                 "(NIL NIL NIL NIL NIL ((\"Name\" NIL \"n\" \"x\")) NIL NIL NIL NIL)");
    /* unterminated quote, comment, angle, group: no crash, no garbage */
    CHECK_STR_EQ(envelope("To: \"open <a@b>\r\n", &b), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    CHECK_STR_EQ(envelope("To: a@b (open\r\n", &b),
                 "(NIL NIL NIL NIL NIL ((\"open\" NIL \"a\" \"b\")) NIL NIL NIL NIL)");
    CHECK_STR_EQ(envelope("To: <a@b\r\n", &b),
                 "(NIL NIL NIL NIL NIL ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL)");
    CHECK_STR_EQ(envelope("To: G: a@b\r\n", &b),
                 "(NIL NIL NIL NIL NIL ((NIL NIL \"G\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL)) "
                 "NIL NIL NIL NIL)");
    CHECK_STR_EQ(envelope("To: ,;,\r\n", &b), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    buf_free(&b);
}

/* ---- \Recent watermark in the index ---- */

static char adir[256];

static void put_msg(const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/new", adir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/new/%s", adir, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("Subject: r\r\n\r\nr\r\n", f);
        fclose(f);
    }
}

static struct mailbox *open_inbox(void)
{
    struct mailbox *mb = NULL;
    const char *err = NULL;
    CHECK_INT_EQ(mailbox_open(adir, "INBOX", &mb, &err), 0);
    if (mb)
        mailbox_refresh(mb, NULL, NULL, &err);
    return mb;
}

static uint32_t recent(struct mailbox *mb, bool claim)
{
    uint32_t first = 0;
    const char *err;
    CHECK_INT_EQ(mailbox_recent(mb, claim, &first, &err), 0);
    return first;
}

static void sync_refresh(struct mailbox *mb)
{
    const char *err;
    CHECK_INT_EQ(mailbox_sync(mb, true, &err), 0);
    CHECK_INT_EQ(mailbox_refresh(mb, NULL, NULL, &err), 0);
}

TEST(recent_watermark)
{
    snprintf(adir, sizeof adir, "/tmp/cm-recent-XXXXXX");
    CHECK(mkdtemp(adir) != NULL);
    put_msg("1700000100.M1P1Q1.h,S=15,W=15");
    put_msg("1700000200.M2P1Q1.h,S=15,W=15");
    struct mailbox *a = open_inbox(), *b = open_inbox();
    if (!a || !b)
        return;
    CHECK_INT_EQ(mailbox_uidnext(a), 3);
    CHECK_INT_EQ(recent(b, false), 1); /* a new folder: all of it is recent */
    CHECK_INT_EQ(recent(a, true), 1);  /* a claims 1 and 2 */
    CHECK_INT_EQ(recent(a, true), 3);
    CHECK_INT_EQ(recent(b, true), 3);  /* nothing left for b */
    put_msg("1700000300.M3P1Q1.h,S=15,W=15");
    sync_refresh(b);
    CHECK_INT_EQ(recent(b, true), 3); /* b saw 3 first */
    sync_refresh(a);
    CHECK_INT_EQ(recent(a, true), 4);
    mailbox_close(a);
    mailbox_close(b);

    /* kept across reopen */
    a = open_inbox();
    if (!a)
        return;
    CHECK_INT_EQ(recent(a, false), 4);
    mailbox_close(a);

    /* index lost: rebuilt from dovecot-uidlist (written on close); what it
     * lists is not recent, a file it does not list is */
    char p[600];
    snprintf(p, sizeof p, "%s/" MAILBOX_INDEX_NAME, adir);
    unlink(p);
    put_msg("1700000400.M4P1Q1.h,S=15,W=15");
    a = open_inbox();
    if (!a)
        return;
    CHECK_INT_EQ(mailbox_uidnext(a), 5);
    CHECK_INT_EQ(recent(a, true), 4);
    mailbox_close(a);

    /* an index without the watermark (older version): nothing is recent */
    sqlite3 *db = NULL;
    CHECK_INT_EQ(sqlite3_open(p, &db), SQLITE_OK);
    CHECK_INT_EQ(sqlite3_exec(db, "DELETE FROM meta WHERE k='recent_uid'", NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    put_msg("1700000500.M5P1Q1.h,S=15,W=15");
    a = open_inbox();
    if (!a)
        return;
    CHECK_INT_EQ(mailbox_uidnext(a), 6);
    CHECK_INT_EQ(recent(a, false), 6);
    CHECK_INT_EQ(recent(a, true), 6);
    mailbox_close(a);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", adir);
    CHECK(system(cmd) == 0);
}

TEST(keywords_of_other_objects_reloaded)
{
    snprintf(adir, sizeof adir, "/tmp/cm-recent-XXXXXX");
    CHECK(mkdtemp(adir) != NULL);
    put_msg("1700000100.M1P1Q1.h,S=15,W=15");
    struct mailbox *a = open_inbox(), *b = open_inbox();
    if (!a || !b)
        return;
    int k = mailbox_keyword_index(a, "$Label1", true);
    CHECK_INT_EQ(k, 0);
    uint32_t nf;
    uint64_t ms;
    const char *err;
    CHECK_INT_EQ(mailbox_set_flags(a, 1, MB_FLAGS_ADD, MB_KEYWORD(k), 0, &nf, &ms, &err), 0);
    CHECK(mailbox_keyword_name(b, 0) == NULL);
    CHECK_INT_EQ(mailbox_refresh(b, NULL, NULL, &err), 0);
    CHECK_STR_EQ(mailbox_keyword_name(b, 0), "$Label1");
    mailbox_close(a);
    mailbox_close(b);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", adir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    RUN(mime_find_inside_message_rfc822);
    RUN(envelope_addresses);
    RUN(recent_watermark);
    RUN(keywords_of_other_objects_reloaded);
    return check_report();
}
