"""Absolute deadlines (issue 16, finding 6): bytes trickled in do not extend
them. Shortened through the config so the tests stay fast (defaults:
imap_prelogin_timeout 60 s, smtp_command_timeout 300 s,
smtp_transaction_timeout 1800 s); each client sends one byte every 0.5 s,
which on main restarted the timer forever."""
import base64
import time

import cmtest
from cmtest import DOMAIN, plain_connect, tls_connect

DEADLINE = 3


def drip(c, data, until_closed_within):
    """Sends data one byte per 0.5 s; returns (seconds until the server
    closed, what it sent)."""
    t0 = time.monotonic()
    got = b""
    for b in data:
        try:
            c.sock.sendall(bytes([b]))
        except OSError:
            break
        c.sock.settimeout(0.5)
        try:
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            got += chunk
        except TimeoutError:
            pass
        except OSError:
            break
        if time.monotonic() - t0 > until_closed_within:
            raise AssertionError(f"still open after {until_closed_within}s; got {got!r}")
    return time.monotonic() - t0, got


def test_imap_prelogin_deadline_is_absolute(server):
    srv = server(extra={"imap_prelogin_timeout": DEADLINE})
    c = plain_connect(srv.port("imap"))
    with c:
        assert c.readline().startswith("* OK")
        took, got = drip(c, b"a NOOP" + b"x" * 100, DEADLINE + 4)
    assert DEADLINE - 0.5 <= took <= DEADLINE + 2, took
    assert b"* BYE" in got, got


def test_imap_deadline_ends_at_login(server):
    srv = server(extra={"imap_prelogin_timeout": DEADLINE})
    c = tls_connect(srv.port("imaps"))
    with c:
        assert c.readline().startswith("* OK")
        assert c.imap_cmd("a", f'LOGIN "dripper01@{DOMAIN}" "password1234"')[1].startswith("a OK")
        time.sleep(DEADLINE + 1)
        assert c.imap_cmd("b", "NOOP")[1].startswith("b OK")


def test_smtp_command_deadline_is_absolute(server):
    srv = server(extra={"smtp_command_timeout": DEADLINE})
    c = plain_connect(srv.port("submission"))
    with c:
        cmtest.smtp_greeting_ok(c.readline())
        took, got = drip(c, b"EHLO " + b"x" * 100, DEADLINE + 4)
    assert DEADLINE - 0.5 <= took <= DEADLINE + 2, took
    assert b"421 4.4.2" in got, got


def test_smtp_command_deadline_restarts_per_reply(server):
    srv = server(extra={"smtp_command_timeout": DEADLINE})
    c = plain_connect(srv.port("submission"))
    with c:
        cmtest.smtp_greeting_ok(c.readline())
        for _ in range(3):  # complete commands within the deadline: kept
            time.sleep(DEADLINE / 2)
            assert c.smtp_cmd("NOOP")[0].startswith("250")


def test_smtp_transaction_deadline_is_absolute(server):
    srv = server(extra={"smtp_transaction_timeout": DEADLINE})
    user = f"dripper02@{DOMAIN}"
    c = tls_connect(srv.port("submissions"))
    with c:
        cmtest.smtp_greeting_ok(c.readline())
        c.smtp_cmd("EHLO client.test")
        tok = base64.b64encode(f"\0{user}\0password1234".encode()).decode()
        assert c.smtp_cmd(f"AUTH PLAIN {tok}")[0].startswith("235")
        assert c.smtp_cmd(f"MAIL FROM:<{user}>")[0].startswith("250")
        assert c.smtp_cmd(f"RCPT TO:<{user}>")[0].startswith("250")
        assert c.smtp_cmd("DATA")[0].startswith("354")
        took, got = drip(c, b"Subject: x\r\n" * 20, DEADLINE + 4)
    assert DEADLINE - 0.5 <= took <= DEADLINE + 2, took
    assert b"421 4.4.2" in got, got
