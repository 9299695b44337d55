"""test_deltachat_dsn.py: a message a real Delta Chat client (deltachat-rpc-server
2.57.0, dcrpc.py) sends through our relay to an undeliverable address is
shown as failed once the relay's delivery status notification reaches the
sender's INBOX (issue 17, "Done when": null MX, NXDOMAIN and a 5xx answer -> DSN in the
sender's INBOX, and a real Delta Chat client shows that message as failed).

Our relay (like the `ours` interop target: _relay1.test on the standard
ports of a random 127.x.y.z) gets `dns_servers` = a test DNS server in which
nullmx.test has a null MX (`MX 0 .`), nx.test does not exist and
reject.test has an MX on 127.0.0.1 where a scripted SMTP peer
(tests/integration/smtppeer.py, test-CA certificate for mx.reject.test;
`mxdeliv_port` closed, `outbound_smtp_port` = the peer's) answers RCPT with
`550 5.1.1`. The queue runner fails the recipient permanently at the first
attempt (556 5.1.10 / 550 5.1.2 / the peer's 550 5.1.1) and puts a DSN
into the sender's INBOX.

How the message gets past the relay: the relay takes only encrypted mail
(or Secure-Join requests) for other domains (src/filter/rules.c,
filter_outgoing; anything else gets `523 Encryption Needed` at submission,
which Delta Chat would also show as failed, for the wrong reason), and
Delta Chat 2.x encrypts only to key-contacts. So the test makes an OpenPGP
key for the recipient with gpg and the sender imports it as a vCard
(`import_vcard_contents`, KEY:data:application/pgp-keys). A vCard made by
another Delta Chat account with its EMAIL changed does not work: the key
carries that account's own address in a `relays@chatmail.at` notation and
Delta Chat sends to that address instead. The message is accepted
(MsgDelivered after SMTP 250, the relay logs it as encrypted), then fails.

Delta Chat 2.57 with its default `force_encryption = 1` throws away every
unencrypted incoming message before looking at it (receive_imf: "Fetched
unencrypted message, ignoring"), DSNs included: with that default no DSN
can mark a message failed. test_message_shown_failed (one case per
cause) sets force_encryption = 0 on the sender: MsgFailed, state
DC_STATE_OUT_FAILED (24), and the message's error text is the DSN's (the
recipient and the reply).
test_null_mx_dsn_dropped_by_default_client pins the default behaviour
(the DSN is fetched and discarded, the message stays delivered), so a
core that starts reading DSNs under force_encryption shows up here.
Needs root, unshare and the Delta Chat binary (dcrpc.ensure_client), gpg.
"""
import base64
import os
import subprocess
import time

import pytest

import cmtest
import dcrpc
import targets
from dnsserver import DnsServer
from smtppeer import SmtpPeer
from test_deltachat import STATE_OUT_DELIVERED, new_account

pytestmark = pytest.mark.timeout(300)

STATE_OUT_FAILED = 24
NULLMX, REJECT = "nullmx.test", "reject.test"
DEAD = f"someone@{NULLMX}"
# recipient -> (what the relay logs and Delta Chat shows as the error, DNS query made)
CASES = {
    "null-mx": (DEAD, "556 5.1.10", (NULLMX, "MX")),
    "nxdomain": ("someone@nx.test", "550 5.1.2", ("nx.test", "MX")),
    "smtp-550": (f"someone@{REJECT}", "550 5.1.1", (REJECT, "MX")),
}
DSN_DEADLINE = 20.0  # seconds from the send to the failed state


class DsnTarget(targets.Target):
    """Our relay like targets.OursTarget, resolving through `dns`."""
    name = "ours"

    def __init__(self, server_factory, workdir, dns, more):
        super().__init__(targets.random_ip(), workdir)
        extra = {"listen": self.ip, **{f"{k}_port": v for k, v in targets.STD_PORTS.items()},
                 "dns_servers": dns.address, **more}
        if os.environ.get("CM_INTEROP_DEBUG"):
            extra["log_level"] = "debug"
        self.server = server_factory(selfsigned=True, extra=extra)


@pytest.fixture
def dsn_lab(server, dc_client, test_ca, tmp_path):
    dns = DnsServer({NULLMX: {"MX": [(0, ".")]},
                     REJECT: {"MX": [(10, f"mx.{REJECT}")]}, f"mx.{REJECT}": {"A": ["127.0.0.1"]}})
    leaf = test_ca.make_leaf("dsn-" + REJECT, sans=f"DNS:mx.{REJECT}", cn=f"mx.{REJECT}")
    peer = SmtpPeer(cert=(str(leaf.fullchain), str(leaf.key)), pipelining=False,
                    rcpt={f"someone@{REJECT}": "550 5.1.1 <someone@reject.test>: no such user"})
    dev = None
    try:
        target = DsnTarget(server, tmp_path / "target", dns,
                           {"tls_ca_file": str(test_ca.crt), "mxdeliv_port": cmtest.free_ports(1)[0],
                            "outbound_smtp_port": peer.port})
        dev = dcrpc.Device(tmp_path / "dev0", target.hosts_file).start()
        yield target, dev, dns, peer
    finally:
        if dev is not None:
            dev.close()
        peer.stop()
        dns.stop()


def openpgp_key(addr, home):
    """A new OpenPGP key (Ed25519 + Cv25519 encryption subkey, user ID
    `addr`, no notations) made by gpg in `home`: the public key, binary."""
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}

    def run(*args):
        return subprocess.run(["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback",
                               "--passphrase", "", *args], env=env, check=True,
                              capture_output=True, timeout=60).stdout
    run("--quick-gen-key", addr, "future-default", "default", "never")
    key = run("--export", addr)
    assert key, "gpg exported nothing"
    subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, timeout=30)
    return key


def vcard(addr, key):
    b64 = base64.b64encode(key).decode()
    return (f"BEGIN:VCARD\r\nVERSION:4.0\r\nEMAIL:{addr}\r\nFN:{addr}\r\n"
            f"KEY:data:application/pgp-keys;base64\\,{b64}\r\nEND:VCARD\r\n")


def send_to(dev, target, tmp_path, force_encryption, rcpt=DEAD):
    """A new account sends an encrypted text to rcpt; waits until the relay
    took it (MsgDelivered). Returns (acc, msg id, t0, mark)."""
    a, _ = new_account(dev, target)
    if force_encryption is not None:
        dev.rpc.set_config(a, "force_encryption", force_encryption)
    [dead_at_a] = dev.rpc.import_vcard_contents(a, vcard(rcpt, openpgp_key(rcpt, tmp_path / "gpg")))
    assert dev.rpc.get_contact(a, dead_at_a)["address"] == rcpt
    chat = dev.rpc.create_chat_by_contact_id(a, dead_at_a)
    mark = dev.mark()
    t0 = time.monotonic()
    sent = dev.rpc.misc_send_text_message(a, chat, "to a domain without mail")
    # accepted by the relay at submission (250): a failure after this is the DSN's
    dev.wait_event(a, "MsgDelivered", lambda e: e["msgId"] == sent, since=mark, timeout=DSN_DEADLINE)
    assert dev.rpc.get_message(a, sent)["showPadlock"] is True
    return a, sent, t0, mark


def check_relay_failed_it(target, dns, case="null-mx"):
    rcpt, reply, query = CASES[case]
    log = cmtest.poll(lambda: f"failed for {rcpt}: {reply}" in target.server.log_text()
                      and target.server.log_text(), timeout=DSN_DEADLINE, what="the relay's failure")
    assert "Outgoing: Filtering encrypted mail." in log
    assert "Rejected unencrypted mail" not in log
    assert query in dns.queries


@pytest.mark.parametrize("case", list(CASES))
def test_message_shown_failed(dsn_lab, tmp_path, case):
    target, dev, dns, peer = dsn_lab
    rcpt, reply, _ = CASES[case]
    a, sent, t0, mark = send_to(dev, target, tmp_path, "0", rcpt)
    ev = dev.wait_event(a, "MsgFailed", lambda e: e["msgId"] == sent, since=mark,
                        timeout=max(1.0, DSN_DEADLINE - (time.monotonic() - t0)))
    took = time.monotonic() - t0
    msg = dev.rpc.get_message(a, sent)
    assert msg["state"] == STATE_OUT_FAILED, (ev, msg)
    assert rcpt in msg["error"] and reply in msg["error"], msg["error"]
    check_relay_failed_it(target, dns, case)
    if case == "smtp-550":  # over verified STARTTLS, refused at RCPT, no DATA
        [sess] = peer.sessions
        assert sess["tls"] and sess["data"] == [], sess
    else:
        assert peer.sessions == []
    print(f"{case}: send -> failed in Delta Chat: {took:.2f} s")


def test_null_mx_dsn_dropped_by_default_client(dsn_lab, tmp_path):
    target, dev, dns, _ = dsn_lab
    a, sent, t0, mark = send_to(dev, target, tmp_path, None)
    assert dev.rpc.get_config(a, "force_encryption") == "1"
    check_relay_failed_it(target, dns)
    dev.wait_event(a, "Warning", lambda e: "Fetched unencrypted message, ignoring" in e.get("msg", ""),
                   since=mark, timeout=DSN_DEADLINE)
    msg = dev.rpc.get_message(a, sent)
    assert msg["state"] == STATE_OUT_DELIVERED, msg
    assert not msg["error"], msg
