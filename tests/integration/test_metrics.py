"""test_metrics.py: every name /metrics exports moves when its event
happens. Each test declares the metric families it covers (COVERS); a
Tracker reads /metrics before and after each event, and at the end of the
test the families it saw move must be exactly the declared ones. The last
test reads the full export (after an expiry pass, which adds the fsreport
gauges) and requires its family set to equal the union of COVERS, so a new
metric without a test here fails.

Events: account creation (normal and ci-), a refused registration, a
restart (accounts and queue_length are counted from disk), deliveries
(delivered_mail, the latency histogram), the encryption decisions, a remote
recipient (queue_length), a full mailbox (quota_exceeded), the quota trim
after delivery, mail from another relay on port 25 (the incoming
encryption decisions, accepted / refused by reason, DKIM verdicts), open sessions per protocol, IDLE, and the expiry pass that
SIGUSR1 starts (fsreport gauges, accounts of expired users), and the
answers to POST /mxdeliv by status, and the outbound queue runner
(deliveries by path and outcome, DNS failures, the oldest message's age,
SMTP deliveries on new and reused connections),
and push notifications (requests by answer, retries, drops, coalesced
deliveries, pending items, delivery -> answer latency), and the ACME
client against Pebble (orders by result, certificate expiry, next renewal;
Pebble down at renewal time: the failure is retried and the old
certificate stays)."""
import imaplib
import os
import re
import signal
import smtplib
import time

import pytest

import cmtest
from cmtest import DOMAIN, HOST, client_context
from submit_helpers import (DATA, PASSWORD, account_dir, addr, fixture, login, plain_msg, queued,
                            stored)
import mx_helpers as mx
from test_http import https

COVERS = {
    "test_account_metrics": {"created_accounts", "created_ci_accounts", "created_nonci_accounts",
                             "rejected_registrations", "accounts"},
    "test_delivery_metrics": {"delivered_mail", "delivery_latency_seconds",
                              "outgoing_encrypted_mail_count", "outgoing_unencrypted_mail_count",
                              "rejected_unencrypted_mail_count", "queue_length"},
    "test_quota_metrics": {"quota_exceeded", "quota_expire_runs", "quota_expire_removed_files"},
    "test_session_gauges": {"connections", "imap_idle_sessions"},
    "test_incoming_metrics": {"incoming_encrypted_mail_count", "incoming_unencrypted_mail_count",
                              "incoming_mailer_daemon_mail_count", "incoming_mail",
                              "dkim_verify"},
    "test_mxdeliv_metrics": {"mxdeliv_requests", "delivered_mail"},
    "test_outbound_metrics": {"outbound_deliveries", "outbound_dns_failures",
                              "queue_oldest_age_seconds", "queue_length"},
    "test_outbound_smtp_connection_metrics": {"outbound_smtp_connections_total",
                                              "outbound_deliveries"},
    "test_push_metrics": {"push_requests", "push_retries", "push_drops", "push_coalesced",
                          "push_queue_length", "push_latency_seconds"},
    "test_acme_metrics": {"acme_orders_total", "acme_certificate_expiry_seconds",
                          "acme_next_renewal_seconds"},
    "test_expiry_pass_metrics": {"chatmail_storage_bytes", "chatmail_messages_bytes",
                                 "chatmail_messages_count", "chatmail_accounts",
                                 "chatmail_accounts_active", "accounts"},
}

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|\+Inf|NaN)$')


def parse(text):
    """-> ({series: value}, {family: type}); every sample must belong to a
    family that has a # TYPE line, and every line must parse."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ")
            types[fam] = typ
        elif line.startswith("# HELP ") or not line:
            continue
        else:
            m = SAMPLE.match(line)
            assert m, f"unparsable /metrics line: {line!r}"
            series = m.group(1) + (m.group(2) or "")
            assert series not in samples, f"duplicate series {series}"
            samples[series] = float(m.group(3))
            assert family_of(m.group(1), types) is not None, f"{line!r} has no # TYPE"
    return samples, types


def family_of(name, types):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    return None


def scrape(srv):
    r = https(srv, path="/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain"), r.status
    return parse(r.text)


class Tracker:
    """Reads /metrics; expect() asserts how series changed since the last
    read and records their families as covered."""

    def __init__(self, srv, test):
        self.srv, self.test = srv, test
        self.covered = set()
        self.last, self.types = scrape(srv)

    def expect(self, changes, timeout=cmtest.TIMEOUT):
        """changes: {series: delta}; polls until every series moved by its
        delta from the last read (gauges may take a loop turn)."""
        before = self.last
        state = {}

        def ok():
            now, types = scrape(self.srv)
            state["now"], state["types"] = now, types
            return all(now.get(s, 0.0) - before.get(s, 0.0) == d for s, d in changes.items())
        try:
            cmtest.poll(ok, timeout=timeout, what=f"metrics {changes}")
        except AssertionError:
            now = state.get("now", {})
            moved = {s: (before.get(s), now.get(s)) for s in changes}
            raise AssertionError(f"metrics did not move as expected: {moved}")
        self.last, self.types = state["now"], state["types"]
        for s, d in changes.items():
            fam = family_of(s.split("{")[0], self.types)
            assert fam is not None, f"{s} is not exported"
            if d != 0:
                self.covered.add(fam)
        return self.last

    def value(self, series):
        return self.last[series]

    def done(self):
        missing = COVERS[self.test] - self.covered
        assert not missing, f"declared in COVERS but never seen moving: {sorted(missing)}"


def imap_login(srv, user, password=PASSWORD):
    m = imaplib.IMAP4_SSL(HOST, srv.port("imaps"), ssl_context=client_context(),
                          timeout=cmtest.TIMEOUT)
    m.login(user, password)
    return m


# ---------------------------------------------------------------- accounts

def test_account_metrics(server):
    srv = server()
    t = Tracker(srv, "test_account_metrics")
    assert t.value("accounts") == 0
    imap_login(srv, addr("user00001")).logout()
    t.expect({"created_accounts": 1, "created_nonci_accounts": 1, "created_ci_accounts": 0,
              "accounts": 1, "rejected_registrations": 0})
    login(srv, addr("ci-000001")).quit()  # SMTP AUTH creates too
    t.expect({"created_accounts": 1, "created_ci_accounts": 1, "created_nonci_accounts": 0,
              "accounts": 1})
    imap_login(srv, addr("user00001")).logout()  # an existing account: nothing moves
    t.expect({"created_accounts": 0, "accounts": 0})
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(srv, addr("user00002"), password="short")
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(srv, addr("ab"))  # local part below username_min_length
    t.expect({"rejected_registrations": 2, "created_accounts": 0, "accounts": 0})
    assert not account_dir(srv, addr("user00002")).exists()
    # the gauge is counted from the mail tree at start; a directory without
    # a password file is no account
    srv.stop()
    (srv.tmpdir / "mail" / addr("nopass001")).mkdir()
    srv.start()
    t2 = Tracker(srv, "test_account_metrics")
    assert t2.value("accounts") == 2 and t2.value("created_accounts") == 0
    t.done()


# ---------------------------------------------------------------- deliveries

ALICE, BOB = addr("alice0001"), addr("bob000002")


def test_delivery_metrics(server):
    srv = server(extra={"max_user_send_burst_size": 100})
    login(srv, BOB).quit()
    t = Tracker(srv, "test_delivery_metrics")
    inf = 'delivery_latency_seconds_bucket{le="+Inf"}'
    s = login(srv, ALICE)
    assert s.sendmail(ALICE, [BOB], fixture("encrypted.eml", ALICE, BOB)) == {}
    after = t.expect({"delivered_mail": 1, "outgoing_encrypted_mail_count": 1,
                      "delivery_latency_seconds_count": 1, inf: 1,
                      "outgoing_unencrypted_mail_count": 0, "queue_length": 0})
    assert after["delivery_latency_seconds_sum"] > 0
    # two local recipients: two deliveries, one latency observation
    assert s.sendmail(ALICE, [BOB, ALICE], fixture("encrypted.eml", ALICE, BOB)) == {}
    t.expect({"delivered_mail": 2, "delivery_latency_seconds_count": 1, inf: 1})
    # an Autocrypt Setup Message to oneself: unencrypted and allowed
    assert s.sendmail(ALICE, [ALICE], fixture("asm.eml", ALICE, ALICE)) == {}
    t.expect({"outgoing_unencrypted_mail_count": 1, "rejected_unencrypted_mail_count": 0,
              "delivered_mail": 1})
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail(ALICE, [BOB], plain_msg(ALICE, BOB))
    assert e.value.smtp_code == 523
    t.expect({"outgoing_unencrypted_mail_count": 1, "rejected_unencrypted_mail_count": 1,
              "delivered_mail": 0})
    # a remote recipient goes to the durable queue
    assert s.sendmail(ALICE, ["carol@remote.example"],
                      fixture("encrypted.eml", ALICE, "carol@remote.example")) == {}
    t.expect({"queue_length": 1, "outgoing_encrypted_mail_count": 1, "delivered_mail": 0})
    s.quit()
    assert len(queued(srv)) == 1
    # counted from <state_dir>/queue at start
    srv.stop()
    srv.start()
    t2 = Tracker(srv, "test_delivery_metrics")
    assert t2.value("queue_length") == 1 and t2.value("delivered_mail") == 0
    t.done()


# ---------------------------------------------------------------- outbound queue

def test_outbound_metrics(server, test_ca, tmp_path):
    import test_outbound as ob
    keys = ob.Keys(tmp_path)
    dns = ob.zone(keys)
    peer = ob.Peer(test_ca, [503, 200])
    try:
        srv = ob.relay1(server, test_ca, dns, keys, peer.port)
        t = Tracker(srv, "test_outbound_metrics")
        s = login(srv, ob.ALICE)
        rcpt = "carol@peer.test"
        assert s.sendmail(ob.ALICE, [rcpt], ob.encrypted(ob.ALICE, rcpt)) == {}
        # /mxdeliv answered 503, the SMTP slot deferred it
        t.expect({'outbound_deliveries{path="smtp",outcome="deferred"}': 1, "queue_length": 1,
                  'outbound_deliveries{path="mxdeliv",outcome="delivered"}': 0})
        cmtest.poll(lambda: scrape(srv)[0]["queue_oldest_age_seconds"] >= 1,
                    what="the oldest message's age")
        t.covered.add("queue_oldest_age_seconds")
        ob.queue_cli(srv, "flush")
        t.expect({'outbound_deliveries{path="mxdeliv",outcome="delivered"}': 1,
                  "queue_length": -1}, timeout=cmtest.TIMEOUT)
        cmtest.poll(lambda: scrape(srv)[0]["queue_oldest_age_seconds"] == 0,
                    what="no queued message: age 0")
        t.last = scrape(srv)[0]
        # NXDOMAIN: a DNS failure and a bounce (a report stored for alice)
        assert s.sendmail(ob.ALICE, ["x@nx.test"], ob.encrypted(ob.ALICE, "x@nx.test")) == {}
        t.expect({"outbound_dns_failures": 1, "delivered_mail": 1,
                  'outbound_deliveries{path="mxdeliv",outcome="bounced"}': 1})
        s.quit()
        t.done()
    finally:
        peer.stop()
        dns.stop()


def test_outbound_smtp_connection_metrics(server, test_ca, tmp_path):
    import test_outbound as ob
    from smtppeer import SmtpPeer
    from test_outbound_smtp import peer_cert
    keys = ob.Keys(tmp_path)
    dns = ob.zone(keys)
    smtp = SmtpPeer(cert=peer_cert(test_ca))
    try:
        srv = ob.relay1(server, test_ca, dns, keys, 9, extra={"outbound_smtp_port": smtp.port})
        t = Tracker(srv, "test_outbound_smtp_connection_metrics")
        s = login(srv, ob.ALICE)
        rcpt = "carol@peer.test"
        assert s.sendmail(ob.ALICE, [rcpt], ob.encrypted(ob.ALICE, rcpt)) == {}
        t.expect({'outbound_smtp_connections_total{kind="new"}': 1,
                  'outbound_smtp_connections_total{kind="reused"}': 0,
                  'outbound_deliveries{path="smtp",outcome="delivered"}': 1})
        # the next one rides the idle connection
        assert s.sendmail(ob.ALICE, [rcpt], ob.encrypted(ob.ALICE, rcpt)) == {}
        t.expect({'outbound_smtp_connections_total{kind="new"}': 0,
                  'outbound_smtp_connections_total{kind="reused"}': 1,
                  'outbound_deliveries{path="smtp",outcome="delivered"}': 1})
        s.quit()
        assert len(smtp.sessions) == 1
        t.done()
    finally:
        smtp.stop()
        dns.stop()


# ---------------------------------------------------------------- /mxdeliv

def test_mxdeliv_metrics(server):
    from test_mxdeliv import post
    keys = mx.MxKeys()
    dns = mx.mx_dns(keys)
    try:
        srv = mx.mx_server(server, dns, {"max_message_size": "20000"})
        login(srv, BOB).quit()
        t = Tracker(srv, "test_mxdeliv_metrics")
        msg = mx.sign(mx.encrypted(BOB), keys)
        st = 'mxdeliv_requests{status="%s"}'
        assert post(srv, msg, [BOB], mail_from=mx.SENDER) == (200, b"250 OK")
        t.expect({st % 200: 1, "delivered_mail": 1, st % 400: 0})
        assert post(srv, msg, [BOB, addr("nosuchusr")])[0] == 400
        t.expect({st % 400: 1, st % 200: 0, "delivered_mail": 0})
        assert post(srv, mx.encrypted(BOB), [BOB])[0] == 400  # unsigned: 554
        t.expect({st % 400: 1, "delivered_mail": 0})
        assert post(srv, b"", [BOB], method="GET")[0] == 405
        t.expect({st % 405: 1})
        assert post(srv, msg + b"Z" * 20000 + b"\r\n", [BOB])[0] == 413
        t.expect({st % 413: 1})
        # a key lookup that times out (the Ed25519 key is not cached yet): 503 + the 451 line
        dns.behave[f"ed._domainkey.{mx.SENDER_DOMAIN}"] = "timeout"
        msg = mx.sign(mx.encrypted(BOB), keys, alg=b"ed25519-sha256")
        c = cmtest.tls_connect(srv.port("https"), alpn=["http/1.1"])
        c.send((f"POST /mxdeliv HTTP/1.1\r\nX-MAIL-TO: {BOB}\r\nConnection: close\r\n"
                f"Content-Length: {len(msg)}\r\n\r\n").encode() + msg)
        assert c.read_until_closed(90).startswith(b"HTTP/1.1 503 ")
        c.close()
        t.expect({st % 503: 1})
        # a broken chunked body: the reader's 400 for the request counts too
        c = cmtest.tls_connect(srv.port("https"), alpn=["http/1.1"])
        c.send(f"POST /mxdeliv HTTP/1.1\r\nX-MAIL-TO: {BOB}\r\nTransfer-Encoding: chunked\r\n\r\n"
               "zz\r\n".encode())
        assert c.read_until_closed(cmtest.TIMEOUT).startswith(b"HTTP/1.1 400 ")
        c.close()
        t.expect({st % 400: 1, st % 200: 0})
        t.done()
    finally:
        dns.stop()


# ---------------------------------------------------------------- quota

def test_push_metrics(server, test_ca):
    import push_helpers as ph
    ep = ph.PushEndpoint(test_ca, script={"tokgone": [410], "tokfail": [500], "tokerr": ["close"]})
    try:
        srv = ph.push_server(server, test_ca, ep, scale=0.002)  # 5 attempts in ~9.4 s
        carol = addr("carol0001")
        ph.set_tokens(srv, BOB, ["tokok", "tokgone"])
        ph.set_tokens(srv, carol, ["tokfail", "tokerr"])
        t = Tracker(srv, "test_push_metrics")
        ph.send(srv, ALICE, BOB)
        t.expect({'push_requests{status="200"}': 1, 'push_requests{status="410"}': 1,
                  "push_latency_seconds_count": 2, "push_queue_length": 0})
        ph.send(srv, ALICE, carol, n=2)  # the second delivery finds both pending
        cmtest.poll(lambda: scrape(srv)[0]["push_queue_length"] == 2, what="2 items pending")
        t.covered.add("push_queue_length")
        t.expect({'push_requests{status="other"}': 5, 'push_requests{status="error"}': 5,
                  "push_retries": 8, "push_drops": 2, "push_coalesced": 2,
                  "push_latency_seconds_count": 2, "push_queue_length": 0}, timeout=40)
        t.done()
    finally:
        ep.stop()


def http_metrics_text(srv):
    import http.client
    c = http.client.HTTPConnection(HOST, srv.port("http"), timeout=cmtest.TIMEOUT)
    c.request("GET", "/metrics", headers={"Host": DOMAIN})
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    assert r.status == 200, r.status
    return text


@pytest.mark.timeout(90)
def test_acme_metrics(tmp_path, test_ca, monkeypatch):
    import pebble_helpers as pb
    from dnsserver import DnsServer
    dns = DnsServer(pb.acme_zone())
    http_port, https_port = cmtest.free_ports(2)
    peb = pb.Pebble(tmp_path / "pebble", test_ca, http_port, https_port, dns.address, validity=9)
    srv = None
    try:
        srv = pb.acme_server(tmp_path, test_ca, peb, {"http": http_port, "https": https_port})
        pb.issued(srv)
        roots = tmp_path / "roots.pem"
        roots.write_text(open(peb.root()).read())
        # scrapes over the http port: the 9 s certificate expires during the test
        monkeypatch.setitem(globals(), "scrape", lambda s: parse(http_metrics_text(s)))
        t = Tracker(srv, "test_acme_metrics")
        assert t.value('acme_orders_total{result="valid"}') == 1
        expiry, next_at = t.value("acme_certificate_expiry_seconds"), t.value("acme_next_renewal_seconds")
        assert time.time() < next_at < expiry
        old = pb.peer_cert(srv.port("imaps"), str(roots))
        peb.stop()  # down at renewal time
        t.expect({'acme_orders_total{result="failed"}': 1}, timeout=20)
        assert t.value("acme_next_renewal_seconds") > next_at  # the retry, later
        t.covered.add("acme_next_renewal_seconds")
        assert "the current certificate stays, retry in 5 s" in srv.log_text()
        assert pb.peer_cert(srv.port("imaps"), verify=False) == old, "old certificate kept"
        peb.start()  # a new CA: its root joins the trusted ones
        roots.write_text(roots.read_text() + open(peb.root()).read())
        t.expect({'acme_orders_total{result="valid"}': 1}, timeout=30)
        assert t.value("acme_certificate_expiry_seconds") > expiry
        t.covered.add("acme_certificate_expiry_seconds")
        assert pb.peer_cert(srv.port("imaps"), verify=False) != old
        t.done()
        assert srv.stop() == 0, srv.log_tail()
    finally:
        if srv:
            srv.stop()
        peb.stop()
        dns.stop()


def plant_old_messages(srv, address, n, size):
    """n messages dated 2001 in cur/, each claiming S=size (§5.2 trims by S=)."""
    cur = account_dir(srv, address) / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (cur / f"{1000000000 + i}.M{i}P1.old,S={size},W={size}:2,S").write_bytes(b"x" * 100)


def test_quota_metrics(server):
    srv = server(extra={"max_mailbox_size": "1M", "max_user_send_burst_size": 100})
    login(srv, BOB).quit()
    plant_old_messages(srv, BOB, 3, 300000)  # 900 kB of a 1 MiB quota
    t = Tracker(srv, "test_quota_metrics")
    big = fixture("encrypted.eml", ALICE, BOB).replace(
        b"-----END PGP MESSAGE-----", b"-----END PGP MESSAGE-----\r\n" + b"\r\n" * 100000)
    s = login(srv, ALICE)
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail(ALICE, [BOB], big)
    assert e.value.smtp_code == 552
    t.expect({"quota_exceeded": 1, "quota_expire_runs": 0, "quota_expire_removed_files": 0})
    # a small one fits; usage is over 75 %, so the trim removes the three old ones
    assert s.sendmail(ALICE, [BOB], fixture("encrypted.eml", ALICE, BOB)) == {}
    t.expect({"quota_expire_runs": 1, "quota_expire_removed_files": 3, "quota_exceeded": 0})
    s.quit()
    assert len(stored(srv, BOB)) == 1
    t.done()


# ---------------------------------------------------------------- sessions

def conn(proto):
    return f'connections{{protocol="{proto}"}}'


def test_session_gauges(server):
    srv = server()
    imap_login(srv, addr("idler0001")).logout()
    t = Tracker(srv, "test_session_gauges")
    held = []
    smtp = cmtest.plain_connect(srv.port("smtp"))
    cmtest.smtp_greeting_ok(smtp.readline())
    held.append(smtp)
    t.expect({conn("smtp"): 1, conn("submission"): 0, conn("imap"): 0})
    sub = cmtest.tls_connect(srv.port("submissions"))
    cmtest.smtp_greeting_ok(sub.readline())
    held.append(sub)
    t.expect({conn("submission"): 1, conn("smtp"): 0})
    m = imap_login(srv, addr("idler0001"))
    t.expect({conn("imap"): 1})
    # an HTTP client that keeps its connection open (the scrape's own
    # connection is counted in every read, so the difference is this one)
    web = cmtest.tls_connect(srv.port("https"), alpn=["http/1.1"])
    web.send(b"GET / HTTP/1.1\r\nHost: " + DOMAIN.encode() + b"\r\n\r\n")
    assert web.readline().startswith("HTTP/1.1 ")
    held.append(web)
    t.expect({conn("http"): 1})
    m.select("INBOX")
    tag = m._new_tag().decode()
    m.send(f"{tag} IDLE\r\n".encode())
    assert m.readline().startswith(b"+ idling")
    t.expect({"imap_idle_sessions": 1})
    m.send(b"DONE\r\n")
    assert m.readline().startswith(f"{tag} OK".encode())
    t.expect({"imap_idle_sessions": -1})
    m.logout()
    for c in held:
        c.close()
    t.expect({conn("imap"): -1, conn("smtp"): -1, conn("submission"): -1, conn("http"): -1})
    t.done()


# ---------------------------------------------------------------- mail from other relays

def test_incoming_metrics(server):
    keys = mx.MxKeys()
    dns = mx.mx_dns(keys)
    try:
        srv = mx.mx_server(server, dns)
        bob = addr("inbound01")
        mx.make_account(srv, bob)
        t = Tracker(srv, "test_incoming_metrics")

        def inc(r):
            return f'incoming_mail{{result="{r}"}}'

        def dk(r):
            return f'dkim_verify{{result="{r}"}}'

        def send(msg, mail_from=mx.SENDER, prefix="250 "):
            with mx.mx_connect(srv) as c:
                final = mx.mx_send(c, mail_from, [bob], msg, timeout=60)[2]
                assert final[0].startswith(prefix), final

        send(mx.sign(mx.encrypted(bob), keys))
        t.expect({"incoming_encrypted_mail_count": 1, inc("accepted"): 1, dk("pass"): 1,
                  "delivered_mail": 1, "incoming_unencrypted_mail_count": 0})
        send(mx.sign(mx.plain(bob), keys), prefix="523 ")
        t.expect({"incoming_unencrypted_mail_count": 1, "rejected_unencrypted_mail_count": 1,
                  inc("unencrypted"): 1, dk("pass"): 0, inc("accepted"): 0})
        send(mx.sign(mx.mailer_daemon(bob), keys), mail_from="")
        t.expect({"incoming_mailer_daemon_mail_count": 1, "incoming_unencrypted_mail_count": 1,
                  inc("accepted"): 1, dk("pass"): 1})
        send(mx.encrypted(bob), prefix="554 5.7.1 No DKIM signature found")
        t.expect({dk("none"): 1, inc("dkim"): 1, "incoming_encrypted_mail_count": 1})
        forged = mx.sign(mx.encrypted(bob), keys).replace(b"Subject: [...]", b"Subject: [..!]")
        send(forged, prefix="554 5.7.1 No valid DKIM signature found")
        t.expect({dk("fail"): 1, inc("dkim"): 1})
        dns.behave[f"rsa._domainkey.{mx.SENDER_DOMAIN}"] = "timeout"
        send(mx.sign(mx.encrypted(bob), keys), prefix="451 4.7.5 ")
        t.expect({dk("temperror"): 1, inc("tempfail"): 1, inc("accepted"): 0})
        nofrom = (DATA / "no-from.eml").read_bytes().replace(b"bob@example.net", bob.encode())
        send(nofrom, prefix="500 ")
        t.expect({inc("invalid"): 1, dk("none"): 0})
        t.done()
    finally:
        dns.stop()


# ---------------------------------------------------------------- the expiry pass

FSREPORT = ("chatmail_storage_bytes", "chatmail_messages_bytes", "chatmail_messages_count",
            "chatmail_accounts", "chatmail_accounts_active")


def run_expiry(srv, t, changes):
    """SIGUSR1 starts the pass; polls until its gauges show `changes`."""
    srv.signal(signal.SIGUSR1)
    return t.expect(changes)


def test_expiry_pass_metrics(server):
    srv = server(extra={"max_user_send_burst_size": 100})
    login(srv, BOB).quit()
    login(srv, addr("ci-000001")).quit()
    old = addr("gone00001")
    login(srv, old).quit()
    t = Tracker(srv, "test_expiry_pass_metrics")
    assert not any(f in t.types for f in FSREPORT), "fsreport gauges before any pass"
    assert t.value("accounts") == 3
    # an account whose last login is 200 days old is removed by the pass
    pw = account_dir(srv, old) / "password"
    then = time.time() - 200 * 86400
    os.utime(pw, (then, then))
    s = login(srv, ALICE)
    assert s.sendmail(ALICE, [BOB], fixture("encrypted.eml", ALICE, BOB)) == {}
    s.quit()
    t.expect({"delivered_mail": 1})
    size = sum(p.stat().st_size for p in stored(srv, BOB))
    after = run_expiry(srv, t, {
        "accounts": -1,
        'chatmail_accounts{kind="all"}': 3, 'chatmail_accounts{kind="ci"}': 1,
        'chatmail_accounts{kind="user"}': 2,
        'chatmail_accounts_active{days="1"}': 2, 'chatmail_accounts_active{days="150"}': 2,
        'chatmail_messages_count{min_size="0"}': 1, 'chatmail_messages_count{min_size="102400"}': 0,
        'chatmail_messages_bytes{min_size="0"}': size,
        'chatmail_storage_bytes{kind="messages"}': size})
    assert not account_dir(srv, old).exists()
    assert after['chatmail_storage_bytes{kind="extra"}'] > 0
    assert after['chatmail_storage_bytes{kind="total"}'] == size + after[
        'chatmail_storage_bytes{kind="extra"}']
    # a second pass sees the next message
    s = login(srv, ALICE)
    assert s.sendmail(ALICE, [BOB], fixture("encrypted.eml", ALICE, BOB)) == {}
    s.quit()
    t.expect({"delivered_mail": 1})
    run_expiry(srv, t, {'chatmail_messages_count{min_size="0"}': 1,
                        'chatmail_accounts{kind="all"}': 0, "accounts": 0})
    t.done()


def test_every_exported_metric_is_tested(server):
    srv = server()
    login(srv, BOB).quit()  # the pass needs a mail tree
    srv.signal(signal.SIGUSR1)  # the fsreport gauges appear after a pass
    state = {}

    def have_all():
        state["samples"], state["types"] = scrape(srv)
        return "chatmail_accounts" in state["types"]
    cmtest.poll(have_all, what="fsreport gauges after SIGUSR1")
    exported = set(state["types"])
    tested = set().union(*COVERS.values())
    assert exported == tested, (f"exported but untested: {sorted(exported - tested)}; "
                                f"tested but not exported: {sorted(tested - exported)}")
