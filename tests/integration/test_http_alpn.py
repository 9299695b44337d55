"""test_http_alpn.py: IMAP, SMTP and HTTP on the same https port at once,
chosen by ALPN: an IMAP CAPABILITY (and LOGIN with /new credentials once the
server's IMAP answers LOGIN), an SMTP EHLO and an HTTP GET, interleaved on
three open connections."""
import http.client
import json


import cmtest


def test_imap_smtp_http_on_one_port(server):
    srv = server()
    port = srv.port("https")
    imap = cmtest.tls_connect(port, alpn=["imap"])
    smtp = cmtest.tls_connect(port, alpn=["smtp"])
    web = cmtest.tls_connect(port, alpn=["http/1.1"])
    with imap, smtp, web:
        assert imap.sock.selected_alpn_protocol() == "imap"
        assert smtp.sock.selected_alpn_protocol() == "smtp"
        cmtest.imap_greeting_caps(imap.readline())
        cmtest.smtp_greeting_ok(smtp.readline())
        web.send(b"POST /new HTTP/1.1\r\nHost: relay1.test\r\nContent-Length: 0\r\n\r\n")
        ehlo = smtp.smtp_cmd("EHLO client.test")
        assert ehlo[0].startswith("250-") or ehlo[0].startswith("250 "), ehlo
        untagged, tagged = imap.imap_cmd("a1", "CAPABILITY")
        assert tagged.startswith("a1 OK"), tagged
        assert any(u.startswith("* CAPABILITY ") for u in untagged)
        status = web.readline()
        assert status == "HTTP/1.1 200 OK", status
        length = 0
        while True:
            h = web.readline()
            if not h:
                break
            if h.lower().startswith("content-length:"):
                length = int(h.split(":", 1)[1])
        while len(web.buf) < length:
            web.buf += web.sock.recv(65536)
        creds = json.loads(web.buf[:length])
        # LOGIN with the fresh credentials creates the account (spec §2.4)
        _, tagged = imap.imap_cmd("a2", f'LOGIN "{creds["email"]}" "{_imap_quote(creds["password"])}"')
        assert smtp.smtp_cmd("QUIT")[0].startswith("221")
    assert tagged.startswith("a2 OK"), tagged


def _imap_quote(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')
