"""test_dns_cli.py: `chatmaild-server -c FILE dns [--zonefile F]` prints the
zone a relay needs (federation facts §7): the domain's A/AAAA as DNS has them
(through dns_servers: the test DNS server), MX, the MTA-STS TXT and CNAME
(ACME mode), www CNAME, the DKIM key's TXT split into strings of at most 255
bytes (it verifies a signature made with the key), then the recommended
records (SPF, DMARC, CAA, ADSP, SRV with the configured ports). The output
parses as zone-file text (dnslib). An IPv4-literal relay needs no DNS."""
import os
import re
import subprocess

import dkim
from dnslib import QTYPE, RR

import cmtest
from dnsserver import DnsServer

D = "relay1.test"


def write_ini(tmp_path, body):
    p = tmp_path / "chatmail.ini"
    p.write_text("[params]\n" + body)
    return p


def run(server_bin, ini, *args):
    return subprocess.run([server_bin, "-c", str(ini), "dns", *args], capture_output=True,
                          text=True, timeout=cmtest.TIMEOUT)


def records(text):
    body = "\n".join(l for l in text.splitlines() if l and not l.startswith(";"))
    out = {}
    for rr in RR.fromZone(body):
        out.setdefault((str(rr.rname).rstrip("."), QTYPE[rr.rtype]), []).append(rr)
    return out


def txt_value(rr):
    return b"".join(rr.rdata.data).decode()


def test_zone_printed_and_written(server_bin, tmp_path):
    dns = DnsServer({D: {"A": ["127.0.0.11"], "AAAA": ["fd77::11"]}})
    try:
        key = tmp_path / "dkim.pem"
        ini = write_ini(tmp_path, f"mail_domain = {D}\ndkim_key_path = {key}\n"
                        f"mailboxes_dir = {tmp_path}/mail\nstate_dir = {tmp_path}/state\n"
                        f"dns_servers = {dns.address}\nsubmission_port = 2587\n")
        r = run(server_bin, ini)
        assert r.returncode == 0, r.stderr
        assert key.is_file() and key.stat().st_mode & 0o077 == 0
        zone = r.stdout
        req, rec = zone.split("; recommended\n")
        assert "; required\n" in req
        got = records(zone)
        assert [str(x.rdata) for x in got[(D, "A")]] == ["127.0.0.11"]
        assert [str(x.rdata) for x in got[(D, "AAAA")]] == ["fd77::11"]
        assert str(got[(D, "MX")][0].rdata) == f"10 {D}."
        assert str(got[(f"www.{D}", "CNAME")][0].rdata) == f"{D}."
        assert str(got[(f"mta-sts.{D}", "CNAME")][0].rdata) == f"{D}."
        assert re.fullmatch(r"v=STSv1; id=\d{12}", txt_value(got[(f"_mta-sts.{D}", "TXT")][0]))
        [dk] = got[(f"opendkim._domainkey.{D}", "TXT")]
        assert all(len(s) <= 255 for s in dk.rdata.data) and len(dk.rdata.data) >= 2
        record = txt_value(dk)
        assert record.startswith("v=DKIM1;k=rsa;p=") and record.endswith(";s=email;t=s")
        msg = (f"From: a@{D}\r\nTo: b@x.test\r\nSubject: t\r\n\r\nhi\r\n").encode()
        sig = dkim.sign(msg, b"opendkim", D.encode(), key.read_bytes())
        assert dkim.verify(sig + msg, dnsfunc=lambda name, timeout=5: record.encode()
                           if name == f"opendkim._domainkey.{D}.".encode() else None)
        for rr in ("opendkim._domainkey", "_mta-sts", "www", "mta-sts"):
            assert f"{rr}.{D}." in req
        assert "v=spf1 a ~all" in rec and "v=DMARC1;p=reject;adkim=s;aspf=s" in rec
        assert "dkim=discardable" in rec and 'CAA 0 issue "letsencrypt.org"' in rec
        srv = {k[0]: str(v[0].rdata) for k, v in got.items() if k[1] == "SRV"}
        assert srv == {f"_submission._tcp.{D}": f"0 1 2587 {D}.",
                       f"_submissions._tcp.{D}": f"0 1 465 {D}.",
                       f"_imap._tcp.{D}": f"0 1 143 {D}.",
                       f"_imaps._tcp.{D}": f"0 1 993 {D}."}
        assert all(rr.ttl == 3600 for v in got.values() for rr in v)
        # the same zone into a file; the key is not made again
        zf = tmp_path / "zone"
        r2 = run(server_bin, ini, "--zonefile", str(zf))
        assert r2.returncode == 0 and r2.stdout == "", r2.stderr
        assert "created" not in r2.stderr
        strip = lambda z: re.sub(r"id=\d{12}", "id=X", z)  # noqa: E731
        assert strip(zf.read_text()) == strip(zone)
        assert (D, "A") in [(n, t) for n, t in dns.queries] or dns.queries
    finally:
        dns.stop()


def test_external_certificate_no_mta_sts_and_failed_lookup(server_bin, tmp_path, leaf):
    ini = write_ini(tmp_path, f"mail_domain = {D}\ndkim_key_path = {tmp_path}/k.pem\n"
                    f"mailboxes_dir = {tmp_path}/mail\nstate_dir = {tmp_path}/state\n"
                    f"dns_servers = 127.0.0.1:9\n"
                    f"tls_external_cert_and_key = {leaf.fullchain} {leaf.key}\n")
    r = run(server_bin, ini)
    assert r.returncode == 0, r.stderr
    assert "_mta-sts" not in r.stdout and "mta-sts." not in r.stdout and "CAA" not in r.stdout
    assert f"; {D} A/AAAA: the lookup failed" in r.stdout
    assert "looking up" in r.stderr


def test_ipv4_relay_needs_no_dns(server_bin, tmp_path):
    ini = write_ini(tmp_path, f"mail_domain = 127.0.0.1\nmailboxes_dir = {tmp_path}/mail\n"
                    f"state_dir = {tmp_path}/state\n")
    r = run(server_bin, ini)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "127.0.0.1 is an IPv4 address: no DNS records are needed\n"


def test_bad_arguments(server_bin, tmp_path):
    ini = write_ini(tmp_path, f"mail_domain = {D}\ndkim_key_path = {tmp_path}/k.pem\n")
    r = run(server_bin, ini, "--bogus")
    assert r.returncode == 2 and "unknown argument: --bogus" in r.stderr
    assert not os.path.exists(tmp_path / "k.pem")


def test_check_against_the_printed_zone(server_bin, tmp_path):
    """--check asks the zone's server (dns_servers here) for every record:
    loaded with the printed zone it passes; without the DKIM record it exits
    1 naming it; a missing recommended record is only a warning."""
    key = tmp_path / "dkim.pem"
    dns = DnsServer({D: {"A": ["127.0.0.11"]}})
    try:
        ini = write_ini(tmp_path, f"mail_domain = {D}\ndkim_key_path = {key}\n"
                        f"mailboxes_dir = {tmp_path}/mail\nstate_dir = {tmp_path}/state\n"
                        f"dns_servers = {dns.address}\n")
        r = run(server_bin, ini)
        assert r.returncode == 0, r.stderr
        for (name, rtype), rrs in records(r.stdout).items():
            dns.set(name, rtype, [rr.rdata for rr in rrs])
        ok = run(server_bin, ini, "--check")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert f"; checking at {dns.address}" in ok.stdout
        for line in (f"ok       {D} MX 10 {D}.", f"ok       www.{D} CNAME {D}.",
                     f"ok       _imaps._tcp.{D} SRV 0 1 993 {D}.",
                     f'ok       {D} CAA 0 issue "letsencrypt.org"'):
            assert line in ok.stdout, ok.stdout
        assert f"ok       opendkim._domainkey.{D} TXT v=DKIM1;k=rsa;p=" in ok.stdout
        assert "MISSING" not in ok.stdout and "warning" not in ok.stdout

        del dns.zone[f"opendkim._domainkey.{D}"]
        dns.zone[f"_adsp._domainkey.{D}"] = {}
        bad = run(server_bin, ini, "--check")
        assert bad.returncode == 1, bad.stdout
        assert f"MISSING opendkim._domainkey.{D} TXT (no such domain (NXDOMAIN))" in bad.stdout
        assert f"warning _adsp._domainkey.{D} TXT" in bad.stdout
        assert "1 required record missing or different" in bad.stdout

        dns.set(f"opendkim._domainkey.{D}", "TXT", ["v=DKIM1;k=rsa;p=AAAA"])
        dns.set(D, "MX", [(10, f"mx.{D}")])
        diff = run(server_bin, ini, "--check")
        assert diff.returncode == 1
        assert f'DIFFERS {D} MX: "10 mx.{D}." where "10 {D}." is wanted' in diff.stdout
        assert f"DIFFERS opendkim._domainkey.{D} TXT" in diff.stdout
        assert "2 required records missing or different" in diff.stdout
    finally:
        dns.stop()
