"""test_smtpc.py: the outbound SMTP client (src/smtp/smtpc*.c, core/outconn)
driven by the test-only `smtpc_tool` against (a) our own server's port 25
in MX mode (STARTTLS verified with the test CA, a DKIM-signed encrypted
message, keys from dnsserver.DnsServer) and (b) smtppeer.SmtpPeer, a
scripted peer that can omit STARTTLS, present a certificate for the wrong
name, answer per recipient, refuse at the greeting, drip its replies and
leave out PIPELINING."""
import socket
import subprocess
from pathlib import Path

import pytest

import cmtest
from mx_helpers import SENDER, MxKeys, encrypted, make_account, mx_dns, mx_server, sign
from smtppeer import SmtpPeer
from submit_helpers import addr, stored

BOB = addr("bob000001")
PEER = "peer.test"


@pytest.fixture(scope="module")
def tool():
    path = Path(cmtest.server_bin()).parent / "smtpc_tool"
    if not path.is_file():
        pytest.fail(f"smtpc_tool not found next to the server binary: {path}", pytrace=False)
    return str(path)


@pytest.fixture(scope="module")
def peer_leaf(test_ca):
    return test_ca.make_leaf(PEER, sans=f"DNS:{PEER}", cn=PEER)


@pytest.fixture(scope="module")
def wrong_leaf(test_ca):
    return test_ca.make_leaf("other.test", sans="DNS:other.test", cn="other.test")


@pytest.fixture
def peers():
    made = []

    def make(**kw):
        p = SmtpPeer(**kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.stop()


def run(tool, tmp_path, port, tls, ca, rcpts, msg=b"Subject: t\r\n\r\nhello\r\n", host=PEER,
        mail_from="alice@relay.test", io_ms=10000, stop_ms=None, timeout=60, repeat=None):
    f = tmp_path / "msg.eml"
    f.write_bytes(msg)
    args = [tool, host, cmtest.HOST, str(port), tls, str(ca) if ca else "-", mail_from,
            ",".join(rcpts), str(f), "relay.test", str(io_ms)]
    args.append(str(stop_ms or 0))
    if repeat:
        args.append(str(repeat))
    p = subprocess.run(args, capture_output=True, timeout=timeout)
    out = p.stdout.decode()
    lines = out.splitlines()
    assert "closed" in lines and f"callbacks {repeat or 1}" in lines, (out, p.stderr.decode())
    res = {"status": None, "why": "", "session": None, "rcpt": {}, "rc": p.returncode, "tls": [],
           "reused": 0}
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "status":
            res["status"], _, res["why"] = rest.partition(" ")
        elif kind == "tls":
            res["tls"].append(rest)
        elif kind == "session":
            res["session"] = rest
        elif kind == "reused":
            res["reused"] += 1
        elif kind == "rcpt":
            a, _, reply = rest.partition(" ")
            res["rcpt"][a] = reply
    # exit 0 when the transaction ran, 1 when not; anything else (an ASan
    # or leak report) fails
    assert p.returncode == (0 if res["status"] == "ok" else 1), (p.returncode, p.stderr.decode())
    return res


def test_delivers_to_our_mx25_with_verified_starttls(tool, tmp_path, server, test_ca):
    keys = MxKeys()
    dns = mx_dns(keys)
    try:
        srv = mx_server(server, dns)
        make_account(srv, BOB)
        nobody = addr("nobody001")
        msg = sign(encrypted(BOB), keys)
        r = run(tool, tmp_path, srv.port("smtp"), "verify", test_ca.crt, [BOB, nobody], msg=msg,
                host=cmtest.DOMAIN, mail_from=SENDER)
        assert r["status"] == "ok", r
        assert r["rcpt"][BOB].startswith("250 2.0.0 Ok: queued as "), r
        assert r["rcpt"][nobody].startswith("550 5.1.1 "), r
        files = stored(srv, BOB)
        assert len(files) == 1
        # the stored message is what was sent, minus the headers the pipeline strips
        body = msg.split(b"\r\n\r\n", 1)[1]
        assert files[0].read_bytes().endswith(body)
    finally:
        dns.stop()


def test_wrong_certificate_refused_before_mail(tool, tmp_path, peers, test_ca, wrong_leaf):
    p = peers(cert=(str(wrong_leaf.fullchain), str(wrong_leaf.key)))
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["x@peer.test"])
    assert r["status"] == "tls", r
    assert r["rc"] == 1
    assert p.commands("STARTTLS") and not p.commands("MAIL"), p.sessions
    # `_`-domains and IP literals: any certificate, still over TLS
    r = run(tool, tmp_path, p.port, "any", test_ca.crt, ["x@peer.test"])
    assert r["status"] == "ok" and r["rcpt"]["x@peer.test"].startswith("250 "), r
    assert p.sessions[-1]["tls"] and len(p.sessions[-1]["data"]) == 1


def test_untrusted_ca_refused(tool, tmp_path, peers, peer_leaf):
    """The right name, but no tls_ca_file: the test CA is not a system root."""
    p = peers(cert=(str(peer_leaf.fullchain), str(peer_leaf.key)))
    r = run(tool, tmp_path, p.port, "verify", None, ["x@peer.test"])
    assert r["status"] == "tls", r
    assert not p.commands("MAIL")


def test_starttls_missing_with_verify(tool, tmp_path, peers, test_ca):
    p = peers(starttls=False)
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["x@peer.test"])
    assert r["status"] == "tls" and "STARTTLS" in r["why"], r
    assert not p.commands("MAIL"), p.sessions
    assert p.commands("QUIT")
    r = run(tool, tmp_path, p.port, "any", test_ca.crt, ["x@peer.test"])
    assert r["status"] == "tls" and not p.commands("MAIL"), r


def test_plain_ok_without_starttls(tool, tmp_path, peers, test_ca):
    p = peers(starttls=False)
    r = run(tool, tmp_path, p.port, "plain", test_ca.crt, ["x@peer.test"])
    assert r["status"] == "ok" and r["rcpt"]["x@peer.test"] == "250 2.0.0 Ok: queued as P1", r
    s = p.sessions[-1]
    assert not s["tls"] and s["data"] == [b"Subject: t\r\n\r\nhello\r\n"], s


def test_plain_ok_uses_starttls_when_offered(tool, tmp_path, peers, test_ca, wrong_leaf):
    p = peers(cert=(str(wrong_leaf.fullchain), str(wrong_leaf.key)))
    r = run(tool, tmp_path, p.port, "plain", test_ca.crt, ["x@peer.test"])
    assert r["status"] == "ok", r
    s = p.sessions[-1]
    assert s["tls"] and len(s["data"]) == 1
    ehlos = [c for c in s["cmds"] if c.startswith("EHLO")]
    assert ehlos == ["EHLO relay.test", "EHLO relay.test"], s["cmds"]


def test_verified_peer_pipelined_mixed_recipients(tool, tmp_path, peers, test_ca, peer_leaf):
    p = peers(cert=(str(peer_leaf.fullchain), str(peer_leaf.key)),
              rcpt={"b@peer.test": "450 4.2.1 try later", "c@peer.test": "550 5.1.1 unknown"})
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt,
            ["a@peer.test", "b@peer.test", "c@peer.test", "d@peer.test"])
    assert r["status"] == "ok", r
    assert r["rcpt"] == {"a@peer.test": "250 2.0.0 Ok: queued as P1",
                         "b@peer.test": "450 4.2.1 try later",
                         "c@peer.test": "550 5.1.1 unknown",
                         "d@peer.test": "250 2.0.0 Ok: queued as P1"}, r
    s = p.sessions[-1]
    assert s["tls"] and s["batched"], s
    assert [c for c in s["cmds"] if c.startswith("MAIL")] == \
        ["MAIL FROM:<alice@relay.test> SIZE=21 BODY=8BITMIME"], s["cmds"]
    assert s["cmds"][-1] == "QUIT"


def test_lockstep_without_pipelining(tool, tmp_path, peers, test_ca, peer_leaf):
    p = peers(cert=(str(peer_leaf.fullchain), str(peer_leaf.key)), pipelining=False,
              rcpt={"b@peer.test": "550 5.1.1 unknown"})
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test", "b@peer.test"])
    assert r["status"] == "ok" and r["rcpt"]["b@peer.test"].startswith("550"), r
    assert not p.sessions[-1]["batched"]
    # nobody accepted: no DATA at all
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["b@peer.test"])
    assert r["status"] == "ok" and r["rcpt"]["b@peer.test"] == "550 5.1.1 unknown", r
    s = p.sessions[-1]
    assert not [c for c in s["cmds"] if c == "DATA"] and s["cmds"][-1] == "QUIT", s["cmds"]


def test_dot_stuffing_and_missing_final_crlf(tool, tmp_path, peers, test_ca, peer_leaf):
    p = peers(cert=(str(peer_leaf.fullchain), str(peer_leaf.key)))
    msg = b"Subject: dots\r\n\r\n.x\r\nline\r\n..y\r\n.\r\nlast"
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test"], msg=msg)
    assert r["status"] == "ok", r
    wire = p.sessions[-1]["data"][0]
    assert wire == b"Subject: dots\r\n\r\n..x\r\nline\r\n...y\r\n..\r\nlast\r\n", wire
    # un-stuffed, as a server stores it: a body line ".x" arrives as ".x"
    lines = [l[1:] if l.startswith(b".") else l for l in wire.split(b"\r\n")]
    assert b"\r\n".join(lines) == msg + b"\r\n"


def test_greeting_421_and_554(tool, tmp_path, peers, test_ca):
    p = peers(greeting="421 4.3.2 Service shutting down")
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test"])
    assert r["status"] == "refused" and r["session"] == "421 4.3.2 Service shutting down", r
    p = peers(greeting="554 5.7.1 go away")
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test"])
    assert r["status"] == "refused" and r["session"] == "554 5.7.1 go away", r
    assert p.sessions[-1]["cmds"] == ["QUIT"]


def test_mail_refused(tool, tmp_path, peers, test_ca, peer_leaf):
    p = peers(cert=(str(peer_leaf.fullchain), str(peer_leaf.key)),
              mail_reply="553 5.7.1 sender rejected")
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test"])
    assert r["status"] == "refused" and r["session"] == "553 5.7.1 sender rejected", r


def test_slow_drip_and_timeout(tool, tmp_path, peers, test_ca, peer_leaf):
    cert = (str(peer_leaf.fullchain), str(peer_leaf.key))
    p = peers(cert=cert, drip=0.002)
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test"], io_ms=2000)
    assert r["status"] == "ok", r  # every byte restarts the idle timer
    p = peers(cert=cert, drip=0.5)
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test"], io_ms=200)
    assert r["status"] == "timeout", r


def test_connect_refused_and_stop(tool, tmp_path, peers, test_ca):
    s = socket.socket()
    s.bind((cmtest.HOST, 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there
    r = run(tool, tmp_path, port, "verify", test_ca.crt, ["a@peer.test"])
    assert r["status"] == "connect", r
    p = peers(drip=0.2)
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test"], stop_ms=300)
    assert r["status"] == "io" and r["why"] == "stopping", r


def test_large_message_streamed_over_tls(tool, tmp_path, peers, test_ca, peer_leaf):
    """4 MB of dot lines: the body goes out in pieces as the socket drains;
    stuffing across piece boundaries and the byte count must be exact."""
    p = peers(cert=(str(peer_leaf.fullchain), str(peer_leaf.key)))
    body = b"".join(b".line %06d %s\r\n" % (i, b"x" * (i % 50)) for i in range(120000))
    msg = b"Subject: big\r\n\r\n" + body
    assert len(msg) > 4_000_000
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test"], msg=msg)
    assert r["status"] == "ok", r
    wire = p.sessions[-1]["data"][0]
    assert wire == msg.replace(b"\r\n.", b"\r\n.."), (len(wire), len(msg))


@pytest.fixture(scope="module")
def outconn_tool():
    path = Path(cmtest.server_bin()).parent / "outconn_tool"
    if not path.is_file():
        pytest.fail(f"outconn_tool not found next to the server binary: {path}", pytrace=False)
    return str(path)


def test_outconn_implicit_tls_verified(outconn_tool, server, test_ca):
    """core/outconn as push and ACME will use it: implicit TLS to our HTTPS
    port, SNI and the name checked against the test CA."""
    srv = server()
    port = str(srv.port("https"))

    def go(host, mode, ca=str(test_ca.crt)):
        p = subprocess.run([outconn_tool, host, cmtest.HOST, port, mode, ca], capture_output=True,
                           timeout=60)
        out = p.stdout.decode().splitlines()
        assert out[-1] == "closed 1 open 0", (out, p.stderr.decode())
        return p.returncode, out

    rc, out = go(cmtest.DOMAIN, "verify")
    assert rc == 0 and out[0] in ("tls TLSv1.3", "tls TLSv1.2") and \
        out[1].startswith("first HTTP/1.1 "), out
    rc, out = go("wrong.test", "verify")
    assert rc == 1 and out[0].startswith("error tls "), out
    rc, out = go(cmtest.DOMAIN, "verify", "-")  # the test CA is no system root
    assert rc == 1 and out[0].startswith("error tls "), out
    rc, out = go("wrong.test", "any")
    assert rc == 0 and out[1].startswith("first HTTP/1.1 "), out


def test_tls_session_resumed(tool, tmp_path, peers, test_ca, peer_leaf, wrong_leaf):
    """The second connection to the same host resumes the first's session;
    a session from an any-certificate handshake is not offered in verify
    mode (the wrong certificate is still refused). The peers close the
    connection after each message, so every delivery opens its own."""
    p = peers(cert=(str(peer_leaf.fullchain), str(peer_leaf.key)), close_after_data=True)
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test"], repeat=3)
    assert r["status"] == "ok", r
    assert r["tls"] == ["yes resumed no", "yes resumed yes", "yes resumed yes"], r
    assert [len(s["data"]) for s in p.sessions] == [1, 1, 1]
    w = peers(cert=(str(wrong_leaf.fullchain), str(wrong_leaf.key)), close_after_data=True)
    r = run(tool, tmp_path, w.port, "any,any,verify", test_ca.crt, ["a@peer.test"], repeat=3)
    assert r["tls"] == ["yes resumed no", "yes resumed yes", "no resumed no"], r
    assert r["status"] == "tls", r  # the last one, in verify mode
    assert [len(s["data"]) for s in w.sessions] == [1, 1, 0]


def test_connection_reused(tool, tmp_path, peers, test_ca, peer_leaf):
    """Deliveries one after the other to one host share one connection:
    MAIL FROM again after a completed transaction, RSET first after one
    that did not complete (no recipient accepted), QUIT when the client
    stops; a different TLS mode does not take it."""
    p = peers(cert=(str(peer_leaf.fullchain), str(peer_leaf.key)))
    r = run(tool, tmp_path, p.port, "verify", test_ca.crt, ["a@peer.test"], repeat=3)
    assert r["status"] == "ok" and r["reused"] == 2, r
    assert [len(s["data"]) for s in p.sessions] == [3]
    verbs = [c.split(" ", 1)[0].split(":", 1)[0] for c in p.sessions[0]["cmds"]]
    assert verbs == ["EHLO", "STARTTLS", "EHLO"] + ["MAIL", "RCPT", "DATA"] * 3 + ["QUIT"], verbs
    # every recipient refused: DATA refused, the next transaction starts with RSET
    q = peers(cert=(str(peer_leaf.fullchain), str(peer_leaf.key)),
              rcpt={"no@peer.test": "550 5.1.1 no such user"})
    r = run(tool, tmp_path, q.port, "verify", test_ca.crt, ["no@peer.test"], repeat=2)
    assert r["status"] == "ok" and r["reused"] == 1, r
    [sess] = q.sessions
    verbs = [c.split(" ", 1)[0].split(":", 1)[0] for c in sess["cmds"]]
    assert verbs == ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "RSET",
                     "MAIL", "RCPT", "DATA", "QUIT"], verbs
    # verify then any-certificate: not the same TLS requirement, two connections
    w = peers(cert=(str(peer_leaf.fullchain), str(peer_leaf.key)))
    r = run(tool, tmp_path, w.port, "verify,any", test_ca.crt, ["a@peer.test"], repeat=2)
    assert r["status"] == "ok" and r["reused"] == 0, r
    assert [len(s["data"]) for s in w.sessions] == [1, 1]
