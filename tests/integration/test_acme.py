"""test_acme.py: the in-process ACME client against Debian's Pebble
(pebble_helpers.py): a first start with no certificate obtains one by
http-01 and by tls-alpn-01 and then presents it on HTTPS, IMAPS and SMTPS
(verified with Pebble's root); a short-lived certificate is renewed while
an IMAP IDLE stays open; Pebble down at renewal time -> retried, the old
certificate kept; an acmetool-layout account key is reused with
onlyReturnExisting. Loopback only; each test waits with deadlines."""
import re
import shutil
import ssl
import subprocess
import time

import pytest

import cmtest
from cmtest import DOMAIN, HOST
from dnsserver import DnsServer
import pebble_helpers as pb



@pytest.fixture
def acme_env(tmp_path, test_ca):
    """-> make(challenge, validity, extra) giving (server, pebble); cleans up."""
    made = []
    dns = DnsServer(pb.acme_zone())

    def make(challenge="http-01", validity=None, extra=None, start=True):
        http_port, https_port = cmtest.free_ports(2)
        peb = pb.Pebble(tmp_path / "pebble", test_ca, http_port, https_port, dns.address,
                        validity)
        made.append(peb)
        ports = {"http": http_port, "https": https_port}
        if not start:
            return peb, ports
        srv = pb.acme_server(tmp_path, test_ca, peb, ports, challenge, extra)
        made.append(srv)
        return srv, peb

    make.dns = dns
    yield make
    problems = []
    for m in reversed(made):
        rc = m.stop()
        if isinstance(m, cmtest.Server) and rc not in (0, None):
            problems.append(f"server exited with {rc} (expected 0)\n{m.log_tail()}")
    dns.stop()
    assert not problems, "\n".join(problems)


def presented(srv, root):
    """The DER each TLS port presents, verified for relay1.test with root."""
    out = {"https": pb.peer_cert(srv.port("https"), root, alpn=["http/1.1"])}
    out["imaps"] = pb.peer_cert(srv.port("imaps"), root)
    out["submissions"] = pb.peer_cert(srv.port("submissions"), root)
    return out


def check_first_start(srv, peb, challenge):
    pb.issued(srv)
    log = srv.log_text()
    # before issuance: the temporary self-signed certificate, never an error
    assert "state/tls/selfsigned.crt until a certificate is issued" in log, log
    assert f"answering {challenge} for {DOMAIN}" in log, log
    assert f"answering {challenge} for www.{DOMAIN}" in log, log
    other = "tls-alpn-01" if challenge == "http-01" else "http-01"
    assert f"answering {other}" not in log, log
    ders = presented(srv, peb.root())
    assert len(set(ders.values())) == 1, "all ports present the same certificate"
    sans = cmtest.cert_dns_sans(ders["https"])
    assert set(sans) == set(pb.NAMES), sans
    state = srv.tmpdir / "state" / "acme"
    assert (state / "live" / "privkey").stat().st_mode & 0o077 == 0
    assert (state / "account.key").stat().st_mode & 0o077 == 0


@pytest.mark.timeout(60)
def test_http01_first_start(acme_env):
    srv, peb = acme_env("http-01", extra={"acme_email": "admin@relay1.test"})
    check_first_start(srv, peb, "http-01")


@pytest.mark.timeout(60)
def test_acme_email_is_the_contact(acme_env):
    # Pebble checks the contact: one it refuses shows that acme_email is sent,
    # and as a JSON string (the quotes escaped: not a malformed request)
    srv, peb = acme_env("http-01", extra={"acme_email": 'not "an" address'})
    cmtest.poll(lambda: "newAccount: HTTP 400" in srv.log_text(), what="contact refused")
    assert "invalidContact" in srv.log_text(), srv.log_text()
    assert "malformed" not in srv.log_text()


@pytest.mark.timeout(60)
def test_tls_alpn01_first_start(acme_env):
    srv, peb = acme_env("tls-alpn-01")
    check_first_start(srv, peb, "tls-alpn-01")
    # no challenge pending: acme-tls/1 gets a failed handshake, never the real certificate
    with pytest.raises(ssl.SSLError):
        pb.peer_cert(srv.port("https"), alpn=["acme-tls/1"], verify=False)
    assert pb.peer_cert(srv.port("https"), peb.root(), alpn=["h2", "http/1.1"])


def imaps_idle(srv, root, user):
    """An IMAPS connection (verified with root) logged in and in IDLE."""
    ctx = ssl.create_default_context(cafile=root)
    c = cmtest.LineConn(ctx.wrap_socket(__import__("socket").create_connection(
        (HOST, srv.port("imaps")), timeout=cmtest.TIMEOUT), server_hostname=DOMAIN))
    assert c.readline().startswith("* OK")
    c.send(f"a1 LOGIN {user}@{DOMAIN} password1234\r\n".encode())
    assert c.imap_until_tagged("a1")[-1].startswith("a1 OK")
    c.send(b"a2 SELECT INBOX\r\n")
    assert c.imap_until_tagged("a2")[-1].startswith("a2 OK")
    c.send(b"a3 IDLE\r\n")
    assert c.readline().startswith("+ ")
    return c


@pytest.mark.timeout(60)
def test_short_lived_certificate_renewed_under_idle(acme_env):
    srv, peb = acme_env("tls-alpn-01", validity=9)  # renewal at 2/3: ~6 s after issuance
    pb.issued(srv)
    root = peb.root()
    first = pb.peer_cert(srv.port("imaps"), root)
    m1 = pb.metrics(srv)
    assert m1['acme_orders_total{result="valid"}'] == 1, m1
    assert m1["acme_next_renewal_seconds"] > time.time(), m1
    idle = imaps_idle(srv, root, "idler0001")
    pb.issued(srv, 2, timeout=25)
    second = pb.peer_cert(srv.port("imaps"), root)
    assert second != first, "new connections get the renewed certificate"
    assert pb.peer_cert(srv.port("https"), root, alpn=["http/1.1"]) == second
    # the IDLE connection opened under the old certificate is still served
    idle.send(b"DONE\r\n")
    assert idle.imap_until_tagged("a3")[-1].startswith("a3 OK")
    idle.send(b"a4 NOOP\r\n")
    assert idle.imap_until_tagged("a4")[-1].startswith("a4 OK")
    idle.close()
    m2 = pb.metrics(srv)
    assert m2['acme_orders_total{result="valid"}'] == 2, m2
    assert m2["acme_certificate_expiry_seconds"] > m1["acme_certificate_expiry_seconds"], (m1, m2)
    assert m2["acme_next_renewal_seconds"] > m1["acme_next_renewal_seconds"], (m1, m2)


def account_url(log):
    urls = re.findall(r"ACME: account (\S+) \(key ", log)
    assert urls, log
    return urls[-1]


@pytest.mark.timeout(60)
def test_acmetool_account_and_certificate_taken_over(acme_env, tmp_path, test_ca):
    peb, ports = acme_env(start=False)
    # a first run registers an RSA account key (acmetool's default kind)
    state = tmp_path / "srv" / "state"
    (state / "acme").mkdir(parents=True)
    subprocess.run(["openssl", "genrsa", "-out", str(state / "acme" / "account.key"), "2048"],
                   check=True, capture_output=True)
    srv = pb.acme_server(tmp_path, test_ca, peb, ports)
    try:
        pb.issued(srv)
        first_account = account_url(srv.log_text())
        assert srv.stop() == 0, srv.log_tail()
        # acmetool's layout: accounts/<dir>/privkey and live/<domain>/{fullchain,privkey}
        at = tmp_path / "acmetool"
        acct = at / "accounts" / "acme-v02.api.letsencrypt.org%2fdirectory"
        acct.mkdir(parents=True)
        shutil.move(str(state / "acme" / "account.key"), str(acct / "privkey"))
        live = at / "live" / DOMAIN
        live.mkdir(parents=True)
        for f in ("fullchain", "privkey"):
            shutil.copy(state / "acme" / "live" / f, live / f)
        shutil.rmtree(state / "acme")
        srv.start()
        pb.issued(srv, 2)
        log = srv.run_log()
        assert f"serving {live / 'fullchain'} until a certificate is issued" in log, log
        assert "(acmetool's)" in log and account_url(log) == first_account, log
        assert not (state / "acme" / "account.key").exists(), "no new account key"
        assert srv.stop() == 0, srv.log_tail()
        # a key the CA does not know: onlyReturnExisting fails, nothing is registered
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                        "-out", str(acct / "privkey")], check=True, capture_output=True)
        shutil.rmtree(state / "acme")
        srv.start()
        cmtest.poll(lambda: "does not know the account" in srv.run_log(),
                    what="onlyReturnExisting refused")
        assert "accountDoesNotExist" in srv.run_log(), srv.run_log()
        assert srv.stop() == 0, srv.log_tail()
    finally:
        srv.stop()


@pytest.mark.timeout(60)
def test_caa_accounturi_of_another_account_refused(acme_env):
    from dnslib import RR
    other = "https://127.0.0.1:9/my-account/someone-else"
    caa = RR.fromZone(f'{DOMAIN}. 300 IN CAA 0 issue "pebble.test; accounturi={other}"')[0].rdata
    acme_env.dns.set(DOMAIN, "CAA", [caa])
    srv, peb = acme_env("http-01")
    cmtest.poll(lambda: "not ordering for" in srv.log_text(), what="the CAA refusal")
    log = srv.log_text()
    ours = account_url(log)
    assert f'publish instead: {DOMAIN}. CAA 0 issue "pebble.test; accounturi={ours}"' in log, log
    assert other in log, log
    assert "ordering a certificate" not in log, log
    m = pb.metrics(srv)
    assert m['acme_orders_total{result="refused"}'] == 1, m
    assert m['acme_orders_total{result="valid"}'] == 0, m
    # our own account in the record: the order goes ahead
    assert srv.stop() == 0, srv.log_tail()
    acme_env.dns.set(DOMAIN, "CAA", [RR.fromZone(
        f'{DOMAIN}. 300 IN CAA 0 issue "pebble.test; accounturi={ours}"')[0].rdata])
    srv.start()
    pb.issued(srv)


@pytest.mark.timeout(60)
def test_challenge_on_a_disabled_port_is_not_offered(acme_env, tmp_path, test_ca):
    peb, ports = acme_env(start=False)
    # http_port disabled: http-01 is dropped from the preference, tls-alpn-01 answers
    srv = pb.acme_server(tmp_path, test_ca, peb, {"http": 0, "https": ports["https"]},
                         challenge="http-01 tls-alpn-01")
    try:
        pb.issued(srv)
        assert "answering http-01" not in srv.log_text()
        assert srv.stop() == 0, srv.log_tail()
        # nothing left to answer with: said at start, the server still serves
        srv.overrides["acme_challenge"] = "http-01"
        srv.start()
        cmtest.poll(lambda: "names only challenges whose port" in srv.run_log(),
                    what="the refusal at start")
        assert srv.alive()
        assert srv.stop() == 0, srv.log_tail()
    finally:
        srv.stop()
