"""test_paths.py: one message path relay1.test -> relay2.test, over each of
the two ways between relays (issue 14, scenario 2; federation facts §2-§3),
each proved from both relays' metrics and logs, not assumed:

  mxdeliv  relay2 serves HTTPS on 443: relay1 POSTs the message to
           https://relay2.test/mxdeliv (certificate checked against the
           test CA) and logs "delivered to <rcpt>: 250 2.0.0 mxdeliv
           relay2.test: 200 250 OK"; it counts outbound_deliveries{path=
           "mxdeliv",outcome="delivered"} and opens no SMTP connection.
           relay2 counts mxdeliv_requests{status="200"}, a DKIM pass and an
           accepted incoming_mail.
  smtp     relay2 runs without an HTTPS listener (https_port = 0: 443
           refuses connections, checked): relay1 falls back to SMTP on
           relay2's port 25 in the same attempt, logs that relay2 "delivers
           over SMTP, not /mxdeliv" and relay2's own 250 reply, and counts
           outbound_deliveries{path="smtp",outcome="delivered"} and one new
           outbound SMTP connection. relay2 refuses MAIL before STARTTLS on
           25 (checked), so what it accepted there came over TLS; it counts
           no /mxdeliv request at all, but the DKIM pass and the accepted
           incoming_mail. (relay2 has no counter of its own for port 25:
           incoming_mail and dkim_verify count both ways in, only
           mxdeliv_requests tells them apart; the connections{protocol=
           "smtp"} gauge shows relay1's pooled connection only until its 5 s
           idle close, too short-lived to assert on.)
  smtp, untrusted certificate
           the control for "verified STARTTLS": relay1 trusts another CA
           only; relay2's certificate fails the check on 25, the message
           is deferred with a TLS reason (after the refused 443) and waits
           in relay1's queue; relay2 counts and stores nothing.

The first two send from a Delta Chat account on relay1 to one on relay2
sitting in IDLE, which receives the message with the padlock on both paths
(relay2's delivered_mail = 1: the client has fetched and deleted it by
then). Delta Chat accounts use acceptInvalidCertificates: the client cannot
be told to trust the test CA (see test_deltachat_fed.py). The control
submits with smtplib."""
import re
import smtplib
import socket

import pytest

import cmtest
import mx_helpers
from test_deltachat_fed import accounts, incoming, introduce, wait_idle

pytestmark = pytest.mark.timeout(240)

PASS = 'dkim_verify{result="pass"}'
ACCEPTED = 'incoming_mail{result="accepted"}'


def out(path, outcome):
    return f'outbound_deliveries{{path="{path}",outcome="{outcome}"}}'


def family(metrics, name):
    """The sum of a metric family's series (e.g. every mxdeliv_requests status)."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def send_dc(devices, r1, r2):
    """Delta Chat a@relay1 -> b@relay2 (b in IDLE); returns b's address
    after b has the message with the padlock and relay1's queue is empty."""
    dev = devices()
    (a, _), (b, b_addr) = accounts(dev, [r1, r2])
    b_at_a, _ = introduce(dev, a, b)
    chat = dev.rpc.create_chat_by_contact_id(a, b_at_a)
    wait_idle(r2)
    mark = dev.mark()
    dev.rpc.misc_send_text_message(a, chat, "which path?")
    m = incoming(dev, b, "which path?", mark)
    assert m["showPadlock"] is True, m
    cmtest.poll(lambda: not r1.queued(), what="relay1's queue empty")
    return b_addr


def delivered_line(relay, rcpt):
    """relay's log line 'queue: <id>: delivered to <rcpt>: <reply>' (logged
    after the peer stored the message: waited for)."""
    relay.server.wait_log(f"delivered to {rcpt}: ")
    [line] = [x for x in relay.server.log_text().splitlines() if f"delivered to {rcpt}: " in x]
    return line


def metrics_when(relay, series, pred, what):
    """relay's metrics once pred(value of series) holds (the queue logs an
    outcome a moment before it counts it)."""
    def ready():
        m = relay.metrics()
        return m if pred(m.get(series, 0)) else None
    return cmtest.poll(ready, what=f"{series} {what} on {relay.domain}")


def port_refused(ip, port):
    try:
        socket.create_connection((ip, port), timeout=cmtest.TIMEOUT).close()
    except ConnectionRefusedError:
        return True
    return False


def test_path_mxdeliv(net, devices):
    r1 = net.add_relay("relay1.test")
    r2 = net.add_relay("relay2.test")
    b = send_dc(devices, r1, r2)
    line = delivered_line(r1, b)
    assert re.search(r": 250 .*mxdeliv relay2\.test: 200 250 OK$", line), line
    assert "delivers over SMTP" not in r1.server.log_text()
    m1 = metrics_when(r1, out("mxdeliv", "delivered"), lambda v: v >= 1, ">= 1")
    m2 = r2.metrics()
    assert m1.get(out("mxdeliv", "delivered")) == 1, m1
    assert family(m1, "outbound_deliveries") == 1, m1  # nothing over SMTP, nothing deferred
    assert family(m1, "outbound_smtp_connections_total") == 0, m1
    assert m2.get('mxdeliv_requests{status="200"}') == 1, m2
    assert family(m2, "mxdeliv_requests") == 1, m2
    assert m2.get(PASS) == 1 and family(m2, "dkim_verify") == 1, m2
    assert m2.get(ACCEPTED) == 1 and family(m2, "incoming_mail") == 1, m2
    assert m2.get("delivered_mail") == 1, m2  # stored (Delta Chat has fetched and deleted it)


def test_path_smtp_port25(net, devices):
    r1 = net.add_relay("relay1.test")
    r2 = net.add_relay("relay2.test", extra={"https_port": 0})
    assert port_refused(r2.ip, 443), "relay2 still listens on 443"
    # relay2 takes no mail on 25 without STARTTLS: what it accepts there came over TLS
    with smtplib.SMTP(r2.ip, 25, timeout=cmtest.TIMEOUT) as s:
        s.ehlo("probe.test")
        assert s.has_extn("starttls")
        code, text = s.mail("x@relay1.test")
        assert code == 530, (code, text)
    b = send_dc(devices, r1, r2)
    line = delivered_line(r1, b)
    assert re.search(r": 250 2\.0\.0 .*\(relay2\.test\)$", line) and "mxdeliv" not in line, line
    r1.server.wait_log("queue: relay2.test delivers over SMTP, not /mxdeliv")
    m1 = metrics_when(r1, out("smtp", "delivered"), lambda v: v >= 1, ">= 1")
    m2 = r2.metrics()
    assert m1.get(out("smtp", "delivered")) == 1, m1
    # the refused 443 fell back to 25 within the same attempt: no mxdeliv outcome
    assert family(m1, "outbound_deliveries") == 1, m1
    assert m1.get('outbound_smtp_connections_total{kind="new"}') == 1, m1
    assert family(m2, "mxdeliv_requests") == 0, m2
    assert m2.get(PASS) == 1 and family(m2, "dkim_verify") == 1, m2
    assert m2.get(ACCEPTED) == 1 and family(m2, "incoming_mail") == 1, m2
    assert m2.get("delivered_mail") == 1, m2  # stored (Delta Chat has fetched and deleted it)


def test_path_smtp_untrusted_certificate(net, tmp_path):
    """The control for "verified": relay1 trusts another CA only, relay2's
    certificate (of the test CA) fails the check on 25 and the message
    waits in relay1's queue; relay2 stores nothing."""
    other = cmtest.TestCA(tmp_path / "other-ca")
    r1 = net.add_relay("relay1.test", extra={"tls_ca_file": str(other.crt)})
    r2 = net.add_relay("relay2.test", extra={"https_port": 0})
    a, b = "alice0001@relay1.test", "bob000001@relay2.test"
    r2.make_account(b)
    s = r1.submit(a)
    assert s.sendmail(a, [b], mx_helpers.encrypted(b, sender=a)) == {}
    s.quit()
    r1.server.wait_log(f"deferred for {b}: ")
    line = next(x for x in r1.server.log_text().splitlines() if f"deferred for {b}: " in x)
    # e.g. "451 4.7.5 smtp relay2.test: TLS: self-signed certificate in certificate chain
    # (after 451 4.4.1 mxdeliv relay2.test: Failed to connect to relay2.test port 443 ...)"
    assert re.search(r": 4\d\d [.\d]+ smtp relay2\.test: TLS: .*certificate", line), line
    assert "mxdeliv relay2.test" in line and "443" in line, line
    # relay1's SMTP client logs the same reason, and no reply code it never got
    why = re.search(r"TLS: (.*?) \(after ", line).group(1)
    smtpc = [x for x in r1.server.log_text().splitlines() if "smtpc relay2.test: " in x]
    assert smtpc and all(x.endswith(f"smtpc relay2.test: tls: {why}") for x in smtpc), smtpc
    # >= 1: a retry may come (15 s at the earliest)
    m1 = metrics_when(r1, out("smtp", "deferred"), lambda v: v >= 1, ">= 1")
    m2 = r2.metrics()
    assert family(m1, "outbound_deliveries") == m1[out("smtp", "deferred")], m1
    assert len(r1.queued()) == 1
    assert family(m2, "incoming_mail") == 0 and family(m2, "dkim_verify") == 0, m2
    assert r2.stored(b) == []
