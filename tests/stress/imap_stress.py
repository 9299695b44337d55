#!/usr/bin/python3
"""imap_stress.py: a randomised, pipelining multi-client IMAP load with a
strict client-side state tracker (issue 11). Not part of CI by default.

    /usr/bin/python3 tests/stress/imap_stress.py                  # own server, 10 clients, 60 s
    /usr/bin/python3 tests/stress/imap_stress.py --seconds 10 --bin build-tsan/chatmaild-server
    /usr/bin/python3 tests/stress/imap_stress.py --port 993 --no-verify --user-prefix stress

Without --port it starts its own server (tests/integration/cmtest: a test CA,
free loopback ports, a temporary directory) from --bin (default
build/chatmaild-server) and stops it at the end (it must exit 0).

Every client logs in (clients share a few accounts, so deliveries and
expunges of one client reach the others), SELECTs INBOX and then loops over
random batches of pipelined commands - APPEND (LITERAL+), FETCH, UID FETCH,
STORE / UID STORE with keywords and \\Seen / \\Deleted, SEARCH, UID SEARCH,
EXPUNGE, NOOP, STATUS, LIST - sent in one write or one write per command,
interleaved with IDLE periods. The tracker checks:
  - every tagged reply belongs to the oldest outstanding tag (order, exactly
    once; nothing unexpected); no BAD; NO only where the server may refuse;
  - EXISTS never shrinks without EXPUNGE; EXPUNGE / FETCH sequence numbers
    lie within the view; a sequence number keeps its UID until an EXPUNGE
    moves it and UIDs increase with sequence numbers;
  - SEARCH results lie within the view; the view after the batch has the
    messages of a fresh UID SEARCH ALL (checked after each NOOP at rest).
Prints one line per protocol error and a summary; exit status 1 on any error.
"""
import argparse
import os
import random
import re
import socket
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
import cmtest  # noqa: E402

PASSWORD = "stress-pass-1"
KEYWORDS = ["$kwA", "$kwB", "$kwC", "$Forwarded", "$MDNSent"]
LITERAL_RE = re.compile(rb"\{(\d+)\+?\}$")


class ProtocolError(Exception):
    pass


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.commands = {}
        self.status = {"OK": 0, "NO": 0, "BAD": 0}
        self.errors = []
        self.untagged = {"EXISTS": 0, "EXPUNGE": 0, "FETCH": 0}
        self.idles = 0
        self.sessions = 0

    def add(self, field, key, n=1):
        with self.lock:
            d = getattr(self, field)
            d[key] = d.get(key, 0) + n

    def error(self, client, text):
        with self.lock:
            self.errors.append(f"client {client}: {text}")
            print(f"PROTOCOL ERROR client {client}: {text}", flush=True)


class Client:
    def __init__(self, n, args, stats, user):
        self.n, self.args, self.stats, self.user = n, args, stats, user
        self.rng = random.Random(args.seed * 1000 + n)
        self.tagno = 0
        self.outstanding = []  # [(tag, command name)] in send order
        self.uids = []  # seq - 1 -> uid or None (unknown)
        self.buf = b""
        self.sock = None

    # ------------------------------------------------------------ transport
    def connect(self):
        ctx = cmtest.client_context(verify=not self.args.no_verify, ca_file=self.args.ca)
        raw = socket.create_connection((self.args.host, self.args.port), timeout=30)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname=self.args.domain)

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def read_response(self):
        """One response line with its literals inlined (bytes, no CRLF)."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ProtocolError(f"connection closed; pending {self.buf[:200]!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            out += line
            m = LITERAL_RE.search(line)
            if not m:
                return out
            size = int(m.group(1))
            while len(self.buf) < size:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ProtocolError("connection closed inside a literal")
                self.buf += chunk
            out += b"\r\n" + self.buf[:size]
            self.buf = self.buf[size:]

    def err(self, text):
        self.stats.error(self.n, text)

    # -------------------------------------------------------------- tracker
    def untagged(self, line):
        """Applies one untagged response to the view; returns it parsed."""
        text = line.decode(errors="replace")
        m = re.match(r"\* (\d+) (EXISTS|EXPUNGE|FETCH|RECENT)\b(.*)", text, re.S)
        if m:
            num, kind, rest = int(m.group(1)), m.group(2), m.group(3)
            self.stats.add("untagged", kind)
            if kind == "EXISTS":
                if num < len(self.uids):
                    self.err(f"EXISTS {num} < {len(self.uids)} without EXPUNGE")
                    del self.uids[num:]
                self.uids.extend([None] * (num - len(self.uids)))
            elif kind == "EXPUNGE":
                if not 1 <= num <= len(self.uids):
                    self.err(f"EXPUNGE {num} outside the view of {len(self.uids)}")
                else:
                    del self.uids[num - 1]
            elif kind == "FETCH":
                if not 1 <= num <= len(self.uids):
                    self.err(f"FETCH {num} outside the view of {len(self.uids)}: {text[:120]}")
                    return text
                u = re.search(r"\bUID (\d+)", rest)
                if u:
                    self.set_uid(num, int(u.group(1)))
            return text
        if text.startswith("* SEARCH"):
            nums = [int(x) for x in text.split()[2:]]
            cmd = self.outstanding[0][1] if self.outstanding else ""
            if cmd == "SEARCH":
                bad = [x for x in nums if not 1 <= x <= len(self.uids)]
                if bad:
                    self.err(f"SEARCH results {bad[:5]} outside the view of {len(self.uids)}")
            elif cmd == "UID SEARCH ALL":
                known = sorted(u for u in self.uids if u is not None)
                if len(nums) != len(self.uids):
                    self.err(f"UID SEARCH ALL: {len(nums)} UIDs, view has {len(self.uids)}")
                elif nums != sorted(nums):
                    self.err("UID SEARCH ALL not ascending")
                else:
                    for i, uid in enumerate(nums):
                        self.set_uid(i + 1, uid)
                del known
        return text

    def set_uid(self, seq, uid):
        cur = self.uids[seq - 1]
        if cur is not None and cur != uid:
            self.err(f"seq {seq} was UID {cur}, now UID {uid}")
        self.uids[seq - 1] = uid
        lo = next((u for u in reversed(self.uids[:seq - 1]) if u is not None), None)
        hi = next((u for u in self.uids[seq:] if u is not None), None)
        if (lo is not None and lo >= uid) or (hi is not None and hi <= uid):
            self.err(f"UID order broken at seq {seq}: {lo} < {uid} < {hi} fails")

    def tagged(self, line):
        text = line.decode(errors="replace")
        tag, _, rest = text.partition(" ")
        status = rest.split(" ", 1)[0]
        if not self.outstanding:
            self.err(f"unexpected tagged reply (nothing outstanding): {text[:120]}")
            return
        want, cmd = self.outstanding[0]
        if tag != want:
            known = any(t == tag for t, _ in self.outstanding)
            self.err(f"unexpected tagged reply {tag!r} (expected {want!r}, "
                     f"{'out of order' if known else 'unknown or repeated tag'}): {text[:120]}")
            if known:
                while self.outstanding and self.outstanding[0][0] != tag:
                    self.outstanding.pop(0)
            else:
                return
        self.outstanding.pop(0)
        self.stats.add("status", status if status in ("OK", "NO", "BAD") else "BAD")
        if status == "BAD" or status not in ("OK", "NO"):
            self.err(f"{cmd}: {text[:160]}")
        elif status == "NO" and cmd.split(" ")[0] in ("SELECT", "NOOP", "SEARCH", "UID",
                                                      "LIST", "STATUS", "IDLE", "LOGIN"):
            self.err(f"{cmd}: {text[:160]}")

    def drain(self):
        """Reads until every outstanding command has its tagged reply."""
        while self.outstanding:
            line = self.read_response()
            if line.startswith(b"* ") or line.startswith(b"+ "):
                if line.startswith(b"* "):
                    self.untagged(line)
                continue
            self.tagged(line)

    # ------------------------------------------------------------ commands
    def tag(self):
        self.tagno += 1
        return f"c{self.n}t{self.tagno}"

    def cmd(self, name, text):
        t = self.tag()
        self.outstanding.append((t, name))
        self.stats.add("commands", name.split(" (")[0])
        return f"{t} {text}\r\n".encode()

    def random_uids(self):
        known = [u for u in self.uids if u is not None]
        if not known:
            return "1:*"
        picks = sorted(set(self.rng.sample(known, min(len(known), self.rng.randint(1, 3)))))
        return ",".join(str(u) for u in picks)

    def random_seqs(self):
        n = len(self.uids)
        a = self.rng.randint(1, n)
        b = self.rng.randint(a, min(n, a + 3))
        return f"{a}:{b}" if b > a else str(a)

    def batch(self):
        """A random batch of pipelined commands (only the first may use
        sequence numbers: later ones could see them moved by an EXPUNGE)."""
        out = []
        for i in range(self.rng.randint(1, 6)):
            r = self.rng.random()
            seq_ok = i == 0 and len(self.uids) > 0
            if r < 0.20 or len(self.uids) < 3:
                kw = self.rng.choice(KEYWORDS)
                body = (f"From: <{self.user}>\r\nSubject: stress {self.n}.{self.tagno}\r\n"
                        f"X-Kw: {kw}\r\n\r\n" + "x" * self.rng.randint(10, 3000) + "\r\n").encode()
                flags = self.rng.choice(["", "(\\Seen) ", f"({kw}) "])
                t = self.tag()
                self.outstanding.append((t, "APPEND"))
                self.stats.add("commands", "APPEND")
                out.append(f"{t} APPEND INBOX {flags}{{{len(body)}+}}\r\n".encode() + body +
                           b"\r\n")
            elif r < 0.35:
                if seq_ok:
                    out.append(self.cmd("FETCH", f"FETCH {self.random_seqs()} (UID FLAGS RFC822.SIZE)"))
                else:
                    out.append(self.cmd("UID FETCH", f"UID FETCH {self.random_uids()} "
                                                     "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
            elif r < 0.50:
                flag = self.rng.choice(KEYWORDS + ["\\Seen", "\\Flagged"])
                op = self.rng.choice(["+FLAGS", "-FLAGS", "+FLAGS.SILENT"])
                if seq_ok:
                    out.append(self.cmd("STORE", f"STORE {self.random_seqs()} {op} ({flag})"))
                else:
                    out.append(self.cmd("UID STORE", f"UID STORE {self.random_uids()} {op} ({flag})"))
            elif r < 0.62:
                crit = self.rng.choice(["ALL", "UNSEEN", "SEEN", f"KEYWORD {self.rng.choice(KEYWORDS)}",
                                        "LARGER 1000", "SUBJECT stress", "NOT DELETED"])
                if self.rng.random() < 0.5:
                    out.append(self.cmd("SEARCH", f"SEARCH {crit}"))
                else:
                    out.append(self.cmd("UID SEARCH", f"UID SEARCH {crit}"))
            elif r < 0.72:
                out.append(self.cmd("UID STORE", f"UID STORE {self.random_uids()} +FLAGS.SILENT "
                                                 "(\\Deleted)"))
                if self.rng.random() < 0.5 or len(self.uids) > 40:
                    out.append(self.cmd("EXPUNGE", "EXPUNGE"))
            elif r < 0.80:
                out.append(self.cmd("NOOP", "NOOP"))
            elif r < 0.88:
                out.append(self.cmd("STATUS", "STATUS INBOX (MESSAGES UIDNEXT UNSEEN)"))
            elif r < 0.93:
                out.append(self.cmd("LIST", 'LIST "" "*"'))
            else:
                out.append(self.cmd("CHECK", "CHECK"))
        return out

    def idle(self):
        t = self.tag()
        self.stats.add("commands", "IDLE")
        self.send(f"{t} IDLE\r\n")
        while True:
            line = self.read_response()
            if line.startswith(b"+ "):
                break
            if not line.startswith(b"* "):
                self.err(f"IDLE: expected '+', got {line[:120]!r}")
                return
            self.untagged(line)
        self.sock.settimeout(0.05)
        end = time.monotonic() + self.rng.uniform(0.1, 1.0)
        while time.monotonic() < end:
            try:
                line = self.read_response()
            except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
                continue
            if not line.startswith(b"* "):
                self.err(f"during IDLE: {line[:120]!r}")
            else:
                self.untagged(line)
        self.sock.settimeout(30)
        self.outstanding.append((t, "IDLE"))
        self.send(b"DONE\r\n")
        self.drain()
        with self.stats.lock:
            self.stats.idles += 1

    def session(self, deadline):
        self.connect()
        self.outstanding = []
        self.uids = []
        self.buf = b""
        greet = self.read_response()
        if not greet.startswith(b"* OK"):
            self.err(f"greeting {greet[:80]!r}")
        self.send(self.cmd("LOGIN", f"LOGIN {self.user} {PASSWORD}") +
                  self.cmd("SELECT", "SELECT INBOX"))
        errors = len(self.stats.errors)
        self.drain()
        if len(self.stats.errors) != errors:
            raise ProtocolError("LOGIN / SELECT failed")
        self.send(self.cmd("UID SEARCH ALL", "UID SEARCH ALL"))
        self.drain()
        with self.stats.lock:
            self.stats.sessions += 1
        rounds = self.rng.randint(20, 200)
        while time.monotonic() < deadline and rounds > 0:
            rounds -= 1
            if self.rng.random() < 0.08:
                self.idle()
                continue
            parts = self.batch()
            if self.rng.random() < 0.5:
                self.send(b"".join(parts))
            else:
                for p in parts:
                    self.send(p)
            self.drain()
            if self.rng.random() < 0.1:  # at rest: the view must equal the mailbox
                self.send(self.cmd("NOOP", "NOOP"))
                self.drain()
                self.send(self.cmd("UID SEARCH ALL", "UID SEARCH ALL"))
                self.drain()
        self.send(self.cmd("LOGOUT", "LOGOUT"))
        self.drain()
        self.sock.close()

    def run(self, deadline):
        while time.monotonic() < deadline:
            try:
                self.session(deadline)
            except (ProtocolError, OSError, ssl.SSLError) as e:
                self.err(f"{type(e).__name__}: {e}")
                try:
                    self.sock.close()
                except Exception:
                    pass
                time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--accounts", type=int, default=3, help="clients share this many accounts")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--bin", default=str(HERE.parents[1] / "build" / "chatmaild-server"))
    ap.add_argument("--host", default=cmtest.HOST)
    ap.add_argument("--port", type=int, help="use a running server's IMAPS port")
    ap.add_argument("--domain", default=cmtest.DOMAIN)
    ap.add_argument("--ca", help="CA file for --port")
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--user-prefix", default="stres", help="+ 4 digits = the local part")
    args = ap.parse_args()

    srv = None
    tmp = None
    if args.port is None:
        tmp = tempfile.TemporaryDirectory(prefix="cm-stress-")
        ca = cmtest.TestCA(Path(tmp.name) / "ca")
        leaf = ca.make_leaf(cmtest.DOMAIN)
        srv = cmtest.Server(Path(tmp.name) / "srv", str(ca.crt), cmtest.DOMAIN,
                            (str(leaf.fullchain), str(leaf.key)), None,
                            str(Path(args.bin).resolve()))
        srv.start()
        args.port, args.ca = srv.port("imaps"), str(ca.crt)
    users = [f"{args.user_prefix}{i:04d}@{args.domain}" for i in range(args.accounts)]
    stats = Stats()
    print(f"imap_stress: {args.clients} clients, {args.seconds:g} s, {args.accounts} accounts, "
          f"seed {args.seed}, port {args.port}", flush=True)
    deadline = time.monotonic() + args.seconds
    clients = [Client(i, args, stats, users[i % len(users)]) for i in range(args.clients)]
    threads = [threading.Thread(target=c.run, args=(deadline,), daemon=True) for c in clients]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + 120)
    hung = sum(t.is_alive() for t in threads)
    if hung:
        stats.error("-", f"{hung} clients still running 120 s after the deadline")
    elapsed = time.monotonic() - t0
    rc_server = None
    if srv:
        rc_server = srv.stop()
        if rc_server != 0:
            stats.error("-", f"server exited with {rc_server}\n{srv.log_tail(80)}")
        tmp.cleanup()
    total = sum(stats.commands.values())
    print(f"elapsed {elapsed:.1f} s, sessions {stats.sessions}, commands {total} "
          f"({total / elapsed:.0f}/s), IDLE periods {stats.idles}")
    print("commands: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.commands.items())))
    print("tagged: " + ", ".join(f"{k} {v}" for k, v in stats.status.items()))
    print("untagged: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.untagged.items())))
    if rc_server is not None:
        print(f"server exit status {rc_server}")
    print(f"protocol errors: {len(stats.errors)}")
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
