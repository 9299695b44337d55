"""The iroh-relay proxy (issue 16, low findings): only the upgrades
iroh-relay speaks (websocket, "iroh derp http") go up, any other Upgrade
value gets 400 and nothing reaches the upstream; the client's
X-Forwarded-For / Forwarded / X-Real-IP never reach it, ours (the peer's
address) does."""
import cmtest
from cmtest import DOMAIN
from wsecho import EchoServer


def raw_request(port, head):
    c = cmtest.tls_connect(port, alpn=["http/1.1"])
    c.send(head)
    return c, c.readline()


def test_upgrade_restricted_and_forwarded_headers_ours(server):
    with EchoServer() as up:
        srv = server(extra={"iroh_relay_upstream": up.url})
        c, status = raw_request(srv.port("https"),
                                f"GET /relay HTTP/1.1\r\nHost: {DOMAIN}\r\nUpgrade: h2c\r\n"
                                "Connection: Upgrade\r\n\r\n")
        with c:
            assert status.startswith("HTTP/1.1 400"), status
        assert up.requests == []
        c, status = raw_request(srv.port("https"),
                                f"GET /ping HTTP/1.1\r\nHost: {DOMAIN}\r\n"
                                "X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n"
                                "X-Real-IP: 6.6.6.6\r\n\r\n")
        with c:
            assert status == "HTTP/1.1 200 OK", status
        cmtest.poll(lambda: up.requests, what="the proxied request")
        lines = up.requests[0]
        assert lines[0] == "GET /ping HTTP/1.1"
        text = "\n".join(lines)
        assert "6.6.6.6" not in text, lines
        assert "X-Forwarded-For: 127.0.0.1" in lines, lines
        # the websocket upgrade iroh needs still works
        c, status = raw_request(srv.port("https"),
                                f"GET /relay HTTP/1.1\r\nHost: {DOMAIN}\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n\r\n")
        with c:
            assert status == "HTTP/1.1 101 Switching Protocols", status


def test_index_files_not_world_readable(server):
    """chatmaild-index.sqlite (and its -wal/-shm, which copy its mode) is
    created 0600, not 0644."""
    srv = server()
    user = f"indexmode@{DOMAIN}"
    with cmtest.tls_connect(srv.port("imaps")) as c:
        assert c.readline().startswith("* OK")
        assert c.imap_cmd("a", f'LOGIN "{user}" "password1234"')[1].startswith("a OK")
        assert c.imap_cmd("b", "SELECT INBOX")[1].startswith("b OK")
        found = list((srv.tmpdir / "mail" / user).rglob("chatmaild-index.sqlite*"))
        assert found, list((srv.tmpdir / "mail" / user).rglob("*"))
        for f in found:
            assert f.stat().st_mode & 0o077 == 0, (f, oct(f.stat().st_mode))
