"""targets.py: the relays the interop tests run against, all on loopback.

Each target is a chatmail relay for the mail domain `_relay1.test` on one
127.x.y.z address with the standard ports (993/465 implicit TLS, 143/587
STARTTLS, 443 HTTPS with the ALPN imap/smtp mux). Clients reach it by name
through a private /etc/hosts (`hosts_file`, bind-mounted by dcrpc.ns_command):
a `_` host name makes Delta Chat skip the certificate chain check but keep
the name check (interop lab §12).

  OursTarget       chatmaild-server started by the integration `server`
                   fixture in self-signed mode.
  ReferenceTarget  the reference stand-in: Postfix 3.7 + Dovecot 2.3 from
                   bench/reference/start.sh (configured like chatmail), plus
                   what that script leaves out and these tests need: a 587
                   STARTTLS submission service, and refstandin.py on 443
                   (/new, autoconfig, ALPN imap/smtp passthrough).

Common API: name, ip, domain, port(name), hosts_file, new_credentials(),
ca_file (a PEM file that makes non-Delta-Chat clients trust the server),
imap_login(addr, pw) (an imaplib session over 993).
"""
import imaplib
import os
import random
import secrets
import ssl
import string
import subprocess
from pathlib import Path

DOMAIN = "_relay1.test"
STD_PORTS = {"imaps": 993, "submissions": 465, "imap": 143, "submission": 587, "https": 443,
             "smtp": 25, "http": 80}
REPO = Path(__file__).resolve().parents[2]


def random_ip():
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


def random_localpart():
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(9))


def random_password():
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(14))


def insecure_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


class Target:
    name = "?"
    domain = DOMAIN

    def __init__(self, ip, workdir):
        self.ip = ip
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.hosts_file = self.workdir / "hosts"
        self.hosts_file.write_text(f"127.0.0.1 localhost\n{ip} {DOMAIN}\n")

    def port(self, name):
        return STD_PORTS[name]

    def new_credentials(self):
        return f"{random_localpart()}@{self.domain}", random_password()

    def imap_login(self, addr, password):
        c = imaplib.IMAP4_SSL(self.ip, self.port("imaps"), ssl_context=insecure_context(), timeout=30)
        c.login(addr, password)
        return c

    def served_cert_pem(self):
        der = None
        ctx = insecure_context()
        import socket
        with socket.create_connection((self.ip, self.port("imaps")), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname=DOMAIN) as s:
                der = s.getpeercert(binary_form=True)
        return ssl.DER_cert_to_PEM_cert(der)

    @property
    def ca_file(self):
        """The served leaf certificate as a PEM file (clients pin it)."""
        path = self.workdir / "served.pem"
        if not path.exists():
            path.write_text(self.served_cert_pem())
        return path


class OursTarget(Target):
    name = "ours"

    def __init__(self, server_factory, workdir):
        super().__init__(random_ip(), workdir)
        extra = {"listen": self.ip, **{f"{k}_port": v for k, v in STD_PORTS.items()}}
        if os.environ.get("CM_INTEROP_DEBUG"):
            extra["log_level"] = "debug"
        self.server = server_factory(selfsigned=True, extra=extra)


class ReferenceTarget(Target):
    """Started once per session; stop() at the end."""
    name = "reference"

    def __init__(self, workdir):
        super().__init__(os.environ.get("CM_INTEROP_REF_IP", "127.0.0.31"), workdir)
        self.refdir = Path(os.environ.get("CM_INTEROP_REF_DIR", "/var/tmp/chatmaild-interop-ref"))
        self.env = {**os.environ, "CHATBENCH_REF_DIR": str(self.refdir), "CHATBENCH_REF_IP": self.ip,
                    "CHATBENCH_REF_DOMAIN": DOMAIN, "CHATBENCH_REF_SMTPS": "465",
                    "CHATBENCH_REF_IMAPS": "993", "CHATBENCH_REF_IMAP": "143"}
        self.standin = None

    def start(self):
        # output to a file: the daemons it starts inherit (and keep) its stdout
        log = self.workdir / "start.log"
        with open(log, "wb") as f:
            rc = subprocess.run(["bash", str(REPO / "bench/reference/start.sh"), "stock"], env=self.env,
                                stdin=subprocess.DEVNULL, stdout=f, stderr=f, timeout=600).returncode
        if rc != 0:
            raise RuntimeError(f"bench/reference/start.sh failed:\n{log.read_text()}")
        self._add_submission()
        from refstandin import StandIn
        self.standin = StandIn(self.ip, DOMAIN, self.refdir / "ca/server.fullchain.pem",
                               self.refdir / "ca/server.key")
        self.standin.start()
        return self

    def _add_submission(self):
        """587 with STARTTLS, AUTH only after TLS, like chatmail's submission service."""
        etc = self.refdir / "postfix/etc"
        master = (etc / "master.cf").read_text()
        if ":587 " not in master:
            smtps = master.split("\npickup")[0]
            sub = smtps.replace(":465 ", ":587 ").replace("postfix/smtps", "postfix/submission")
            sub = sub.replace("  -o smtpd_tls_wrappermode=yes\n", "")
            (etc / "master.cf").write_text(sub + "\n" + master)
        rc = subprocess.run(["postfix", "-c", str(etc), "reload"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        if rc != 0:
            raise RuntimeError("postfix reload failed")

    def stop(self):
        if self.standin:
            self.standin.stop()
        subprocess.run(["bash", str(REPO / "bench/reference/stop.sh"), "--clean"], env=self.env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120)
