"""wsecho.py: a small stand-in for iroh-relay in tests: an HTTP/1.1 server on
127.0.0.1 (own thread) that answers
  GET /ping          200 "pong"
  GET /generate_204  204
  GET /relay + Upgrade: websocket   101 with Sec-WebSocket-Accept, then echoes
                     every websocket frame (RFC 6455; client frames masked,
                     echoes unmasked) until a close frame or EOF.
It records each request's head in .requests. Standard library only.
Client helpers ws_frame()/ws_read_frame() are here too."""
import base64
import hashlib
import os
import socket
import socketserver
import struct
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def ws_frame(payload, opcode=2, mask=True):
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def _recv_exact(recv, n):
    data = b""
    while len(data) < n:
        chunk = recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed inside a frame")
        data += chunk
    return data


def ws_read_frame(recv):
    """(opcode, payload) of one frame; recv(n) returns up to n bytes."""
    b0, b1 = _recv_exact(recv, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _recv_exact(recv, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _recv_exact(recv, 8))[0]
    key = _recv_exact(recv, 4) if b1 & 0x80 else None
    payload = _recv_exact(recv, n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.decode(errors="replace").split("\r\n")
        self.server.requests.append(lines)
        method, target, _ = lines[0].split(" ", 2)
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if target == "/ping":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\npong")
        elif target == "/generate_204":
            sock.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        elif target == "/relay" and hdrs.get("upgrade", "").lower() == "websocket":
            sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: "
                          f"{ws_accept(hdrs.get('sec-websocket-key', ''))}\r\n\r\n").encode())
            self._echo(sock, rest)
        else:
            sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def _echo(self, sock, pending):
        buf = bytearray(pending)

        def recv(n):
            if buf:
                out = bytes(buf[:n])
                del buf[:n]
                return out
            return sock.recv(n)
        while True:
            try:
                op, payload = ws_read_frame(recv)
            except (EOFError, OSError):
                return
            if op == 8:
                sock.sendall(ws_frame(payload, 8, mask=False))
                return
            sock.sendall(ws_frame(payload, op, mask=False))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class EchoServer:
    """with EchoServer() as up: ... up.url == "http://127.0.0.1:PORT" """

    def __init__(self):
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.requests = []
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def requests(self):
        return self.server.requests

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
