"""test_imap_attacks.py: issue 16, the IMAP half of the hostile-load suite.

Each test plays one attack against a server of its own and measures that
other clients keep being served (a fresh login's latency) or that the
server's memory (VmRSS from /proc) stays bounded:

- four sessions send a 200-key `OR ... BODY zzqq` SEARCH on a big mailbox
  and hang up; SEARCHes under the key bound but over the scan budget do the
  same: a fresh login completes in under 1 s, the answers are NO [LIMIT];
- 100 anonymous `a LOGIN {25000000}` announcements (synchronising and
  LITERAL+): tagged BAD without "+", RSS rises by less than 10 MB;
- 20 authenticated 30 MB APPENDs at once: the messages are stored, RSS
  stays bounded (the message streams into a spool file);
- COPY over the quota: NO [OVERQUOTA], the accounting unchanged.
"""
import os
import socket
import threading
import time

import pytest

import cmtest
from cmtest import HOST
from submit_helpers import PASSWORD, account_dir, addr

ALICE = addr("alice0001")
BOB = addr("bob000002")
MB = 1024 * 1024


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def imap_tls(srv, timeout=cmtest.TIMEOUT):
    c = cmtest.tls_connect(srv.port("imaps"), timeout=timeout)
    assert c.readline().startswith("* OK")
    return c


def imap_login(srv, user, timeout=cmtest.TIMEOUT):
    c = imap_tls(srv, timeout)
    _, tagged = c.imap_cmd("l1", f"LOGIN {user} {PASSWORD}")
    assert tagged.startswith("l1 OK"), tagged
    return c


def timed_login(srv, user):
    t0 = time.monotonic()
    c = imap_login(srv, user, timeout=30)
    dt = time.monotonic() - t0
    c.close()
    return dt


def fill_inbox(srv, user, count, size):
    """Writes count messages of size bytes straight into the Maildir (the
    account exists: the user logged in once)."""
    d = account_dir(srv, user) / "new"
    d.mkdir(parents=True, exist_ok=True)
    body = (b"abcdefghij" * 7 + b"\r\n") * (size // 72)
    head = b"From: <x@relay1.test>\r\nTo: <%s>\r\nSubject: big\r\n\r\n" % user.encode()
    msg = head + body
    for i in range(count):
        name = f"{1700000000 + i}.M{i}P1Q1.hostile,S={len(msg)},W={len(msg) + 0}"
        (d / name).write_bytes(msg)
    return count * len(msg)


def search_attack(srv, keys, n_sessions, hang_up):
    """n_sessions log in, SELECT INBOX, send `SEARCH <keys>`; with hang_up
    they close at once, else they return the tagged replies."""
    replies = []
    conns = []
    for _ in range(n_sessions):
        c = imap_login(srv, BOB)
        _, t = c.imap_cmd("s1", "SELECT INBOX")
        assert t.startswith("s1 OK"), t
        conns.append(c)
    for c in conns:
        c.send(f"s2 SEARCH {keys}\r\n")
    if hang_up:
        for c in conns:
            c.close()
        return replies
    for c in conns:
        _, t = c.imap_until_tagged("s2")
        replies.append(t)
        c.close()
    return replies


@pytest.mark.timeout(120)
def test_search_attack_does_not_starve_logins(server):
    srv = server()
    imap_login(srv, BOB).close()  # creates the accounts
    imap_login(srv, ALICE).close()
    total = fill_inbox(srv, BOB, 60, MB)  # ~60 MB of message bodies
    assert total > 50 * MB
    base = timed_login(srv, ALICE)

    # the attack: 200 BODY keys, four sessions, hang up
    many = " ".join(["OR BODY zzqq BODY zzqq"] * 100)  # 200 BODY keys
    search_attack(srv, many, 4, hang_up=True)
    worst = max(timed_login(srv, ALICE) for _ in range(3))
    assert worst < 1.0, f"login took {worst:.2f}s during the 200-key SEARCH attack (idle: {base:.2f}s)"
    # the same search answered: refused by the key bound, at once
    t0 = time.monotonic()
    replies = search_attack(srv, many, 1, hang_up=False)
    assert replies[0].startswith("s2 NO [LIMIT]"), replies
    assert time.monotonic() - t0 < 5

    # under the key bound, over the scan budget: each would scan 30 x 60 MB
    costly = " ".join(["OR BODY zzqq BODY zzqq"] * 15)
    search_attack(srv, costly, 4, hang_up=True)
    lat = [timed_login(srv, ALICE) for _ in range(3)]
    assert max(lat) < 1.0, f"login took {max(lat):.2f}s during the costly SEARCH attack"
    replies = search_attack(srv, costly, 2, hang_up=False)
    assert all(r.startswith("s2 NO [LIMIT]") for r in replies), replies
    # an ordinary SEARCH still works on the big mailbox
    c = imap_login(srv, BOB)
    c.imap_cmd("s1", "SELECT INBOX")
    untagged, t = c.imap_cmd("s3", "SEARCH BODY zzqq")
    assert t.startswith("s3 OK"), t
    assert untagged == ["* SEARCH"], untagged
    untagged, t = c.imap_cmd("s4", "SEARCH SUBJECT big")
    assert t.startswith("s4 OK") and len(untagged[0].split()) == 62, (untagged[:1], t)
    c.close()
    print(f"login latency: idle {base:.3f}s, during attacks {worst:.3f}s / {max(lat):.3f}s")


def _announce(port, tag, literal, payload):
    """Connects, announces a literal; for a '+' (or a LITERAL+ one) sends
    payload bytes. Returns (socket, first reply line)."""
    s = socket.create_connection((HOST, port), timeout=cmtest.TIMEOUT)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(f"{tag} LOGIN {literal}\r\n".encode())
    if literal.endswith("+}"):
        try:
            s.sendall(payload)
        except OSError:
            pass
        line = f.readline()
    else:
        line = f.readline()
        if line.startswith(b"+"):
            s.sendall(payload)
    return s, f, line.decode().rstrip()


@pytest.mark.timeout(120)
def test_anonymous_literal_announcements_use_no_memory(server):
    srv = server()
    payload = b"x" * (2 * MB)  # what an attacker sends after a "+"
    time.sleep(0.5)
    before = rss_kb(srv.pid)
    socks = []
    lines = []
    for i in range(100):
        lit = "{25000000}" if i % 2 == 0 else "{25000000+}"
        s, f, line = _announce(srv.port("imap"), f"a{i}", lit, payload)
        socks.append((s, f))
        lines.append(line)
    time.sleep(0.5)
    after = rss_kb(srv.pid)
    rise_mb = (after - before) / 1024
    for s, f in socks:
        s.close()
    assert all(not ln.startswith("+") for ln in lines), lines[:4]
    assert all(ln.startswith(f"a{i} BAD") for i, ln in enumerate(lines)), lines[:4]
    assert rise_mb < 10, f"RSS rose by {rise_mb:.1f} MB for 100 announced literals"
    # the server serves others: a login works
    assert timed_login(srv, ALICE) < 2.0
    print(f"RSS rise for 100 anonymous 25 MB literal announcements: {rise_mb:.2f} MB")


@pytest.mark.timeout(180)
def test_authenticated_appends_go_to_disk_not_ram(server):
    n, size = 20, 30 * 1000 * 1000
    srv = server(extra={"max_message_size": str(size + 1000), "max_mailbox_size": "2000M"})
    conns = [imap_login(srv, addr(f"app{i:06d}")) for i in range(n)]
    time.sleep(0.5)
    before = rss_kb(srv.pid)
    peak = [before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_kb(srv.pid))
            except (OSError, AssertionError):
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    head = b"From: <x@relay1.test>\r\nSubject: append\r\n\r\n"
    msg = head + b"y" * (size - len(head) - 2) + b"\r\n"
    results = [None] * n

    def upload(i):
        c = conns[i]
        c.send(f"p1 APPEND INBOX {{{len(msg)}}}\r\n")
        cont = c.readline()
        assert cont.startswith("+"), cont
        for off in range(0, len(msg), MB):
            c.send(msg[off:off + MB])
        c.send(b"\r\n")
        _, results[i] = c.imap_until_tagged("p1")

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    sampler.join()
    after = rss_kb(srv.pid)
    for c in conns:
        c.close()
    assert all(r and r.startswith("p1 OK") for r in results), results
    for i in range(n):
        files = list((account_dir(srv, addr(f"app{i:06d}")) / "cur").iterdir()) + \
            list((account_dir(srv, addr(f"app{i:06d}")) / "new").iterdir())
        assert len(files) == 1 and files[0].stat().st_size == len(msg)
    peak_mb = (peak[0] - before) / 1024
    end_mb = (after - before) / 1024
    print(f"{n} x 30 MB APPEND: RSS peak rise {peak_mb:.1f} MB, after {end_mb:.1f} MB")
    # in RAM they were n x 30 MB (x3: reserved literal, parsed copy, write
    # buffer); now each session holds at most LIM_IMAP_APPEND_MEM and the
    # store copies the spool file into the Maildir in 64 KiB chunks
    assert peak_mb < 32, f"RSS peak rose by {peak_mb:.1f} MB"
    assert end_mb < 40, f"RSS stayed {end_mb:.1f} MB higher"


def quota_usage(c):
    untagged, t = c.imap_cmd("q1", "GETQUOTAROOT INBOX")
    assert t.startswith("q1 OK"), t
    line = [u for u in untagged if u.startswith("* QUOTA ")][0]
    used, limit = line.split("STORAGE ")[1].rstrip(")").split()
    return int(used), int(limit)


@pytest.mark.timeout(120)
def test_copy_over_quota_refused(server):
    srv = server(extra={"max_mailbox_size": "10M"})
    imap_login(srv, BOB).close()
    fill_inbox(srv, BOB, 3, 2 * MB)  # ~6 MB of 10
    c = imap_login(srv, BOB)
    _, t = c.imap_cmd("c0", "SELECT INBOX")
    assert t.startswith("c0 OK"), t
    used0, limit = quota_usage(c)
    assert limit == 10 * 1024 and 5 * 1024 < used0 < 7 * 1024, (used0, limit)
    _, t = c.imap_cmd("c1", "COPY 1:* INBOX")
    assert t.startswith("c1 NO [OVERQUOTA]"), t
    assert quota_usage(c)[0] == used0
    untagged, t = c.imap_cmd("c2", "NOOP")
    assert not any("EXISTS" in u for u in untagged), untagged  # nothing was left behind
    assert len(list((account_dir(srv, BOB) / "cur").iterdir())) == 0
    # one message fits: copied and counted
    _, t = c.imap_cmd("c3", "COPY 1 INBOX")
    assert t.startswith("c3 OK"), t
    used1 = quota_usage(c)[0]
    assert 1900 < used1 - used0 < 2100, (used0, used1)
    # MOVE within the account adds nothing and is never refused
    _, t = c.imap_cmd("c4", "CREATE Archive")
    _, t = c.imap_cmd("c5", "MOVE 1:* Archive")
    assert t.startswith("c5 OK"), t
    assert quota_usage(c)[0] == used1
    c.close()
