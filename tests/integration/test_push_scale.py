"""test_push_scale.py: push notifications at scale (issue 15): N accounts
(10,000; CM_PUSH_SCALE_N overrides for a quick run) with one device token
each receive one message in a burst (N/1000 submissions of 1000
recipients). Every token is notified exactly once, nothing stays pending,
the server's peak RSS stays bounded, and a user in IMAP IDLE still sees
its own mail promptly: submit -> `* N EXISTS` is measured before and
during the burst (p50/p99 printed with the RSS; run with -s to see them).

The accounts are planted on disk (the sender's password file copied, a
metadata.json with one token each) rather than created by N logins."""
import json
import os
import shutil
import threading
import time

import pytest

import cmtest
from cmtest import DOMAIN
from push_helpers import EndpointProcess, pending, push_server
from submit_helpers import PASSWORD, account_dir, fixture, login

N = int(os.environ.get("CM_PUSH_SCALE_N", "10000"))
ALICE = f"alice0001@{DOMAIN}"
WATCHER = f"watcher01@{DOMAIN}"
OTHER = f"other0001@{DOMAIN}"


def user(i):
    return f"p{i:08d}@{DOMAIN}"


def token(i):
    return f"scaletoken-{i:08d}"


def imap_idle_client(srv, who):
    c = cmtest.tls_connect(srv.port("imaps"))
    c.readline()
    assert c.imap_cmd("l", f"LOGIN {who} {PASSWORD}")[1].startswith("l OK")
    _, done = c.imap_cmd("s", "SELECT INBOX")
    assert done.startswith("s OK"), done
    c.send("i IDLE\r\n")
    assert c.readline().startswith("+ ")
    return c


def measure_idle(srv, c, stop, out, state):
    """OTHER submits to WATCHER until stop is set; out gets the seconds from
    the start of each submission to the EXISTS line."""
    s = login(srv, OTHER)
    msg = fixture("encrypted.eml", OTHER, WATCHER)
    try:
        while not stop.is_set():
            t0 = time.monotonic()
            assert s.sendmail(OTHER, [WATCHER], msg) == {}
            state["n"] += 1
            while True:
                line = c.readline(timeout=60)
                if line == f"* {state['n']} EXISTS":
                    break
            out.append(time.monotonic() - t0)
            time.sleep(0.05)
    finally:
        s.quit()


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def rss_peak_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@pytest.mark.timeout(900)
def test_push_burst_every_token_once(server, test_ca, tmp_path):
    ep = EndpointProcess(test_ca, tmp_path)
    try:
        srv = push_server(server, test_ca, ep)
        for who in (ALICE, WATCHER, OTHER):
            login(srv, who).quit()  # create-on-login
        pw = account_dir(srv, ALICE) / "password"
        now = int(time.time())
        for i in range(N):
            d = account_dir(srv, user(i))
            d.mkdir()
            shutil.copyfile(pw, d / "password")
            (d / "metadata.json").write_text(json.dumps({"devicetoken": {token(i): now}}))
        c = imap_idle_client(srv, WATCHER)
        state = {"n": 0}
        base, during = [], []
        stop = threading.Event()
        t = threading.Thread(target=measure_idle, args=(srv, c, stop, base, state))
        t.start()
        time.sleep(3)
        stop.set()
        t.join()
        stop = threading.Event()
        t = threading.Thread(target=measure_idle, args=(srv, c, stop, during, state))
        t.start()
        t0 = time.monotonic()
        s = login(srv, ALICE)
        for k in range(0, N, 1000):
            rcpts = [user(i) for i in range(k, min(N, k + 1000))]
            assert s.sendmail(ALICE, rcpts, fixture("encrypted.eml", ALICE, rcpts[0])) == {}
        s.quit()
        t_accepted = time.monotonic() - t0
        cmtest.poll(lambda: ep.count() >= N, timeout=600, interval=0.5,
                    what=f"{N} notifications")
        t_notified = time.monotonic() - t0
        stop.set()
        t.join()
        time.sleep(1)
        bodies = ep.bodies()
        assert len(bodies) == N and set(bodies) == {token(i).encode() for i in range(N)}
        cmtest.poll(lambda: pending(srv) == [], timeout=60, what="no item left")
        peak = rss_peak_kb(srv.pid)
        print(f"\npush scale: {ep.connections()} connections to the endpoint; {N} accounts, accepted in {t_accepted:.1f} s, all notified "
              f"after {t_notified:.1f} s; server peak RSS {peak / 1024:.1f} MiB; "
              f"IDLE submit->EXISTS before: n={len(base)} p50={pct(base, .5) * 1000:.0f} ms "
              f"p99={pct(base, .99) * 1000:.0f} ms; during the burst: n={len(during)} "
              f"p50={pct(during, .5) * 1000:.0f} ms p99={pct(during, .99) * 1000:.0f} ms")
        assert peak < 512 * 1024, peak
        # the connections are kept through the burst (PUSH_CONNECTIONS_MAX 4;
        # each new one costs the loop a handshake and a CA load)
        assert ep.connections() <= 8, ep.connections()
        assert during and pct(during, .99) < 5.0, during
        c.send("DONE\r\n")
        c.close()
    finally:
        ep.stop()
