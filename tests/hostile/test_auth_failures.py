"""Failed logins (issue 16, finding 7): IMAP LOGIN/AUTHENTICATE and SMTP
AUTH failures are answered only after a delay (2 s, like Dovecot; a loop
timer, no worker held), the connection is closed after 3 failures, and each
failure writes exactly one log line in a fixed format for fail2ban:

    auth failed: proto=<imap|smtp> ip=<address> user=<normalised address>

never with the password. An address that keeps failing (more than 10 at once,
then one per 6 s, across its connections) waits 15 s per failure."""
import base64
import re
import socket
import threading
import time

import cmtest
from cmtest import DOMAIN, tls_connect

USER = f"guessme01@{DOMAIN}"
PASSWORD = "right-password-1"
WRONG = "Wr0ngSecretZ"
LINE = re.compile(r"auth failed: proto=(imap|smtp) ip=(\S+) user=(\S+)$")


def imap_conn(srv):
    c = tls_connect(srv.port("imaps"))
    assert c.readline().startswith("* OK")
    return c


def create_account(srv):
    with imap_conn(srv) as c:
        assert c.imap_cmd("a", f'LOGIN "{USER}" "{PASSWORD}"')[1].startswith("a OK")


def fail_lines(srv):
    return [m.groups() for m in map(LINE.search, srv.log_text().splitlines()) if m]


def test_imap_failure_delayed_logged_closed_after_three(server):
    srv = server()
    create_account(srv)
    c = imap_conn(srv)
    with c:
        times = []
        for i in range(3):
            t0 = time.monotonic()
            _, tagged = c.imap_cmd(f"t{i}", f'LOGIN "{USER.upper()}" "{WRONG}"')
            times.append(time.monotonic() - t0)
            assert tagged == f"t{i} NO [AUTHENTICATIONFAILED] Authentication failed.", tagged
        # third failure: BYE and closed
        rest = c.read_until_closed(timeout=5)
        assert b"* BYE Too many authentication failures." in rest, rest
    assert all(1.9 <= t < 4 for t in times), times
    cmtest.poll(lambda: len(fail_lines(srv)) >= 3, what="three auth-failed lines")
    lines = fail_lines(srv)
    assert lines == [("imap", "127.0.0.1", USER)] * 3, lines  # normalised (lower case)
    text = srv.log_text()
    assert WRONG not in text and PASSWORD not in text
    # a correct login still works afterwards (other connection)
    with imap_conn(srv) as ok:
        assert ok.imap_cmd("b", f'LOGIN "{USER}" "{PASSWORD}"')[1].startswith("b OK")


def test_imap_invalid_user_and_authenticate_also_delayed(server):
    srv = server()
    create_account(srv)
    with imap_conn(srv) as c:
        t0 = time.monotonic()
        assert c.imap_cmd("a", f'LOGIN "bad user!" "{WRONG}"')[1].startswith(
            "a NO [AUTHENTICATIONFAILED]")
        assert time.monotonic() - t0 >= 1.9
        tok = base64.b64encode(f"\0{USER}\0{WRONG}".encode()).decode()
        t0 = time.monotonic()
        assert c.imap_cmd("b", f"AUTHENTICATE PLAIN {tok}")[1].startswith(
            "b NO [AUTHENTICATIONFAILED]")
        assert time.monotonic() - t0 >= 1.9
    lines = fail_lines(srv)
    assert ("imap", "127.0.0.1", "bad?user?") in lines, lines
    assert WRONG not in srv.log_text() and tok not in srv.log_text()


def smtp_auth(c, user, password):
    tok = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return c.smtp_cmd(f"AUTH PLAIN {tok}")


def test_smtp_failure_delayed_logged_closed_after_three(server):
    srv = server()
    create_account(srv)
    c = tls_connect(srv.port("submissions"))
    with c:
        cmtest.smtp_greeting_ok(c.readline())
        c.smtp_cmd("EHLO client.test")
        times = []
        for i in range(3):
            t0 = time.monotonic()
            reply = smtp_auth(c, USER, WRONG)
            times.append(time.monotonic() - t0)
            assert reply[0].startswith("535 5.7.8"), reply
        assert c.readline().startswith("421 4.7.0"), "no 421 after the third failure"
        assert c.read_until_closed(timeout=5) == b""
    assert all(1.9 <= t < 4 for t in times), times
    lines = [l for l in fail_lines(srv) if l[0] == "smtp"]
    assert lines == [("smtp", "127.0.0.1", USER)] * 3, lines
    assert WRONG not in srv.log_text()


def test_guessing_address_slowed_across_connections(server):
    """15 failures from one address within ~6 s (5 connections x 3): the
    first 11 (burst 10 + 1, plus what drained meanwhile) are answered after
    2 s, the rest after 15 s; then another address is still answered in 2 s."""
    srv = server()
    create_account(srv)
    durations = []
    lock = threading.Lock()

    def guesser():
        with imap_conn(srv) as c:
            for i in range(3):
                t0 = time.monotonic()
                tagged = c.imap_cmd(f"g{i}", f'LOGIN "{USER}" "{WRONG}"')[1]
                with lock:
                    durations.append(time.monotonic() - t0)
                assert "AUTHENTICATIONFAILED" in tagged

    threads = [threading.Thread(target=guesser) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(durations) == 15, durations
    slow = [d for d in durations if d >= 14]
    assert len(slow) >= 2, sorted(durations)
    assert len([d for d in durations if d < 4]) >= 10, sorted(durations)
    # another address is not slowed
    raw = socket.create_connection((cmtest.HOST, srv.port("imaps")), timeout=10,
                                   source_address=("127.0.0.2", 0))
    c = cmtest.LineConn(cmtest.client_context().wrap_socket(raw, server_hostname=DOMAIN), 30)
    with c:
        assert c.readline().startswith("* OK")
        t0 = time.monotonic()
        assert "AUTHENTICATIONFAILED" in c.imap_cmd("o", f'LOGIN "{USER}" "{WRONG}"')[1]
        assert time.monotonic() - t0 < 4
