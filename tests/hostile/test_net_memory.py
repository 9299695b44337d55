"""Per-connection memory constants of the README's "Memory bound" formula,
measured: the server's RSS growth for N connections of one kind, divided
by N, must stay under the constant the README states.

  kind                                   README constant
  TCP accepted, TLS handshake not done   C_hs    = 16 KiB
  IMAP over TLS, before login            C_imap  = 64 KiB
  SMTP submission (plain), before AUTH   C_smtp  = 16 KiB
  HTTP over TLS, idle keep-alive         C_http  = 64 KiB

The measurement is printed (pytest -s) for the README."""
import socket
import ssl
import time

import pytest

import cmtest
from cmtest import DOMAIN, HOST, client_context

N = 300
KIB = 1024


def skip_if_sanitized(pid):
    """RSS means nothing under ASan (shadow memory, quarantine)."""
    with open(f"/proc/{pid}/maps") as f:
        if "libasan" in f.read():
            pytest.skip("RSS bounds are for release builds, not ASan")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def per_conn(srv, open_one, n=N):
    # warm-up: allocator arenas, TLS context caches
    warm = [open_one() for _ in range(10)]
    time.sleep(0.3)
    before = rss_kib(srv.pid)
    socks = [open_one() for _ in range(n)]
    time.sleep(0.5)
    grown = rss_kib(srv.pid) - before
    for s in socks + warm:
        s.close()
    return grown * KIB // n


def tls(port, alpn=None):
    raw = socket.create_connection((HOST, port), timeout=10)
    return client_context(alpn=alpn).wrap_socket(raw, server_hostname=DOMAIN)


def expect_line(s, prefix):
    s.settimeout(10)
    data = b""
    while b"\n" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    assert data.startswith(prefix), data
    return s


LIMITS = {"hs": 16 * KIB, "imap": 64 * KIB, "smtp": 16 * KIB, "http": 64 * KIB}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_per_connection_constant(server, kind):
    """One fresh server per kind, so that no freed memory of another kind
    hides the growth."""
    srv = server(extra={"max_imap_connections": 10000, "max_smtp_connections": 5000,
                        "max_http_connections": 5000})

    def hs():
        return socket.create_connection((HOST, srv.port("imaps")), timeout=10)

    def imap():
        return expect_line(tls(srv.port("imaps")), b"* OK")

    def smtp():
        s = socket.create_connection((HOST, srv.port("submission")), timeout=10)
        return expect_line(s, b"220 ")

    def http():
        s = tls(srv.port("https"), alpn=["http/1.1"])
        s.sendall(f"GET / HTTP/1.1\r\nHost: {DOMAIN}\r\n\r\n".encode())
        return expect_line(s, b"HTTP/1.1 200")

    skip_if_sanitized(srv.pid)
    print(f"idle server RSS: {rss_kib(srv.pid)} KiB")
    got = per_conn(srv, {"hs": hs, "imap": imap, "smtp": smtp, "http": http}[kind])
    print(f"{kind}: {got} bytes per connection")
    assert got <= LIMITS[kind], (kind, got, LIMITS[kind])
