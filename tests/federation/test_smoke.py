"""test_smoke.py: the fixture's internet carries mail relay1 -> relay2 and
relay1 -> _selfsigned.test over /mxdeliv (one test, a few seconds: if this
fails, every other federation test would too); the zone's MTA-STS records
lead to the policy the relay serves."""
import socket
import ssl

from dnslib import DNSRecord

import cmtest
import fedlab
import mx_helpers


def dns_query(net, name, rtype):
    q = DNSRecord.question(name, rtype)
    return DNSRecord.parse(q.send(fedlab.DNS_IP, 53, timeout=5))


def test_relays_reach_each_other(net):
    r1 = net.add_relay("relay1.test")
    r2 = net.add_relay("relay2.test")
    r3 = net.add_relay("_selfsigned.test")
    a, b, c = "alice0001@relay1.test", "bob000001@relay2.test", "carol0001@_selfsigned.test"
    r2.make_account(b)
    r3.make_account(c)
    s = r1.submit(a)
    for rcpt in (b, c):
        assert s.sendmail(a, [rcpt], mx_helpers.encrypted(rcpt, sender=a)) == {}
    s.quit()
    cmtest.poll(lambda: len(r2.stored(b)) == 1, what="the message on relay2")
    cmtest.poll(lambda: len(r3.stored(c)) == 1, what="the message on _selfsigned.test")
    cmtest.poll(lambda: not r1.queued(), what="relay1's queue empty")
    m = r1.metrics()
    assert m['outbound_deliveries{path="mxdeliv",outcome="delivered"}'] == 2, m


def test_mta_sts_published_and_served(net):
    r2 = net.add_relay("relay2.test")
    txt = dns_query(net, "_mta-sts.relay2.test", "TXT")
    assert [str(rr.rdata) for rr in txt.rr] == ['"v=STSv1; id=20261206"'], txt
    [a] = dns_query(net, "mta-sts.relay2.test", "A").rr
    ctx = ssl.create_default_context(cafile=str(net.ca.crt))
    with socket.create_connection((str(a.rdata), 443), timeout=cmtest.TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="mta-sts.relay2.test") as s:
            s.sendall(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.relay2.test\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert body.decode().splitlines() == ["version: STSv1", "mode: enforce", "mx: relay2.test",
                                          "max_age: 2419200"], body
    assert r2.ip == str(a.rdata)
