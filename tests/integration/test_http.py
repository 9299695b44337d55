"""test_http.py: the HTTP(S) server: site pages, /new (redirect, JSON, rate
limit), autoconfig, MTA-STS, www and port-80 redirects, /metrics, reserved
routes, request limits (URL, headers, body, slow clients), keep-alive and
pipelining, www_folder, and the iroh-relay proxy (websocket upgrade with
backpressure, /ping, /generate_204, 502). Clients: http.client and curl."""
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import string
import subprocess
import time

import pytest

import cmtest
from wsecho import EchoServer, closed_port, ws_frame, ws_read_frame

PW_CHARS = set(string.ascii_letters + string.digits + string.punctuation)


class Resp:
    def __init__(self, r, body):
        self.status, self.reason, self.body = r.status, r.reason, body
        self.headers = {k.lower(): v for k, v in r.getheaders()}
        self.text = body.decode(errors="replace")

    def json(self):
        return json.loads(self.body)


def request(port, method="GET", path="/", tls=True, host=cmtest.DOMAIN, headers=None, body=None,
            verify=True):
    """One request on a new connection (TLS verified against the test CA)."""
    raw = socket.create_connection((cmtest.HOST, port), timeout=cmtest.TIMEOUT)
    if tls:
        ctx = cmtest.client_context(alpn=["http/1.1"], verify=verify)
        raw = ctx.wrap_socket(raw, server_hostname=cmtest.DOMAIN)
    c = http.client.HTTPConnection(host or cmtest.DOMAIN)
    c.sock = raw
    h = {"Connection": "close"}
    if host is not None:
        h["Host"] = host
    h.update(headers or {})
    c.request(method, path, body=body, headers=h, **({"skip_host": True} if False else {}))
    r = c.getresponse()
    out = Resp(r, r.read())
    c.close()
    return out


def https(srv, *a, **kw):
    return request(srv.port("https"), *a, **kw)


def raw_exchange(port, data, tls=True, timeout=cmtest.TIMEOUT):
    """Sends bytes, returns everything until the server closes."""
    c = cmtest.tls_connect(port, alpn=["http/1.1"]) if tls else cmtest.plain_connect(port)
    with c:
        c.send(data)
        return c.read_until_closed(timeout)


# ---------------------------------------------------------------- site

def test_index_and_pages(server):
    srv = server(extra={"privacy_mail": "privacy@relay1.test", "max_user_send_per_minute": "42"})
    port = srv.port("https")
    r = https(srv, path="/")
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    invite = f"DCACCOUNT:https://relay1.test:{port}/new"
    assert f'href="{invite}"' in r.text
    assert "<svg" in r.text and "</svg>" in r.text
    assert "<script" not in r.text  # ACME mode: no JS needed
    assert not re.search(r'(src|href)="(https?:)?//(?!github\.com|chatmail\.at|delta\.chat|get\.delta\.chat)', r.text)
    assert https(srv, path="/index.html").body == r.body
    info = https(srv, path="/info.html")
    assert info.status == 200 and "42 messages per minute" in info.text
    assert "500 MB" in info.text and "20 days" in info.text
    priv = https(srv, path="/privacy.html")
    assert priv.status == 200 and "privacy@relay1.test" in priv.text
    robots = https(srv, path="/robots.txt")
    assert robots.status == 200 and "Disallow: /" in robots.text
    css = https(srv, path="/style.css")
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")
    head = https(srv, "HEAD", "/")
    assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) == len(r.body)
    assert https(srv, path="/nope.html").status == 404
    assert https(srv, path="/../etc/passwd").status == 404
    assert https(srv, "DELETE", "/").status == 405


def test_www_folder_custom_and_disabled(server, tmp_path):
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (site / "index.html").write_text("<p>custom</p>")
    (site / "sub" / "a.css").write_text("p{}")
    (site / "sub" / "index.html").write_text("sub index")
    (site / ".hidden").write_text("secret")
    os.symlink("/etc/passwd", site / "escape.txt")
    srv = server(extra={"www_folder": str(site)})
    assert https(srv, path="/").text == "<p>custom</p>"
    r = https(srv, path="/sub/a.css")
    assert r.status == 200 and r.headers["content-type"].startswith("text/css")
    assert https(srv, path="/sub/").text == "sub index"
    assert https(srv, path="/%73ub/a.css").status == 200
    for bad in ("/escape.txt", "/.hidden", "/sub/../index.html", "/info.html"):
        assert https(srv, path=bad).status == 404, bad
    off = server(extra={"www_folder": "disabled"})
    assert https(off, path="/").status == 404
    assert https(off, path="/.well-known/mta-sts.txt").status == 200


# ---------------------------------------------------------------- /new

def check_credentials(j, domain, selfsigned):
    user, _, dom = j["email"].partition("@")
    assert dom == domain
    assert re.fullmatch(r"[a-z0-9]{9}", user), user
    assert len(j["password"]) == 12 and set(j["password"]) <= PW_CHARS
    assert set(j) == ({"email", "password", "dclogin_url"} if selfsigned else {"email", "password"})


def test_new_acme_mode(server):
    srv = server()
    for path in ("/new", "/cgi-bin/newemail.py"):
        r = https(srv, path=path)
        assert r.status == 301 and r.headers["location"] == "dcaccount:https://relay1.test/new"
        r = https(srv, "POST", path)
        assert r.status == 200 and r.headers["content-type"] == "application/json"
        check_credentials(r.json(), "relay1.test", False)
    a, b = https(srv, "POST", "/new").json(), https(srv, "POST", "/new").json()
    assert a["email"] != b["email"] and a["password"] != b["password"]
    assert https(srv, "PUT", "/new").status == 405


def test_new_selfsigned_json_and_rate_limit(server):
    srv = server(selfsigned=True)
    got = []
    for i in range(6):  # burst 5 + 1
        r = https(srv, "GET" if i % 2 else "POST", "/new", host="_relay1.test", verify=False)
        assert r.status == 200, (i, r.status)
        got.append(r.json())
    assert https(srv, "POST", "/new", host="_relay1.test", verify=False).status == 503
    assert https(srv, path="/cgi-bin/newemail.py", verify=False).status == 503
    j = got[0]
    check_credentials(j, "_relay1.test", True)
    user, pw = j["email"], j["password"]
    from urllib.parse import quote
    assert j["dclogin_url"] == f"dclogin:{user}?p={quote(pw, safe='')}&v=1&ic=3"
    time.sleep(0.6)  # 2 per second
    assert https(srv, "POST", "/new", verify=False).status == 200
    page = https(srv, path="/", verify=False)
    assert "fetch(\"/new\"" in page.text and "/qr.svg?data=" in page.text
    qr = https(srv, path="/qr.svg?data=" + quote(j["dclogin_url"], safe=""), verify=False)
    assert qr.status == 200 and qr.headers["content-type"] == "image/svg+xml"
    assert qr.text.startswith("<svg")
    assert https(srv, path="/qr.svg", verify=False).status == 400
    assert https(srv, path="/qr.svg?data=" + "a" * 1100, verify=False).status == 400


def test_new_ipv4_relay(server, test_ca):
    srv = server(mail_domain="127.0.0.1", selfsigned=True)
    j = https(srv, "POST", "/new", verify=False).json()
    assert j["email"].endswith("@[127.0.0.1]")
    assert j["dclogin_url"].endswith("&v=1&ih=127.0.0.1&sh=127.0.0.1&ic=3")
    assert "@[127.0.0.1]?p=" in j["dclogin_url"]


# ---------------------------------------------------------------- well-known, redirects

def test_autoconfig_and_mta_sts(server):
    srv = server()
    r = https(srv, path="/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a%40relay1.test")
    assert r.status == 200 and "xml" in r.headers["content-type"]
    import xml.etree.ElementTree as ET
    root = ET.fromstring(r.body)
    prov = root.find("emailProvider")
    assert root.get("version") == "1.1" and prov.get("id") == "relay1.test"
    assert prov.findtext("displayName") == "relay1.test chatmail"
    servers = [(s.tag, s.get("type"), s.findtext("hostname"), int(s.findtext("port")),
                s.findtext("socketType"), s.findtext("authentication"), s.findtext("username"))
               for s in prov if s.tag.endswith("Server")]
    p = srv.port
    assert servers == [
        ("incomingServer", "imap", "relay1.test", p("imaps"), "SSL", "password-cleartext", "%EMAILADDRESS%"),
        ("incomingServer", "imap", "relay1.test", p("imap"), "STARTTLS", "password-cleartext", "%EMAILADDRESS%"),
        ("incomingServer", "imap", "relay1.test", p("https"), "SSL", "password-cleartext", "%EMAILADDRESS%"),
        ("outgoingServer", "smtp", "relay1.test", p("submissions"), "SSL", "password-cleartext", "%EMAILADDRESS%"),
        ("outgoingServer", "smtp", "relay1.test", p("submission"), "STARTTLS", "password-cleartext", "%EMAILADDRESS%"),
        ("outgoingServer", "smtp", "relay1.test", p("https"), "SSL", "password-cleartext", "%EMAILADDRESS%"),
    ]
    want = "version: STSv1\nmode: enforce\nmx: relay1.test\nmax_age: 2419200\n"
    for host in ("relay1.test", "mta-sts.relay1.test"):
        r = https(srv, path="/.well-known/mta-sts.txt", host=host)
        assert r.status == 200 and r.text == want


def test_www_redirect(server):
    srv = server()
    r = https(srv, path="/info.html?x=1", host="www.relay1.test")
    assert r.status == 301
    assert r.headers["location"] == f"https://relay1.test:{srv.port('https')}/info.html?x=1"


def test_port80(server):
    srv = server()
    port, hp = srv.port("http"), srv.port("https")
    r = request(port, path="/a/b?c=d", tls=False, host="mta-sts.relay1.test")
    assert r.status == 301 and r.headers["location"] == f"https://mta-sts.relay1.test:{hp}/a/b?c=d"
    r = request(port, path="/", tls=False, host="evil.example")
    assert r.status == 301 and r.headers["location"] == f"https://relay1.test:{hp}/"
    reply = raw_exchange(port, b"GET /x HTTP/1.0\r\n\r\n", tls=False)
    assert reply.startswith(b"HTTP/1.1 301 ") and f"Location: https://relay1.test:{hp}/x".encode() in reply
    r = request(port, path="/.well-known/acme-challenge/token123", tls=False)
    assert r.status == 404
    # curl, as an operator would try it
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                          f"http://127.0.0.1:{port}/new", "-H", "Host: relay1.test"],
                         capture_output=True, text=True, timeout=30).stdout
    assert out == f"301 https://relay1.test:{hp}/new"


def test_metrics_and_reserved_routes(server):
    srv = server()
    https(srv, path="/")
    r = https(srv, path="/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain")
    for name in ("delivered_mail 0", "# TYPE created_accounts counter", 'connections{protocol="http"} ',
                 "imap_idle_sessions", "queue_length", "accounts ",
                 'delivery_latency_seconds_bucket{le="+Inf"} 0'):
        assert name in r.text, name
    assert re.search(r'connections\{protocol="http"\} [1-9]', r.text)
    assert request(srv.port("http"), path="/metrics", tls=False).status == 200
    assert https(srv, path="/mxdeliv").status == 405
    r = https(srv, "POST", "/mxdeliv", body=b"x")  # test_mxdeliv.py has the rest
    assert (r.status, r.body) == (400, b"554 5.5.1 Error: no valid recipients (no X-MAIL-TO header)")


# ---------------------------------------------------------------- limits and connection handling

def test_request_limits(server):
    srv = server()
    port = srv.port("https")
    reply = raw_exchange(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: relay1.test\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 414 ")
    reply = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: relay1.test\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 431 ")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(40))
    assert raw_exchange(port, b"GET / HTTP/1.1\r\n" + many + b"\r\n").startswith(b"HTTP/1.1 431 ")
    reply = raw_exchange(port, b"POST /new HTTP/1.1\r\nHost: relay1.test\r\nContent-Length: 100000\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413 ")
    chunk = b"%x\r\n%s\r\n" % (70000, b"c" * 70000)
    reply = raw_exchange(port, b"POST /new HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert raw_exchange(port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # curl sees the same
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                          cmtest.DEFAULT_CA_FILE, "--resolve", f"relay1.test:{port}:127.0.0.1",
                          "-H", "X-Big: " + "b" * 17000, f"https://relay1.test:{port}/"],
                         capture_output=True, text=True, timeout=30).stdout
    assert out == "431"


def test_keepalive_and_pipelining(server):
    srv = server()
    c = cmtest.tls_connect(srv.port("https"), alpn=["http/1.1"])
    with c:
        c.send(b"GET /robots.txt HTTP/1.1\r\nHost: relay1.test\r\n\r\n"
               b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: relay1.test\r\n\r\n")
        hc = http.client.HTTPConnection("relay1.test")
        for want in (b"Disallow", b"STSv1"):
            line = c.readline()
            assert line.startswith("HTTP/1.1 200"), line
            hdrs = {}
            while True:
                h = c.readline()
                if not h:
                    break
                k, _, v = h.partition(":")
                hdrs[k.lower()] = v.strip()
            n = int(hdrs["content-length"])
            while len(c.buf) < n:
                c.buf += c.sock.recv(65536)
            body, c.buf = c.buf[:n], c.buf[n:]
            assert want in body and "connection" not in hdrs
        c.send(b"GET / HTTP/1.1\r\nHost: relay1.test\r\nConnection: close\r\n\r\n")
        rest = c.read_until_closed()
        assert rest.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in rest
        del hc


def test_slow_client_is_cut(server):
    """Headers that trickle in (a byte every 2 s) get 408 once the header
    time (15 s from the first byte) is over: progress does not extend it."""
    srv = server()
    c = cmtest.tls_connect(srv.port("https"), alpn=["http/1.1"])
    with c:
        c.send(b"GET / HTTP/1.1\r\nX-Slow: ")
        t0 = time.monotonic()
        reply = b""
        while time.monotonic() - t0 < 40:
            try:
                c.send(b"a")
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                break
            c.sock.settimeout(2)
            try:
                chunk = c.sock.recv(65536)
            except (TimeoutError, socket.timeout):
                continue
            except (ConnectionResetError, ssl.SSLError):
                break
            reply += chunk
            if not chunk or b"\r\n\r\n" in reply:
                break
        took = time.monotonic() - t0
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert 12 < took < 25, took


# ---------------------------------------------------------------- iroh-relay proxy

def ws_upgrade(port, path="/relay"):
    c = cmtest.tls_connect(port, alpn=["http/1.1"])
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    c.send(f"GET {path} HTTP/1.1\r\nHost: relay1.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    status = c.readline()
    hdrs = []
    while True:
        line = c.readline()
        if not line:
            break
        hdrs.append(line)
    return c, status, hdrs


def conn_recv(c):
    def recv(n):
        if c.buf:
            out, c.buf = c.buf[:n], c.buf[n:]
            return out
        return c.sock.recv(n)
    return recv


def test_iroh_proxy_upgrade_and_probes(server):
    with EchoServer() as up:
        srv = server(extra={"iroh_relay_upstream": up.url})
        c, status, hdrs = ws_upgrade(srv.port("https"))
        with c:
            assert status == "HTTP/1.1 101 Switching Protocols", status
            assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in hdrs
            for payload in (b"hello", b"x" * 300, os.urandom(70000)):
                c.send(ws_frame(payload))
                op, got = ws_read_frame(conn_recv(c))
                assert op == 2 and got == payload
            # batches sent before reading (one thread: ssl sockets are not
            # thread-safe); ~720 KB in flight each time, 3.6 MB in all
            for _ in range(5):
                big = [os.urandom(60000) for _ in range(12)]
                c.send(b"".join(ws_frame(p) for p in big))
                for p in big:
                    assert ws_read_frame(conn_recv(c))[1] == p
            c.send(ws_frame(b"", 8))
            assert ws_read_frame(conn_recv(c))[0] == 8
            assert c.read_until_closed() == b""
        first = up.requests[0]
        assert first[0] == "GET /relay HTTP/1.1"
        assert "Upgrade: websocket" in first and "Connection: Upgrade" in first
        r = https(srv, path="/ping")
        assert r.status == 200 and r.body == b"pong"
        r = https(srv, path="/generate_204")
        assert r.status == 204
        out = subprocess.run(["curl", "-s", "-w", " %{http_code}", "--cacert", cmtest.DEFAULT_CA_FILE,
                              "--resolve", f"relay1.test:{srv.port('https')}:127.0.0.1",
                              f"https://relay1.test:{srv.port('https')}/ping"],
                             capture_output=True, text=True, timeout=30).stdout
        assert out == "pong 200"


def test_iroh_proxy_down_gives_502(server):
    srv = server(extra={"iroh_relay_upstream": f"http://127.0.0.1:{closed_port()}"})
    r = https(srv, path="/ping")
    assert r.status == 502 and "iroh relay is not reachable" in r.text
    c, status, _ = ws_upgrade(srv.port("https"))
    with c:
        assert status.startswith("HTTP/1.1 502")
    assert https(srv, path="/").status == 200  # the server is fine
