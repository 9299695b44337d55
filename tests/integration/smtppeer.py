"""smtppeer.py: a small scripted SMTP server on loopback for the tests of
the outbound SMTP client (test_smtpc.py). One thread per connection.

  SmtpPeer(cert=None, starttls=True, pipelining=True, greeting=..., rcpt={addr: reply},
           data_reply=..., drip=0.0, mail_reply=...)
    cert        (cert_path, key_path) presented after STARTTLS
    starttls    offer STARTTLS in the EHLO reply (needs cert)
    pipelining  offer PIPELINING
    greeting    the first reply ("421 4.3.2 busy" to refuse)
    rcpt        reply per recipient (default "250 2.1.5 Ok")
    drip        seconds between the bytes of every reply (slow peer)
    close_after_data   close the connection right after the end-of-data
                reply (a peer that drops idle connections)
    data_delay  seconds before the end-of-data reply (a slow peer, whole replies)
    reused_mail_reply  the reply to MAIL on a connection that already
                carried a message (a 421 one closes the connection)
  .port, .max_open (most connections open at once), .sessions (one dict per connection: cmds [str], tls bool,
  data [bytes, as received, dot-stuffed], batched bool: MAIL arrived with
  the following commands in the same read), .stop()
"""
import socket
import ssl
import threading
import time

import cmtest


class _Conn:
    def __init__(self, sock, peer):
        self.sock, self.peer, self.buf = sock, peer, b""

    def send(self, line):
        data = (line + "\r\n").encode()
        if self.peer.drip:
            for i in range(len(data)):
                self.sock.sendall(data[i:i + 1])
                time.sleep(self.peer.drip)
        else:
            self.sock.sendall(data)

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def readline(self):
        while b"\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def read_data(self):
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                data, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return data
            self.fill()


class SmtpPeer:
    def __init__(self, cert=None, starttls=True, pipelining=True,
                 greeting="220 peer.test ESMTP test peer", rcpt=None,
                 data_reply="250 2.0.0 Ok: queued as P1", mail_reply="250 2.1.0 Ok",
                 drip=0.0, host=cmtest.HOST, close_after_data=False, reused_mail_reply=None,
                 data_delay=0.0):
        self.cert, self.starttls, self.pipelining = cert, starttls, pipelining
        self.greeting, self.rcpt = greeting, rcpt or {}
        self.data_reply, self.mail_reply, self.drip = data_reply, mail_reply, drip
        self.close_after_data, self.reused_mail_reply = close_after_data, reused_mail_reply
        self.data_delay = data_delay
        self.sessions = []
        self.open_now = self.max_open = 0
        self.lock = threading.Lock()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()

    def _accept(self):
        while not self.stopped:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _ctx(self):
        # one context per peer, so that session tickets resume; made under
        # the lock and published only with its certificate loaded (threads
        # handshaking at once saw a context without one: "no shared cipher")
        with self.lock:
            if getattr(self, "ssl_ctx", None) is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(*self.cert)
                self.ssl_ctx = ctx
            return self.ssl_ctx

    def _ehlo(self, c, tls):
        caps = ["peer.test"]
        if self.pipelining:
            caps.append("PIPELINING")
        caps += ["SIZE 10240000", "8BITMIME"]
        if self.starttls and not tls:
            caps.append("STARTTLS")
        for i, cap in enumerate(caps):
            c.send(("250 " if i == len(caps) - 1 else "250-") + cap)

    def _serve(self, s):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # replies go line by line
        sess = {"cmds": [], "tls": False, "data": [], "batched": False, "closed": False}
        self.sessions.append(sess)
        with self.lock:
            self.open_now += 1
            self.max_open = max(self.max_open, self.open_now)
        c = _Conn(s, self)
        try:
            c.send(self.greeting)
            if not self.greeting.startswith("2"):
                try:
                    sess["cmds"].append(c.readline().decode())  # QUIT
                except (EOFError, OSError):
                    pass
                return
            while True:
                line = c.readline().decode("utf-8", "replace")
                sess["cmds"].append(line)
                verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self._ehlo(c, sess["tls"])
                elif verb == "STARTTLS" and self.starttls and not sess["tls"]:
                    if c.buf:
                        c.send("554 5.5.1 pipelined STARTTLS")
                        return
                    c.send("220 2.0.0 Ready to start TLS")
                    try:
                        c.sock = self._ctx().wrap_socket(c.sock, server_side=True)
                    except (ssl.SSLError, OSError) as e:
                        sess["tls_error"] = str(e)
                        return
                    sess["tls"] = True
                elif verb == "MAIL":
                    sess["batched"] = sess["batched"] or b"RCPT" in c.buf
                    if self.reused_mail_reply and sess["data"]:
                        c.send(self.reused_mail_reply)
                        if self.reused_mail_reply.startswith("421"):
                            return
                        continue
                    c.send(self.mail_reply)
                elif verb == "RCPT":
                    addr = line.split("<", 1)[1].split(">", 1)[0]
                    c.send(self.rcpt.get(addr, "250 2.1.5 Ok"))
                elif verb == "DATA":
                    ok = any(x.startswith("RCPT") for x in sess["cmds"]) and any(
                        self.rcpt.get(a, "250").startswith("2") for a in
                        [x.split("<", 1)[1].split(">", 1)[0] for x in sess["cmds"]
                         if x.upper().startswith("RCPT")])
                    if not ok:
                        c.send("554 5.5.1 Error: no valid recipients")
                        continue
                    c.send("354 End data with <CR><LF>.<CR><LF>")
                    sess["data"].append(c.read_data())
                    if self.data_delay:
                        time.sleep(self.data_delay)
                    c.send(self.data_reply)
                    if self.close_after_data:
                        if sess["tls"]:  # a clean TLS close: close_notify first
                            c.sock.settimeout(5)
                            c.sock.unwrap()
                        return
                elif verb == "RSET":
                    c.send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    c.send("221 2.0.0 Bye")
                    return
                else:
                    c.send("502 5.5.2 Error: command not recognized")
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            with self.lock:
                self.open_now -= 1
            sess["closed"] = True
            try:
                c.sock.close()
            except OSError:
                pass

    def commands(self, verb):
        return [x for s in self.sessions for x in s["cmds"] if x.upper().startswith(verb)]
