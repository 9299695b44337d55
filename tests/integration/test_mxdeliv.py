"""test_mxdeliv.py: POST /mxdeliv and /mxdeliv/ on the https port, mail from
another relay (federation facts §2), signed by dkimpy with keys that the
test's DNS server (dnsserver.py via mx_helpers) serves: 200 + `250 OK` with
the message in the Maildir and an IDLE client told `* 1 EXISTS`; the
incoming encryption rules (523 for cleartext to an enforceE2EEincoming
account, a Secure-Join request accepted); DKIM (unsigned and forged 400 +
554, a key lookup timing out 503 + 451 4.7.5, RSA and Ed25519 accepted);
one unknown recipient makes the whole request 400 with nothing delivered to
anyone, as does a full mailbox (552 5.2.2); a relay recipient 554; over
max_message_size 413 + `552 5.3.4 ...` with the connection still usable;
GET 405; malformed or missing headers 400 with an SMTP line; chunked bodies, Expect: 100-continue (curl),
keep-alive and pipelining, a client gone mid-request, other connections
answered while one request waits for its DKIM key."""
import http.client
import re
import socket
import ssl
import subprocess

import pytest

import cmtest
import mx_helpers
from mx_helpers import SENDER, MxKeys, mx_dns, plain, securejoin, sign
from submit_helpers import PASSWORD, account_dir, addr, stored

REMOTE = SENDER
BOB, CAROL = addr("mxdbob001"), addr("mxdcarol1")


def connect(srv, host=cmtest.DOMAIN):
    raw = socket.create_connection((cmtest.HOST, srv.port("https")), timeout=cmtest.TIMEOUT)
    ctx = cmtest.client_context(alpn=["http/1.1"])
    c = http.client.HTTPConnection(host)
    c.sock = ctx.wrap_socket(raw, server_hostname=cmtest.DOMAIN)
    return c


def post(srv, body, rcpts, mail_from=REMOTE, path="/mxdeliv", conn=None, method="POST",
         headers=()):
    """One request with one X-MAIL-TO header per recipient; -> (status, body).
    With conn the connection is kept (keep-alive), else it is closed."""
    c = conn or connect(srv)
    c.putrequest(method, path)
    if mail_from is not None:
        c.putheader("X-MAIL-FROM", mail_from)
    for r in rcpts:
        c.putheader("X-MAIL-TO", r)
    for k, v in headers:
        c.putheader(k, v)
    c.putheader("Content-Length", str(len(body)))
    c.endheaders(body)
    r = c.getresponse()
    out = (r.status, r.read())
    if conn is None:
        c.close()
    return out


def imap_login(srv, user):
    c = cmtest.tls_connect(srv.port("imaps"))
    c.readline()
    assert c.imap_cmd("l", f"LOGIN {user} {PASSWORD}")[1].startswith("l OK")
    return c


def make_accounts(srv, *users):
    for u in users:
        imap_login(srv, u).close()  # create-on-login


@pytest.fixture(scope="module")
def keys():
    return MxKeys()


@pytest.fixture
def dns(keys):
    d = mx_dns(keys)
    yield d
    d.stop()


@pytest.fixture
def mk(server, dns):
    """mk(extra=None): a server whose dns_servers is the test's DNS server."""
    return lambda extra=None: mx_helpers.mx_server(server, dns, extra)


KEYS = None  # the module's keys, for the message helpers below


@pytest.fixture(autouse=True)
def _keys(keys):
    global KEYS
    KEYS = keys


def encrypted(rcpt, alg=b"rsa-sha256"):
    """An encrypted message From SENDER, DKIM-signed (relaxed/relaxed)."""
    return sign(mx_helpers.encrypted(rcpt), KEYS, alg=alg)


def test_delivered_and_idle_sees_exists(mk):
    srv = mk()
    make_accounts(srv, BOB)
    c = imap_login(srv, BOB)
    lines, done = c.imap_cmd("s", "SELECT INBOX")
    assert done.startswith("s OK") and "* 0 EXISTS" in lines, (lines, done)
    c.send("i IDLE\r\n")
    assert c.readline().startswith("+ ")
    msg = encrypted(BOB)
    assert post(srv, msg, [BOB]) == (200, b"250 OK")
    assert c.readline() == "* 1 EXISTS"
    c.send("DONE\r\n")
    while not (line := c.readline()).startswith("i "):
        assert line.startswith("* "), line
    assert line.startswith("i OK"), line
    c.close()
    [f] = stored(srv, BOB)
    data = f.read_bytes()
    assert b"-----BEGIN PGP MESSAGE-----" in data and f"From: <{REMOTE}>".encode() in data


def test_trailing_slash_any_host_and_null_sender(mk):
    srv = mk()
    make_accounts(srv, BOB)
    assert post(srv, encrypted(BOB), [BOB], path="/mxdeliv/") == (200, b"250 OK")
    # any name of ours (Host www.<d> would be redirected for other paths)
    assert post(srv, encrypted(BOB), [BOB], conn=connect(srv, "www.relay1.test")) == \
        (200, b"250 OK")
    # no X-MAIL-FROM: the null sender (upstream omits an empty one)
    assert post(srv, encrypted(BOB), [BOB], mail_from=None) == (200, b"250 OK")
    assert len(stored(srv, BOB)) == 3


def test_unencrypted_refused_523(mk):
    srv = mk()
    make_accounts(srv, BOB)
    (account_dir(srv, BOB) / "enforceE2EEincoming").write_bytes(b"")
    status, body = post(srv, sign(plain(BOB), KEYS), [BOB])
    assert status == 400 and body.startswith(b"523 "), (status, body)
    assert b"Encryption Needed" in body
    assert stored(srv, BOB) == []


def test_securejoin_request_accepted(mk):
    srv = mk()
    make_accounts(srv, BOB)
    (account_dir(srv, BOB) / "enforceE2EEincoming").write_bytes(b"")
    msg = sign(securejoin(BOB), KEYS)
    assert post(srv, msg, [BOB]) == (200, b"250 OK")
    assert len(stored(srv, BOB)) == 1


def test_one_unknown_recipient_nothing_delivered(mk):
    srv = mk()
    make_accounts(srv, BOB, CAROL)
    unknown = addr("nosuchusr")
    status, body = post(srv, encrypted(BOB), [BOB, unknown, CAROL])
    assert status == 400, (status, body)
    assert body == (f"550 5.1.1 <{unknown}>: Recipient address rejected: User unknown in "
                    "virtual mailbox table").encode()
    assert stored(srv, BOB) == [] and stored(srv, CAROL) == []
    # the same two known recipients alone (one of them tagged) get one copy each
    assert post(srv, encrypted(BOB), [BOB, addr("mxdcarol1+tag")]) == (200, b"250 OK")
    assert len(stored(srv, BOB)) == 1 and len(stored(srv, CAROL)) == 1


def test_relay_recipient_refused(mk):
    srv = mk()
    make_accounts(srv, BOB)
    status, body = post(srv, encrypted(BOB), [BOB, "carol@other.example"])
    assert (status, body) == (400, b"554 5.7.1 <carol@other.example>: Relay access denied")
    assert stored(srv, BOB) == []


def test_oversized_413_connection_reusable(mk):
    srv = mk({"max_message_size": "20000"})
    make_accounts(srv, BOB)
    c = connect(srv)
    big = encrypted(BOB) + b"X" * 60 + b"\r\n"
    big += (b"Y" * 998 + b"\r\n") * 25
    assert post(srv, big, [BOB], conn=c) == (413, b"552 5.3.4 Message exceeds maximum size")
    # the body was read to its end: the same connection serves the next request
    assert post(srv, encrypted(BOB), [BOB], conn=c) == (200, b"250 OK")
    c.close()
    assert len(stored(srv, BOB)) == 1


def test_methods_and_malformed_headers(mk):
    srv = mk()
    make_accounts(srv, BOB)
    msg = encrypted(BOB)
    for m in ("GET", "PUT", "DELETE"):
        status, body = post(srv, b"", [BOB], method=m)
        assert (status, body) == (405, b"Method Not Allowed"), m
    assert post(srv, msg, []) == (400, b"554 5.5.1 Error: no valid recipients (no X-MAIL-TO header)")
    assert post(srv, msg, ["bob"]) == (400, b"501 5.1.3 Bad recipient address syntax")
    assert post(srv, msg, ["a b@relay1.test"]) == (400, b"501 5.1.3 Bad recipient address syntax")
    assert post(srv, msg, [BOB], mail_from="no at sign") == \
        (400, b"501 5.1.7 Bad sender address syntax")
    two_from = [("X-MAIL-FROM", "other@remote.example")]
    assert post(srv, msg, [BOB], headers=two_from)[0] == 400
    many = [addr("r%d" % i) for i in range(1001)]
    assert post(srv, msg, many) == (400, b"452 4.5.3 Error: too many recipients")
    status, body = post(srv, msg.replace(b"\r\n", b"\n"), [BOB])
    assert (status, body) == (400, b"550 5.5.2 Error: bare <LF> received")
    assert stored(srv, BOB) == []
    # <addr> is accepted as well as addr
    assert post(srv, msg, [f"<{BOB}>"], mail_from=f"<{REMOTE}>") == (200, b"250 OK")


def test_thousand_recipients_headers_fit(mk):
    srv = mk()
    make_accounts(srv, BOB)
    # 1000 X-MAIL-TO headers are read (all the same account: one copy)
    assert post(srv, encrypted(BOB), [BOB] * 1000) == (200, b"250 OK")
    assert len(stored(srv, BOB)) == 1


def test_chunked_and_expect_continue_with_curl(mk, tmp_path):
    srv = mk()
    make_accounts(srv, BOB)
    f = tmp_path / "msg.eml"
    f.write_bytes(encrypted(BOB))
    url = f"https://{cmtest.DOMAIN}:{srv.port('https')}/mxdeliv"
    base = ["curl", "-sS", "--cacert", str(srv.ca_file), "--resolve",
            f"{cmtest.DOMAIN}:{srv.port('https')}:{cmtest.HOST}", "-H", f"X-MAIL-FROM: {REMOTE}",
            "-H", f"X-MAIL-TO: {BOB}", "-w", " %{http_code}", "--data-binary", f"@{f}", url]
    for extra in (["-H", "Transfer-Encoding: chunked"], ["-H", "Expect: 100-continue"]):
        out = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
        assert out.stdout == "250 OK 200", (extra, out.stdout, out.stderr)
    assert len(stored(srv, BOB)) == 2


def test_pipelined_requests_answered_in_order(mk):
    srv = mk()
    make_accounts(srv, BOB)
    msg = encrypted(BOB)

    def req(rcpt):
        return (f"POST /mxdeliv HTTP/1.1\r\nHost: {cmtest.DOMAIN}\r\nX-MAIL-FROM: {REMOTE}\r\n"
                f"X-MAIL-TO: {rcpt}\r\nContent-Length: {len(msg)}\r\n\r\n").encode() + msg
    c = cmtest.tls_connect(srv.port("https"), alpn=["http/1.1"])
    c.send(req(BOB) + req(addr("nosuchusr")) + req(BOB) +
           b"GET /mxdeliv HTTP/1.1\r\nConnection: close\r\n\r\n")
    reply = c.read_until_closed(cmtest.TIMEOUT)
    c.close()
    statuses = [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) ", reply)]
    assert statuses == [200, 400, 200, 405], reply
    assert len(stored(srv, BOB)) == 2


def test_client_gone_mid_request(mk):
    srv = mk()
    make_accounts(srv, BOB)
    msg = encrypted(BOB)
    head = (f"POST /mxdeliv HTTP/1.1\r\nHost: {cmtest.DOMAIN}\r\nX-MAIL-TO: {BOB}\r\n"
            f"Content-Length: {len(msg)}\r\n\r\n").encode()
    for cut in (len(head) - 10, len(head) + 100, len(head) + len(msg)):
        c = cmtest.tls_connect(srv.port("https"), alpn=["http/1.1"])
        c.send((head + msg)[:cut])
        c.close()
    # still serving: a full request is delivered
    assert post(srv, msg, [BOB]) == (200, b"250 OK")
    assert 1 <= len(stored(srv, BOB)) <= 2  # the complete one that was cut may have landed


# ---------------------------------------------------------------- DKIM (the pipeline's stage)

def test_dkim_unsigned_and_forged_refused(mk):
    srv = mk()
    make_accounts(srv, BOB)
    unsigned = mx_helpers.encrypted(BOB)
    assert post(srv, unsigned, [BOB]) == (400, b"554 5.7.1 No DKIM signature found")
    forged = encrypted(BOB).replace(b"Subject: ", b"Subject: Re: ", 1)
    assert forged != encrypted(BOB)
    assert post(srv, forged, [BOB]) == (400, b"554 5.7.1 No valid DKIM signature found")
    misaligned = sign(mx_helpers.encrypted(BOB), KEYS, domain="other.example")
    assert post(srv, misaligned, [BOB]) == (400, b"554 5.7.1 No valid DKIM signature found")
    assert stored(srv, BOB) == []


@pytest.mark.parametrize("alg", [b"rsa-sha256", b"ed25519-sha256"])
def test_dkim_signed_accepted_headers_removed(mk, alg):
    srv = mk()
    make_accounts(srv, BOB)
    raw = b"Received: from peer by relay2\r\n" + mx_helpers.encrypted(BOB)
    assert post(srv, sign(raw, KEYS, alg=alg), [BOB]) == (200, b"250 OK")
    [f] = stored(srv, BOB)
    head = f.read_bytes().split(b"\r\n\r\n", 1)[0].lower()
    assert b"dkim-signature:" not in head and b"received:" not in head, head


@pytest.mark.timeout(180)
def test_dkim_key_lookup_timeout_is_temporary(mk, dns):
    srv = mk()
    make_accounts(srv, BOB)
    dns.behave[f"rsa._domainkey.{mx_helpers.SENDER_DOMAIN}"] = "timeout"
    c = connect(srv)
    c.sock.settimeout(90)
    status, body = post(srv, encrypted(BOB), [BOB], conn=c)
    c.close()
    assert status == 503 and body.startswith(b"451 4.7.5 "), (status, body)
    assert stored(srv, BOB) == []
    del dns.behave[f"rsa._domainkey.{mx_helpers.SENDER_DOMAIN}"]
    assert post(srv, encrypted(BOB), [BOB]) == (200, b"250 OK")


def test_other_requests_served_while_one_waits(mk, dns):
    """While one request's key lookup hangs in the pipeline, other
    connections are answered: the loop only waits for events."""
    srv = mk()
    make_accounts(srv, BOB)
    dns.behave[f"ed._domainkey.{mx_helpers.SENDER_DOMAIN}"] = "timeout"
    slow = encrypted(BOB, alg=b"ed25519-sha256")
    a = cmtest.tls_connect(srv.port("https"), alpn=["http/1.1"])
    a.send((f"POST /mxdeliv HTTP/1.1\r\nX-MAIL-TO: {BOB}\r\nConnection: close\r\n"
            f"Content-Length: {len(slow)}\r\n\r\n").encode() + slow)
    assert post(srv, encrypted(BOB), [BOB]) == (200, b"250 OK")
    assert post(srv, b"", [BOB], method="GET")[0] == 405
    # the first request is still waiting for its key (a 2 s + 4 s lookup)
    a.sock.setblocking(False)
    with pytest.raises(ssl.SSLWantReadError):  # TLS records (tickets) but no answer
        a.sock.recv(1)
    a.sock.setblocking(True)
    reply = a.read_until_closed(90)
    a.close()
    assert reply.startswith(b"HTTP/1.1 503 ") and b"451 4.7.5 " in reply, reply
    assert len(stored(srv, BOB)) == 1


def test_full_mailbox_refuses_whole_request(mk):
    srv = mk({"max_mailbox_size": "1M"})
    make_accounts(srv, BOB, CAROL)
    cur = account_dir(srv, BOB) / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    for i in range(3):  # 900 kB of bob's 1 MiB, as S= says
        (cur / f"{1000000000 + i}.M{i}P1.old,S=300000,W=300000:2,S").write_bytes(b"x" * 100)
    big = sign(mx_helpers.encrypted(BOB).replace(
        b"-----END PGP MESSAGE-----", b"-----END PGP MESSAGE-----\r\n" + b"\r\n" * 100000), KEYS)
    status, body = post(srv, big, [CAROL, BOB])
    assert (status, body) == (400, f"552 5.2.2 <{BOB}>: Quota exceeded (mailbox for user is "
                                   "full)".encode())
    assert stored(srv, CAROL) == []  # all or nothing: carol's copy was taken back
