"""test_push.py: push notifications (issue 15, federation facts §5)
against a notification server the test starts (push_helpers.PushEndpoint:
HTTPS on loopback with a test-CA certificate; tls_ca_file is the test CA).

  - a submission from another user: exactly one POST /notify, body = the
    token, no Content-Type; the item file gone afterwards; mail from
    another relay by POST /mxdeliv: one POST too;
  - a self-sent message and an IMAP APPEND: no request; a delivery status
    notification put into the sender's INBOX (null MX destination): one;
  - two tokens: two requests;
  - 410: the token leaves metadata.json (GETMETADATA no longer shows it);
  - 500 then 200: retried after 8 s (time scaled by CM_PUSH_TIME_SCALE),
    then done;
  - an endpoint answering 500 forever: five attempts at 0, 8, 72, 584,
    4680 s (scaled), then dropped and the file removed; a closed port the
    same (no answer at all);
  - SIGKILL with an item in flight: sent after the restart, together with
    an upstream-format item file the test puts there; .tmp and unparsable
    files removed at start;
  - 100 deliveries in a burst to one token while the endpoint holds its
    answer: coalesced into at most 2 requests;
  - more items than fit in memory (CM_PUSH_MEM_MAX=4 while the endpoint
    holds): the rest wait on disk and every token is notified once; new
    deliveries to tokens whose items wait on disk add nothing, also after
    a restart;
  - an item file older than 5 h found at start: dropped without a request;
  - an HTTP/2-only endpoint (python3-h2): five notifications are five
    concurrent streams of one TLS connection;
  - tls_ca_file replaced by a file with the right CA after a failed
    certificate check: the retry uses the new file.
"""
import http.client
import socket
import time

import pytest

import cmtest
from cmtest import DOMAIN
from push_helpers import (PushEndpoint, get_tokens, imap, pending, pending_dir, push_server,
                          send, set_tokens)
import mx_helpers
from dnsserver import DnsServer
from submit_helpers import account_dir, fixture, login, stored

ALICE = f"alice0001@{DOMAIN}"
BOB = f"bob000001@{DOMAIN}"
TOK = "8a0c6b1e5d2f4a7b9c3e1f0a2b4c6d8e"


@pytest.fixture
def endpoint(test_ca):
    eps = []

    def make(**kw):
        ep = PushEndpoint(test_ca, **kw)
        eps.append(ep)
        return ep
    yield make
    for ep in eps:
        ep.stop()


def settle(ep, n, extra=0.5):
    """Waits for n requests, then a little longer (to see any extra one)."""
    cmtest.poll(lambda: ep.count() >= n, what=f"{n} notification requests")
    time.sleep(extra)
    return ep.got


def test_delivery_sends_one_post(server, test_ca, endpoint):
    ep = endpoint()
    srv = push_server(server, test_ca, ep)
    set_tokens(srv, BOB, [TOK])
    send(srv, ALICE, BOB)
    got = settle(ep, 1)
    assert len(got) == 1, got
    g = got[0]
    assert (g.method, g.path, g.body) == ("POST", "/notify", TOK.encode())
    assert "content-type" not in g.headers, g.headers
    assert g.headers["content-length"] == str(len(TOK))
    cmtest.poll(lambda: pending(srv) == [], what="the item file removed")
    assert TOK not in srv.log_text()  # logs carry a short hash only


def test_mxdeliv_delivery_notifies(server, test_ca, endpoint):
    ep = endpoint()
    keys = mx_helpers.MxKeys()
    dns = mx_helpers.mx_dns(keys)
    try:
        srv = push_server(server, test_ca, ep, extra={"dns_servers": dns.address})
        set_tokens(srv, BOB, [TOK])
        body = mx_helpers.sign(mx_helpers.encrypted(BOB), keys)
        raw = socket.create_connection((cmtest.HOST, srv.port("https")), timeout=cmtest.TIMEOUT)
        c = http.client.HTTPConnection(DOMAIN)
        c.sock = cmtest.client_context(alpn=["http/1.1"]).wrap_socket(raw, server_hostname=DOMAIN)
        c.request("POST", "/mxdeliv", body, {"X-MAIL-FROM": mx_helpers.SENDER, "X-MAIL-TO": BOB})
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"250 OK")
        c.close()
        got = settle(ep, 1)
        assert [g.body for g in got] == [TOK.encode()]
    finally:
        dns.stop()


def test_self_sent_and_append_send_nothing(server, test_ca, endpoint):
    ep = endpoint()
    srv = push_server(server, test_ca, ep)
    set_tokens(srv, ALICE, ["alicetoken1"])
    send(srv, ALICE, ALICE)  # to oneself: no notification
    m = imap(srv, ALICE)  # APPEND into INBOX: no notification
    typ, data = m.append("INBOX", None, None, fixture("encrypted.eml", BOB, ALICE))
    assert typ == "OK", data
    m.logout()
    assert len(stored(srv, ALICE)) == 2
    time.sleep(1.0)
    assert ep.count() == 0, ep.got
    send(srv, BOB, ALICE)  # a message from someone else does notify
    got = settle(ep, 1)
    assert [g.body for g in got] == [b"alicetoken1"]


def test_dsn_into_inbox_notifies(server, test_ca, endpoint):
    ep = endpoint()
    dns = DnsServer({"nullmx.test": {"MX": [(0, ".")]}})
    try:
        srv = push_server(server, test_ca, ep, extra={"dns_servers": dns.address})
        set_tokens(srv, ALICE, [TOK])
        send(srv, ALICE, "carol@nullmx.test")  # 556 5.1.10 -> a DSN in alice's INBOX
        got = settle(ep, 1)
        assert [g.body for g in got] == [TOK.encode()]
        assert any(b"mailer-daemon@" in p.read_bytes() for p in stored(srv, ALICE))
    finally:
        dns.stop()


def test_two_tokens_two_requests(server, test_ca, endpoint):
    ep = endpoint()
    srv = push_server(server, test_ca, ep)
    set_tokens(srv, BOB, ["phonetoken1", "tablettoken2"])
    send(srv, ALICE, BOB)
    got = settle(ep, 2)
    assert sorted(g.body for g in got) == [b"phonetoken1", b"tablettoken2"]


def test_410_removes_token(server, test_ca, endpoint):
    ep = endpoint(script={"staletoken": [410]})
    srv = push_server(server, test_ca, ep)
    set_tokens(srv, BOB, ["staletoken", "goodtoken"])
    assert get_tokens(srv, BOB) == b'INBOX (/private/devicetoken "staletoken goodtoken")'
    md = account_dir(srv, BOB) / "metadata.json"
    assert b"staletoken" in md.read_bytes()
    send(srv, ALICE, BOB)
    settle(ep, 2)
    cmtest.poll(lambda: b"staletoken" not in md.read_bytes(), what="the token removed")
    assert b"goodtoken" in md.read_bytes()
    assert get_tokens(srv, BOB) == b'INBOX (/private/devicetoken "goodtoken")'
    cmtest.poll(lambda: pending(srv) == [], what="both items done")
    send(srv, ALICE, BOB)  # the removed token is not notified again
    got = settle(ep, 3)
    assert [g.body for g in got[2:]] == [b"goodtoken"]


def test_500_then_200_retried(server, test_ca, endpoint):
    ep = endpoint(script={TOK: [500, 200]})
    srv = push_server(server, test_ca, ep, scale=0.125)  # 8 s -> 1 s
    set_tokens(srv, BOB, [TOK])
    send(srv, ALICE, BOB)
    cmtest.poll(lambda: ep.count() >= 1, what="the first attempt")
    assert len(pending(srv)) == 1  # durable while it waits
    got = settle(ep, 2, extra=1.5)
    assert len(got) == 2 and got[1].body == TOK.encode()
    gap = got[1].t - got[0].t
    assert 0.8 <= gap <= 3.0, gap
    cmtest.poll(lambda: pending(srv) == [], what="done after the retry")


@pytest.mark.timeout(60)
def test_failing_endpoint_schedule_then_drop(server, test_ca, endpoint):
    ep = endpoint(default=500)
    scale = 0.002  # attempts at 0, 0.016, 0.144, 1.168, 9.36 s
    srv = push_server(server, test_ca, ep, scale=scale)
    set_tokens(srv, BOB, [TOK])
    send(srv, ALICE, BOB)
    cmtest.poll(lambda: "dropped after 5 attempts" in srv.log_text(), timeout=30,
                what="the item dropped")
    cmtest.poll(lambda: pending(srv) == [], what="the file removed")
    time.sleep(0.5)
    got = ep.got
    assert len(got) == 5, [g.t for g in got]
    gaps = [b.t - a.t for a, b in zip(got, got[1:])]
    for n, gap in enumerate(gaps, start=1):
        want = 8 ** n * scale
        assert want * 0.9 - 0.005 <= gap <= want + 1.0, (n, gaps)


@pytest.mark.timeout(60)
def test_dead_endpoint_dropped(server, test_ca):
    port = cmtest.free_ports(1)[0]  # nothing listens there
    srv = push_server(server, test_ca, None, scale=0.0005,
                      url=f"https://127.0.0.1:{port}/notify")
    set_tokens(srv, BOB, [TOK])
    send(srv, ALICE, BOB)
    cmtest.poll(lambda: "dropped after 5 attempts" in srv.log_text(), timeout=30,
                what="the item dropped")
    cmtest.poll(lambda: pending(srv) == [], what="the file removed")


def test_sigkill_pending_sent_after_restart(server, test_ca, endpoint):
    ep = endpoint()
    ep.hold()
    srv = push_server(server, test_ca, ep)
    set_tokens(srv, BOB, [TOK])
    send(srv, ALICE, BOB)
    cmtest.poll(lambda: ep.count() == 1, what="the request in flight")
    files = pending(srv)
    assert len(files) == 1 and len(files[0]) == 32
    addr, ts, tok = (pending_dir(srv) / files[0]).read_text().split("\n", 2)  # upstream's format
    assert (addr, tok) == (BOB, TOK) and abs(int(ts) - time.time()) < 30
    srv.kill()
    ep.release()
    d = pending_dir(srv)
    (d / "0123456789abcdef0123456789abcdef").write_text(f"{BOB}\n{int(time.time())}\nupstreamtok")
    (d / "fedcba9876543210fedcba9876543210.tmp").write_text(f"{BOB}\n1\nhalfwritten")
    (d / "00000000000000000000000000000000").write_text("garbage without newlines")
    srv.start()
    cmtest.poll(lambda: ep.count() >= 3, what="both items sent after the restart")
    time.sleep(0.5)
    assert sorted(ep.bodies()[1:]) == sorted([TOK.encode(), b"upstreamtok"])
    cmtest.poll(lambda: pending(srv) == [], what="every file removed")


@pytest.mark.timeout(90)
def test_burst_coalesced(server, test_ca, endpoint):
    ep = endpoint()
    ep.hold()
    srv = push_server(server, test_ca, ep)
    set_tokens(srv, BOB, [TOK])
    send(srv, ALICE, BOB, n=100)
    assert len(stored(srv, BOB)) == 100
    cmtest.poll(lambda: ep.count() >= 1, what="the first request")
    time.sleep(0.5)
    ep.release()
    time.sleep(1.0)
    assert 1 <= ep.count() <= 2, ep.count()
    cmtest.poll(lambda: pending(srv) == [], what="done")
    before = ep.count()
    send(srv, ALICE, BOB)  # once done, a new delivery notifies again
    settle(ep, before + 1)
    assert ep.count() == before + 1


@pytest.mark.timeout(90)
def test_items_beyond_memory_wait_on_disk(server, test_ca, endpoint):
    ep = endpoint()
    ep.hold()
    srv = server(extra={"notification_url": ep.url, "tls_ca_file": str(test_ca.crt),
                        "max_user_send_burst_size": 1000, "max_user_send_per_minute": 6000},
                 start=False)
    srv.env["CM_PUSH_MEM_MAX"] = "4"  # as many as the connections: all 4 in flight
    srv.start()
    users = [f"spill{i:04d}@{DOMAIN}" for i in range(40)]
    for u in users:
        set_tokens(srv, u, [f"spilltoken{u[5:9]}"])
    s = login(srv, ALICE)
    assert s.sendmail(ALICE, users, fixture("encrypted.eml", ALICE, users[0])) == {}
    s.quit()
    cmtest.poll(lambda: len(pending(srv)) == 40, what="40 item files")
    cmtest.poll(lambda: ep.count() == 4, what="the 4 items in memory sent")
    time.sleep(0.5)
    assert ep.count() == 4  # the others wait on disk
    ep.release()
    got = settle(ep, 40, extra=1.0)
    assert sorted(g.body for g in got) == sorted(f"spilltoken{u[5:9]}".encode() for u in users)
    cmtest.poll(lambda: pending(srv) == [], what="every file removed")


def test_old_item_at_start_dropped_without_a_try(server, test_ca, endpoint):
    """An item file older than 5 h found at start is dropped (file removed)
    without one more request; a fresh one beside it is sent."""
    ep = endpoint()
    srv = push_server(server, test_ca, ep)
    set_tokens(srv, BOB, [TOK])
    send(srv, ALICE, BOB)
    settle(ep, 1)
    cmtest.poll(lambda: pending(srv) == [], what="the first item done")
    srv.kill()
    d = pending_dir(srv)
    now = int(time.time())
    (d / ("a" * 32)).write_text(f"{BOB}\n{now - 5 * 3600 - 120}\noldtoken")
    (d / ("b" * 32)).write_text(f"{BOB}\n{now - 60}\nfreshtoken")
    srv.start()
    cmtest.poll(lambda: ep.count() >= 2, what="the fresh item sent")
    cmtest.poll(lambda: pending(srv) == [], what="both files removed")
    time.sleep(0.5)
    assert ep.bodies() == [TOK.encode(), b"freshtoken"]
    assert "older than 18000 s" in srv.log_text()


@pytest.mark.timeout(120)
def test_items_on_disk_coalesce(server, test_ca, endpoint):
    """Items beyond the memory bound wait on disk only; a new delivery to
    their tokens adds nothing, both while the server runs and after a
    restart (the start-up scan counts the files it leaves on disk)."""
    ep = endpoint()
    ep.hold()
    srv = server(extra={"notification_url": ep.url, "tls_ca_file": str(test_ca.crt),
                        "max_user_send_burst_size": 1000, "max_user_send_per_minute": 6000},
                 start=False)
    srv.env["CM_PUSH_MEM_MAX"] = "4"
    srv.start()
    users = [f"diskq{i:04d}@{DOMAIN}" for i in range(30)]
    toks = {u: f"disktoken{u[5:9]}" for u in users}
    for u in users:
        set_tokens(srv, u, [toks[u]])

    def deliver_all():
        s = login(srv, ALICE)
        assert s.sendmail(ALICE, users, fixture("encrypted.eml", ALICE, users[0])) == {}
        s.quit()

    deliver_all()
    cmtest.poll(lambda: len(pending(srv)) == 30, what="30 item files")
    cmtest.poll(lambda: ep.count() == 4, what="the 4 items in memory sent")
    first = set(pending(srv))
    deliver_all()  # 4 in flight, 26 on disk only: all coalesced
    cmtest.poll(lambda: all(len(stored(srv, u)) == 2 for u in users), what="second delivery")
    time.sleep(1.0)
    assert set(pending(srv)) == first
    srv.kill()  # the 30 files stay; after the restart 4 in memory, 26 on disk only
    srv.start()
    cmtest.poll(lambda: ep.count() == 8, what="4 items in memory sent again")
    deliver_all()
    cmtest.poll(lambda: all(len(stored(srv, u)) == 3 for u in users), what="third delivery")
    time.sleep(1.0)
    assert set(pending(srv)) == first
    ep.release()
    got = settle(ep, 4 + 30, extra=1.5)  # every file sent once after the restart
    assert sorted(g.body for g in got[4:]) == sorted(t.encode() for t in toks.values())
    cmtest.poll(lambda: pending(srv) == [], what="every file removed")


def test_http2_one_connection_multiplexed(server, test_ca):
    """The notification server speaks HTTP/2 only (ALPN h2) and answers
    nothing until all five requests are open: the five notifications of
    one delivery go as five streams of ONE TLS connection, at once."""
    from push_helpers import H2Endpoint
    toks = [f"h2token{i}" for i in range(5)]
    ep = H2Endpoint(test_ca, want=len(toks))
    try:
        srv = push_server(server, test_ca, None, url=ep.url)
        set_tokens(srv, BOB, toks)
        send(srv, ALICE, BOB)
        cmtest.poll(lambda: len(ep.streams) >= len(toks), what="five streams")
        cmtest.poll(lambda: pending(srv) == [], what="every item done (200)")
        time.sleep(0.5)
        assert ep.alpn == ["h2"], ep.alpn
        assert ep.max_open == len(toks), ep.max_open  # all open at once: multiplexed
        assert sorted(body for _, _, body in ep.streams) == sorted(t.encode() for t in toks)
        for conn, h, body in ep.streams:
            assert conn == 0
            assert (h[":method"], h[":path"], h[":scheme"]) == ("POST", "/notify", "https"), h
            assert "content-type" not in h, h
            assert h.get("content-length") == str(len(body)), h
        assert not any(t in srv.log_text() for t in toks)
    finally:
        ep.stop()


def test_ca_file_replaced_is_read_again(server, test_ca, endpoint, tmp_path):
    """The trust store built from tls_ca_file is shared by all connections
    and built again when the file changes: with another CA's certificate in
    the file the endpoint's certificate fails (no request reaches it, the
    attempt is retried); once the right CA is put there (new file renamed
    over it) the retry goes through."""
    other = cmtest.TestCA(tmp_path / "otherca")
    ca = tmp_path / "roots.pem"
    ca.write_bytes(other.crt.read_bytes())
    ep = endpoint()
    srv = push_server(server, test_ca, ep, scale=0.125, extra={"tls_ca_file": str(ca)})
    set_tokens(srv, BOB, [TOK])
    send(srv, ALICE, BOB)
    cmtest.poll(lambda: "attempt 1 failed (status 0)" in srv.log_text(),
                what="the first attempt refused by the certificate check")
    assert ep.count() == 0
    new = tmp_path / "roots.new"
    new.write_bytes(test_ca.crt.read_bytes())
    new.rename(ca)
    got = settle(ep, 1)
    assert len(got) == 1 and got[0].body == TOK.encode()
    cmtest.poll(lambda: pending(srv) == [], what="done after the retry")
