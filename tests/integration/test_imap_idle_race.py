"""IDLE never misses a delivery that races the client's fetch/delete cycle.

Delta Chat's inbox loop, against a sender that submits the next message
while the receiver is still fetching, flagging, CLOSEing and re-SELECTing
the previous one: every message must show up, either in the SELECT
summary or as an unsolicited EXISTS once IDLE starts. A delivery that lands
between CLOSE (no folder selected, nobody watching) and the next SELECT's
directory scan was once lost until the next unrelated change."""
import random
import re
import threading
import time

import cmtest
from submit_helpers import addr, fixture, login

ROUNDS = 40
CYCLES_PER_ROUND = 10  # SELECT/FETCH/CLOSE cycles a round may take (2 deliveries)


def idle_until_exists(c, tag, timeout):
    """IDLE until an EXISTS > 0 arrives; returns its count or None on timeout."""
    c.send(f"{tag} IDLE\r\n".encode())
    assert c.readline() == "+ idling"
    deadline = time.monotonic() + timeout
    n = None
    while n is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            line = c.readline(timeout=left)
        except (TimeoutError, OSError):
            break
        m = re.match(r"\* (\d+) EXISTS$", line)
        if m and int(m.group(1)) > 0:
            n = int(m.group(1))
    c.send(b"DONE\r\n")
    c.imap_until_tagged(tag)
    return n


def select_uidnext(c, tag):
    lines, done = c.imap_cmd(tag, "SELECT INBOX")
    assert done.startswith(f"{tag} OK"), (lines, done)
    return max(int(m.group(1)) for ln in lines if (m := re.search(r"\[UIDNEXT (\d+)\]", ln)))


def test_delivery_racing_close_and_select_is_reported(server):
    """Delta Chat's loop (chatmail core, imap/idle.rs and select_folder.rs):
    SELECT; fetch only when UIDNEXT moved; flag \\Deleted and CLOSE; SELECT
    again; IDLE when UIDNEXT stayed. An EXISTS inside the SELECT reply is
    taken as part of it, so a raced delivery must not be reported there
    while UIDNEXT says nothing is new."""
    srv = server(extra={"max_user_send_per_minute": "100000"})
    sender, rcpt = addr("racesend1"), addr("racercpt1")
    c = cmtest.tls_connect(srv.port("imaps"))
    c.readline()
    assert c.imap_cmd("l", f"LOGIN {rcpt} password1234")[1].startswith("l OK")
    s = login(srv, sender)
    msg = fixture("encrypted.eml", sender, rcpt)
    go = threading.Semaphore(0)
    errors = []

    def sender_loop():
        try:
            for _ in range(ROUNDS):
                go.acquire()
                s.sendmail(sender, [rcpt], msg)
                time.sleep(random.uniform(0, 0.03))  # the second one lands mid-cycle
                s.sendmail(sender, [rcpt], msg)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    t = threading.Thread(target=sender_loop, daemon=True)
    t.start()
    known = select_uidnext(c, "s0")  # nothing delivered yet
    seen = []
    k = 0
    for i in range(ROUNDS):
        go.release()
        want = 2 * (i + 1)
        for _ in range(CYCLES_PER_ROUND):
            if len(seen) >= want:
                break
            k += 1
            uidnext = select_uidnext(c, f"s{k}")
            if uidnext == known:
                n = idle_until_exists(c, f"i{k}", timeout=10)
                assert not errors, errors
                assert n is not None, (f"round {i}: IDLE heard of no delivery "
                                       f"({len(seen)} of {want} seen, UIDNEXT {uidnext})")
            lines, _ = c.imap_cmd(f"f{k}", f"UID FETCH {known}:* (FLAGS)")
            uids = sorted({int(m.group(1)) for ln in lines if (m := re.search(r"UID (\d+)", ln))})
            uids = [u for u in uids if u >= known]
            if uids:
                seen += uids
                known = uids[-1] + 1
                # Only what was fetched, as Delta Chat does: a message that
                # lands after the FETCH stays for the next cycle.
                ok = c.imap_cmd(f"d{k}", f"UID STORE {','.join(map(str, uids))} +FLAGS.SILENT (\\Deleted)")[1]
                assert ok.startswith(f"d{k} OK"), ok
            assert c.imap_cmd(f"c{k}", "CLOSE")[1].startswith(f"c{k} OK")
        assert len(seen) >= want, (f"round {i}: {len(seen)} of {want} messages seen after "
                                   f"{CYCLES_PER_ROUND} cycles (UID next expected {known})")
    t.join(cmtest.TIMEOUT)
    assert not errors, errors
    assert len(seen) == 2 * ROUNDS == len(set(seen)), seen
    s.quit()
    c.close()
