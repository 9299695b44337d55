"""push_helpers.py: a notification server for the push tests (issue 15).

PushEndpoint is HTTPS on 127.0.0.1 with a test-CA leaf for 127.0.0.1;
POST /notify answers by the body (the token): `script` maps a token to a
list of statuses (the last repeats; "close" = drop the connection without
an answer), others get `default`. Every request is recorded as a Got
(monotonic time, method, path, headers, body). `hold()` makes answers wait
until `release()` (the request is recorded when it arrives).

set_tokens(srv, user, tokens) logs in over IMAP (creating the account) and
SETMETADATAs each token; send(srv, sender, rcpt) submits an encrypted
message; pending(srv) lists <mailboxes_dir>/pending_notifications."""
import http.server
import imaplib
import os
import ssl
import threading
import time
from collections import namedtuple
from pathlib import Path

import cmtest
from cmtest import HOST, client_context
from submit_helpers import PASSWORD, fixture, login

for _c in ("GETMETADATA", "SETMETADATA"):
    imaplib.Commands.setdefault(_c, ("NONAUTH", "AUTH", "SELECTED"))

Got = namedtuple("Got", "t method path headers body")


class PushEndpoint:
    def __init__(self, test_ca, script=None, default=200):
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.default = default
        self.got = []
        self.lock = threading.Lock()
        self.go = threading.Event()
        self.go.set()
        leaf = test_ca.make_leaf("push", sans="IP:127.0.0.1,DNS:push.test", cn="push.test")
        owner = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with owner.lock:
                    owner.got.append(Got(time.monotonic(), self.command, self.path,
                                         {k.lower(): v for k, v in self.headers.items()}, body))
                    s = owner.script.get(body.decode("latin-1"))
                    st = (s.pop(0) if len(s) > 1 else s[0]) if s else owner.default
                owner.go.wait(60)
                if st == "close":
                    self.close_connection = True
                    return
                self.send_response(st)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(leaf.fullchain), str(leaf.key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/notify"
        self.t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.t.start()

    def hold(self):
        self.go.clear()

    def release(self):
        self.go.set()

    def bodies(self):
        with self.lock:
            return [g.body for g in self.got]

    def count(self):
        with self.lock:
            return len(self.got)

    def stop(self):
        self.go.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class H2Endpoint:
    """A notification server that speaks only HTTP/2 over TLS (ALPN "h2",
    python3-h2). It holds its answers (200) until `want` requests are open
    at once (or 10 s passed), so a client that multiplexes them on one
    connection passes and one that waits for each answer does not.
    Records the connections (their ALPN) and every stream (connection
    number, headers, body)."""

    def __init__(self, test_ca, want):
        import socket
        leaf = test_ca.make_leaf("push-h2", sans="IP:127.0.0.1,DNS:push.test", cn="push.test")
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(leaf.fullchain), str(leaf.key))
        self.ctx.set_alpn_protocols(["h2"])
        self.want = want
        self.lock = threading.Lock()
        self.alpn = []          # per connection
        self.streams = []       # (connection number, headers dict, body)
        self.max_open = 0
        self.enough = threading.Event()
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}/notify"
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                raw, _ = self.lsock.accept()
            except OSError:
                return
            try:
                conn = self.ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()
                continue
            with self.lock:
                n = len(self.alpn)
                self.alpn.append(conn.selected_alpn_protocol())
            threading.Thread(target=self._serve, args=(conn, n), daemon=True).start()

    def _serve(self, sock, n):
        import h2.config
        import h2.connection
        import h2.events
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                 header_encoding="utf-8"))
        c.initiate_connection()
        sock.sendall(c.data_to_send())
        heads, bodies, done = {}, {}, []
        sock.settimeout(0.05)
        deadline = time.monotonic() + 10
        while not self.stopped:
            try:
                data = sock.recv(65536)
                if not data:
                    break
            except TimeoutError:
                data = b""
            except OSError:  # ssl.SSLError too
                break
            for ev in c.receive_data(data) if data else []:
                if isinstance(ev, h2.events.RequestReceived):
                    heads[ev.stream_id] = {k.lower(): v for k, v in ev.headers}
                    bodies[ev.stream_id] = b""
                elif isinstance(ev, h2.events.DataReceived):
                    bodies[ev.stream_id] += ev.data
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    done.append(ev.stream_id)
                    with self.lock:
                        self.streams.append((n, heads[ev.stream_id], bodies[ev.stream_id]))
                        self.max_open = max(self.max_open, len(done))
                        if len(self.streams) >= self.want:
                            self.enough.set()
            if done and (self.enough.is_set() or time.monotonic() > deadline):
                for sid in done:
                    c.send_headers(sid, [(":status", "200"), ("content-length", "0")],
                                   end_stream=True)
                done = []
            out = c.data_to_send()
            if out:
                sock.sendall(out)
        sock.close()

    def stop(self):
        self.stopped = True
        self.lsock.close()


def push_server(server, test_ca, endpoint, scale=None, extra=None, url=None):
    """A server whose notification_url is the endpoint's (or url)."""
    srv = server(extra={"notification_url": url or endpoint.url, "tls_ca_file": str(test_ca.crt),
                        "max_user_send_burst_size": 1000, "max_user_send_per_minute": 6000,
                        **(extra or {})}, start=False)
    if scale is not None:
        srv.env["CM_PUSH_TIME_SCALE"] = str(scale)
    srv.start()
    return srv


def imap(srv, user):
    m = imaplib.IMAP4_SSL(HOST, srv.port("imaps"), ssl_context=client_context(),
                          timeout=cmtest.TIMEOUT)
    typ, data = m.login(user, PASSWORD)
    assert typ == "OK", data
    return m


def set_tokens(srv, user, tokens):
    m = imap(srv, user)
    for tok in tokens:
        typ, data = m._simple_command("SETMETADATA", "INBOX", f"(/private/devicetoken {tok})")
        assert typ == "OK", data
    m.logout()


def get_tokens(srv, user):
    m = imap(srv, user)
    typ, data = m._simple_command("GETMETADATA", "INBOX", "/private/devicetoken")
    assert typ == "OK", data
    md = m.untagged_responses.pop("METADATA")[0]
    m.logout()
    return md


def send(srv, sender, rcpt, n=1):
    s = login(srv, sender)
    for _ in range(n):
        assert s.sendmail(sender, [rcpt], fixture("encrypted.eml", sender, rcpt)) == {}
    s.quit()


def pending_dir(srv):
    return Path(srv.tmpdir) / "mail" / "pending_notifications"


def pending(srv):
    d = pending_dir(srv)
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


class EndpointProcess:
    """The same notification server (always 200) in a child process, so
    that its TLS work does not compete with the test's own threads for
    Python's GIL (the scale test measures IDLE latency meanwhile), at nice
    +10 (a notification server is another machine). Bodies are appended,
    one per line, to a file the test reads; connections() counts the TLS
    connections it accepted."""

    def __init__(self, test_ca, tmp):
        import subprocess
        import sys
        leaf = test_ca.make_leaf("push", sans="IP:127.0.0.1,DNS:push.test", cn="push.test")
        self.log = Path(tmp) / "push-bodies.txt"
        self.log.write_bytes(b"")
        self.proc = subprocess.Popen([sys.executable, __file__, str(leaf.fullchain), str(leaf.key),
                                      str(self.log)], stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())
        self.url = f"https://127.0.0.1:{self.port}/notify"

    def bodies(self):
        return self.log.read_bytes().splitlines()

    def count(self):
        return len(self.bodies())

    def connections(self):
        """TLS connections the endpoint has accepted so far."""
        p = Path(str(self.log) + ".conns")
        return len(p.read_bytes()) if p.exists() else 0

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def _serve(cert, key, log):
    import sys
    # stands for a notification server on another machine: its TLS and
    # HTTP work must not compete with the relay for this machine's CPU at
    # the same priority while the test measures the relay's IDLE latency
    os.nice(10)
    out = open(log, "ab", buffering=0)
    conns = open(log + ".conns", "ab", buffering=0)  # one byte per accepted connection
    lock = threading.Lock()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                out.write(body + b"\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    class Server(http.server.ThreadingHTTPServer):
        def get_request(self):
            r = super().get_request()
            conns.write(b".")
            return r

    httpd = Server(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    sys.stdout.write(f"{httpd.server_address[1]}\n")
    sys.stdout.flush()
    httpd.serve_forever()


if __name__ == "__main__":
    import sys
    _serve(*sys.argv[1:4])
