"""STARTTLS on the plain SMTP (25, 587) and IMAP (143) ports: the upgrade
works and changes what is advertised, and commands pipelined after STARTTLS
in the same write are discarded, never answered (no plaintext injection,
CVE-2011-0411 style)."""
import ssl

import pytest

from cmtest import DOMAIN, imap_greeting_caps, plain_connect, smtp_greeting_ok, starttls_imap, starttls_smtp


@pytest.fixture
def srv(server):
    return server()


def tls_handshake(c):
    """STARTTLS handshake after a pipelined command; c.starttls() also
    asserts that no plaintext followed the go-ahead."""
    try:
        c.starttls()
    except ssl.SSLError as e:
        pytest.fail(f"TLS handshake after STARTTLS failed ({e}): did the server answer the "
                    "pipelined command in plaintext?")


@pytest.mark.parametrize("port", ["smtp", "submission"])
def test_smtp_starttls_upgrade(srv, port, leaf):
    c, ehlo = starttls_smtp(srv.port(port))
    with c:
        assert c.sock.getpeercert(binary_form=True) == leaf.der
        assert ehlo[0] == f"250-{DOMAIN}", ehlo
        assert "STARTTLS" not in " ".join(ehlo).upper(), ehlo
        assert c.smtp_cmd("STARTTLS") == ["554 5.5.1 Error: TLS already active"]
        assert c.smtp_cmd("NOOP") == ["250 2.0.0 Ok"]
        assert c.smtp_cmd("QUIT") == ["221 2.0.0 Bye"]
        assert c.read_until_closed() == b""


@pytest.mark.parametrize("port", ["smtp", "submission"])
def test_smtp_starttls_injection_discarded(srv, port):
    with plain_connect(srv.port(port)) as c:
        smtp_greeting_ok(c.readline())
        c.smtp_cmd("EHLO client.test")
        c.send("STARTTLS\r\nNOOP\r\n")
        assert c.smtp_reply() == ["220 2.0.0 Ready to start TLS"]
        tls_handshake(c)
        ehlo = c.smtp_cmd("EHLO client.test")
        assert ehlo[0] == f"250-{DOMAIN}", f"first reply over TLS is not the EHLO reply: {ehlo}"
        # had the injected NOOP been answered after the EHLO reply, this would read its 250
        assert c.smtp_cmd("QUIT") == ["221 2.0.0 Bye"]


def test_smtp_starttls_needs_no_ehlo_first(srv):
    with plain_connect(srv.port("submission")) as c:
        smtp_greeting_ok(c.readline())
        assert c.smtp_cmd("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
        c.starttls()
        assert c.smtp_cmd("NOOP") == ["250 2.0.0 Ok"]


def test_imap_starttls_upgrade(srv, leaf):
    with starttls_imap(srv.port("imap")) as c:
        assert c.sock.getpeercert(binary_form=True) == leaf.der
        untagged, tagged = c.imap_cmd("a", "CAPABILITY")
        caps = untagged[0].split()[2:]
        assert untagged[0].startswith("* CAPABILITY ") and "IMAP4rev1" in caps, untagged
        assert "STARTTLS" not in caps and "AUTH=PLAIN" in caps, caps
        assert tagged.startswith("a OK"), tagged
        assert c.imap_cmd("b", "STARTTLS")[1].startswith("b BAD")
        assert c.imap_cmd("c", "LOGOUT")[1].startswith("c OK")


def test_imap_starttls_injection_discarded(srv):
    with plain_connect(srv.port("imap")) as c:
        imap_greeting_caps(c.readline())
        c.send("a STARTTLS\r\nb NOOP\r\n")
        assert c.readline() == "a OK Begin TLS negotiation now."
        tls_handshake(c)
        c.send("c NOOP\r\n")
        untagged, tagged = c.imap_until_tagged("c")
        assert not untagged, f"lines before the reply to c NOOP: {untagged}"
        assert tagged.startswith("c OK"), tagged
        untagged, tagged = c.imap_cmd("d", "LOGOUT")
        assert not [l for l in untagged if l.startswith("b ")], untagged
        assert tagged.startswith("d OK"), tagged
