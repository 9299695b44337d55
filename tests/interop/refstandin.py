"""refstandin.py: what chatmail's nginx does on 443, for the reference
stand-in (Postfix + Dovecot have no web part): a TCP listener that reads
the TLS ClientHello, routes by ALPN without terminating TLS (like nginx
`ssl_preread`): `imap` -> Dovecot 993, `smtp` -> Postfix 465, anything
else -> a small HTTPS server with `/new` (spec §9.3: 9 random [a-z0-9],
12-char password; the account is created on first login by the
reference's checkpassword script) and the autoconfig XML (spec §9.4).
Threads only, stopped by stop(). Test scaffolding, not a product part.
"""
import json
import secrets
import socket
import ssl
import string
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

AUTOCONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{d}">
    <domain>{d}</domain>
    <displayName>{d} chatmail</displayName>
    <displayShortName>{d}</displayShortName>
{servers}  </emailProvider>
</clientConfig>
"""
SERVER = """    <{io}Server type="{t}">
      <hostname>{d}</hostname><port>{p}</port><socketType>{s}</socketType>
      <authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username>
    </{io}Server>
"""


def client_hello_alpn(data):
    """The ALPN protocol names of a complete TLS record holding a
    ClientHello, [] when it has none, None when `data` is not one yet."""
    if len(data) < 5:
        return None
    if data[0] != 22:
        return []
    n = struct.unpack(">H", data[3:5])[0]
    if len(data) < 5 + n:
        return None
    b = data[5:5 + n]
    try:
        i = 4 + 2 + 32
        i += 1 + b[i]
        i += 2 + struct.unpack(">H", b[i:i + 2])[0]
        i += 1 + b[i]
        end = i + 2 + struct.unpack(">H", b[i:i + 2])[0]
        i += 2
        while i + 4 <= end:
            t, ln = struct.unpack(">HH", b[i:i + 4])
            if t == 16:
                lst, j, names = b[i + 6:i + 4 + ln], 0, []
                while j < len(lst):
                    names.append(lst[j + 1:j + 1 + lst[j]].decode(errors="replace"))
                    j += 1 + lst[j]
                return names
            i += 4 + ln
    except (IndexError, struct.error):
        pass
    return []


def _pump(src, dst):
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class StandIn:
    def __init__(self, ip, domain, cert, key, port=443):
        self.ip, self.domain, self.port = ip, domain, port
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        ctx.set_alpn_protocols(["http/1.1"])
        domain_ = domain

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self):
                path = urlsplit(self.path).path
                if path in ("/new", "/cgi-bin/newemail.py"):
                    user = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(9))
                    pw = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
                    body, ctype = json.dumps({"email": f"{user}@{domain_}", "password": pw}), "application/json"
                elif path == "/.well-known/autoconfig/mail/config-v1.1.xml" or path == "/mail/config-v1.1.xml":
                    servers = "".join(SERVER.format(io=io, t=t, d=domain_, p=p, s=s) for io, t, p, s in (
                        ("incoming", "imap", 993, "SSL"), ("incoming", "imap", 143, "STARTTLS"),
                        ("incoming", "imap", 443, "SSL"), ("outgoing", "smtp", 465, "SSL"),
                        ("outgoing", "smtp", 587, "STARTTLS"), ("outgoing", "smtp", 443, "SSL")))
                    body, ctype = AUTOCONFIG.format(d=domain_, servers=servers), "application/xml"
                else:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.http = ThreadingHTTPServer((ip, 0), Handler)
        self.http.socket = ctx.wrap_socket(self.http.socket, server_side=True)
        self.http.daemon_threads = True
        self.lsock = socket.create_server((ip, port))
        self.stopped = False

    def start(self):
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self.stopped = True
        self.lsock.close()
        self.http.shutdown()
        self.http.server_close()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._route, args=(c,), daemon=True).start()

    def _route(self, c):
        c.settimeout(30)
        data = b""
        try:
            while (alpn := client_hello_alpn(data)) is None:
                chunk = c.recv(16384)
                if not chunk:
                    c.close()
                    return
                data += chunk
            port = 993 if "imap" in alpn else 465 if "smtp" in alpn else self.http.server_address[1]
            b = socket.create_connection((self.ip, port), timeout=30)
        except OSError:
            c.close()
            return
        c.settimeout(None)
        b.settimeout(None)
        b.sendall(data)
        threading.Thread(target=_pump, args=(b, c), daemon=True).start()
        _pump(c, b)
