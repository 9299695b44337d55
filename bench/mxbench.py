#!/usr/bin/python3
"""mxbench.py: port-25 (MX) intake benchmark for bench/run.sh (issue 13).

Measures what a relay does with mail from other relays: STARTTLS on the MX
port, no AUTH, DKIM-signed encrypted messages whose key is looked up in DNS.

  * DNS: a test DNS server (tests/integration/dnsserver.py) on
    127.0.0.1:--dns-port publishes `<selector>._domainkey.<sender domain>`
    (an RSA-2048 key made with the openssl CLI at start). The target must be
    configured to ask it (ours: `dns_servers`, reference: OpenDKIM's
    unbound forward-zone). The number of key queries is reported: the target
    caches the key after the first lookup.
  * Messages: Delta Chat-like OpenPGP/MIME (tests/data/filter/encrypted.eml,
    From = MAIL FROM = a sender of the DKIM domain, unique Message-ID),
    signed with dkimpy (rsa-sha256, relaxed/relaxed) before the clock runs.
  * Accounts: random 9-character local parts created by one IMAP LOGIN each
    (create-on-login, both targets).
  * throughput: C connections (one thread each, STARTTLS once, then
    MAIL+RCPT+DATA pipelined per message) send for T seconds; accepted/s;
    then delivery is awaited in the recipients' Maildirs (delivered/s =
    accepted / time until the last file is there; lost = accepted - found).
  * latency: a receiver in IMAP IDLE (implicit TLS); one STARTTLS SMTP
    connection sends M messages one at a time; the clock starts when the
    final "." is written: time to the `250` (accept) and to `* N EXISTS`;
    p50/p99/max, and accept->EXISTS p50/p99.

Output: one flat JSON object, one key per line (--json), as chatbench.
The client is Python (one thread per connection, GIL): on a 2-core machine
it competes with the server for CPU; both targets are measured the same way.
"""
import argparse
import base64
import os
import random
import re
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import dkim  # noqa: E402  (Debian python3-dkim)
from dnsserver import DnsServer  # noqa: E402

PASSWORD = "mxbenchpass123"
TIMEOUT = 30.0


def tls_client():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Lines:
    """A socket with a CRLF line reader."""

    def __init__(self, sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the dot goes out at once
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def reply(self):
        """One SMTP reply (multi-line joined); returns (code, text)."""
        lines = []
        while True:
            line = self.readline()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]) if line[:3].isdigit() else 0, "\n".join(lines)


def smtp_open(host, port):
    """Connects, STARTTLS, EHLO again; returns a Lines over TLS."""
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    c = Lines(raw)
    code, text = c.reply()
    if code != 220:
        raise RuntimeError(f"greeting: {text}")
    c.send(b"EHLO mxbench.test\r\n")
    code, text = c.reply()
    if code != 250 or "STARTTLS" not in text.upper():
        raise RuntimeError(f"EHLO: {text}")
    c.send(b"STARTTLS\r\n")
    code, text = c.reply()
    if code != 220:
        raise RuntimeError(f"STARTTLS: {text}")
    if c.buf:
        raise RuntimeError("data after STARTTLS reply")
    c.sock = tls_client().wrap_socket(raw, server_hostname=host)
    c.send(b"EHLO mxbench.test\r\n")
    code, text = c.reply()
    if code != 250:
        raise RuntimeError(f"EHLO after TLS: {text}")
    c.pipelining = "PIPELINING" in text.upper()
    return c


def smtp_send(c, sender, rcpt, body, before_dot=None):
    """MAIL+RCPT+DATA (pipelined when offered), body, dot. Returns
    (code, text, t_dot, t_reply)."""
    cmds = [f"MAIL FROM:<{sender}>\r\n".encode(), f"RCPT TO:<{rcpt}>\r\n".encode(), b"DATA\r\n"]
    if c.pipelining:
        c.send(b"".join(cmds))
        replies = [c.reply() for _ in cmds]
    else:
        replies = []
        for cmd in cmds:
            c.send(cmd)
            replies.append(c.reply())
            if replies[-1][0] >= 400:
                break
    for (code, text), want in zip(replies, (250, 250, 354)):
        if code != want:
            if replies[-1][0] == 354:  # DATA was accepted although RCPT was not
                c.send(b".\r\n")
                c.reply()
            c.send(b"RSET\r\n")
            c.reply()
            return code, text, None, None
    c.send(body)
    t_dot = time.monotonic()
    c.send(b".\r\n")
    code, text = c.reply()
    return code, text, t_dot, time.monotonic()


def dot_stuff(raw):
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)


class Imap:
    def __init__(self, host, port, user):
        raw = socket.create_connection((host, port), timeout=TIMEOUT)
        self.c = Lines(tls_client().wrap_socket(raw, server_hostname=host))
        self.c.readline()
        self.n = 0
        self.cmd(f'LOGIN "{user}" "{PASSWORD}"')

    def cmd(self, text):
        self.n += 1
        tag = f"m{self.n}"
        self.c.send(f"{tag} {text}\r\n".encode())
        lines = []
        while True:
            line = self.c.readline()
            lines.append(line)
            if line.startswith(tag + " "):
                if not line.startswith(tag + " OK"):
                    raise RuntimeError(f"IMAP {text.split()[0]}: {line}")
                return lines

    def close(self):
        try:
            self.c.send(b"z LOGOUT\r\n")
            self.c.sock.close()
        except OSError:
            pass


def rand_local(n=9):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def make_key(directory):
    key = Path(directory) / "dkim.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(key)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key.read_bytes(), f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def make_messages(template, n, sender, rcpts, selector, domain, key):
    out = []
    for i in range(n):
        rcpt = rcpts[i % len(rcpts)]
        msgid = f"mxb{i}.{rand_local(12)}@{domain}"
        raw = template.replace(b"alice@example.org", sender.encode())
        raw = raw.replace(b"bob@example.net", rcpt.encode())
        raw = re.sub(rb"Message-ID: <[^>]*>", f"Message-ID: <{msgid}>".encode(), raw)
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        sig = dkim.sign(raw, selector.encode(), domain.encode(), key,
                        canonicalize=(b"relaxed", b"relaxed"),
                        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
        out.append((rcpt, dot_stuff(sig + raw)))
    return out


def maildir_count(template, addr):
    local, _, dom = addr.partition("@")
    d = Path(template.replace("%a", addr).replace("%l", local).replace("%d", dom))
    n = 0
    for sub in ("new", "cur"):
        try:
            n += sum(1 for e in os.scandir(d / sub) if e.is_file())
        except FileNotFoundError:
            pass
    return n


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def warm_up(a, sender, msgs, rcpt, res):
    """One message alone before the clock runs: the target looks the key up
    (and caches it) here, outside the measured window."""
    before = maildir_count(a.maildir_root, rcpt)
    c = smtp_open(a.host, a.smtp_port)
    code, text, _, _ = smtp_send(c, sender, rcpt, msgs[0][1])
    c.send(b"QUIT\r\n")
    if code != 250:
        raise RuntimeError(text.replace("\n", " "))
    deadline = time.monotonic() + TIMEOUT
    while maildir_count(a.maildir_root, rcpt) <= before:
        if time.monotonic() > deadline:
            raise RuntimeError("warm-up message accepted but not delivered")
        time.sleep(0.02)
    res["mx_dkim_key_queries_warmup"] = res["_dns"].queries.count(
        (f"{a.selector}._domainkey.{a.sender_domain}", "TXT"))


def throughput(a, sender, msgs, rcpts, res):
    before = {r: maildir_count(a.maildir_root, r) for r in rcpts}
    counts = [0] * a.connections
    refusals = []
    errors = []
    deadline = [None]
    start_evt = threading.Barrier(a.connections + 1)

    def worker(k):
        try:
            c = smtp_open(a.host, a.smtp_port)
        except Exception as e:  # noqa: BLE001  (reported, not raised)
            errors.append(f"connect: {e}")
            start_evt.wait()
            return
        start_evt.wait()
        i = k
        try:
            while time.monotonic() < deadline[0]:
                rcpt, body = msgs[i % len(msgs)]
                i += a.connections
                code, text, _, _ = smtp_send(c, sender, rcpt, body)
                if code == 250:
                    counts[k] += 1
                elif len(refusals) < 3:
                    refusals.append(text.replace("\n", " "))
            c.send(b"QUIT\r\n")
        except Exception as e:  # noqa: BLE001
            errors.append(f"send: {e}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.connections)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + a.seconds
    t0 = time.monotonic()
    start_evt.wait()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    accepted = sum(counts)
    res["mx_throughput_connections"] = a.connections
    res["mx_throughput_seconds"] = round(elapsed, 2)
    res["mx_throughput_accepted"] = accepted
    res["mx_throughput_accepted_per_s"] = round(accepted / elapsed, 1) if elapsed else 0
    if refusals:
        res["mx_throughput_refusal"] = refusals[0][:120]
    if errors:
        res["mx_throughput_error"] = errors[0][:120]
    # delivery: wait until every accepted message is in a Maildir (or 60 s)
    found = 0
    t_last = time.monotonic()
    stall = time.monotonic() + 60
    while time.monotonic() < stall:
        found = sum(maildir_count(a.maildir_root, r) - before[r] for r in rcpts)
        if found >= accepted:
            break
        time.sleep(0.05)
    t_last = time.monotonic()
    res["mx_throughput_delivered_per_s"] = round(found / (t_last - t0), 1) if found else 0
    res["mx_throughput_lost"] = max(0, accepted - found)
    ok = accepted > 0 and not errors
    res["mx_throughput_status"] = "ok" if ok else (
        f"failed: {(refusals or errors or ['nothing accepted'])[0][:80]}")


def latency(a, sender, msgs, receiver, res):
    imap = Imap(a.imap_host, a.imaps_port, receiver)
    imap.cmd("SELECT INBOX")
    exists = []
    stop = threading.Event()
    imap.c.send(b"i1 IDLE\r\n")
    line = imap.c.readline()
    while not line.startswith("+"):
        line = imap.c.readline()

    def reader():
        rx = re.compile(r"^\* (\d+) EXISTS")
        while not stop.is_set():
            try:
                line = imap.c.readline()
            except (OSError, ConnectionError):
                return
            m = rx.match(line)
            if m:
                exists.append((int(m.group(1)), time.monotonic()))
    rt = threading.Thread(target=reader, daemon=True)
    rt.start()
    c = smtp_open(a.host, a.smtp_port)
    to_250, to_ex, accept_to_ex = [], [], []
    missing = 0
    refusal = None
    for rcpt, body in msgs:
        seen = len(exists)
        code, text, t_dot, t_reply = smtp_send(c, sender, receiver, body)
        if code != 250:
            refusal = refusal or text.replace("\n", " ")
            continue
        to_250.append((t_reply - t_dot) * 1000)
        deadline = time.monotonic() + 10
        while len(exists) <= seen and time.monotonic() < deadline:
            time.sleep(0.0002)
        if len(exists) <= seen:
            missing += 1
            continue
        t_ex = exists[seen][1]
        to_ex.append((t_ex - t_dot) * 1000)
        accept_to_ex.append(max(0.0, (t_ex - t_reply) * 1000))
        time.sleep(0.02)  # let trailing untagged lines (RECENT) pass
    stop.set()
    c.send(b"QUIT\r\n")
    try:
        imap.c.send(b"DONE\r\n")
    except OSError:
        pass
    imap.close()
    res["mx_latency_messages"] = len(msgs)
    res["mx_latency_missing"] = missing
    for name, vals in (("exists", to_ex), ("250", to_250), ("accept_exists", accept_to_ex)):
        for p in (50, 99):
            v = pct(vals, p)
            if v is not None:
                res[f"mx_latency_{name}_p{p}_ms"] = round(v, 2)
        if vals:
            res[f"mx_latency_{name}_max_ms"] = round(max(vals), 2)
    res["mx_latency_status"] = "ok" if to_ex and not missing else (
        f"failed: {(refusal or 'EXISTS missing')[:80]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", default="target")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--smtp-port", type=int, required=True, help="the MX (port 25) listener")
    ap.add_argument("--imap-host")
    ap.add_argument("--imaps-port", type=int, required=True)
    ap.add_argument("--domain", required=True, help="the target's mail domain")
    ap.add_argument("--maildir-root", required=True, help="a user's Maildir, %%a = address")
    ap.add_argument("--dns-port", type=int, default=15353)
    ap.add_argument("--sender-domain", default="mxbench.example",
                    help="not under .test: OpenDKIM's libunbound answers .test itself")
    ap.add_argument("--selector", help="default: a new one per run (resolvers cache the last run's key)")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--messages", type=int, default=100, help="latency samples")
    ap.add_argument("--recipients", type=int, default=8)
    ap.add_argument("--pool", type=int, default=60, help="distinct signed messages cycled")
    ap.add_argument("--scenario", default="all", choices=("all", "throughput", "latency"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    a.imap_host = a.imap_host or a.host
    a.selector = a.selector or f"b{rand_local(8)}"
    res = {"label": a.label, "mx_target": f"{a.host}:{a.smtp_port}",
           "mx_load_1m_before": round(os.getloadavg()[0], 2), "mx_cpus": os.cpu_count()}

    with tempfile.TemporaryDirectory(prefix="mxbench-") as tmp:
        key, txt = make_key(tmp)
        dns = DnsServer({f"{a.selector}._domainkey.{a.sender_domain}": {"TXT": [txt]}},
                        port=a.dns_port)
        try:
            rcpts = [f"{rand_local()}@{a.domain}" for _ in range(a.recipients)]
            receiver = f"{rand_local()}@{a.domain}"
            for u in rcpts + [receiver]:
                Imap(a.imap_host, a.imaps_port, u).close()  # create-on-login
            sender = f"{rand_local()}@{a.sender_domain}"
            template = (ROOT / "tests" / "data" / "filter" / "encrypted.eml").read_bytes()
            t = time.monotonic()
            pool = make_messages(template, a.pool, sender, rcpts, a.selector, a.sender_domain, key)
            lat = make_messages(template, a.messages, sender, [receiver], a.selector,
                                a.sender_domain, key)
            res["mx_sign_seconds"] = round(time.monotonic() - t, 2)
            res["mx_message_bytes"] = len(pool[0][1])
            res["_dns"] = dns
            warm_up(a, sender, pool, rcpts[0], res)
            if a.scenario in ("all", "throughput"):
                throughput(a, sender, pool, rcpts, res)
            if a.scenario in ("all", "latency"):
                latency(a, sender, lat, receiver, res)
        except Exception as e:  # noqa: BLE001  (the table shows it)
            res["prepare_status"] = f"failed: {e}"[:120]
        finally:
            res.pop("_dns", None)
            res["mx_dkim_key_queries"] = sum(1 for n, q in dns.queries if q == "TXT")
            dns.stop()
    emit(res, a.json)


def emit(res, as_json):
    if not as_json:
        for k, v in res.items():
            print(f"{k:36} {v}")
        return
    items = list(res.items())
    print("{")
    for i, (k, v) in enumerate(items):
        sep = "," if i < len(items) - 1 else ""
        val = f'"{v}"' if isinstance(v, str) else str(v)
        if isinstance(v, str):
            val = '"' + v.replace("\\", "\\\\").replace('"', "'") + '"'
        print(f'"{k}": {val}{sep}')
    print("}")


if __name__ == "__main__":
    main()
