#!/usr/bin/python3
"""pushbench.py: delivery -> notification latency of chatmaild-server
(issue 15) against a local notification server.

Starts build/chatmaild-server (CM_SERVER_BIN overrides) on loopback with a
throw-away CA and a Python HTTPS endpoint as `notification_url`
(tests/integration/push_helpers.py). One recipient has one device token;
one sender submits M encrypted messages over implicit TLS, one at a time,
each after the previous notification arrived (otherwise coalescing would
merge them). Per message:

  submit->POST   from calling sendmail (before MAIL FROM) to the POST
                 arriving at the endpoint;
  250->POST      from the end of the SMTP transaction (the 250 after the
                 durable delivery) to the POST: negative when the POST came
                 first (the server notifies before it answers the client);

p50/p99/max of both, and the server's own push_latency_seconds histogram
(delivery -> first answer) from /metrics. Output: one JSON object.

    /usr/bin/python3 bench/pushbench.py [--messages M]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import cmtest  # noqa: E402
import push_helpers as ph  # noqa: E402
from submit_helpers import fixture, login  # noqa: E402


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def ms(x):
    return round(x * 1000, 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=300)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pushbench-"))
    ca = cmtest.TestCA(tmp / "ca")
    cmtest.DEFAULT_CA_FILE = str(ca.crt)
    leaf = ca.make_leaf("relay1.test")
    ep = ph.PushEndpoint(ca)
    srv = cmtest.Server(tmp / "srv", str(ca.crt), cmtest.DOMAIN,
                        (str(leaf.fullchain), str(leaf.key)),
                        {"notification_url": ep.url, "tls_ca_file": str(ca.crt),
                         "max_user_send_burst_size": 100000,
                         "max_user_send_per_minute": 100000})
    srv.start()
    try:
        alice, bob = f"alice0001@{cmtest.DOMAIN}", f"bob000001@{cmtest.DOMAIN}"
        ph.set_tokens(srv, bob, ["benchtoken0123456789"])
        msg = fixture("encrypted.eml", alice, bob)
        s = login(srv, alice)
        sub, acc = [], []
        for i in range(a.messages):
            n = ep.count()
            t0 = time.monotonic()
            assert s.sendmail(alice, [bob], msg) == {}
            t1 = time.monotonic()
            cmtest.poll(lambda: ep.count() > n, interval=0.0005, what="the POST")
            tp = ep.got[n].t
            sub.append(tp - t0)
            acc.append(tp - t1)
            # the item is removed after the answer; wait so that the next
            # delivery is not coalesced into it
            cmtest.poll(lambda: ph.pending(srv) == [], interval=0.0005, what="item done")
        s.quit()
        import http.client
        c = http.client.HTTPSConnection(cmtest.HOST, srv.port("https"),
                                        context=cmtest.client_context())
        c.request("GET", "/metrics", headers={"Host": cmtest.DOMAIN})
        text = c.getresponse().read().decode()
        hist = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
                if line.startswith("push_latency_seconds")}
        out = {"messages": a.messages,
               "submit_to_post_ms": {"p50": ms(pct(sub, .5)), "p99": ms(pct(sub, .99)),
                                     "max": ms(max(sub))},
               "accept_to_post_ms": {"p50": ms(pct(acc, .5)), "p99": ms(pct(acc, .99)),
                                     "max": ms(max(acc))},
               "server_push_latency_histogram": hist}
        print(json.dumps(out, indent=1))
    finally:
        srv.stop()
        ep.stop()


if __name__ == "__main__":
    main()
