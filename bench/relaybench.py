#!/usr/bin/python3
"""relaybench.py: relay-to-relay benchmark for bench/run.sh (scenario `relay`,
issue 17): two relays A and B on loopback, users on A submit Delta
Chat-shaped encrypted messages to users on B who sit in IMAP IDLE.

Targets (--targets, default "mxdeliv smtp ref"):

  * mxdeliv  two chatmaild-servers (build/chatmaild-server): A on 127.0.0.1,
             B on 127.0.0.1 and 127.0.0.3; a test DNS server
             (tests/integration/dnsserver.py) gives relayb.bench's MX
             (mx.relayb.bench -> 127.0.0.3) and A's DKIM key; a test CA
             issued B's certificate and is A's tls_ca_file, so TLS verifies.
             A delivers with POST https://mx.relayb.bench/mxdeliv
             (mxdeliv_port = B's https port).
  * smtp     the same pair with A's mxdeliv_port pointed at a closed port:
             A falls back to SMTP (STARTTLS, verified) on B's smtp port.
  * ref      two Postfix+Dovecot reference relays (bench/reference/start.sh
             twice, own directories, addresses 127.0.0.40 and 127.0.0.41,
             Dovecot with chatmail's 0 ms IDLE patch): A's Postfix relays
             relayb.bench to B's MX listener over SMTP with TLS verified
             against B's CA (smtp_tls_policy_maps: verify, match the
             domain); B's OpenDKIM milter verifies DKIM. The reference
             relay does not sign (no OpenDKIM signing on its submission
             path), so the bench signs the messages before submitting them
             there (dkimpy, a key in the test DNS server); ours are sent
             unsigned and A signs them.

Measured per target, after one warm-up message (key lookups, TLS
sessions, connections):

  * latency: one receiver on B in IDLE; one sender on A submits M messages
    one at a time (SMTP submission, implicit TLS, AUTH); the clock starts
    before MAIL FROM and stops at `* N EXISTS` on B: p50/p99/max;
  * throughput: C sender connections on A submit N messages as fast as
    they can to R receivers on B (each in IDLE); sustained messages/s =
    N / (first submit -> the last EXISTS on B), plus the submit rate alone.

Output: one JSON object per target (--json, one key per line) or a table
(--table: ours/ref like bench/table.sh). The client is Python: on a 2-core
machine it competes with the relays for CPU; all targets are measured the
same way.
"""
import argparse
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "bench"))
import cmtest  # noqa: E402
from dnsserver import DnsServer  # noqa: E402
from mxbench import (PASSWORD, Imap, emit, make_key, maildir_count, pct,  # noqa: E402
                     rand_local, tls_client)
import dkim  # noqa: E402

A_DOM, B_DOM = "relaya.bench", "relayb.bench"   # not .test: OpenDKIM's libunbound
B_IP = "127.0.0.3"
REF_A_IP, REF_B_IP = "127.0.0.40", "127.0.0.41"
REF_A_SMTPS, REF_A_IMAPS, REF_A_IMAP = 11465, 11993, 11143
REF_B_SMTPS, REF_B_IMAPS, REF_B_IMAP, REF_B_MX = 12465, 12993, 12143, 12025
WAIT = 60.0


# ---------------------------------------------------------------- messages

def make_messages(template, n, pairs, sign=None):
    """[(sender, rcpt, raw)]; pairs cycles [(sender, rcpt)]; sign = (selector,
    key) signs with d=A_DOM (the reference relay does not sign)."""
    out = []
    for i in range(n):
        sender, rcpt = pairs[i % len(pairs)]
        raw = template.replace(b"alice@example.org", sender.encode())
        raw = raw.replace(b"bob@example.net", rcpt.encode())
        raw = re.sub(rb"Message-ID: <[^>]*>",
                     f"Message-ID: <rb{i}.{rand_local(12)}@{A_DOM}>".encode(), raw)
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if sign:
            raw = dkim.sign(raw, sign[0].encode(), A_DOM.encode(), sign[1],
                            canonicalize=(b"relaxed", b"relaxed"),
                            include_headers=[b"from", b"to", b"subject", b"date",
                                             b"message-id"]) + raw
        out.append((sender, rcpt, raw))
    return out


def submit_conn(host, port, user):
    s = smtplib.SMTP_SSL(host, port, context=tls_client(), timeout=WAIT)
    s.login(user, PASSWORD)
    return s


class Idler:
    """An IMAP connection in IDLE on INBOX; .exists = [(n, monotonic)]."""

    def __init__(self, host, port, user):
        self.imap = Imap(host, port, user)
        self.imap.cmd("SELECT INBOX")
        self.exists = []
        self.stop = False
        self.imap.c.send(b"i1 IDLE\r\n")
        line = self.imap.c.readline()
        while not line.startswith("+"):
            line = self.imap.c.readline()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        rx = re.compile(r"^\* (\d+) EXISTS")
        while not self.stop:
            try:
                line = self.imap.c.readline()
            except (OSError, ConnectionError, ValueError):
                return
            m = rx.match(line)
            if m:
                self.exists.append((int(m.group(1)), time.monotonic()))

    def count(self):
        return self.exists[-1][0] if self.exists else 0

    def close(self):
        self.stop = True
        try:
            self.imap.c.send(b"DONE\r\n")
        except OSError:
            pass
        self.imap.close()


# ---------------------------------------------------------------- measuring

def wait_for(cond, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.0005)
    return False


def run_bench(t, a, res):
    """t: dict with a_host, a_smtps, a_imaps, b_host, b_imaps, sign."""
    template = (ROOT / "tests" / "data" / "filter" / "encrypted.eml").read_bytes()
    senders = [f"{rand_local()}@{A_DOM}" for _ in range(a.connections)]
    receivers = [f"{rand_local()}@{B_DOM}" for _ in range(a.receivers)]
    lat_rcpt = f"{rand_local()}@{B_DOM}"
    for u in senders:
        Imap(t["a_host"], t["a_imaps"], u).close()  # create-on-login
    for u in receivers + [lat_rcpt]:
        Imap(t["b_host"], t["b_imaps"], u).close()
    lat_msgs = make_messages(template, a.messages + 1, [(senders[0], lat_rcpt)], t["sign"])
    pairs = [(senders[i % len(senders)], receivers[i % len(receivers)])
             for i in range(len(senders) * len(receivers))]
    tp_msgs = make_messages(template, a.throughput, pairs, t["sign"])
    res["relay_message_bytes"] = len(lat_msgs[0][2])

    # latency: one message at a time, submit -> EXISTS on B
    idle = Idler(t["b_host"], t["b_imaps"], lat_rcpt)
    s = submit_conn(t["a_host"], t["a_smtps"], senders[0])
    lat, missing = [], 0
    try:
        for i, (snd, rcpt, raw) in enumerate(lat_msgs):
            seen = idle.count()
            t0 = time.monotonic()
            s.sendmail(snd, [rcpt], raw)
            if not wait_for(lambda: idle.count() > seen, timeout=30):
                missing += 1
                if i == 0:
                    raise RuntimeError("the warm-up message never arrived on B")
                continue
            if i > 0:  # the first one is the warm-up
                lat.append((idle.exists[-1][1] - t0) * 1000)
            time.sleep(0.02)
    finally:
        s.quit()
        idle.close()
    res["relay_latency_messages"] = a.messages
    res["relay_latency_missing"] = missing
    for p in (50, 99):
        v = pct(lat, p)
        if v is not None:
            res[f"relay_latency_p{p}_ms"] = round(v, 1)
    if lat:
        res["relay_latency_max_ms"] = round(max(lat), 1)

    # throughput: C connections submit as fast as they can
    idlers = [Idler(t["b_host"], t["b_imaps"], u) for u in receivers]
    conns = {u: submit_conn(t["a_host"], t["a_smtps"], u) for u in senders}
    per = {u: [m for m in tp_msgs if m[0] == u] for u in senders}
    errors = []

    def worker(u):
        c = conns[u]
        for snd, rcpt, raw in per[u]:
            try:
                c.sendmail(snd, [rcpt], raw)
            except smtplib.SMTPException as e:
                errors.append(str(e)[:80])
    threads = [threading.Thread(target=worker, args=(u,)) for u in senders]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t_sub = time.monotonic() - t0
    total = len(tp_msgs) - len(errors)
    ok = wait_for(lambda: sum(i.count() for i in idlers) >= total, timeout=max(WAIT, total / 5))
    last = max((i.exists[-1][1] for i in idlers if i.exists), default=t0)
    got = sum(i.count() for i in idlers)
    # what B stored, independent of IDLE
    stored = sum(maildir_count(t["b_maildir"], u) for u in receivers)
    for c in conns.values():
        try:
            c.quit()
        except smtplib.SMTPException:
            pass
    for i in idlers:
        i.close()
    res["relay_throughput_messages"] = len(tp_msgs)
    res["relay_throughput_connections"] = len(senders)
    res["relay_throughput_receivers"] = len(receivers)
    res["relay_submit_per_s"] = round(total / t_sub, 1) if t_sub > 0 else 0
    res["relay_sustained_per_s"] = round(got / (last - t0), 1) if last > t0 else 0
    res["relay_throughput_missing"] = max(0, total - stored)
    res["relay_throughput_no_exists"] = max(0, total - got)
    if errors:
        res["relay_submit_errors"] = len(errors)
        res["relay_submit_error"] = errors[0]
    res["relay_status"] = "ok" if ok and not missing and not errors else (
        f"failed: {errors[0] if errors else 'EXISTS missing'}")
    if not ok and stored >= total and not missing and not errors:
        # stored on B, but the IDLE session never announced the last one(s)
        res["relay_status"] = f"ok (stored; {total - got} EXISTS not seen in {WAIT:.0f} s)"


# ---------------------------------------------------------------- ours

def run_ours(path, a, tmp, dns_zone):
    ca = cmtest.TestCA(Path(tmp) / "ca")
    leaf_a = ca.make_leaf("a", sans=f"DNS:{A_DOM},IP:127.0.0.1", cn=A_DOM)
    leaf_b = ca.make_leaf("b", sans=f"DNS:{B_DOM},DNS:mx.{B_DOM},IP:127.0.0.1,IP:{B_IP}",
                          cn=B_DOM)
    keydir = Path(tmp) / f"dkim-{path}"
    keydir.mkdir()
    key_pem, txt = make_key(keydir)
    dkim_path = keydir / "opendkim.private"
    dkim_path.write_bytes(key_pem)
    dkim_path.chmod(0o600)
    zone = dict(dns_zone)
    zone[f"opendkim._domainkey.{A_DOM}"] = {"TXT": [txt]}
    dns = DnsServer(zone)
    common = {"max_load_1m": "1000",
              "max_user_send_per_minute": "100000000", "max_user_send_burst_size": "100000000",
              "dns_servers": dns.address}
    b = a_srv = None
    res = {"label": f"ours-{path}", "relay_path": path}
    try:
        b = cmtest.Server(Path(tmp) / f"B-{path}", str(ca.crt), B_DOM,
                          (str(leaf_b.fullchain), str(leaf_b.key)),
                          {**common, "listen": f"127.0.0.1, {B_IP}"}, a.binary).start()
        closed = cmtest.free_ports(1)[0]
        a_srv = cmtest.Server(Path(tmp) / f"A-{path}", str(ca.crt), A_DOM,
                              (str(leaf_a.fullchain), str(leaf_a.key)),
                              {**common, "tls_ca_file": str(ca.crt), "dkim_key_path": str(dkim_path),
                               "mxdeliv_port": b.port("https") if path == "mxdeliv" else closed,
                               "outbound_smtp_port": b.port("smtp")}, a.binary).start()
        run_bench({"a_host": "127.0.0.1", "a_smtps": a_srv.port("submissions"),
                   "a_imaps": a_srv.port("imaps"), "b_host": "127.0.0.1",
                   "b_imaps": b.port("imaps"), "b_maildir": str(b.tmpdir / "mail" / "%a"),
                   "sign": None}, a, res)
        log = a_srv.log_text()
        res["relay_a_log_warnings"] = sum(1 for ln in log.splitlines() if " warn" in ln)
        # the path really taken: A logs the switch to SMTP once per MX host
        over_smtp = "delivers over SMTP, not /mxdeliv" in log
        if over_smtp != (path == "smtp"):
            res["relay_status"] = f"failed: the messages did not go over {path}"
        res["relay_dns_queries"] = len(dns.queries)
    except Exception as e:  # noqa: BLE001  (the table shows it)
        res["relay_status"] = f"failed: {e}"[:120]
    finally:
        for srv in (a_srv, b):
            if srv is not None:
                try:
                    srv.stop()
                except AssertionError:
                    srv.kill()
        dns.stop()
    return res


# ---------------------------------------------------------------- reference

def ref_env(which):
    d = Path(f"/var/tmp/chatbench-relay{which}")
    if which == "a":
        e = {"CHATBENCH_REF_IP": REF_A_IP, "CHATBENCH_REF_DOMAIN": A_DOM,
             "CHATBENCH_REF_SMTPS": str(REF_A_SMTPS), "CHATBENCH_REF_IMAPS": str(REF_A_IMAPS),
             "CHATBENCH_REF_IMAP": str(REF_A_IMAP)}
    else:
        e = {"CHATBENCH_REF_IP": REF_B_IP, "CHATBENCH_REF_DOMAIN": B_DOM,
             "CHATBENCH_REF_SMTPS": str(REF_B_SMTPS), "CHATBENCH_REF_IMAPS": str(REF_B_IMAPS),
             "CHATBENCH_REF_IMAP": str(REF_B_IMAP), "CHATBENCH_REF_MX": str(REF_B_MX)}
    return d, {**os.environ, "CHATBENCH_REF_DIR": str(d), **e}


def ref_stop():
    for which in ("b", "a"):
        d, env = ref_env(which)
        subprocess.run(["bash", str(ROOT / "bench" / "reference" / "stop.sh"), "--clean"], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)


def run_ref(a, tmp):
    res = {"label": "ref", "relay_path": "postfix-smtp"}
    selector = f"b{rand_local(8)}"
    keydir = Path(tmp) / "dkim-ref"
    keydir.mkdir()
    key_pem, txt = make_key(keydir)
    dns = DnsServer({f"{selector}._domainkey.{A_DOM}": {"TXT": [txt]}}, port=a.dns_port)
    try:
        ref_stop()
        for which in ("b", "a"):
            d, env = ref_env(which)
            d.mkdir(parents=True, exist_ok=True)
            # the patched Dovecot library (0 ms IDLE delay) is built once
            shared = Path("/var/tmp/chatbench-ref/lib-patched")
            if (shared / ".patched").exists() and not (d / "lib-patched" / ".patched").exists():
                shutil.rmtree(d / "lib-patched", ignore_errors=True)
                shutil.copytree(shared, d / "lib-patched", symlinks=True)
            env["CHATBENCH_REF_DNS"] = dns.address
            # stdout and stderr to files: the daemons it starts keep them open
            log = Path(tmp) / f"ref-{which}.start.log"
            with open(log, "wb") as f:
                p = subprocess.run(["bash", str(ROOT / "bench" / "reference" / "start.sh"),
                                    "patched"], env=env, stdout=f, stderr=f,
                                   stdin=subprocess.DEVNULL, timeout=300)
            if p.returncode != 0:
                raise RuntimeError(f"reference {which} did not start: "
                                   f"{log.read_text(errors='replace').strip()[-200:]}")
        # A relays relayb.bench to B's MX listener, TLS verified against B's CA
        pa = ref_env("a")[0] / "postfix" / "etc"
        b_ca = ref_env("b")[0] / "ca" / "ca.crt"
        nexthop = f"[{REF_B_IP}]:{REF_B_MX}"
        (pa / "transport").write_text(f"{B_DOM} smtp:{nexthop}\n")
        (pa / "tls_policy").write_text(f"{nexthop} verify match={B_DOM}\n")
        for m in ("transport", "tls_policy"):
            subprocess.run(["postmap", f"texthash:{pa / m}"], capture_output=True)
        subprocess.run(["postconf", "-c", str(pa), "-e",
                        f"transport_maps = texthash:{pa / 'transport'}",
                        f"smtp_tls_policy_maps = texthash:{pa / 'tls_policy'}",
                        f"smtp_tls_CAfile = {b_ca}",
                        "smtp_tls_security_level = encrypt",
                        "smtp_tls_loglevel = 1",
                        f"smtp_bind_address = {REF_A_IP}",
                        "smtp_tls_session_cache_database = "
                        f"btree:{ref_env('a')[0] / 'postfix' / 'data' / 'smtp_scache'}"],
                       check=True, capture_output=True)
        subprocess.run(["postfix", "-c", str(pa), "reload"], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        run_bench({"a_host": REF_A_IP, "a_smtps": REF_A_SMTPS, "a_imaps": REF_A_IMAPS,
                   "b_host": REF_B_IP, "b_imaps": REF_B_IMAPS,
                   "b_maildir": str(ref_env("b")[0] / "mail" / "%a"), "sign": (selector, key_pem)},
                  a, res)
    except Exception as e:  # noqa: BLE001
        res["relay_status"] = f"failed: {e}"[:160]
    finally:
        if not a.keep_ref:
            ref_stop()
        dns.stop()
    return res


# ---------------------------------------------------------------- table

ROWS = [("latency p50 submit->EXISTS (ms)", "relay_latency_p50_ms", False),
        ("latency p99 submit->EXISTS (ms)", "relay_latency_p99_ms", False),
        ("latency max (ms)", "relay_latency_max_ms", False),
        ("sustained msgs/s (submit->EXISTS)", "relay_sustained_per_s", True),
        ("submit msgs/s on A", "relay_submit_per_s", True),
        ("messages lost", "relay_throughput_missing", False)]


def table(results):
    by = {r["label"]: r for r in results}
    ref = by.get("ref", {})
    cols = [r["label"] for r in results]
    w = 36
    out = [f"{'relay -> relay':{w}}" + "".join(f"{c:>14}" for c in cols) +
           ("".join(f"{c + '/ref':>16}" for c in cols if c != "ref") if ref else "")]
    for name, key, higher in ROWS:
        line = f"{name:{w}}"
        for c in cols:
            v = by[c].get(key)
            line += f"{'-' if v is None else v:>14}"
        if ref:
            for c in cols:
                if c == "ref":
                    continue
                v, rv = by[c].get(key), ref.get(key)
                ratio = f"{v / rv:.2f}x" if isinstance(v, (int, float)) and rv else "-"
                line += f"{ratio:>16}"
        out.append(line)
    out.append(f"{'status':{w}}" + "".join(f"{str(by[c].get('relay_status', '?'))[:13]:>14}"
                                           for c in cols))
    for c in cols:
        st = str(by[c].get("relay_status", "?"))
        if st != "ok":
            out.append(f"  {c}: {st}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", default="mxdeliv smtp ref")
    ap.add_argument("--binary", default=str(ROOT / "build" / "chatmaild-server"))
    ap.add_argument("--messages", type=int, default=100, help="latency samples")
    ap.add_argument("--throughput", type=int, default=1000, help="messages in the throughput run")
    ap.add_argument("--connections", type=int, default=8, help="sender connections on A")
    ap.add_argument("--receivers", type=int, default=16, help="receivers in IDLE on B")
    ap.add_argument("--dns-port", type=int, default=15354, help="the reference's DKIM DNS")
    ap.add_argument("--quick", action="store_true", help="20 latency samples, 200 messages")
    ap.add_argument("--keep-ref", action="store_true", help="leave the reference pair running")
    ap.add_argument("--json", action="store_true", help="one JSON object per target")
    ap.add_argument("--workdir", help="keep configs and logs here (default: a temporary dir)")
    a = ap.parse_args()
    if a.quick:
        a.messages, a.throughput = 20, 200
    zone = {B_DOM: {"MX": [(10, f"mx.{B_DOM}")]}, f"mx.{B_DOM}": {"A": [B_IP]}}
    results = []
    if a.workdir:
        shutil.rmtree(a.workdir, ignore_errors=True)
        os.makedirs(a.workdir)
    with tempfile.TemporaryDirectory(prefix="relaybench-", dir="/var/tmp") as tmpd:
        tmp = a.workdir or tmpd
        os.chmod(tmp, 0o755)
        for t in a.targets.split():
            if t in ("mxdeliv", "smtp"):
                results.append(run_ours(t, a, tmp, zone))
            elif t == "ref":
                if os.geteuid() != 0:
                    results.append({"label": "ref", "relay_status": "failed: needs root"})
                else:
                    results.append(run_ref(a, tmp))
            else:
                sys.exit(f"relaybench: unknown target {t}")
            print(f"relaybench: {t}: {results[-1].get('relay_status')}", file=sys.stderr)
    for r in results:
        r["label"] = r["label"].replace("ours-", "")
        if a.json:
            emit(r, True)
    print(table(results))


if __name__ == "__main__":
    main()
