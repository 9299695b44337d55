"""fedlab.py: a small internet on this machine for the federation matrix
(issue 14). One `Internet` per test:

  DNS      an authoritative test server (tests/integration/dnsserver.py) on
           127.0.53.53 port 53, the address every party asks: our relays
           through `dns_servers`, Postfix/Exim/OpenDKIM through a
           resolv.conf (`resolv_conf`) bind-mounted in their private mount
           namespace (interop lab section 4). `dns_stop()` / `dns_start()`
           take it away and bring it back with the same zone.
  CA       the session's test CA (cmtest.TestCA); relays trust it through
           `tls_ca_file`, peers through its file.
  hosts    a hosts file (`hosts_file`) naming every host, for clients
           (Delta Chat) run in a private mount namespace (dcrpc.ns_command).
  relays   chatmaild-servers, each on its own loopback address with the
           standard ports (25, 465, 587, 993, 143, 443, 80), a DKIM key
           published in DNS, MX and A records; `_` domains run self-signed
           (chatmail lets relays skip certificate checks for them).

Address plan (N = $CM_FED_NET, default 0; the DNS zone, hosts file and the
peers' configs name these):

  127.N.53.53  DNS                 127.N.3.1  postfix.test
  127.N.1.1    relay1.test         127.N.4.1  exim.test
  127.N.2.1    relay2.test         127.N.5.1  _selfsigned.test

    net = Internet(tmp_path, server, test_ca)
    r1 = net.add_relay("relay1.test")
    r2 = net.add_relay("relay2.test")
    r1.server            # cmtest.Server (log_text, wait_log, stop, kill, ...)
    net.publish(name, "TXT", [...]); net.dns.behave[name] = "servfail"
"""
import os
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path

import cmtest
import mx_helpers
from dnsserver import DnsServer

# CM_FED_NET=N moves the whole plan to 127.N.x.y, so that two runs on one
# machine (two worktrees) do not fight over the same addresses and ports;
# under pytest-xdist each worker gets its own (gw0 -> 10, gw1 -> 11, ...).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
NET = int(os.environ.get("CM_FED_NET") or
          (10 + int(_WORKER[2:]) if _WORKER.startswith("gw") else 0))
DNS_IP = f"127.{NET}.53.53"
IPS = {"relay1.test": f"127.{NET}.1.1", "relay2.test": f"127.{NET}.2.1",
       "postfix.test": f"127.{NET}.3.1", "exim.test": f"127.{NET}.4.1",
       "_selfsigned.test": f"127.{NET}.5.1"}
PASSWORD = "password1234"
STD_PORTS = {"smtp": 25, "submissions": 465, "submission": 587, "imaps": 993, "imap": 143,
             "https": 443, "http": 80}


class _SMTPS(smtplib.SMTP_SSL):
    """SMTP over implicit TLS to `ip` with SNI and name check for `name`."""

    def __init__(self, name, ip, context):
        self._cm_name = name
        super().__init__(ip, STD_PORTS["submissions"], context=context, timeout=cmtest.TIMEOUT)

    def _get_socket(self, host, port, timeout):
        import socket
        raw = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(raw, server_hostname=self._cm_name)


class Relay:
    """A chatmaild-server for `domain` on `ip` with the standard ports."""

    def __init__(self, net, domain, ip, server, keys):
        self.net, self.domain, self.ip, self.server, self.keys = net, domain, ip, server, keys

    @property
    def selfsigned(self):
        return self.domain.startswith("_")

    def port(self, name):
        return STD_PORTS[name]

    def metrics(self):
        """{series: value} from /metrics (over the relay's http port)."""
        import urllib.request
        with urllib.request.urlopen(f"http://{self.ip}:{STD_PORTS['http']}/metrics",
                                    timeout=cmtest.TIMEOUT) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def tls_context(self):
        """A client context that trusts this relay (the test CA; nothing to
        check for a self-signed `_` relay)."""
        if self.selfsigned:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            return ctx
        return ssl.create_default_context(cafile=str(self.net.ca.crt))

    def submit(self, address, password=PASSWORD):
        """smtplib over 465 to this relay, logged in (the account is made
        at its first login)."""
        s = _SMTPS(self.domain, self.ip, context=self.tls_context())
        s.login(address, password)
        return s

    def make_account(self, address, password=PASSWORD):
        self.submit(address, password).quit()

    def stored(self, address):
        """The message files of an account (new/ and cur/)."""
        d = Path(self.server.tmpdir) / "mail" / address
        return sorted(x for sub in ("new", "cur") if (d / sub).is_dir()
                      for x in (d / sub).iterdir() if x.is_file())

    def queued(self):
        q = Path(self.server.tmpdir) / "state" / "queue"
        return sorted(x for x in q.iterdir() if x.is_file() and not x.name.startswith(".")) \
            if q.is_dir() else []

    def queue_cli(self, *args):
        p = subprocess.run([self.server.binary, "-c", str(self.server.ini), "queue", *args],
                           capture_output=True, text=True, timeout=cmtest.TIMEOUT)
        assert p.returncode == 0, p.stderr
        return p.stdout


class Internet:
    def __init__(self, tmp, server_factory, test_ca):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.server_factory = server_factory
        self.ca = test_ca
        self.zone = {}
        self.relays = {}
        self.dns = DnsServer(self.zone, host=DNS_IP, port=53)
        self.zone = self.dns.zone  # the live dict (names lower-cased)
        self.resolv_conf = self.tmp / "resolv.conf"
        self.resolv_conf.write_text(f"nameserver {DNS_IP}\noptions timeout:1 attempts:2\n")
        self.hosts_file = self.tmp / "hosts"
        self._write_hosts()

    # -- DNS
    def publish(self, name, rtype, values):
        self.dns.set(name, rtype, values)

    def add_host(self, name, ip, mx=True):
        """A and (unless mx=False) MX records for a mail host, a hosts line."""
        self.publish(name, "A", [ip])
        if mx:
            self.publish(name, "MX", [(10, name)])
        self._write_hosts()

    def dns_stop(self):
        self._dns_down()

    def _dns_down(self):
        """Stops the DNS server; DnsServer.stop() frees port 53 at once
        (it wakes and joins the UDP thread), so the next Internet in this
        process can bind it."""
        d, self.dns = self.dns, None
        d.stop()

    def dns_start(self):
        zone = self.zone
        for attempt in range(50):  # the old TCP socket may linger a moment
            try:
                self.dns = DnsServer(zone, host=DNS_IP, port=53)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the DNS server could not bind again")
        self.dns.zone = zone

    def _write_hosts(self):
        lines = ["127.0.0.1 localhost"] + [f"{ip} {name}" for name, ip in IPS.items()]
        self.hosts_file.write_text("\n".join(lines) + "\n")

    # -- relays
    def add_relay(self, domain, extra=None, start=True):
        ip = IPS[domain]
        keys = mx_helpers.MxKeys()
        kpath = self.tmp / f"{domain}-dkim.pem"
        kpath.write_bytes(keys.rsa_pem)
        os.chmod(kpath, 0o600)
        self.publish(f"opendkim._domainkey.{domain}", "TXT", [keys.rsa_rec])
        self.add_host(domain, ip)
        if not domain.startswith("_"):
            # MTA-STS (RFC 8461): the relay serves the policy on mta-sts.<d>
            self.publish(f"_mta-sts.{domain}", "TXT", ["v=STSv1; id=20261206"])
            self.publish(f"mta-sts.{domain}", "A", [ip])
        cfg = {"listen": ip, **{f"{k}_port": v for k, v in STD_PORTS.items()},
               "dns_servers": f"{DNS_IP}:53", "dkim_key_path": str(kpath),
               "tls_ca_file": str(self.ca.crt),
               "max_user_send_burst_size": 1000, "max_user_send_per_minute": 6000,
               **(extra or {})}
        if os.environ.get("CM_FED_DEBUG"):
            cfg["log_level"] = "debug"
        if domain.startswith("_"):
            srv = self.server_factory(mail_domain=domain, selfsigned=True, extra=cfg, start=start)
        else:
            leaf = self.ca.make_leaf(domain, sans=f"DNS:{domain},DNS:www.{domain},"
                                     f"DNS:mta-sts.{domain},IP:{ip}", cn=domain)
            srv = self.server_factory(mail_domain=domain, cert=(str(leaf.fullchain), str(leaf.key)),
                                      extra=cfg, start=start)
        relay = Relay(self, domain, ip, srv, keys)
        self.relays[domain] = relay
        return relay

    def close(self):
        if self.dns is not None:
            self._dns_down()
