"""TLS version policy: client ports (465, 993, STARTTLS on 587 and 143, the
https port with ALPN smtp or imap) need TLS 1.3; port 25 STARTTLS and the
https port for HTTP accept TLS 1.2. A refused client either fails the
handshake or is closed right after it, and never sees a greeting or reply."""
import ssl

import pytest

from cmtest import DOMAIN, http_get, plain_connect, smtp_greeting_ok, starttls_smtp, tls_connect

TLS12 = ssl.TLSVersion.TLSv1_2


@pytest.fixture
def srv(server):
    return server()


def assert_refused(connect):
    """connect() makes the TLS 1.2 handshake and returns a LineConn."""
    try:
        c = connect()
    except TimeoutError:
        pytest.fail("TLS handshake hung instead of being refused")
    except (ssl.SSLError, ConnectionError, EOFError):
        return  # refused during the handshake
    with c:
        version = c.sock.version()
        try:
            data = c.read_until_closed()
        except TimeoutError as e:
            pytest.fail(f"{version} handshake accepted and the connection kept open: {e}")
        assert data == b"", f"{version} client got {data!r}"


@pytest.mark.parametrize("port,alpn", [
    ("submissions", None),
    ("imaps", None),
    ("https", ["smtp"]),
    ("https", ["imap"]),
])
def test_implicit_tls_needs_13(srv, port, alpn):
    assert_refused(lambda: tls_connect(srv.port(port), alpn=alpn, max_version=TLS12))


@pytest.mark.parametrize("port,alpn", [("submissions", None), ("imaps", None),
                                       ("https", ["smtp"]), ("https", ["imap"])])
def test_implicit_tls_13_works(srv, port, alpn):
    with tls_connect(srv.port(port), alpn=alpn, min_version=ssl.TLSVersion.TLSv1_3) as c:
        assert c.sock.version() == "TLSv1.3"
        line = c.readline()
        assert line.startswith("220 ") or line.startswith("* OK"), line


def test_submission_starttls_needs_13(srv):
    def connect():
        c = plain_connect(srv.port("submission"))
        smtp_greeting_ok(c.readline())
        assert c.smtp_cmd("EHLO client.test")[0] == f"250-{DOMAIN}"
        assert c.smtp_cmd("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
        try:
            return c.starttls(max_version=TLS12)
        except BaseException:
            c.close()
            raise
    assert_refused(connect)


def test_imap_starttls_needs_13(srv):
    def connect():
        c = plain_connect(srv.port("imap"))
        assert c.readline().startswith("* OK")
        assert c.imap_cmd("a", "STARTTLS")[1] == "a OK Begin TLS negotiation now."
        try:
            return c.starttls(max_version=TLS12)
        except BaseException:
            c.close()
            raise
    assert_refused(connect)


def test_mx_starttls_accepts_12(srv):
    c, ehlo = starttls_smtp(srv.port("smtp"), max_version=TLS12)
    with c:
        assert c.sock.version() == "TLSv1.2"
        assert ehlo[0] == f"250-{DOMAIN}", ehlo
        assert c.smtp_cmd("NOOP") == ["250 2.0.0 Ok"]


@pytest.mark.parametrize("alpn", [["http/1.1"], None])
def test_https_http_accepts_12(srv, alpn):
    with tls_connect(srv.port("https"), alpn=alpn, max_version=TLS12) as c:
        assert c.sock.version() == "TLSv1.2"
        status, _, version, _ = http_get(c.sock, "/")
        assert (status, version) == (200, 11)

