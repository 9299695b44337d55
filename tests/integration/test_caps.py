"""Per-client-IP connection caps (spec §1.3/§5.3: value // 5): over the cap
SMTP answers `421 4.7.0 <domain> Error: too many connections` and IMAP
`* BYE Too many connections, try again later.`, then close; a freed slot is
usable again; a cap counts a protocol across all its ports.

A connection counts from the moment it is accepted (issue 16): over the cap
an implicit-TLS port closes it at once, without a handshake (a plain port
still writes the refusal); on the https port ALPN's protocol is checked
after the handshake, with that protocol's refusal."""
import socket

from cmtest import HOST, DOMAIN, http_get, imap_greeting_caps, plain_connect, poll, smtp_greeting_ok, tls_connect

SMTP_REFUSAL = f"421 4.7.0 {DOMAIN} Error: too many connections"
IMAP_REFUSAL = "* BYE Too many connections, try again later."


def assert_refused_with(c, line):
    with c:
        assert c.readline() == line
        assert c.read_until_closed() == b""


def assert_closed_at_once(port):
    """Over the cap on an implicit-TLS port: no handshake, the connection
    is closed at once (EOF or reset before any byte)."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.settimeout(5)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass


def greets(connect, check):
    """Opens a connection; returns it if it got a greeting (check passes),
    else closes it and returns None (for polling)."""
    c = connect()
    line = c.readline()
    try:
        check(line)
    except AssertionError:
        c.close()
        return None
    return c


def test_smtp_cap_per_ip(server):
    srv = server(extra={"max_smtp_connections": 5})  # per IP: 1
    first = tls_connect(srv.port("submissions"))
    with first:
        smtp_greeting_ok(first.readline())
        assert_closed_at_once(srv.port("submissions"))
        assert_refused_with(plain_connect(srv.port("submission")), SMTP_REFUSAL)
        # IMAP has its own cap
        with tls_connect(srv.port("imaps")) as imap:
            imap_greeting_caps(imap.readline())
        assert first.smtp_cmd("QUIT") == ["221 2.0.0 Bye"]
        assert first.read_until_closed() == b""
    again = poll(lambda: greets(lambda: tls_connect(srv.port("submissions")), smtp_greeting_ok),
                 what="a new SMTP connection to be accepted after the first closed")
    with again:
        assert again.smtp_cmd("NOOP") == ["250 2.0.0 Ok"]


def test_imap_cap_per_ip(server):
    srv = server(extra={"max_imap_connections": 10})  # per IP: 2
    a = tls_connect(srv.port("imaps"))
    b = tls_connect(srv.port("imaps"))
    with a, b:
        imap_greeting_caps(a.readline())
        imap_greeting_caps(b.readline())
        assert_closed_at_once(srv.port("imaps"))
        assert_refused_with(plain_connect(srv.port("imap")), IMAP_REFUSAL)
        with tls_connect(srv.port("submissions")) as smtp:
            smtp_greeting_ok(smtp.readline())
        assert a.imap_cmd("a", "LOGOUT")[1].startswith("a OK")
        assert a.read_until_closed() == b""
        again = poll(lambda: greets(lambda: tls_connect(srv.port("imaps")), imap_greeting_caps),
                     what="a new IMAP connection to be accepted after one closed")
        with again:
            assert again.imap_cmd("n", "NOOP")[1].startswith("n OK")
        assert b.imap_cmd("b", "NOOP")[1].startswith("b OK")


def test_imap_cap_counts_protocol_not_port(server):
    srv = server(extra={"max_imap_connections": 10})  # per IP: 2
    a = tls_connect(srv.port("imaps"))
    b = tls_connect(srv.port("imaps"))
    with a, b:
        imap_greeting_caps(a.readline())
        imap_greeting_caps(b.readline())
        assert_refused_with(tls_connect(srv.port("https"), alpn=["imap"]), IMAP_REFUSAL)
        # HTTP on the same https port is not IMAP
        with tls_connect(srv.port("https"), alpn=["http/1.1"]) as h:
            assert http_get(h.sock, "/")[0] == 200


def test_mx_port_not_limited_by_max_smtp_connections(server):
    # spec §5.3: the cap applies to 587 and 465; port 25 keeps Postfix's defaults
    srv = server(extra={"max_smtp_connections": 5})  # per IP: 1 for submission
    a = plain_connect(srv.port("smtp"))
    b = plain_connect(srv.port("smtp"))
    with a, b:
        smtp_greeting_ok(a.readline())
        smtp_greeting_ok(b.readline())
        with tls_connect(srv.port("submissions")) as s:
            smtp_greeting_ok(s.readline())
