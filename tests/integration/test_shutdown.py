"""Graceful shutdown on SIGTERM: open sessions get their protocol's goodbye
(SMTP `421 4.3.2 <domain> Service shutting down`, IMAP `* BYE ...`) and are
closed, listeners stop accepting, and the process exits 0 within 15 s."""
import signal
import socket

import pytest

from cmtest import (DOMAIN, HOST, connection_refused, imap_greeting_caps, plain_connect, poll,
                    smtp_greeting_ok, tls_connect)

SMTP_BYE = f"421 4.3.2 {DOMAIN} Service shutting down"


def test_sigterm_says_goodbye_and_exits_0(server):
    srv = server()
    smtp = plain_connect(srv.port("submission"))
    smtps = tls_connect(srv.port("submissions"))
    imap = plain_connect(srv.port("imap"))
    imaps = tls_connect(srv.port("imaps"))
    try:
        smtp_greeting_ok(smtp.readline())
        assert smtp.smtp_cmd("EHLO client.test")[0] == f"250-{DOMAIN}"
        smtp_greeting_ok(smtps.readline())
        imap_greeting_caps(imap.readline())
        imap_greeting_caps(imaps.readline())

        srv.signal(signal.SIGTERM)

        for c in (smtp, smtps):
            assert c.readline() == SMTP_BYE
            assert c.read_until_closed() == b""
        for c in (imap, imaps):
            line = c.readline()
            assert line.startswith("* BYE"), line
            assert c.read_until_closed() == b""
        for name in ("smtp", "submission", "submissions", "imap", "imaps", "https", "http"):
            poll(lambda: connection_refused(srv.port(name)), what=f"{name} port to refuse connections")
    finally:
        for c in (smtp, smtps, imap, imaps):
            c.close()
    assert srv.wait(15) == 0, srv.log_tail()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_idle_server_exits_0(server, sig):
    srv = server()
    srv.signal(sig)
    assert srv.wait(15) == 0, srv.log_tail()
    assert connection_refused(srv.port("imaps"))


def test_sigterm_with_silent_tcp_client(server):
    # a client that connected but never finished a TLS handshake must not
    # hold up the exit
    srv = server()
    s = socket.create_connection((HOST, srv.port("imaps")))
    try:
        srv.signal(signal.SIGTERM)
        assert srv.wait(15) == 0, srv.log_tail()
    finally:
        s.close()
