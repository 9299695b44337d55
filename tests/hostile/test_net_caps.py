"""Caps from the first byte (issue 16, findings 2 and 4).

A connection counts against its protocol's total and per-address caps the
moment it is accepted, before any TLS handshake; over a cap it is closed at
once; a handshake must finish within 10 s; refusals are logged in one
throttled line. Issue 16 measured 21,000 idle connections from three
addresses against the defaults (IMAP 10,000, per address 2,000) and a
20,000-descriptor limit. Scaled here to stay within the test machine's
limits and time: max_imap_connections = 500 (per address 100),
max_smtp_connections = 100 (20), max_http_connections = 500 (100), and
three attacking addresses (127.0.0.2-4) each open 300 idle TCP connections
to 993, 60 to 465 and 300 to 443 (1,980 in all, about 3x what the caps let
in, as in the issue); a client from a fourth address (127.0.0.5) still
logs in on 993, is greeted on 465 and gets / and /new on 443."""
import resource
import socket
import time

import pytest

import cmtest
from cmtest import DOMAIN, HOST, client_context, http_get

ATTACKERS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
VICTIM = "127.0.0.5"
PER_PORT = {"imaps": 300, "submissions": 60, "https": 300}
CAPS = {"max_imap_connections": 500, "max_smtp_connections": 100, "max_http_connections": 500}


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 20000)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def tcp_from(src, port, timeout=5):
    return socket.create_connection((HOST, port), timeout=timeout, source_address=(src, 0))


def tls_from(src, port, alpn=None, timeout=10):
    raw = tcp_from(src, port, timeout)
    try:
        s = client_context(alpn=alpn).wrap_socket(raw, server_hostname=DOMAIN)
    except BaseException:
        raw.close()
        raise
    return cmtest.LineConn(s, timeout)


def closed_by_server(s):
    """True if the server closed s (EOF or reset); False if still open."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.mark.timeout(240)
def test_half_open_connections_from_three_addresses_fourth_logs_in(server):
    if raise_nofile() < 2600:
        pytest.skip("needs 2,600 descriptors")
    srv = server(extra=CAPS)
    held = {}
    for ip in ATTACKERS:
        for name, n in PER_PORT.items():
            for _ in range(n):
                held.setdefault((ip, name), []).append(tcp_from(ip, srv.port(name)))
    time.sleep(1.0)
    try:
        # over the per-address caps the rest was closed at once, without a handshake
        for ip in ATTACKERS:
            for name, cap in (("imaps", 100), ("submissions", 20), ("https", 100)):
                socks = held[(ip, name)]
                open_ = sum(not closed_by_server(s) for s in socks)
                assert open_ == cap, (ip, name, open_, len(socks))
        # a fourth address is served at once
        t0 = time.monotonic()
        with tls_from(VICTIM, srv.port("imaps")) as c:
            assert c.readline().startswith("* OK")
            tagged = c.imap_cmd("a", f'LOGIN "victim123@{DOMAIN}" "password1234"')[1]
            assert tagged.startswith("a OK"), tagged
        login_s = time.monotonic() - t0
        assert login_s < 5, login_s
        with tls_from(VICTIM, srv.port("submissions")) as c:
            cmtest.smtp_greeting_ok(c.readline())
        with tls_from(VICTIM, srv.port("https"), alpn=["http/1.1"]) as c:
            assert http_get(c.sock, "/")[0] == 200
        with tls_from(VICTIM, srv.port("https"), alpn=["http/1.1"]) as c:
            assert http_get(c.sock, "/new")[0] in (200, 301)
        log = srv.log_text()
        refused = [l for l in log.splitlines() if "connections refused:" in l]
        assert refused and "imap per-address cap" in log, refused
        assert len(refused) <= 3, refused  # throttled: at most one per 10 s
        # the handshake deadline (10 s, bytes do not extend it) frees the slots
        def freed():
            return all(closed_by_server(s) for s in held[(ATTACKERS[0], "imaps")])
        cmtest.poll(freed, timeout=20, interval=0.5, what="half-open connections closed")
    finally:
        for socks in held.values():
            for s in socks:
                s.close()


def test_handshake_deadline_not_extended_by_bytes(server):
    srv = server()
    s = tcp_from(HOST, srv.port("imaps"))
    with s:
        t0 = time.monotonic()
        # a ClientHello trickled one byte per second never completes
        hello = bytes.fromhex("16030100f4010000f00303") + bytes(32)
        s.settimeout(0.5)
        for b in hello:
            try:
                s.sendall(bytes([b]))
            except OSError:
                break
            if closed_by_server(s):
                break
            s.setblocking(True)
            s.settimeout(0.5)
            time.sleep(1.0)
            if time.monotonic() - t0 > 20:
                break
        took = time.monotonic() - t0
    assert 8 <= took <= 13, took


def test_http_per_address_cap_below_total(server):
    """Finding 4: one address at its HTTP cap (max_http_connections 50 ->
    10 per address) does not make others get 503 on 80, 443 and /new."""
    srv = server(extra={"max_http_connections": 50})
    hog = [tcp_from(ATTACKERS[0], srv.port("http")) for _ in range(30)]
    try:
        time.sleep(0.5)
        refused = []
        for s in hog:
            s.settimeout(0.2)
            try:
                data = s.recv(100)
                refused.append(data)
            except socket.timeout:
                pass  # accepted, waiting for a request
        assert len(refused) == 20, len(refused)
        assert all(r.startswith(b"HTTP/1.1 503") for r in refused), refused[:2]
        c = tcp_from(VICTIM, srv.port("http"))
        with c:
            assert http_get(c, "/")[0] in (200, 301)  # port 80 may redirect to https
        with tls_from(VICTIM, srv.port("https"), alpn=["http/1.1"]) as t:
            assert http_get(t.sock, "/")[0] == 200
        with tls_from(VICTIM, srv.port("https"), alpn=["http/1.1"]) as t:
            assert http_get(t.sock, "/new")[0] in (200, 301)
    finally:
        for s in hog:
            s.close()


@pytest.mark.timeout(600)
def test_full_scale_20000_half_open_default_caps(server):
    """Issue 16's own figures with the default caps (IMAP 10,000, 2,000 per
    address): 3 x 6,600 idle TCP connections to 993 from three addresses;
    a fourth address logs in. Needs RLIMIT_NOFILE >= 20,500 here."""
    if raise_nofile() < 20500 - 600:
        pytest.skip("needs ~20,000 descriptors")
    srv = server()
    socks = []
    try:
        t0 = time.monotonic()
        for ip in ATTACKERS:
            for _ in range(6600):
                socks.append(tcp_from(ip, srv.port("imaps")))
        opened_s = time.monotonic() - t0
        time.sleep(2)
        open_ = sum(not closed_by_server(s) for s in socks)
        assert open_ == 3 * 2000, open_
        t0 = time.monotonic()
        with tls_from(VICTIM, srv.port("imaps")) as c:
            assert c.readline().startswith("* OK")
            assert c.imap_cmd("a", f'LOGIN "victim123@{DOMAIN}" "password1234"')[1].startswith("a OK")
        login_s = time.monotonic() - t0
        print(f"{len(socks)} connections opened in {opened_s:.1f} s, {open_} kept; "
              f"a fourth address logged in in {login_s:.2f} s")
        assert login_s < 5
    finally:
        for s in socks:
            s.close()
