"""IMAP protocol conformance (issue 11 §2): each test sends the exact
request and asserts on the exact response lines, per RFC 3501 / 9051 / 7162
(CONDSTORE) / 5258 (LIST-EXTENDED). Search date keys in any case, SEARCH
MODSEQ with an entry name and in ESEARCH, BODY[] sections inside
message/rfc822, LIST/LSUB of parent-only levels, NIL and '[' in astrings,
ENVELOPE comments and groups, SEARCH HEADER over every field of a name,
LIST-EXTENDED RECURSIVEMATCH / \\NonExistent / CHILDINFO, \\Recent and
FLAGS updates for new keywords."""
import imaplib
import os
import re
import time

import pytest

import cmtest
from cmtest import DOMAIN, HOST, client_context

PASSWORD = "rfc-conformance-1"


@pytest.fixture
def srv(server):
    return server(extra={"max_mailbox_size": "10M"})


def login(srv, user):
    m = imaplib.IMAP4_SSL(HOST, srv.port("imaps"), ssl_context=client_context(),
                          timeout=cmtest.TIMEOUT)
    assert m.login(f"{user}@{DOMAIN}", PASSWORD)[0] == "OK"
    return m


def cmd(m, text):
    """Sends `T<n> text`; returns the whole response (literals inline) up to
    and including the tagged line, with the tag written as "T"."""
    tag = m._new_tag().decode()
    m.send(f"{tag} {text}\r\n".encode())
    out = b""
    deadline = time.monotonic() + cmtest.TIMEOUT
    while time.monotonic() < deadline:
        line = m.file.readline()
        assert line, f"connection closed after {out!r}"
        lit = re.search(rb"\{(\d+)\}\r\n$", line)
        if lit:
            line += m.file.read(int(lit.group(1)))
            out += line
            continue
        out += line
        if line.startswith(tag.encode() + b" "):
            head = out[:len(out) - len(line)]
            return (head + b"T " + line[len(tag) + 1:]).decode("latin-1")
    raise AssertionError(f"no tagged reply: {out!r}")


def append(m, msg, box="INBOX", flags=None, date=None):
    typ, data = m.append(box, flags, date, msg)
    assert typ == "OK", data


# ---- 1. SEARCH date keys are case-insensitive ----

def test_search_date_keys_any_case(srv):
    m = login(srv, "rfcdate10")
    append(m, b"Date: Fri, 1 Jan 1999 10:00:00 +0000\r\nSubject: old\r\n\r\nx\r\n")
    append(m, b"Date: Mon, 15 Jun 2020 10:00:00 +0000\r\nSubject: new\r\n\r\nx\r\n")
    m.select("INBOX")
    today = time.strftime("%d-%b-%Y", time.gmtime()).lower()  # internal dates: today
    assert cmd(m, "SEARCH before 1-jan-2000") == "* SEARCH\r\nT OK Search completed.\r\n"
    assert cmd(m, "SEARCH on 1-jan-2000") == "* SEARCH\r\nT OK Search completed.\r\n"
    assert cmd(m, f"SEARCH on {today}") == "* SEARCH 1 2\r\nT OK Search completed.\r\n"
    assert cmd(m, "SEARCH sentbefore 1-Jan-2000") == "* SEARCH 1\r\nT OK Search completed.\r\n"
    assert cmd(m, "SEARCH senton 15-jun-2020") == "* SEARCH 2\r\nT OK Search completed.\r\n"
    assert cmd(m, "SEARCH Since 1-Jan-2000") == "* SEARCH 1 2\r\nT OK Search completed.\r\n"
    assert cmd(m, "SEARCH SentSince 1-Jan-2000") == "* SEARCH 2\r\nT OK Search completed.\r\n"
    assert cmd(m, "SEARCH SENTAFTER 1-Jan-2000") == \
        "T BAD Error in IMAP command SEARCH: Invalid search key.\r\n"
    m.logout()


# ---- 2. SEARCH MODSEQ [entry-name entry-type] value (RFC 7162 3.1.5) ----

def test_search_modseq_entry_and_esearch(srv):
    m = login(srv, "rfcmodseq")
    for i in range(3):
        append(m, f"Subject: m{i}\r\n\r\nx\r\n".encode())
    m.select("INBOX")
    m.store("2", "+FLAGS", "(\\Draft)")
    ms = [int(x) for x in re.findall(r"MODSEQ \((\d+)\)", cmd(m, "FETCH 1:3 (MODSEQ)"))]
    assert len(ms) == 3 and ms[1] > ms[2] > ms[0], ms
    assert cmd(m, f'SEARCH MODSEQ "/flags/\\\\draft" all {ms[1]}') == \
        f"* SEARCH 2 (MODSEQ {ms[1]})\r\nT OK Search completed.\r\n"
    assert cmd(m, f'SEARCH MODSEQ "/flags/\\\\seen" priv {ms[2]}') == \
        f"* SEARCH 2 3 (MODSEQ {ms[1]})\r\nT OK Search completed.\r\n"
    bad = "T BAD Error in IMAP command SEARCH: Invalid search key.\r\n"
    assert cmd(m, "SEARCH MODSEQ abc") == bad
    assert cmd(m, 'SEARCH MODSEQ "/flags/\\\\seen" all abc') == bad
    assert cmd(m, 'SEARCH MODSEQ "/flags/\\\\seen" bogus 5') == bad
    # a number is the value: what follows are further keys
    assert cmd(m, f"SEARCH MODSEQ {ms[2]} ALL UNDRAFT") == \
        f"* SEARCH 3 (MODSEQ {ms[2]})\r\nT OK Search completed.\r\n"
    r = cmd(m, f"SEARCH RETURN (ALL) MODSEQ {ms[2]}")
    assert re.fullmatch(rf'\* ESEARCH \(TAG "[^"]+"\) ALL 2:3 MODSEQ {ms[1]}\r\nT OK Search completed.\r\n', r), r
    r = cmd(m, f"UID SEARCH RETURN (MIN) MODSEQ {ms[0]}")
    assert re.fullmatch(rf'\* ESEARCH \(TAG "[^"]+"\) UID MIN 1 MODSEQ {ms[0]}\r\nT OK Search completed.\r\n', r), r
    r = cmd(m, f"SEARCH RETURN (COUNT) MODSEQ {ms[1] + 1}")
    assert re.fullmatch(r'\* ESEARCH \(TAG "[^"]+"\) COUNT 0\r\nT OK Search completed.\r\n', r), r
    m.logout()


# ---- 3. BODY[] sections inside message/rfc822 ----

INNER2 = (b"From: c@x.test\r\nSubject: innermost\r\nContent-Type: multipart/mixed; boundary=\"b2\"\r\n"
          b"\r\n--b2\r\nContent-Type: text/plain\r\n\r\ndeep one\r\n"
          b"--b2\r\nContent-Type: text/html\r\n\r\n<p>deep two</p>\r\n--b2--\r\n")
INNER1 = (b"From: b@x.test\r\nSubject: inner\r\nContent-Type: message/rfc822\r\n\r\n" + INNER2)
OUTER = (b"From: a@x.test\r\nSubject: outer\r\nContent-Type: message/rfc822\r\n\r\n" + INNER1)


def lit(section, data):
    return f"BODY[{section}] {{{len(data)}}}\r\n".encode() + data


def test_body_sections_inside_message_rfc822(srv):
    m = login(srv, "rfcbody10")
    append(m, OUTER)
    m.select("INBOX")

    def fetch(section):
        return cmd(m, f"FETCH 1 BODY.PEEK[{section}]").encode("latin-1")

    def want(section, data):
        return b"* 1 FETCH (" + lit(section, data) + b")\r\nT OK Fetch completed.\r\n"

    hdr1, body1 = INNER1.split(b"\r\n\r\n", 1)
    hdr2, body2 = INNER2.split(b"\r\n\r\n", 1)
    assert fetch("1") == want("1", INNER1)
    assert fetch("1.HEADER") == want("1.HEADER", hdr1 + b"\r\n\r\n")
    assert fetch("1.TEXT") == want("1.TEXT", body1)
    assert fetch("1.1") == want("1.1", INNER2)
    assert fetch("1.1.HEADER") == want("1.1.HEADER", hdr2 + b"\r\n\r\n")
    assert fetch("1.1.TEXT") == want("1.1.TEXT", body2)
    assert fetch("1.1.1") == want("1.1.1", b"deep one")
    assert fetch("1.1.2") == want("1.1.2", b"<p>deep two</p>")
    assert fetch("1.1.2.MIME") == want("1.1.2.MIME", b"Content-Type: text/html\r\n\r\n")
    assert fetch("1.1.3") == b"* 1 FETCH (BODY[1.1.3] NIL)\r\nT OK Fetch completed.\r\n"
    assert fetch("2") == b"* 1 FETCH (BODY[2] NIL)\r\nT OK Fetch completed.\r\n"
    m.logout()


def test_body_sections_message_part_of_multipart(srv):
    """The common case keeps working: part 2 of a multipart is a message."""
    m = login(srv, "rfcbody20")
    msg = (b"Subject: fwd\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n"
           b"--o\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
           b"--o\r\nContent-Type: message/rfc822\r\n\r\n" + INNER2 + b"\r\n--o--\r\n")
    append(m, msg)
    m.select("INBOX")
    hdr2, body2 = INNER2.split(b"\r\n\r\n", 1)
    r = cmd(m, "FETCH 1 (BODY.PEEK[2.HEADER] BODY.PEEK[2.1] BODY.PEEK[2.2.MIME])").encode("latin-1")
    assert r == (b"* 1 FETCH (" + lit("2.HEADER", hdr2 + b"\r\n\r\n") + b" " + lit("2.1", b"deep one")
                 + b" " + lit("2.2.MIME", b"Content-Type: text/html\r\n\r\n")
                 + b")\r\nT OK Fetch completed.\r\n"), r
    m.logout()


# ---- 5. NIL is an astring; '[' is an atom character ----

def test_nil_astring_and_bracket_atom(srv):
    m = login(srv, "rfcnil100")
    assert cmd(m, "CREATE NIL") == "T OK Create completed.\r\n"
    append(m, b"Subject: NIL\r\n\r\nx\r\n", box="NIL")
    r = cmd(m, "SELECT NIL")
    assert "* 1 EXISTS\r\n" in r and r.endswith("T OK [READ-WRITE] Select completed.\r\n"), r
    assert cmd(m, "SEARCH SUBJECT NIL") == "* SEARCH 1\r\nT OK Search completed.\r\n"
    r = cmd(m, "STORE 1 +FLAGS NIL")
    assert r == ("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft NIL)\r\n"
                 "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft NIL \\*)] "
                 "Flags permitted.\r\n"
                 "* 1 FETCH (FLAGS (\\Recent NIL))\r\nT OK Store completed.\r\n"), r
    assert cmd(m, "SEARCH KEYWORD NIL") == "* SEARCH 1\r\nT OK Search completed.\r\n"
    assert cmd(m, "SELECT a[b") == "T NO [NONEXISTENT] Mailbox doesn't exist: a[b\r\n"
    assert cmd(m, "CREATE a[b") == "T OK Create completed.\r\n"
    r = cmd(m, 'LIST "" a[b')
    assert r == '* LIST (\\HasNoChildren) "." "a[b"\r\nT OK List completed.\r\n', r
    m.logout()


# ---- 6. ENVELOPE: comments, groups ----

def envelope(m, hdrs):
    append(m, hdrs + b"\r\nbody\r\n")
    n = int(re.search(r"\* (\d+) EXISTS", cmd(m, "SELECT INBOX")).group(1))
    r = cmd(m, f"FETCH {n} ENVELOPE")
    mt = re.fullmatch(rf"\* {n} FETCH \(ENVELOPE (.*)\)\r\nT OK Fetch completed\.\r\n", r, re.S)
    assert mt, r
    return mt.group(1)


def test_envelope_comment_and_groups(srv):
    m = login(srv, "rfcenv100")
    m.select("INBOX")
    env = envelope(m, b"Date: Mon, 15 Jun 2020 10:00:00 +0000\r\nSubject: s\r\n"
                      b"From: user@domain.test (Real Name)\r\n"
                      b"To: undisclosed-recipients:;\r\n"
                      b"Cc: Friends: a@x.test, \"B, Bee\" <b@y.test>;, solo@z.test\r\n"
                      b"Message-ID: <e1@x>\r\n")
    assert env == ('("Mon, 15 Jun 2020 10:00:00 +0000" "s" '
                   '(("Real Name" NIL "user" "domain.test")) '
                   '(("Real Name" NIL "user" "domain.test")) '
                   '(("Real Name" NIL "user" "domain.test")) '
                   '((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) '
                   '((NIL NIL "Friends" NIL)(NIL NIL "a" "x.test")("B, Bee" NIL "b" "y.test")'
                   '(NIL NIL NIL NIL)(NIL NIL "solo" "z.test")) '
                   'NIL NIL "<e1@x>")'), env
    env = envelope(m, b"Subject: t\r\nFrom: \"Quoted (not a comment)\" <q@x.test> (trailing)\r\n"
                      b"To: <@relay.test:r@x.test>\r\n")
    assert env == ('(NIL "t" (("Quoted (not a comment)" NIL "q" "x.test")) '
                   '(("Quoted (not a comment)" NIL "q" "x.test")) '
                   '(("Quoted (not a comment)" NIL "q" "x.test")) '
                   '((NIL "@relay.test" "r" "x.test")) NIL NIL NIL NIL)'), env
    m.logout()


# ---- 7. SEARCH HEADER looks at every field of that name ----

def test_search_header_every_field(srv):
    m = login(srv, "rfchdr100")
    append(m, b"Received: from a.test\r\nReceived: from b.test\r\nX-Tag: one\r\nX-Tag: two\r\n"
              b"Subject: s\r\n\r\nx\r\n")
    append(m, b"Received: from c.test\r\nSubject: s\r\n\r\nx\r\n")
    m.select("INBOX")
    assert cmd(m, 'SEARCH HEADER Received "b.test"') == "* SEARCH 1\r\nT OK Search completed.\r\n"
    assert cmd(m, "SEARCH HEADER X-TAG two") == "* SEARCH 1\r\nT OK Search completed.\r\n"
    assert cmd(m, 'SEARCH HEADER Received "from"') == "* SEARCH 1 2\r\nT OK Search completed.\r\n"
    assert cmd(m, "SEARCH HEADER X-Tag three") == "* SEARCH\r\nT OK Search completed.\r\n"
    m.logout()


# ---- 4. LIST / LSUB return levels that exist only as parents ----

def test_list_lsub_parent_only_levels(srv):
    m = login(srv, "rfclist10")
    assert cmd(m, "CREATE par.kid.leaf") == "T OK Create completed.\r\n"
    assert cmd(m, 'LIST "" "par.%"') == \
        '* LIST (\\Noselect \\HasChildren) "." "par.kid"\r\nT OK List completed.\r\n'
    assert cmd(m, 'LIST "" "%"') == ('* LIST (\\HasNoChildren) "." "INBOX"\r\n'
                                     '* LIST (\\Noselect \\HasChildren) "." "par"\r\n'
                                     'T OK List completed.\r\n')
    assert cmd(m, 'LIST "" "par.kid.%"') == \
        '* LIST (\\HasNoChildren) "." "par.kid.leaf"\r\nT OK List completed.\r\n'
    assert cmd(m, "SUBSCRIBE par.kid.leaf") == "T OK Subscribe completed.\r\n"
    assert cmd(m, 'LSUB "" "%"') == \
        '* LSUB (\\Noselect \\HasChildren) "." "par"\r\nT OK Lsub completed.\r\n'
    assert cmd(m, 'LSUB "" "par.%"') == \
        '* LSUB (\\Noselect \\HasChildren) "." "par.kid"\r\nT OK Lsub completed.\r\n'
    assert cmd(m, 'LSUB "" "*"') == \
        '* LSUB (\\HasNoChildren) "." "par.kid.leaf"\r\nT OK Lsub completed.\r\n'
    # the parent level can be created after all, and then is a folder
    assert cmd(m, "CREATE par") == "T OK Create completed.\r\n"
    assert cmd(m, 'LIST "" "%"') == ('* LIST (\\HasNoChildren) "." "INBOX"\r\n'
                                     '* LIST (\\HasChildren) "." "par"\r\n'
                                     'T OK List completed.\r\n')
    m.logout()


# ---- 8. LIST-EXTENDED: RECURSIVEMATCH, \NonExistent, CHILDINFO ----

def test_list_extended_recursivematch_nonexistent(srv):
    m = login(srv, "rfclistx1")
    assert cmd(m, "CREATE par.kid.leaf") == "T OK Create completed.\r\n"
    assert cmd(m, "CREATE Other") == "T OK Create completed.\r\n"
    assert cmd(m, "SUBSCRIBE par.kid.leaf") == "T OK Subscribe completed.\r\n"
    assert cmd(m, "SUBSCRIBE Gone") == "T OK Subscribe completed.\r\n"
    bad = "T BAD Error in IMAP command LIST: Invalid selection options.\r\n"
    assert cmd(m, 'LIST (RECURSIVEMATCH) "" "*"') == bad
    assert cmd(m, 'LIST (REMOTE RECURSIVEMATCH) "" "*"') == bad
    assert cmd(m, 'LIST (SUBSCRIBED) "" "*"') == (
        '* LIST (\\NonExistent \\Subscribed) "." "Gone"\r\n'
        '* LIST (\\HasNoChildren \\Subscribed) "." "par.kid.leaf"\r\n'
        'T OK List completed.\r\n')
    assert cmd(m, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"') == (
        '* LIST (\\NonExistent \\Subscribed) "." "Gone"\r\n'
        '* LIST (\\NonExistent \\HasChildren) "." "par" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
        'T OK List completed.\r\n')
    assert cmd(m, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "par.%" RETURN (CHILDREN)') == (
        '* LIST (\\NonExistent \\HasChildren) "." "par.kid" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
        'T OK List completed.\r\n')
    # a subscribed folder with a subscribed child: \Subscribed and CHILDINFO
    assert cmd(m, "CREATE par") == "T OK Create completed.\r\n"
    assert cmd(m, "SUBSCRIBE par") == "T OK Subscribe completed.\r\n"
    assert cmd(m, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "p%"') == (
        '* LIST (\\HasChildren \\Subscribed) "." "par" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
        'T OK List completed.\r\n')
    # plain LIST does not show a subscription without a folder
    assert cmd(m, 'LIST "" "G*"') == "T OK List completed.\r\n"
    m.logout()


# ---- 9. \Recent; FLAGS when a keyword is new to the folder ----

FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"


def summary_counts(r):
    return (re.search(r"\* (\d+) EXISTS\r\n", r).group(1), re.search(r"\* (\d+) RECENT\r\n", r).group(1))


def test_recent_first_session_only(srv):
    c = login(srv, "rfcrecent")  # appends only, never selects
    append(c, b"Subject: one\r\n\r\nx\r\n")
    append(c, b"Subject: two\r\n\r\nx\r\n")
    a = login(srv, "rfcrecent")
    r = cmd(a, "EXAMINE INBOX")  # looks, claims nothing
    assert "* 2 EXISTS\r\n* 2 RECENT\r\n" in r, r
    assert cmd(c, "STATUS INBOX (MESSAGES RECENT)") == \
        '* STATUS "INBOX" (MESSAGES 2 RECENT 2)\r\nT OK Status completed.\r\n'
    r = cmd(a, "SELECT INBOX")
    assert "* 2 EXISTS\r\n* 2 RECENT\r\n" in r, r
    assert cmd(a, "FETCH 1:2 FLAGS") == ("* 1 FETCH (FLAGS (\\Recent))\r\n* 2 FETCH (FLAGS (\\Recent))\r\n"
                                         "T OK Fetch completed.\r\n")
    assert cmd(a, "STORE 1 +FLAGS (\\Seen)") == "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\nT OK Store completed.\r\n"
    assert cmd(a, "SEARCH RECENT") == "* SEARCH 1 2\r\nT OK Search completed.\r\n"
    assert cmd(a, "SEARCH NEW") == "* SEARCH 2\r\nT OK Search completed.\r\n"
    assert cmd(a, "SEARCH OLD") == "* SEARCH\r\nT OK Search completed.\r\n"
    assert cmd(c, "STATUS INBOX (RECENT)") == '* STATUS "INBOX" (RECENT 0)\r\nT OK Status completed.\r\n'

    b = login(srv, "rfcrecent")
    r = cmd(b, "SELECT INBOX")
    assert "* 2 EXISTS\r\n* 0 RECENT\r\n" in r, r
    assert cmd(b, "SEARCH RECENT") == "* SEARCH\r\nT OK Search completed.\r\n"
    assert cmd(b, "SEARCH OLD") == "* SEARCH 1 2\r\nT OK Search completed.\r\n"
    assert cmd(b, "FETCH 2 FLAGS") == "* 2 FETCH (FLAGS ())\r\nT OK Fetch completed.\r\n"

    # a new message is recent in whichever session sees it first
    append(c, b"Subject: three\r\n\r\nx\r\n")
    assert cmd(b, "NOOP") == "* 3 EXISTS\r\n* 1 RECENT\r\nT OK NOOP completed.\r\n"
    assert cmd(a, "NOOP") == "* 3 EXISTS\r\n* 2 RECENT\r\nT OK NOOP completed.\r\n"
    assert cmd(b, "SEARCH RECENT") == "* SEARCH 3\r\nT OK Search completed.\r\n"
    assert cmd(a, "SEARCH RECENT") == "* SEARCH 1 2\r\nT OK Search completed.\r\n"
    # \Recent is per session: it goes with the session, nobody gets it again
    a.logout()
    d = login(srv, "rfcrecent")
    assert summary_counts(cmd(d, "SELECT INBOX")) == ("3", "0")
    b.logout()
    c.logout()
    d.logout()


def test_recent_survives_restart_not_duplicated(srv):
    """The watermark lives in the folder's index: after a restart, messages
    seen before are not recent again; ones delivered since are."""
    c = login(srv, "rfcrecen2")
    append(c, b"Subject: one\r\n\r\nx\r\n")
    a = login(srv, "rfcrecen2")
    assert summary_counts(cmd(a, "SELECT INBOX")) == ("1", "1")
    a.logout()
    append(c, b"Subject: two\r\n\r\nx\r\n")
    c.logout()
    srv.stop()
    srv.start()
    a = login(srv, "rfcrecen2")
    assert summary_counts(cmd(a, "SELECT INBOX")) == ("2", "1")
    assert cmd(a, "SEARCH RECENT") == "* SEARCH 2\r\nT OK Search completed.\r\n"
    a.logout()


def test_flags_update_for_new_keyword(srv):
    a = login(srv, "rfckeywd1")
    append(a, b"Subject: k\r\n\r\nx\r\n")
    b = login(srv, "rfckeywd1")
    r = cmd(b, "SELECT INBOX")  # b is first: message 1 is \Recent in b
    assert f"* FLAGS ({FLAGS})\r\n" in r, r
    r = cmd(a, "SELECT INBOX")
    assert f"* FLAGS ({FLAGS})\r\n" in r, r
    assert cmd(a, "STORE 1 +FLAGS (\\Seen $Label1)") == (
        f"* FLAGS ({FLAGS} $Label1)\r\n"
        f"* OK [PERMANENTFLAGS ({FLAGS} $Label1 \\*)] Flags permitted.\r\n"
        "* 1 FETCH (FLAGS (\\Seen $Label1))\r\nT OK Store completed.\r\n")
    # known now: no second FLAGS
    assert cmd(a, "STORE 1 -FLAGS ($Label1)") == \
        "* 1 FETCH (FLAGS (\\Seen))\r\nT OK Store completed.\r\n"
    assert cmd(a, "STORE 1 +FLAGS ($Label1)") == \
        "* 1 FETCH (FLAGS (\\Seen $Label1))\r\nT OK Store completed.\r\n"
    # the other session learns the keyword before the FETCH that carries it
    assert cmd(b, "NOOP") == (
        f"* FLAGS ({FLAGS} $Label1)\r\n"
        f"* OK [PERMANENTFLAGS ({FLAGS} $Label1 \\*)] Flags permitted.\r\n"
        "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent $Label1))\r\nT OK NOOP completed.\r\n")
    assert cmd(b, "NOOP") == "T OK NOOP completed.\r\n"
    a.logout()
    b.logout()
