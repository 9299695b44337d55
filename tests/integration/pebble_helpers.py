"""pebble_helpers.py: Debian's `pebble` (a small ACME CA for tests) on
loopback, and a chatmaild-server in ACME mode pointed at it.

    dns = DnsServer(acme_zone())            # relay1.test, mta-sts., www. -> 127.0.0.1
    pb = Pebble(tmp, test_ca, http_port, https_port, dns.address, validity=None)
    srv = acme_server(tmp, test_ca, pb, challenge="http-01")
    pb.root()                               # path of the PEM root of Pebble's chains
    issued(srv, n)                          # waits for the n-th "issued and installed"

Pebble validates for real (PEBBLE_VA_ALWAYS_VALID is not set): its VA
resolves the names through our DNS server and connects to the server's
http port (http-01) or https port (tls-alpn-01). Its own listener uses a
leaf of the test CA, which the server trusts through tls_ca_file. Each
Pebble start makes a new root, so roots are fetched per run.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path

import cmtest
from cmtest import DOMAIN, HOST

NAMES = (DOMAIN, f"mta-sts.{DOMAIN}", f"www.{DOMAIN}")


def acme_zone():
    return {n: {"A": ["127.0.0.1"]} for n in NAMES}


def pebble_bin():
    return shutil.which("pebble") or "/usr/bin/pebble"


class Pebble:
    def __init__(self, tmpdir, test_ca, http_port, https_port, dns_address, validity=None):
        cmtest.require(os.path.exists(pebble_bin()), "pebble (Debian package) not installed")
        self.dir = Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        leaf = test_ca.make_leaf("pebble-listener", sans="DNS:localhost,IP:127.0.0.1",
                                 cn="localhost")
        self.ca_file = str(test_ca.crt)
        self.acme_port, self.mgmt_port = cmtest.free_ports(2)
        conf = {"pebble": {
            "listenAddress": f"{HOST}:{self.acme_port}",
            "managementListenAddress": f"{HOST}:{self.mgmt_port}",
            "certificate": str(leaf.fullchain), "privateKey": str(leaf.key),
            "httpPort": http_port, "tlsPort": https_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }}
        if validity:
            conf["pebble"]["certificateValidityPeriod"] = validity  # seconds (Pebble 2.4)
        self.conf = self.dir / "pebble.json"
        self.conf.write_text(json.dumps(conf))
        self.dns_address = dns_address
        self.log_path = self.dir / "pebble.log"
        self.proc = None
        self.start()

    @property
    def directory(self):
        return f"https://{HOST}:{self.acme_port}/dir"

    def start(self):
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_AUTHZREUSE="0")
        env.pop("PEBBLE_VA_ALWAYS_VALID", None)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([pebble_bin(), "-config", str(self.conf),
                                      "-dnsserver", self.dns_address],
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
                                     env=env)

        def up():
            assert self.proc.poll() is None, self.log_path.read_text()[-2000:]
            try:
                socket.create_connection((HOST, self.acme_port), timeout=1).close()
                return True
            except OSError:
                return False
        cmtest.poll(up, what="pebble listening")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.proc = None

    def root(self):
        """The root of this run's chains, written to a file; its path."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        with urllib.request.urlopen(f"https://{HOST}:{self.mgmt_port}/roots/0", context=ctx,
                                    timeout=10) as r:
            pem = r.read()
        path = self.dir / f"root-{self.proc.pid}.pem"
        path.write_bytes(pem)
        return str(path)


def acme_server(tmpdir, test_ca, pebble, ports, challenge="http-01", extra=None):
    """A server in ACME mode (mail_domain relay1.test, no external cert)
    using `ports` {"http": p, "https": q}, which Pebble validates against;
    its resolver (the CAA check) is Pebble's DNS server."""
    overrides = {"dns_servers": pebble.dns_address,"http_port": ports["http"], "https_port": ports["https"],
                 "acme_directory_url": pebble.directory, "acme_challenge": challenge,
                 "acme_acmetool_dir": str(Path(tmpdir) / "acmetool"),
                 "tls_ca_file": str(test_ca.crt), **(extra or {})}
    return cmtest.Server(Path(tmpdir) / "srv", str(test_ca.crt), DOMAIN, None, overrides).start()


def issued(srv, n=1, timeout=30):
    cmtest.poll(lambda: srv.log_text().count("issued and installed") >= n, timeout=timeout,
                what=f"certificate #{n} issued\n")
    return srv


def peer_cert(port, ca_file=None, alpn=None, verify=True):
    """DER of the certificate the port presents (verified for relay1.test
    against ca_file when verify)."""
    if verify:
        ctx = ssl.create_default_context(cafile=ca_file)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection((HOST, port), timeout=cmtest.TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=DOMAIN) as s:
            return s.getpeercert(binary_form=True)


def metrics(srv):
    """{series: value} from /metrics on the plain http port."""
    import http.client
    c = http.client.HTTPConnection(HOST, srv.port("http"), timeout=cmtest.TIMEOUT)
    c.request("GET", "/metrics", headers={"Host": DOMAIN})
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    assert r.status == 200, (r.status, body)
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.rpartition(" ")
            out[name] = float(v)
    return out
