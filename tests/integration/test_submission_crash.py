"""test_submission_crash.py: a 250 survives SIGKILL (issue 3's crash test at the
server level). Several clients submit a stream of encrypted messages, each
to a local and a remote recipient, while the server is killed with SIGKILL
at random moments, over several rounds with restarts in between. Every
message that got a 250 must then be in the recipient's Maildir exactly once
and in the outbound queue exactly once, byte-identical to what was sent
(after the cleanup). A message that got no 250 may be there at most once."""
import random
import re
import smtplib
import threading
import time

import cmtest
from submit_helpers import addr, fixture, login, queued, stored

ALICE, BOB = addr("alice0001"), addr("bob000002")
REMOTE = "dave@remote.example"
ROUNDS = 4
CLIENTS = 3


def sender(srv, stop, acked, tried, tag):
    n = 0
    base = fixture("encrypted.eml", ALICE, BOB)
    while not stop.is_set():
        try:
            s = login(srv, ALICE)
        except (OSError, smtplib.SMTPException):
            return
        try:
            while not stop.is_set():
                n += 1
                marker = f"crash-{tag}-{n}"
                msg = base.replace(b"Mr.abc123@example.org", marker.encode() + b"@example.org")
                tried.add(marker)
                s.sendmail(ALICE, [BOB, REMOTE], msg)
                acked.add(marker)
        except (OSError, smtplib.SMTPException):
            return
        finally:
            try:
                s.close()
            except OSError:
                pass


def markers_in(files):
    out = {}
    for f in files:
        m = re.search(rb"Message-ID: <(crash-[0-9a-z-]+)@example.org>", f.read_bytes())
        assert m, f"unreadable or foreign file {f}"
        out.setdefault(m.group(1).decode(), []).append(f)
    return out


def test_sigkill_never_loses_an_acknowledged_message(server):
    srv = server(extra={"max_user_send_burst_size": 100000})
    login(srv, BOB).quit()
    rng = random.Random(4)
    acked, tried = set(), set()
    for rnd in range(ROUNDS):
        if rnd:
            srv.start()
        stop = threading.Event()
        threads = [threading.Thread(target=sender, args=(srv, stop, acked, tried, f"{rnd}x{i}"))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        cmtest.poll(lambda: len(acked) > rnd * 5, what="some acknowledged messages")
        time.sleep(rng.uniform(0.1, 1.5))  # the random moment of the kill (not a sync wait)
        srv.proc.kill()
        srv.wait()
        stop.set()
        for t in threads:
            t.join(cmtest.TIMEOUT)
    srv.start()  # the teardown checks a clean exit after the last restart
    print(f"acknowledged {len(acked)} of {len(tried)} tried")
    assert len(acked) > ROUNDS * 5
    local = markers_in(stored(srv, BOB))
    remote = markers_in(queued(srv))
    want = fixture("encrypted.eml", ALICE, BOB)
    for m in acked:
        assert len(local.get(m, [])) == 1, (m, local.get(m))
        assert len(remote.get(m, [])) == 1, (m, remote.get(m))
        data = local[m][0].read_bytes()
        assert data == want.replace(b"Mr.abc123@example.org", m.encode() + b"@example.org")
        assert remote[m][0].read_bytes().endswith(data)
    for m in set(local) | set(remote):
        assert m in tried
        assert len(local.get(m, [])) <= 1 and len(remote.get(m, [])) <= 1
