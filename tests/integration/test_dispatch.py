"""Which protocol answers where: the seven listeners and ALPN dispatch on the
https port (smtp, imap, http/1.1, h2-only, none), with the minimal greeters'
replies (greeting, EHLO/CAPABILITY, NOOP, RSET, QUIT/LOGOUT, unknown
commands, STARTTLS when TLS is already active), plain HTTP, and a disabled
listener (port 0)."""
import socket
import ssl

import pytest

import cmtest
from cmtest import DOMAIN, http_get, imap_greeting_caps, plain_connect, smtp_greeting_ok, tls_connect


@pytest.fixture
def srv(server):
    return server()


def check_smtp_session(c, tls):
    smtp_greeting_ok(c.readline())
    ehlo = c.smtp_cmd("EHLO client.test")
    assert ehlo[0] == f"250-{DOMAIN}", ehlo
    assert all(l.startswith("250-") for l in ehlo[:-1]) and ehlo[-1].startswith("250 "), ehlo
    keywords = [l[4:].split()[0].upper() for l in ehlo[1:]]
    if tls:
        assert "STARTTLS" not in keywords, ehlo
        assert c.smtp_cmd("STARTTLS") == ["554 5.5.1 Error: TLS already active"]
    else:
        assert "STARTTLS" in keywords, ehlo
    assert c.smtp_cmd("NOOP") == ["250 2.0.0 Ok"]
    assert c.smtp_cmd("RSET") == ["250 2.0.0 Ok"]
    assert c.smtp_cmd("XYZZY") == ["502 5.5.2 Error: command not recognized"]
    assert c.smtp_cmd("QUIT") == ["221 2.0.0 Bye"]
    assert c.read_until_closed() == b""


def check_imap_session(c, tls):
    caps = imap_greeting_caps(c.readline())
    for cap in ("IMAP4rev1", "XCHATMAIL", "XDELTAPUSH"):
        assert cap in caps, caps
    if tls:
        assert "AUTH=PLAIN" in caps and "STARTTLS" not in caps, caps
    else:
        assert "STARTTLS" in caps and "LOGINDISABLED" in caps, caps
    untagged, tagged = c.imap_cmd("a", "CAPABILITY")
    assert len(untagged) == 1 and untagged[0].startswith("* CAPABILITY "), untagged
    assert set(untagged[0].split()[2:]) >= {"IMAP4rev1", "XCHATMAIL", "XDELTAPUSH"}, untagged
    assert tagged.startswith("a OK"), tagged
    assert c.imap_cmd("b", "NOOP")[1].startswith("b OK"), "NOOP"
    assert c.imap_cmd("c", "XYZZY")[1].startswith("c BAD"), "unknown command"
    if tls:
        assert c.imap_cmd("d", "STARTTLS")[1].startswith("d BAD"), "STARTTLS on TLS"
    untagged, tagged = c.imap_cmd("e", "LOGOUT")
    assert [l for l in untagged if l.startswith("* BYE")], untagged
    assert tagged.startswith("e OK"), tagged
    assert c.read_until_closed() == b""


@pytest.mark.parametrize("port", ["smtp", "submission"])
def test_smtp_plain(srv, port):
    with plain_connect(srv.port(port)) as c:
        check_smtp_session(c, tls=False)


def test_smtp_implicit_tls(srv):
    with tls_connect(srv.port("submissions")) as c:
        assert c.sock.version() == "TLSv1.3"
        check_smtp_session(c, tls=True)


def test_https_alpn_smtp(srv):
    with tls_connect(srv.port("https"), alpn=["smtp"]) as c:
        assert c.sock.selected_alpn_protocol() == "smtp"
        check_smtp_session(c, tls=True)


def test_imap_plain(srv):
    with plain_connect(srv.port("imap")) as c:
        check_imap_session(c, tls=False)


def test_imap_implicit_tls(srv):
    with tls_connect(srv.port("imaps")) as c:
        assert c.sock.version() == "TLSv1.3"
        check_imap_session(c, tls=True)


def test_https_alpn_imap(srv):
    with tls_connect(srv.port("https"), alpn=["imap"]) as c:
        assert c.sock.selected_alpn_protocol() == "imap"
        check_imap_session(c, tls=True)


@pytest.mark.parametrize("alpn,selected", [
    (["http/1.1"], "http/1.1"),
    (["h2", "http/1.1"], "http/1.1"),
    (["h2"], None),
    (None, None),
])
def test_https_http(srv, alpn, selected):
    with tls_connect(srv.port("https"), alpn=alpn) as c:
        assert c.sock.selected_alpn_protocol() == selected
        status, _, version, body = http_get(c.sock, "/")
        assert (status, version) == (200, 11)
        assert body
    with tls_connect(srv.port("https"), alpn=alpn) as c:
        assert http_get(c.sock, "/no/such/page")[0] == 404


def test_plain_http(srv):
    """Port 80 answers HTTP/1.1 and sends everything (but the ACME path) to
    https (spec §9.1)."""
    with plain_connect(srv.port("http")) as c:
        status, _, version, _ = http_get(c.sock, "/")
        assert (status, version) == (301, 11)
    with plain_connect(srv.port("http")) as c:
        assert http_get(c.sock, "/.well-known/acme-challenge/x")[0] == 404


def test_certificate_is_the_configured_one(srv, leaf):
    with tls_connect(srv.port("imaps")) as c:
        assert c.sock.getpeercert(binary_form=True) == leaf.der


def test_client_that_does_not_trust_the_ca_fails(srv, tmp_path, test_ca):
    other = cmtest.TestCA(tmp_path / "other-ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(srv.port("imaps"), ca_file=other.crt).close()


def test_disabled_listener(server):
    reserved = cmtest.free_ports(1)[0]
    srv = server(extra={"http_port": 0})
    assert srv.port("http") == 0
    assert f":{reserved}" not in srv.log_text()
    # nothing of ours listens on the port we kept back; the others work
    assert cmtest.connection_refused(reserved)
    with tls_connect(srv.port("https"), alpn=["http/1.1"]) as c:
        assert http_get(c.sock, "/")[0] == 200
    with plain_connect(srv.port("imap")) as c:
        imap_greeting_caps(c.readline())


def test_half_sent_line_then_close_does_not_hurt(srv):
    # a client that disconnects mid-line must not disturb the server
    for port in ("smtp", "imap", "http"):
        s = socket.create_connection((cmtest.HOST, srv.port(port)), timeout=cmtest.TIMEOUT)
        s.sendall(b"EHLO half-a-li")
        s.close()
    with plain_connect(srv.port("submission")) as c:
        smtp_greeting_ok(c.readline())
