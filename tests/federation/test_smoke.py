"""test_smoke.py: the fixture's internet carries mail relay1 -> relay2 and
relay1 -> _selfsigned.test over /mxdeliv (one test, a few seconds: if this
fails, every other federation test would too)."""
import cmtest
import mx_helpers


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
