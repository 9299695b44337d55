"""postfixpeer.py: a Debian Postfix instance with an OpenDKIM signing milter,
started by hand (no systemd), as in the interop lab doc §6 and §8.

    dkim = OpenDkim(workdir / "dkim", domain="peer.test", selector="sel")
    dkim.txt                      # the key record for sel._domainkey.peer.test
    dkim.start()
    pf = PostfixPeer(workdir / "pf", myhostname="peer.test",
                     relay={"relay1.test": ("127.0.0.1", 2525)}, milter=dkim.socket)
    pf.start()
    pf.submit("a@peer.test", ["b@relay1.test"], raw_bytes)   # over its loopback smtpd
    pf.wait_log(r"status=sent", timeout=60)
    pf.stop(); dkim.stop()

Postfix: own config dir, queue and data directory under `dir`, listening
on 127.0.0.1:<free port> only, every service `chroot = n`, no DNS
(`smtp_dns_support_level = disabled`: next hops are given as [IP]:port in
transport_maps, everything else is discarded, bounces included), its log
in `dir/maillog` (maillog_file + postlogd). Mail for the relay domains goes
out with `smtp_tls_security_level = encrypt` (STARTTLS required, the
certificate is not checked). Postfix needs root (`postfix -c DIR start`,
daemons run as the `postfix` user); the directory must be reachable by
that user, so callers give one outside pytest's 0700 tmp tree
(`workdir()` below).

OpenDKIM: `Mode s` for one domain with a key made by opendkim-genkey, an
inet milter socket on 127.0.0.1:<free port>, `RequireSafeKeys false` (the
key lives in a scratch directory) and, since libunbound answers `*.test`
from its built-in RFC 6761 zone, a resolver file with
`local-zone: "test." nodefault` (the 2 overrides of lab doc §8). It runs
as the `opendkim` user when started as root.
"""
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import cmtest

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
GENKEY = shutil.which("opendkim-genkey") or "/usr/sbin/opendkim-genkey"


def missing():
    """Why this harness cannot run here, or None."""
    if os.geteuid() != 0:
        return "Postfix peers need root (postfix -c DIR start)"
    for tool in (POSTFIX, OPENDKIM, GENKEY):
        if not os.access(tool, os.X_OK):
            return f"{tool} missing (scripts/deps.sh installs postfix, opendkim, opendkim-tools)"
    for user in ("postfix", "opendkim"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"user {user} missing (created by the Debian packages)"
    return None


def workdir(prefix="cm-postfix-"):
    """A scratch directory the postfix/opendkim users can traverse."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    d.chmod(0o755)
    return d


def _run(*args, timeout=60):
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {p.returncode}:\n{out}")
    return out


def _wait_port(port, proc=None, timeout=cmtest.TIMEOUT, what="listener"):
    def up():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} before listening")
        return not cmtest.connection_refused(port)
    cmtest.poll(up, timeout=timeout, interval=0.05, what=f"{what} on 127.0.0.1:{port}")


class OpenDkim:
    def __init__(self, directory, domain, selector="sel", bits=2048):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.domain, self.selector = domain, selector
        self.port = cmtest.free_ports(1)[0]
        self.proc = None
        _run(GENKEY, "-b", str(bits), "-d", domain, "-s", selector, "-D", str(self.dir))
        self.key = self.dir / f"{selector}.private"
        # sel.txt is a zone snippet: `sel._domainkey IN TXT ( "v=DKIM1; ..." "p=..." )`
        self.txt = "".join(re.findall(r'"([^"]*)"', (self.dir / f"{selector}.txt").read_text()))
        assert self.txt.startswith("v=DKIM1") and "p=" in self.txt, self.txt
        self.log_path = self.dir / "opendkim.log"

    @property
    def socket(self):
        return f"inet:127.0.0.1:{self.port}"

    @property
    def record_name(self):
        return f"{self.selector}._domainkey.{self.domain}"

    def start(self):
        resolver = self.dir / "unbound.conf"
        resolver.write_text('server:\n    local-zone: "test." nodefault\n')
        conf = self.dir / "opendkim.conf"
        lines = [
            "Syslog no",
            "LogWhy yes",
            "Mode s",
            f"Domain {self.domain}",
            f"Selector {self.selector}",
            f"KeyFile {self.key}",
            "Canonicalization relaxed/relaxed",
            "OversignHeaders From",
            f"Socket inet:{self.port}@127.0.0.1",
            f"PidFile {self.dir / 'opendkim.pid'}",
            "InternalHosts 127.0.0.0/8",
            f"ResolverConfiguration {resolver}",
            "RequireSafeKeys false",
        ]
        if os.geteuid() == 0:
            lines.append("UserID opendkim")
            shutil.chown(self.key, "opendkim")
            shutil.chown(self.dir, "opendkim")
        self.key.chmod(0o600)
        conf.write_text("\n".join(lines) + "\n")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([OPENDKIM, "-f", "-x", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        _wait_port(self.port, self.proc, what="opendkim")
        return self

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._log.close()
            self.proc = None


MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixPeer:
    """relay: {domain: (ip, port)} next hops; milter: an OpenDkim.socket or None."""

    def __init__(self, directory, myhostname, relay, milter=None):
        self.dir = Path(directory)
        self.etc = self.dir / "etc"
        self.myhostname = myhostname
        self.relay = dict(relay)
        self.milter = milter
        self.port = cmtest.free_ports(1)[0]
        self.maillog = self.dir / "maillog"
        self.started = False

    def main_cf(self):
        d = self.dir
        transport = ", ".join(f"{dom}=smtp:[{ip}]:{port}" for dom, (ip, port) in self.relay.items())
        lines = [
            "compatibility_level = 3.6",
            f"queue_directory = {d / 'spool'}",
            f"data_directory = {d / 'data'}",
            f"maillog_file_prefixes = {d}",
            f"maillog_file = {self.maillog}",
            "mail_owner = postfix",
            "setgid_group = postdrop",
            f"myhostname = {self.myhostname}",
            f"mydomain = {self.myhostname}",
            "myorigin = $myhostname",
            "mydestination =",
            "mynetworks = 127.0.0.0/8",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "smtp_bind_address = 127.0.0.1",
            "alias_maps =",
            "alias_database =",
            "smtpd_peername_lookup = no",
            "smtp_dns_support_level = disabled",
            "smtp_host_lookup = native",
            "smtpd_relay_restrictions = permit_mynetworks, reject",
            f"transport_maps = inline:{{ {transport} }}",
            "default_transport = discard:no other destinations in this test",
            "smtp_tls_security_level = encrypt",
            "smtp_tls_loglevel = 1",
            "smtp_tls_session_cache_database =",
            "queue_run_delay = 5s",
            "minimal_backoff_time = 5s",
            "maximal_backoff_time = 10s",
            "delay_warning_time = 0",
        ]
        if self.milter:
            lines += [f"smtpd_milters = {self.milter}", f"non_smtpd_milters = {self.milter}",
                      "milter_default_action = tempfail"]
        return "\n".join(lines) + "\n"

    def start(self):
        for sub in ("etc", "spool", "data"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir / "data", "postfix")
        (self.etc / "main.cf").write_text(self.main_cf())
        (self.etc / "master.cf").write_text(MASTER_CF.format(port=self.port))
        _run(POSTFIX, "-c", str(self.etc), "check")
        _run(POSTFIX, "-c", str(self.etc), "start")
        self.started = True
        _wait_port(self.port, what="postfix smtpd")
        return self

    def submit(self, mail_from, rcpts, data):
        """Hands a message to the peer's own smtpd (plain SMTP on loopback)."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=cmtest.TIMEOUT) as s:
            s.ehlo("client.peer.test")
            refused = s.sendmail(mail_from, rcpts, data)
            assert not refused, refused

    def log_text(self):
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def wait_log(self, pattern, timeout=60):
        rx = re.compile(pattern)
        found = []

        def hit():
            m = rx.search(self.log_text())
            if m:
                found.append(m)
            return bool(m)
        try:
            cmtest.poll(hit, timeout=timeout, interval=0.1, what=f"postfix log /{pattern}/")
        except AssertionError:
            raise AssertionError(f"no /{pattern}/ in the Postfix log within {timeout}s:\n"
                                 f"{self.log_text()[-4000:]}")
        return found[0]

    def queue(self):
        return subprocess.run(["postqueue", "-c", str(self.etc), "-p"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT).stdout.decode(errors="replace")

    def stop(self):
        if self.started:
            subprocess.run([POSTFIX, "-c", str(self.etc), "stop"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
            # `postfix stop` returns before the master has gone; wait for its pid file
            pidfile = self.dir / "spool" / "pid" / "master.pid"
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    pid = int(pidfile.read_text().strip())
                    os.kill(pid, 0)
                except (OSError, ValueError):
                    break
                time.sleep(0.1)
            self.started = False
