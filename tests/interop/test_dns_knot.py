"""test_dns_knot.py: `chatmaild-server dns --check` against Knot DNS (issue
18): the zone the `dns` command prints is loaded, as the operator would
paste it, into a real authoritative server (knotd, started by the test on a
free loopback port with its own config, zone file and run directory), and
`--check` asks that server for every record:

  - with the printed zone (plus the SOA, NS and A records any zone has), it
    passes and reports every required record "ok";
  - with the DKIM record removed, it exits 1 and names the record;
  - with another DKIM key published, it exits 1 and says the record differs.

Knot refuses a zone that fails its semantic checks, so the printed records
must also be valid zone-file text for a real server."""
import os
import shutil
import socket
import subprocess

import pytest

import cmtest

D = "relay1.test"
KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"


class Knot:
    """knotd in the foreground, authoritative for D from zone_dir/D.zone."""

    def __init__(self, root, port):
        self.root, self.port = root, port
        self.conf = root / "knot.conf"
        (root / "run").mkdir(exist_ok=True)
        self.conf.write_text(
            "server:\n"
            f"    listen: 127.0.0.1@{port}\n"
            f"    rundir: \"{root}/run\"\n"
            "    user: root:root\n"
            "database:\n"
            f"    storage: \"{root}/run\"\n"
            "log:\n  - target: stderr\n    any: info\n"
            "template:\n  - id: default\n"
            f"    storage: \"{root}\"\n"
            "    file: \"%s.zone\"\n"
            "    semantic-checks: on\n"
            "    zonefile-sync: -1\n"
            "    zonefile-load: whole\n"
            "    journal-content: none\n"
            f"zone:\n  - domain: {D}\n")
        self.proc = None

    def start(self, zone_text):
        (self.root / f"{D}.zone").write_text(zone_text)
        self.log = open(self.root / "knotd.log", "ab")
        self.proc = subprocess.Popen([KNOTD, "-c", str(self.conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        # loaded once it answers the SOA query over TCP with an answer
        cmtest.poll(self._answers_soa, what="knotd serving the zone")

    def _answers_soa(self):
        if self.proc.poll() is not None:
            raise AssertionError("knotd exited: " + self.logtext())
        from dnslib import DNSRecord
        try:
            q = DNSRecord.question(D, "SOA")
            a = DNSRecord.parse(q.send("127.0.0.1", self.port, tcp=True, timeout=1))
        except (OSError, socket.timeout):
            return False
        return any(str(rr.rname).rstrip(".") == D for rr in a.rr)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log.close()

    def logtext(self):
        return (self.root / "knotd.log").read_text(errors="replace")[-3000:]


HEAD = f"""$TTL 3600
{D}. 3600 IN SOA ns.{D}. hostmaster.{D}. 1 3600 900 604800 300
{D}. 3600 IN NS ns.{D}.
ns.{D}. 3600 IN A 127.0.0.11
{D}. 3600 IN A 127.0.0.11
"""


def dns_cmd(server_bin, ini, *args):
    return subprocess.run([server_bin, "-c", str(ini), "dns", *args], capture_output=True,
                          text=True, timeout=cmtest.TIMEOUT)


def zone_without(text, name):
    return "".join(l for l in text.splitlines(keepends=True) if not l.startswith(name + " "))


@pytest.mark.timeout(90)
def test_check_against_knot(server_bin, tmp_path):
    cmtest.require(os.path.exists(KNOTD), "knotd (Debian package knot) is not installed")
    root = tmp_path / "knot"
    root.mkdir()
    [port] = cmtest.free_ports(1)
    key = tmp_path / "dkim.pem"
    ini = tmp_path / "chatmail.ini"
    ini.write_text(f"[params]\nmail_domain = {D}\ndkim_key_path = {key}\n"
                   f"mailboxes_dir = {tmp_path}/mail\nstate_dir = {tmp_path}/state\n"
                   f"dns_servers = 127.0.0.1:{port}\n")
    knot = Knot(root, port)
    try:
        knot.start(HEAD)
        zf = tmp_path / "printed.zone"
        r = dns_cmd(server_bin, ini, "--zonefile", str(zf))
        assert r.returncode == 0, r.stderr
        printed = zf.read_text()
        # the A record came from Knot, so the printed zone carries it
        assert f"{D}. 3600 IN A 127.0.0.11" in printed
        assert f"opendkim._domainkey.{D}. 3600 IN TXT" in printed
        knot.stop()

        # the operator's zone: SOA/NS of their own, then what `dns` printed
        knot.start(HEAD + zone_without(printed, f"{D}. 3600 IN A"))
        ok = dns_cmd(server_bin, ini, "--check")
        assert ok.returncode == 0, ok.stdout + ok.stderr + knot.logtext()
        assert f"; checking at 127.0.0.1:{port}" in ok.stdout, ok.stdout
        for line in (f"ok       {D} MX 10 {D}.", f"ok       www.{D} CNAME {D}.",
                     f"ok       mta-sts.{D} CNAME {D}.",
                     f"ok       _imaps._tcp.{D} SRV 0 1 993 {D}.",
                     f"ok       opendkim._domainkey.{D} TXT v=DKIM1;k=rsa;p="):
            assert line in ok.stdout, ok.stdout
        assert "MISSING" not in ok.stdout and "DIFFERS" not in ok.stdout
        knot.stop()

        # the DKIM record left out
        knot.start(HEAD + zone_without(zone_without(printed, f"{D}. 3600 IN A"),
                                       f"opendkim._domainkey.{D}."))
        bad = dns_cmd(server_bin, ini, "--check")
        assert bad.returncode == 1, bad.stdout
        assert f"MISSING opendkim._domainkey.{D} TXT" in bad.stdout, bad.stdout
        assert "1 required record missing or different" in bad.stdout, bad.stdout
        knot.stop()

        # another key published under the selector
        other = (zone_without(zone_without(printed, f"{D}. 3600 IN A"),
                              f"opendkim._domainkey.{D}.")
                 + f'opendkim._domainkey.{D}. 3600 IN TXT "v=DKIM1;k=rsa;p=AAAA"\n')
        knot.start(HEAD + other)
        diff = dns_cmd(server_bin, ini, "--check")
        assert diff.returncode == 1, diff.stdout
        assert f"DIFFERS opendkim._domainkey.{D} TXT" in diff.stdout, diff.stdout
    finally:
        if knot.proc:
            knot.stop()
