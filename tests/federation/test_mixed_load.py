"""test_mixed_load.py: scenario 5 of issue 14, a mixed load across the
small internet.

20 Delta Chat-shaped senders on relay1.test (each one SMTP session over 465
kept open, as Delta Chat keeps its SMTP connection, sending PGP/MIME
encrypted chat messages with Chat-Version and Autocrypt-shaped headers, one
to three recipients per message as in 1:1 and small group chats, a pause of
0.2-0.8 s between messages) write for CM_FED_LOAD_SECONDS (default 60) to
200 recipients spread over the destinations: 100 on relay2.test (our relay,
over /mxdeliv), 50 on postfix.test and 50 on exim.test (the MTA peers of
mtapeers.py: no /mxdeliv there, so relay1 falls back to SMTP with verified
STARTTLS and then goes to SMTP first). The Postfix peer runs without its
OpenDKIM milter here (see mtapeers.PostfixPeer): scenario 3 checks DKIM.

Every message carries a unique Message-ID; a watcher scans the
destinations' Maildirs and records when each copy first appears. The test
fails if any copy is missing at the end (nothing lost), if any arrives twice,
or if relay1's queue is not empty; it prints, per destination, the number of
copies and the p50/p99/max delivery latency (submission's 250 -> file in the
destination's Maildir).
"""
import os
import random
import shutil
import threading
import time
from pathlib import Path

import pytest

import cmtest
import mx_helpers

SECONDS = float(os.environ.get("CM_FED_LOAD_SECONDS", "60"))
SENDERS = 20
RECIPIENTS = 200
pytestmark = pytest.mark.timeout(int(SECONDS) + 300)


class Destination:
    """Recipients on one host and where their copies land."""

    def __init__(self, name, addresses, maildirs):
        self.name = name
        self.addresses = addresses
        self.maildirs = maildirs  # callable -> iterable of Maildir paths to scan

    def scan(self, seen, now):
        """Adds {(message id, address): first-seen time} for new files."""
        for md, address in self.maildirs():
            for sub in ("new", "cur"):
                d = Path(md) / sub
                try:
                    names = os.listdir(d)
                except FileNotFoundError:
                    continue
                for n in names:
                    key = (str(d), n)
                    if key in seen["files"]:
                        continue
                    try:
                        with open(d / n, "rb") as f:
                            head = f.read(8192)
                    except FileNotFoundError:  # moved new/ -> cur/ meanwhile
                        continue
                    seen["files"].add(key)
                    mid = _message_id(head)
                    rcpts = [address] if address else _rcpts(head, self.addresses)
                    for r in rcpts:
                        k = (mid, r)
                        seen["count"][k] = seen["count"].get(k, 0) + 1
                        seen["at"].setdefault(k, now)


def _message_id(head):
    i = head.find(b"<Mr.load-")
    return head[i + 1:head.find(b">", i)].decode() if i >= 0 else None


def _rcpts(head, addresses):
    """A catch-all Maildir: the envelope recipient from Delivered-To /
    Envelope-To / X-Original-To (whichever the peer writes)."""
    out = []
    for line in head.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n").split(b"\n"):
        low = line.lower()
        if low.startswith((b"delivered-to:", b"envelope-to:", b"x-original-to:")):
            v = line.split(b":", 1)[1].strip().strip(b"<>").decode().lower()
            if v in addresses and v not in out:
                out.append(v)
    return out


def message(sender, rcpts, mid):
    raw = mx_helpers.encrypted(rcpts[0], sender=sender)
    raw = raw.replace(f"To: <{rcpts[0]}>".encode(),
                      ("To: " + ", ".join(f"<{r}>" for r in rcpts)).encode())
    return raw.replace(b"<Mr.abc123@example.org>", f"<{mid}>".encode())


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run_load(r1, dests):
    all_rcpts = [(d, a) for d in dests for a in d.addresses]
    sent = {}  # (mid, rcpt) -> time of the 250
    lock = threading.Lock()
    errors = []
    stop_at = time.monotonic() + SECONDS

    def sender(i):
        rnd = random.Random(i)
        me = f"send{i:05d}@relay1.test"  # chatmail local parts: 9 characters
        n = 0
        try:
            s = r1.submit(me)
            while time.monotonic() < stop_at:
                picks = rnd.sample(all_rcpts, rnd.choice((1, 1, 2, 3)))
                rcpts = [a for _, a in picks]
                mid = f"Mr.load-{i}-{n}@relay1.test"
                n += 1
                refused = s.sendmail(me, rcpts, message(me, rcpts, mid))
                t = time.monotonic()
                assert refused == {}, refused
                with lock:
                    for r in rcpts:
                        sent[(mid, r)] = t
                time.sleep(rnd.uniform(0.2, 0.8))
            s.quit()
        except Exception as e:  # reported after the run, with the sender
            errors.append(f"sender {i}: {e!r}")

    seen = {"files": set(), "count": {}, "at": {}}
    watching = threading.Event()

    def watcher():
        while not watching.is_set():
            now = time.monotonic()
            for d in dests:
                d.scan(seen, now)
            time.sleep(0.02)

    w = threading.Thread(target=watcher, daemon=True)
    w.start()
    threads = [threading.Thread(target=sender, args=(i,)) for i in range(SENDERS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 120)
    assert not errors, errors
    try:
        cmtest.poll(lambda: set(sent) <= set(seen["at"]), timeout=120,
                    what="every copy in its destination's Maildir")
        cmtest.poll(lambda: not r1.queued(), what="relay1's queue empty")
        time.sleep(1)  # a late duplicate would show now
        for d in dests:
            d.scan(seen, time.monotonic())
    finally:
        watching.set()
        w.join(5)
    took = time.monotonic() - t0
    missing = set(sent) - set(seen["at"])
    dupes = {k: c for k, c in seen["count"].items() if c > 1}
    assert not missing, sorted(missing)[:10]
    assert not dupes, sorted(dupes.items())[:10]
    out = [f"mixed load: {SENDERS} senders, {len(all_rcpts)} recipients, {SECONDS:.0f} s of "
           f"sending, {len(sent)} copies delivered, all in {took:.1f} s",
           f"{'destination':<14} {'copies':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"]
    by = {}
    for (mid, r), t in sent.items():
        dname = next(d.name for d in dests if r in d.addresses)
        by.setdefault(dname, []).append((seen["at"][(mid, r)] - t) * 1000)
    for d in dests:
        lat = by.get(d.name, [])
        assert lat, f"nothing was sent to {d.name}"
        out.append(f"{d.name:<14} {len(lat):>7} {percentile(lat, 50):>8.0f} "
                   f"{percentile(lat, 99):>8.0f} {max(lat):>8.0f}")
    print("\n" + "\n".join(out))
    return sent, "\n".join(out)


def relay_destination(relay, n):
    addrs = [f"user{i:05d}@{relay.domain}" for i in range(n)]
    t0 = time.monotonic()
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as ex:  # (each first login hashes a password)
        list(ex.map(relay.make_account, addrs))
    print(f"\n{n} accounts on {relay.domain} in {time.monotonic() - t0:.1f} s")
    root = Path(relay.server.tmpdir) / "mail"
    return Destination(relay.domain, addrs, lambda: [(root / a, a) for a in addrs])


def peer_destination(peer, n):
    """A catch-all Maildir: copies are told apart by the envelope recipient
    the peer writes (Postfix Delivered-To/X-Original-To, Exim Envelope-To)."""
    addrs = [f"user{i:05d}@{peer.domain}" for i in range(n)]
    return Destination(peer.domain, addrs, lambda: [(peer.maildir, None)])


@pytest.fixture
def peers(test_ca):
    """The Postfix and Exim peers (mtapeers.py), started for this test."""
    import mtapeers
    started = []
    try:
        for cls, missing, args in ((mtapeers.PostfixPeer, mtapeers.missing_postfix, {"dkim": False}),
                                   (mtapeers.EximPeer, mtapeers.missing_exim, {})):
            why = missing()
            if why:
                cmtest.require(False, why)
            p = cls(mtapeers.workdir(f"cm-fedload-{cls.kind}-"), test_ca, **args)
            started.append(p)
            p.start()
        yield started
    finally:
        for p in started:
            p.stop()
            shutil.rmtree(p.dir, ignore_errors=True)


def test_mixed_load(request, net, peers):
    r1 = net.add_relay("relay1.test")
    r2 = net.add_relay("relay2.test")
    for p in peers:
        p.publish(net)
    n_peer = RECIPIENTS // 4
    dests = [relay_destination(r2, RECIPIENTS - 2 * n_peer)] + \
        [peer_destination(p, n_peer) for p in peers]
    _, figures = run_load(r1, dests)
    request.node.user_properties.append(("figures", figures))
    m = r1.metrics()
    assert m.get('outbound_deliveries{path="mxdeliv",outcome="failed"}', 0) == 0, m
    assert m.get('outbound_deliveries{path="smtp",outcome="failed"}', 0) == 0, m
