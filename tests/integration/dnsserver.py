"""dnsserver.py: a small authoritative DNS server for tests, on 127.0.0.1
(UDP and TCP on the same free port), built on Debian's python3-dnslib.

    dns = DnsServer({"sel._domainkey.a.example": {"TXT": ["v=DKIM1; ..."]},
                   "a.example": {"MX": [(10, "mx.a.example")], "A": ["127.0.0.2"]}})
    dns.address            # "127.0.0.1:PORT", a dns_servers entry
    DnsServer(zone, port=15353)   # a fixed port (bench/mxbench.py), default: free
    dns.behave["x.example"] = "servfail" | "timeout" | "refused"
    dns.queries            # [(name, type)] received, in order
    dns.stop()

Values are strings/tuples as above, or dnslib rdata objects of any type
(CNAME, SRV, CAA, ... as RR.fromZone gives them).
Names are case-insensitive and given without the final dot. A name in the
zone without records of the asked type answers NOERROR with no answer
(NODATA); an unknown name answers NXDOMAIN. TXT strings longer than 255
bytes are split into several strings of one record, as DNS requires. A
UDP answer larger than the client's EDNS size (512 without EDNS) is sent
truncated (TC) so the client retries over TCP.
"""
import socket
import socketserver
import threading

from dnslib import AAAA, MX, QTYPE, RCODE, RD, RR, TXT, A, DNSRecord


class DnsServer:
    def __init__(self, zone=None, host="127.0.0.1", port=0):
        self.zone = {k.lower().rstrip("."): v for k, v in (zone or {}).items()}
        self.host = host
        self.behave = {}
        self.queries = []
        self.lock = threading.Lock()
        self.stopped = False
        owner = self

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    head = self.request.recv(2)
                    if len(head) < 2:
                        return
                    n = int.from_bytes(head, "big")
                    data = b""
                    while len(data) < n:
                        chunk = self.request.recv(n - len(data))
                        if not chunk:
                            return
                        data += chunk
                    out = owner.answer(data, tcp=True)
                    if out is not None:
                        self.request.sendall(len(out).to_bytes(2, "big") + out)
                except OSError:
                    pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        # A free UDP port may be taken for TCP (another test's connection
        # uses it as its local port): with port=0, pick another pair.
        for attempt in range(50):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind((host, port))
            self.port = self.udp.getsockname()[1]
            try:
                self.tcp = socketserver.ThreadingTCPServer((host, self.port), TCPHandler)
                break
            except OSError:
                self.udp.close()
                if port != 0 or attempt == 49:
                    raise
        self.tcp.daemon_threads = True
        self.threads = [threading.Thread(target=self._udp_loop, daemon=True),
                        threading.Thread(target=self.tcp.serve_forever, daemon=True)]
        for t in self.threads:
            t.start()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def set(self, name, rtype, values):
        self.zone.setdefault(name.lower().rstrip("."), {})[rtype] = values

    def _udp_loop(self):
        while True:
            try:
                data, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            if self.stopped or peer is None:  # woken by stop()'s shutdown
                return
            out = self.answer(data, tcp=False)
            if out is not None:
                try:
                    self.udp.sendto(out, peer)
                except OSError:
                    return

    def answer(self, data, tcp):
        try:
            req = DNSRecord.parse(data)
        except Exception:
            return None
        name = str(req.q.qname).rstrip(".").lower()
        qtype = QTYPE[req.q.qtype]
        with self.lock:
            self.queries.append((name, qtype))
        how = self.behave.get(name)
        if how == "timeout":
            return None
        reply = req.reply()
        if how in ("servfail", "refused"):
            reply.header.rcode = RCODE.SERVFAIL if how == "servfail" else RCODE.REFUSED
            return reply.pack()
        records = self.zone.get(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply.pack()
        for value in records.get(qtype, []):
            reply.add_answer(RR(req.q.qname, req.q.qtype, rdata=self._rdata(qtype, value), ttl=60))
        out = reply.pack()
        limit = 512
        for rr in req.ar:
            if rr.rtype == QTYPE.OPT:
                limit = max(512, rr.rclass)
        if not tcp and len(out) > limit:
            trunc = req.reply()
            trunc.header.tc = 1
            return trunc.pack()
        return out

    @staticmethod
    def _rdata(qtype, value):
        if isinstance(value, RD):  # any type, as dnslib parsed it (RR.fromZone)
            return value
        if qtype == "TXT":
            raw = value.encode() if isinstance(value, str) else value
            return TXT([raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""])
        if qtype == "MX":
            pref, host = value
            return MX(host if host != "." else ".", pref)
        if qtype == "A":
            return A(value)
        if qtype == "AAAA":
            return AAAA(value)
        raise ValueError(qtype)

    def stop(self):
        self.tcp.shutdown()
        self.tcp.server_close()
        # close() alone leaves the port bound while the UDP thread waits in
        # recvfrom (the kernel keeps the socket until the call returns), so
        # a new server on the same fixed port (fedlab's :53) could not bind:
        # shutdown() wakes it up, then it ends and the socket goes.
        self.stopped = True
        try:
            self.udp.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # ENOTCONN: an unconnected UDP socket, woken up all the same
        self.threads[0].join(5)
        self.udp.close()
