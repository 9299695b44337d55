"""test_dns_resolver.py: core/dns (c-ares on the libuv loop) and the DKIM key
lookup glue, driven by the test-only `dnstool` against dnsserver.DnsServer on
127.0.0.1: TXT (multi-string records joined, several records, an answer
too big for UDP that needs TCP), MX (order, null MX), A/AAAA, and the
failure kinds the callers must tell apart: NXDOMAIN, NODATA, SERVFAIL,
REFUSED and timeout (temporary), cancelled requests and a stop with a
query in flight; every run must end with the loop closed (no handle left).
"""
import base64
import subprocess
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import cmtest
from dnsserver import DnsServer

LONG = "v=DKIM1; k=rsa; p=" + "A" * 700  # three strings of one record


def tool():
    path = Path(cmtest.server_bin()).parent / "dnstool"
    if not path.exists():
        pytest.fail(f"dnstool not found next to the server binary: {path}", pytrace=False)
    return str(path)


@pytest.fixture
def dns():
    server = DnsServer({
        "txt.example": {"TXT": ["hello world", LONG]},
        "big.example": {"TXT": [f"record-{i}-" + "x" * 200 for i in range(10)]},
        "mail.example": {"MX": [(20, "mx2.mail.example"), (10, "mx1.mail.example"),
                                (20, "mx3.mail.example")],
                         "A": ["127.0.0.9"]},
        "nullmx.example": {"MX": [(0, ".")]},
        "host.example": {"A": ["127.0.0.5", "127.0.0.6"], "AAAA": ["::1"]},
        "v6only.example": {"AAAA": ["2001:db8::7"]},
        "onlytxt.example": {"TXT": ["x"]},
    })
    server.behave["servfail.example"] = "servfail"
    server.behave["refused.example"] = "refused"
    server.behave["timeout.example"] = "timeout"
    yield server
    server.stop()


def run(dns, *ops, timeout_ms=300, tries=2, servers=None):
    args = [tool()]
    for s in servers or [dns.address]:
        args += ["--server", s]
    args += ["--timeout", str(timeout_ms), "--tries", str(tries)] + list(ops)
    p = subprocess.run(args, capture_output=True, timeout=60)
    lines = p.stdout.decode().splitlines()
    assert p.returncode == 0, (p.returncode, lines, p.stderr)
    assert lines[-1] == "closed"
    return lines[:-1]


def test_txt_records_joined_and_failures(dns):
    out = run(dns, "txt", "txt.example", "txt", "nosuch.example", "txt", "mail.example",
              "txt", "servfail.example", "txt", "refused.example", "txt", "timeout.example")
    assert out[0] == f"txt txt.example OK 2 hello world|{LONG}"
    assert out[1] == "txt nosuch.example NXDOMAIN 0"
    assert out[2] == "txt mail.example NODATA 0"
    assert out[3] == "txt servfail.example TEMPFAIL 0"
    assert out[4] == "txt refused.example TEMPFAIL 0"
    assert out[5] == "txt timeout.example TEMPFAIL 0"
    # c-ares retried the timeout (tries=2) and got no answer
    assert dns.queries.count(("timeout.example", "TXT")) >= 2


def test_txt_too_big_for_udp_goes_tcp(dns):
    out = run(dns, "txt", "big.example")
    assert out[0].startswith("txt big.example OK 10 ")
    assert all(f"record-{i}-" in out[0] for i in range(10))


def test_mx_order_and_null_mx(dns):
    out = run(dns, "mx", "mail.example", "mx", "nullmx.example", "mx", "host.example",
              "mx", "nosuch.example", "mx", "servfail.example")
    assert out[0] == ("mx mail.example OK 3 10:mx1.mail.example 20:mx2.mail.example "
                      "20:mx3.mail.example null=0")
    assert out[1] == "mx nullmx.example OK 1 0: null=1"
    assert out[2] == "mx host.example NODATA 0 null=0"
    assert out[3] == "mx nosuch.example NXDOMAIN 0 null=0"
    assert out[4] == "mx servfail.example TEMPFAIL 0 null=0"


def test_addresses(dns):
    out = run(dns, "addr", "host.example", "addr", "v6only.example", "addr", "nosuch.example",
              "addr", "onlytxt.example", "addr", "timeout.example")
    first = out[0].split()
    assert first[:4] == ["addr", "host.example", "OK", "3"]
    assert sorted(first[4:]) == ["127.0.0.5", "127.0.0.6", "::1"]
    assert out[1] == "addr v6only.example OK 1 2001:db8::7"
    assert out[2] == "addr nosuch.example NXDOMAIN 0"
    assert out[3].split()[2] in ("NODATA", "NXDOMAIN")  # c-ares 1.18 folds both for getaddrinfo
    assert out[4] == "addr timeout.example TEMPFAIL 0"


def test_cancel_and_stop_in_flight(dns):
    out = run(dns, "cancel", "timeout.example", "txt", "txt.example")
    assert out[0] == "cancel timeout.example pending-cancelled"
    assert out[1].startswith("txt txt.example OK 2")
    out = run(dns, "stop", "timeout.example", timeout_ms=5000)
    assert out == ["txt timeout.example CANCELLED 0"]


def test_server_forms_and_fallback(dns):
    # an unreachable first server (nothing listens on that port) then ours
    out = run(dns, "txt", "txt.example", servers=["127.0.0.1:9", dns.address])
    assert out[0].startswith("txt txt.example OK 2")
    out = run(dns, "txt", "txt.example", servers=[f"[::ffff:127.0.0.1]:{dns.port}"])
    assert out[0].startswith("txt txt.example")  # parses; v4-mapped may be unreachable
    p = subprocess.run([tool(), "--server", "not-an-ip", "txt", "x"], capture_output=True,
                       timeout=30)
    assert p.returncode == 1 and b"start failed: bad dns_servers entry" in p.stdout


def test_dkim_key_lookup_through_dns_and_cache(dns, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()  # > 255: split strings
    msg = (b"From: a@sender.example\r\nTo: b@relay.example\r\nSubject: hi\r\n\r\nbody\r\n")
    signed = dkim.sign(msg, b"sel", b"sender.example", pem) + msg
    f = tmp_path / "m.eml"
    f.write_bytes(signed)
    dns.set("sel._domainkey.sender.example", "TXT", [record])
    out = run(dns, "dkim", str(f), "sender.example")
    assert out[0] == "dkim pass [pass pass] | dkim(cached) pass [pass pass]"
    assert dns.queries.count(("sel._domainkey.sender.example", "TXT")) == 1
    # key lookup failing temporarily: 451, and nothing cached
    dns.queries.clear()
    dns.behave["sel._domainkey.sender.example"] = "servfail"
    out = run(dns, "dkim", str(f), "sender.example")
    assert out[0].startswith("dkim 451 4.7.5 ")
    assert "| dkim 451 4.7.5" in out[0]
    assert dns.queries.count(("sel._domainkey.sender.example", "TXT")) >= 2
    dns.behave["sel._domainkey.sender.example"] = "timeout"
    out = run(dns, "dkim", str(f), "sender.example", timeout_ms=200, tries=1)
    assert out[0].startswith("dkim 451 4.7.5 ") and "[temperror" in out[0]
    # no key: permanent, cached briefly
    del dns.behave["sel._domainkey.sender.example"]
    dns.zone.pop("sel._domainkey.sender.example")
    dns.queries.clear()
    out = run(dns, "dkim", str(f), "sender.example")
    assert out[0] == ("dkim 554 5.7.1 No valid DKIM signature found [permerror no key record] | "
                      "dkim(cached) 554 5.7.1 No valid DKIM signature found [permerror no key record]")
    assert dns.queries.count(("sel._domainkey.sender.example", "TXT")) == 1
    # a wrong key: the cache entry is dropped after the failure, so the second round asks again
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ospki = other.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    dns.set("sel._domainkey.sender.example", "TXT", ["v=DKIM1; p=" + base64.b64encode(ospki).decode()])
    dns.queries.clear()
    out = run(dns, "dkim", str(f), "sender.example")
    assert out[0] == ("dkim 554 5.7.1 No valid DKIM signature found [fail signature did not verify] | "
                      "dkim 554 5.7.1 No valid DKIM signature found [fail signature did not verify]")
    assert dns.queries.count(("sel._domainkey.sender.example", "TXT")) == 2


def test_dkim_only_the_from_domain_is_looked_up(dns, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    record = "v=DKIM1; p=" + base64.b64encode(spki).decode()
    msg = b"From: a@sender.example\r\nTo: b@relay.example\r\nSubject: hi\r\n\r\nbody\r\n"
    once = dkim.sign(msg, b"sel", b"sender.example", pem) + msg
    twice = dkim.sign(once, b"x", b"stranger.example", pem) + once
    f = tmp_path / "m.eml"
    f.write_bytes(twice)
    dns.set("sel._domainkey.sender.example", "TXT", [record])
    dns.set("x._domainkey.stranger.example", "TXT", [record])
    out = run(dns, "dkim", str(f), "sender.example")
    # the stranger's signature (first) is not looked up: temperror, ignored
    assert out[0].startswith("dkim pass [temperror key lookup failed temporarily] [pass pass]")
    names = {q[0] for q in dns.queries}
    assert "sel._domainkey.sender.example" in names
    assert "x._domainkey.stranger.example" not in names
    # with the stranger as From only its key is fetched, and it passes
    dns.queries.clear()
    out = run(dns, "dkim", str(f), "stranger.example")
    assert out[0].startswith("dkim pass [pass pass] [temperror")
    assert {q[0] for q in dns.queries} == {"x._domainkey.stranger.example"}
