"""test_postfix_dkim.py: our relay delivers to a Debian Postfix over SMTP,
and OpenDKIM in verify mode on that Postfix says `dkim=pass` for our
signature (issue 17, "Done when": Postfix with OpenDKIM).

The test starts
  * a test DNS server (tests/integration/dnsserver.py): relay1.test's key at
    opendkim._domainkey.relay1.test, peer.test MX mx.peer.test -> 127.0.0.1;
  * OpenDKIM with `Mode v` (VerifyingDkim below): libunbound forwards every
    query to the test DNS server (`forward-addr: 127.0.0.1@PORT` in the
    ResolverConfiguration file, with `local-zone: "test." nodefault` and
    `do-not-query-localhost: no`, lab doc §8); `InternalHosts` names no
    loopback address, so our relay (127.0.0.1) is an external sender whose
    mail is verified, and every verdict is written as Authentication-Results;
  * a Postfix instance (MailboxPeer: postfixpeer.PostfixPeer that stores
    peer.test mail in DIR/mail/all/Maildir through the `virtual` agent,
    STARTTLS with a test-CA certificate for mx.peer.test) with that milter;
  * our relay for relay1.test with `dns_servers` = the test DNS server,
    `tls_ca_file` = the test CA, `mxdeliv_port` = a closed port (so the
    /mxdeliv POST fails and SMTP is used) and `outbound_smtp_port` = the
    Postfix port.
`opendkim-testkey` checks the published key first (same resolver file).
A user of relay1.test submits three encrypted messages to peer.test: a
plain one, one with long folded headers (References over 30 lines) and
one with 8-bit bytes in its MIME preamble and epilogue and without a
final CRLF. Each is stored by Postfix with
`Authentication-Results: peer.test; dkim=pass ... header.d=relay1.test`,
the body byte-exact, and dkimpy verifies the stored bytes against the same
key. Our log shows delivery over SMTP, the Postfix log a TLS connection
from us. A negative control: DNS then publishes another key, and the next
message is stored with `dkim=fail` (so the pass above is not a default).
Needs root and postfix, opendkim, opendkim-tools (scripts/deps.sh).
"""
import email
import email.policy
import os
import re
import shutil
import subprocess
import time

import dkim
import pytest

import cmtest
import postfixpeer
from submit_helpers import login, queued
import test_outbound as ob

R1 = ob.R1
ALICE = ob.ALICE
PEER = "peer.test"
MX = f"mx.{PEER}"


class VerifyingDkim(postfixpeer.OpenDkim):
    """OpenDKIM as a verifier only (`Mode v`: the key the base class makes is
    never used), its DNS through the test DNS server on 127.0.0.1:dns_port."""

    def __init__(self, directory, dns_port):
        super().__init__(directory, domain=PEER, selector="unused")
        self.dns_port = dns_port
        self.resolver = self.dir / "unbound.conf"
        self.conf = self.dir / "opendkim.conf"

    def write_config(self):
        self.resolver.write_text(
            "server:\n"
            "    do-not-query-localhost: no\n"
            '    local-zone: "test." nodefault\n'
            "forward-zone:\n"
            '    name: "."\n'
            f"    forward-addr: 127.0.0.1@{self.dns_port}\n")
        lines = [
            "Syslog no",
            "LogWhy yes",
            "LogResults yes",
            "Mode v",
            f"Socket inet:{self.port}@127.0.0.1",
            f"PidFile {self.dir / 'opendkim.pid'}",
            # no loopback address: the relay on 127.0.0.1 is an outside sender
            "InternalHosts 192.0.2.254",
            "AlwaysAddARHeader yes",
            f"AuthservID {PEER}",
            f"ResolverConfiguration {self.resolver}",
            "RequireSafeKeys false",
        ]
        if os.geteuid() == 0:
            lines.append("UserID opendkim")
            shutil.chown(self.dir, "opendkim")
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self):
        self.write_config()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([postfixpeer.OPENDKIM, "-f", "-x", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        postfixpeer._wait_port(self.port, self.proc, what="opendkim")
        return self

    def testkey(self, domain, selector, keyfile):
        """opendkim-testkey through the same resolver file: its output."""
        p = subprocess.run(["opendkim-testkey", "-x", str(self.conf), "-d", domain, "-s", selector,
                            "-k", str(keyfile), "-vvv"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        return p.returncode, p.stdout.decode(errors="replace")


MASTER_VIRTUAL = "virtual   unix  -       n       n       -       -       virtual\n"


class MailboxPeer(postfixpeer.PostfixPeer):
    """Receives mail for `domain` on 127.0.0.1:<port> with STARTTLS (cert =
    (key, fullchain) paths) and stores it in DIR/mail/all/Maildir."""

    def __init__(self, directory, domain, cert, milter):
        super().__init__(directory, myhostname=MX, relay={}, milter=milter)
        self.domain = domain
        self.cert = cert
        self.maildir = self.dir / "mail" / "all" / "Maildir"

    def main_cf(self):
        lines = [ln for ln in super().main_cf().splitlines()
                 if not ln.startswith(("transport_maps", "smtpd_relay_restrictions"))]
        key, chain = self.cert
        lines += [
            f"virtual_mailbox_domains = {self.domain}",
            f"virtual_mailbox_base = {self.dir / 'mail'}",
            "virtual_mailbox_maps = static:all/Maildir/",
            "virtual_uid_maps = static:65534",
            "virtual_gid_maps = static:65534",
            "smtpd_relay_restrictions = reject_unauth_destination",
            f"smtpd_tls_chain_files = {key}, {chain}",
            "smtpd_tls_security_level = may",
            "smtpd_tls_loglevel = 1",
            # 8-bit mail is stored as received (no MIME conversion)
            "disable_mime_output_conversion = yes",
        ]
        return "\n".join(lines) + "\n"

    def start(self):
        for sub in ("etc", "spool", "data", "mail"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir / "data", "postfix")
        os.chown(self.dir / "mail", 65534, 65534)
        (self.etc / "main.cf").write_text(self.main_cf())
        (self.etc / "master.cf").write_text(postfixpeer.MASTER_CF.format(port=self.port) +
                                            MASTER_VIRTUAL)
        postfixpeer._run(postfixpeer.POSTFIX, "-c", str(self.etc), "check")
        postfixpeer._run(postfixpeer.POSTFIX, "-c", str(self.etc), "start")
        self.started = True
        postfixpeer._wait_port(self.port, what="postfix smtpd")
        return self

    def stored(self):
        new = self.maildir / "new"
        return sorted(new.iterdir()) if new.is_dir() else []


@pytest.fixture
def lab(server, test_ca, tmp_path):
    why = postfixpeer.missing()
    if why:
        cmtest.require(False, why)
    wd = postfixpeer.workdir("cm-pfdkim-")
    keys = ob.Keys(tmp_path)
    dns = ob.zone(keys)
    od = pf = None
    try:
        leaf = test_ca.make_leaf("postfix-" + MX, sans=f"DNS:{MX}", cn=MX)
        certdir = wd / "cert"
        certdir.mkdir()
        key, chain = certdir / "mx.key", certdir / "mx.fullchain.pem"
        shutil.copy(leaf.key, key)
        shutil.copy(leaf.fullchain, chain)
        key.chmod(0o600)
        od = VerifyingDkim(wd / "dkim", int(dns.address.rsplit(":", 1)[1]))
        od.start()
        pf = MailboxPeer(wd / "pf", PEER, (key, chain), milter=od.socket).start()
        r1 = ob.relay1(server, test_ca, dns, keys, cmtest.free_ports(1)[0],
                       extra={"outbound_smtp_port": pf.port})
        yield r1, pf, od, dns, keys
    finally:
        if pf is not None:
            pf.stop()
        if od is not None:
            od.stop()
        dns.stop()
        shutil.rmtree(wd, ignore_errors=True)


def with_folded_references(msg):
    refs = "References: " + "\r\n\t".join(f"<ref{i}.{'x' * 40}@example.org>" for i in range(30))
    out = msg.replace(b"Chat-Version: 1.0\r\n", b"Chat-Version: 1.0\r\n" + refs.encode() + b"\r\n")
    assert out != msg
    return out


EIGHT_BIT = "Grüße aus Köln, 東京 — préambule 8-bit".encode()


def with_8bit_and_no_final_crlf(msg):
    boundary = b"--1Dq4dUzQyVqz7bN9Wkhs3iXfPV1KQo"
    head, body = msg.split(b"\r\n\r\n", 1)
    assert body.startswith(boundary), body[:80]
    body = EIGHT_BIT + b"\r\n" + body.rstrip(b"\r\n") + b"\r\n" + EIGHT_BIT  # no final CRLF
    return head + b"\r\n\r\n" + body


def with_msgid(msg, msgid):
    out = msg.replace(b"Message-ID: <Mr.abc123@example.org>", f"Message-ID: <{msgid}>".encode())
    assert out != msg
    return out


def ar_headers(raw):
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [re.sub(r"\s+", " ", v) for v in m.get_all("Authentication-Results", [])]


def pf_has(pf, msgid):
    return any(f"<{msgid}>".encode() in p.read_bytes().split(b"\n\n", 1)[0] for p in pf.stored())


def find_stored(pf, msgid, timeout=60):
    def hit():
        for p in pf.stored():
            raw = p.read_bytes()
            if f"<{msgid}>".encode() in raw.split(b"\n\n", 1)[0]:
                return raw
        return None
    try:
        return cmtest.poll(hit, timeout=timeout, interval=0.1, what=f"{msgid} in Postfix's Maildir")
    except AssertionError:
        raise AssertionError(f"{msgid} not stored by Postfix:\n--- postfix log\n{pf.log_text()[-4000:]}"
                             f"\n--- postfix queue\n{pf.queue()}")


def stored_body(raw):
    """Maildir files have LF line ends: the body with CRLF restored."""
    return raw.split(b"\n\n", 1)[1].replace(b"\n", b"\r\n")


@pytest.mark.timeout(240)
def test_opendkim_verifies_our_signature(lab):
    r1, pf, od, dns, keys = lab
    t0 = time.monotonic()

    rc, out = od.testkey(R1, "opendkim", keys.path)
    assert rc == 0 and "key OK" in out, out
    assert (f"opendkim._domainkey.{R1}", "TXT") in dns.queries

    base = ob.encrypted(ALICE, f"carol@{PEER}")
    msgs = {
        "pfdkim-plain@relay1.test": base,
        "pfdkim-folded@relay1.test": with_folded_references(base),
        "pfdkim-8bit@relay1.test": with_8bit_and_no_final_crlf(base),
    }
    s = login(r1, ALICE)
    for msgid, msg in msgs.items():
        msg = with_msgid(msg, msgid)
        msgs[msgid] = msg
        assert s.sendmail(ALICE, [f"carol@{PEER}"], msg) == {}
    s.quit()

    dnsfunc = (lambda name, timeout=5: keys.record.encode()
               if name == f"opendkim._domainkey.{R1}.".encode() else None)
    for msgid, msg in msgs.items():
        raw = find_stored(pf, msgid)
        ars = ar_headers(raw)
        assert any(re.search(rf"^{re.escape(PEER)}; dkim=pass .*header\.d={re.escape(R1)}\b", a) for a in ars), \
            f"{msgid}: {ars}\n--- opendkim log\n{od.log_text()[-3000:]}"
        # the body as sent (8-bit bytes and the missing final CRLF included:
        # Postfix ends the file with a newline)
        sent_body = msg.split(b"\r\n\r\n", 1)[1]
        got_body = stored_body(raw)
        assert got_body in (sent_body, sent_body + b"\r\n"), msgid
        # dkimpy on the bytes Postfix stored, minus the headers Postfix and
        # OpenDKIM added in front of our DKIM-Signature
        crlf = raw.replace(b"\n", b"\r\n")
        at = crlf.find(b"DKIM-Signature:")
        assert at >= 0, raw[:400]
        assert dkim.verify(crlf[at:], dnsfunc=dnsfunc), msgid
    assert EIGHT_BIT in find_stored(pf, "pfdkim-8bit@relay1.test")
    assert re.search(r"TLS connection established from \S+\[127\.0\.0\.1\]", pf.log_text()), \
        pf.log_text()[-3000:]
    cmtest.poll(lambda: not queued(r1), what="relay1's queue empty")
    m1 = ob.scrape(r1)[0]
    assert m1['outbound_deliveries{path="smtp",outcome="delivered"}'] == 3, m1
    assert m1.get('outbound_deliveries{path="mxdeliv",outcome="delivered"}', 0) == 0

    # negative control: another key in DNS -> OpenDKIM says fail, not pass
    other = ob.Keys(pf.dir)
    dns.set(f"opendkim._domainkey.{R1}", "TXT", [other.record])
    od.stop()  # a fresh libunbound cache: the old key must not be remembered
    od.start()
    msgid = "pfdkim-otherkey@relay1.test"
    s = login(r1, ALICE)
    assert s.sendmail(ALICE, [f"carol@{PEER}"], with_msgid(base, msgid)) == {}
    s.quit()
    # relay1 may reuse its pooled connection, whose smtpd lost the milter
    # with the restart: Postfix answers 451 and the message is deferred.
    # That is right; the test does not wait for the backoff but flushes.
    def outcome():
        if pf_has(pf, msgid):
            return "stored"
        return "deferred" if "deferred for" in r1.log_text() else None
    if cmtest.poll(outcome, what="the message delivered or deferred") == "deferred":
        ob.queue_cli(r1, "flush")
    ars = ar_headers(find_stored(pf, msgid))
    assert any(re.search(rf"^{re.escape(PEER)}; dkim=fail .*header\.d={re.escape(R1)}\b", a) for a in ars), ars
    assert not any("dkim=pass" in a for a in ars), ars
    print(f"postfix+opendkim scenario: {time.monotonic() - t0:.1f} s")
