"""mtapeers.py: the two classic MTAs of the federation matrix (issue 14),
each a mail host of the fedlab internet on its own loopback address:

  postfix.test  fedlab.IPS["postfix.test"]  Debian Postfix 3.7 (no systemd)
                + OpenDKIM as milter (Mode sv: signs what send() injects
                with d=postfix.test, verifies everything else and writes
                Authentication-Results)
  exim.test     fedlab.IPS["exim.test"]     Exim 4.96 unpacked by
                scripts/deps.sh into /var/cache/chatmaild-tests/exim;
                built-in DKIM: the smtp transport signs d=exim.test, the
                DKIM ACL adds `X-Exim-DKIM: d=... status=$dkim_verify_status`
                and the DATA ACL Exim's Authentication-Results

Both: SMTP on <ip>:25 with STARTTLS (a test-CA certificate for the peer's
name), local mail of the peer's domain in one catch-all Maildir, other
domains routed by MX through the lab DNS (a resolv.conf bind-mounted over
/etc/resolv.conf in a private mount namespace, interop lab doc section 4),
TLS required and verified against the test CA (Postfix
`smtp_tls_security_level = secure`, Exim `hosts_require_tls` +
`tls_verify_cert_hostnames`). Port 443 of the peers is closed, so a relay
delivering to them falls back from /mxdeliv to SMTP. The peer's address is
put on lo while it runs (Postfix needs that); relays then connect from it,
so the one trusted client, INJECT_IP = 127.0.0.1 (send()), is never a relay.

    peer = PostfixPeer(workdir(), test_ca)    # or EximPeer(...)
    peer.start()                              # peer.start_seconds
    peer.publish(net)                         # A, MX, DKIM TXT in net's zone
    peer.send("alice@postfix.test", ["bob@relay1.test"], raw)
    peer.send_many([(from, rcpts, raw), ...])  # one SMTP session
    peer.wait_outcome("bob@relay1.test")      # ("sent"|"bounced"|"deferred", log line)
    peer.wait_message(b"<msgid>", local="carol")  # bytes of the stored message
    peer.maildir_messages("carol")            # [Path] (all if local is None)
    peer.log_text(); peer.reset(); peer.stop()

A peer outlives one `net` (DNS is found by address, the same for every
Internet of a run): start it once per module and `publish(net)` in each
test. Needs root; `missing_postfix()` / `missing_exim()` say why a peer
cannot run here.
"""
import email
import email.policy
import os
import pwd
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import cmtest
import fedlab
import mx_helpers
import postfixpeer

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTSUPER = shutil.which("postsuper") or "/usr/sbin/postsuper"
OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
EXIM_DIR = Path(os.environ.get("CM_EXIM_DIR", "/var/cache/chatmaild-tests/exim"))
EXIM = EXIM_DIR / "root" / "usr" / "sbin" / "exim4"
EXIM_TRUSTED = Path("/etc/exim4/trusted_configs")
SELECTOR = "sel"
INJECT_IP = "127.0.0.1"  # the trusted submitter of a peer (send())


def _user_missing(*users):
    for u in users:
        try:
            pwd.getpwnam(u)
        except KeyError:
            return u
    return None


def missing_postfix():
    """Why the Postfix peer cannot run here, or None."""
    if os.geteuid() != 0:
        return "the Postfix peer needs root (postfix -c DIR start, port 25)"
    for tool in (POSTFIX, POSTSUPER, OPENDKIM):
        if not os.access(tool, os.X_OK):
            return f"{tool} missing (scripts/deps.sh installs postfix, opendkim)"
    u = _user_missing("postfix", "opendkim")
    return f"user {u} missing (made by the Debian packages)" if u else None


def missing_exim():
    """Why the Exim peer cannot run here, or None."""
    if os.geteuid() != 0:
        return "the Exim peer needs root (port 25, private mount namespace)"
    if not os.access(EXIM, os.X_OK):
        return f"{EXIM} missing: scripts/deps.sh unpacks exim4-daemon-light there"
    if _user_missing("Debian-exim"):
        return "user Debian-exim missing (scripts/deps.sh adds it)"
    if not EXIM_TRUSTED.is_file():
        return f"{EXIM_TRUSTED} missing (scripts/deps.sh creates it; the peer bind-mounts its own)"
    return None


def workdir(prefix="cm-fedpeer-"):
    """A scratch directory the postfix/opendkim/Debian-exim users can traverse
    (pytest's tmp tree is 0700)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    d.chmod(0o755)
    return d


def _run(*args, timeout=60, check=True):
    p = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    out = p.stdout.decode(errors="replace")
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {p.returncode}:\n{out}")
    return out


def _add_lo_address(ip):
    """Puts ip/32 on lo; True if this call added it. Postfix listens only on
    addresses an interface has (lab doc section 5), and with the address on
    lo, Linux picks it as the source of connections to it: relays then
    reach a peer from the peer's own address, never from INJECT_IP."""
    if f" {ip}/" in _run("ip", "-o", "-4", "addr", "show", "dev", "lo"):
        return False
    _run("ip", "addr", "add", f"{ip}/32", "dev", "lo")
    return True


def _pid_alive(pid):
    """False once `pid` has exited, zombie included (the daemons are
    reparented to PID 1 here, which may reap them late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid, timeout=15):
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _listening(ip, port):
    try:
        socket.create_connection((ip, port), timeout=2).close()
        return True
    except OSError:
        return False


def _in_namespace(binds, command):
    """argv running `command` (a shell string) in a private mount namespace
    with each (file, target) bind-mounted; daemons it starts stay there."""
    mounts = " && ".join(f"mount --bind '{src}' '{dst}'" for src, dst in binds)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{mounts} && {command}"]


def header_values(raw, name):
    """All values of header `name` in a stored message, unfolded."""
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [re.sub(r"\s+", " ", str(v)).strip() for v in m.get_all(name, [])]


class _Peer:
    """What both peers share: address, keys, DNS records, Maildir, SMTP in."""
    domain = ""
    kind = ""
    recipient_header = ""  # the header the local delivery names the recipient in

    def __init__(self, directory, ca):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = ca
        self.ip = fedlab.IPS[self.domain]
        self.keys = mx_helpers.MxKeys()
        self.dkim_record = self.keys.rsa_rec
        self.resolv_conf = self.dir / "resolv.conf"
        self.ca_file = self.dir / "tls" / "ca.crt"
        self.resolv_conf.write_text(f"nameserver {fedlab.DNS_IP}\noptions timeout:1 attempts:2\n")
        self.start_seconds = None
        self.started = False
        self._added_ip = False

    # -- DNS
    @property
    def dkim_name(self):
        return f"{SELECTOR}._domainkey.{self.domain}"

    def publish(self, net):
        """A and MX of the peer and its DKIM key, in `net`'s live zone."""
        net.add_host(self.domain, self.ip)
        net.publish(self.dkim_name, "TXT", [self.dkim_record])

    def _leaf(self, tls_dir):
        tls_dir.mkdir(parents=True, exist_ok=True)
        leaf = self.ca.make_leaf(f"peer-{self.domain}",
                                 sans=f"DNS:{self.domain},IP:{self.ip}", cn=self.domain)
        key, chain = tls_dir / f"{self.domain}.key", tls_dir / f"{self.domain}.fullchain.pem"
        shutil.copy(leaf.key, key)
        shutil.copy(leaf.fullchain, chain)
        key.chmod(0o600)
        # the CA file too: pytest's tmp tree is closed to the mail users
        shutil.copy(self.ca.crt, self.ca_file)
        self.ca_file.chmod(0o644)
        return key, chain

    # -- life cycle
    def start(self):
        t0 = time.monotonic()
        self._added_ip = _add_lo_address(self.ip)
        self._start()
        self.started = True
        cmtest.poll(lambda: _listening(self.ip, 25), timeout=60, interval=0.05,
                    what=f"{self.kind} listening on {self.ip}:25")
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self):
        try:
            self._stop()
        finally:
            if self._added_ip:
                _run("ip", "addr", "del", f"{self.ip}/32", "dev", "lo", check=False)
                self._added_ip = False

    # -- mail in
    def send(self, mail_from, rcpts, data):
        """Injects a message over SMTP on the peer's port 25 from INJECT_IP,
        the one client the peer trusts: it relays and DKIM-signs its mail.
        (Relays connect from the peer's own address: Linux picks the
        destination as source for a local address.)"""
        with smtplib.SMTP(self.ip, 25, timeout=cmtest.TIMEOUT,
                          source_address=(INJECT_IP, 0)) as s:
            s.ehlo(f"inject.{self.domain}")
            refused = s.sendmail(mail_from, rcpts, data)
            assert not refused, refused

    def send_many(self, messages):
        """Like send() for [(mail_from, rcpts, data)], in one SMTP session
        (for load tests): {index: refused recipients} of partial refusals."""
        out = {}
        with smtplib.SMTP(self.ip, 25, timeout=cmtest.TIMEOUT,
                          source_address=(INJECT_IP, 0)) as s:
            s.ehlo(f"inject.{self.domain}")
            for i, (mail_from, rcpts, data) in enumerate(messages):
                refused = s.sendmail(mail_from, rcpts, data)
                if refused:
                    out[i] = refused
        return out

    # -- Maildir
    def maildir_messages(self, local=None):
        """Stored message files, oldest first; with `local`, only those
        delivered to local@<domain>."""
        out = []
        for sub in ("new", "cur"):
            d = self.maildir / sub
            if d.is_dir():
                out += [p for p in d.iterdir() if p.is_file()]
        out.sort(key=lambda p: (p.stat().st_mtime, p.name))
        if local is None:
            return out
        want = f"{local}@{self.domain}".lower()
        return [p for p in out
                if any(want in v.lower() for v in header_values(p.read_bytes(), self.recipient_header))]

    def find_message(self, needle, local=None):
        for p in self.maildir_messages(local):
            raw = p.read_bytes()
            if needle in raw:
                return raw
        return None

    def wait_message(self, needle, local=None, timeout=90):
        """The bytes of the first stored message containing `needle`."""
        found = []

        def hit():
            raw = self.find_message(needle, local)
            if raw is not None:
                found.append(raw)
            return raw is not None
        try:
            cmtest.poll(hit, timeout=timeout, interval=0.1,
                        what=f"{needle!r} in {self.domain}'s Maildir")
        except AssertionError:
            raise AssertionError(f"{needle!r} not stored by {self.kind} within {timeout}s\n"
                                 f"--- {self.kind} log (tail)\n{self.log_text()[-4000:]}")
        return found[0]

    # -- log
    def log_text(self):
        raise NotImplementedError

    def wait_log(self, pattern, timeout=90):
        rx = re.compile(pattern, re.M)
        found = []

        def hit():
            m = rx.search(self.log_text())
            if m:
                found.append(m)
            return bool(m)
        try:
            cmtest.poll(hit, timeout=timeout, interval=0.1, what=f"{self.kind} log /{pattern}/")
        except AssertionError:
            raise AssertionError(f"no /{pattern}/ in the {self.kind} log within {timeout}s:\n"
                                 f"{self.log_text()[-4000:]}")
        return found[0]

    def wait_outcome(self, rcpt, timeout=90):
        """("sent" | "bounced" | "deferred", log line) of the first delivery
        attempt to `rcpt` that the log reports."""
        raise NotImplementedError


# ------------------------------------------------------------------ Postfix

# the services of the interop Postfix peer (tests/interop/postfixpeer.py),
# listening on the peer's own address and with the virtual delivery agent
POSTFIX_MASTER_CF = ("{ip}:25   inet  n       -       n       -       -       smtpd\n" +
                     postfixpeer.MASTER_CF.split("\n", 1)[1].replace("{", "{{").replace("}", "}}") +
                     "virtual   unix  -       n       n       -       -       virtual\n")


class PostfixPeer(_Peer):
    domain = "postfix.test"
    kind = "postfix"
    recipient_header = "Delivered-To"

    def __init__(self, directory, ca, dkim=True):
        """dkim=False: no OpenDKIM milter (the mixed-load test: under 20
        concurrent relay connections on a loaded machine OpenDKIM 2.11's
        libunbound died with "fatal flex scanner internal error" while
        reading its resolver file, and Postfix tempfailed all mail;
        DKIM at Postfix is scenario 3's business)."""
        super().__init__(directory, ca)
        self.dkim = dkim
        self.etc = self.dir / "etc"
        self.maillog = self.dir / "maillog"
        self.maildir = self.dir / "mail" / "all" / "Maildir"
        self.dkim_dir = self.dir / "dkim"
        self.milter_sock = self.dkim_dir / "opendkim.sock"
        self.dkim_log = self.dkim_dir / "opendkim.log"
        self.dkim_proc = None

    def main_cf(self, key, chain):
        d = self.dir
        return "\n".join([
            "compatibility_level = 3.6",
            f"queue_directory = {d / 'spool'}",
            f"data_directory = {d / 'data'}",
            f"maillog_file_prefixes = {d}",
            f"maillog_file = {self.maillog}",
            "mail_owner = postfix",
            "setgid_group = postdrop",
            f"myhostname = {self.domain}",
            f"mydomain = {self.domain}",
            "myorigin = $myhostname",
            "mydestination =",
            f"mynetworks = {INJECT_IP}/32",
            f"inet_interfaces = {self.ip}",
            "inet_protocols = ipv4",
            f"smtp_bind_address = {self.ip}",
            "alias_maps =",
            "alias_database =",
            "smtpd_banner = $myhostname ESMTP Postfix peer",
            "smtpd_peername_lookup = no",
            f"virtual_mailbox_domains = {self.domain}",
            f"virtual_mailbox_base = {d / 'mail'}",
            "virtual_mailbox_maps = static:all/Maildir/",
            "virtual_uid_maps = static:65534",
            "virtual_gid_maps = static:65534",
            "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
            f"smtpd_tls_chain_files = {key}, {chain}",
            "smtpd_tls_security_level = may",
            "smtpd_tls_loglevel = 1",
            "smtpd_tls_received_header = yes",
            # mail to other domains: MX from the lab DNS, TLS verified
            # against the test CA for the next-hop name
            "smtp_dns_support_level = enabled",
            "smtp_host_lookup = dns",
            f"smtp_tls_CAfile = {self.ca_file}",
            "smtp_tls_security_level = secure",
            "smtp_tls_loglevel = 1",
            "smtp_tls_session_cache_database =",
            *([f"smtpd_milters = unix:{self.milter_sock}",
               f"non_smtpd_milters = unix:{self.milter_sock}",
               "milter_default_action = tempfail"] if self.dkim else []),
            "disable_mime_output_conversion = yes",
            "queue_run_delay = 5s",
            "minimal_backoff_time = 5s",
            "maximal_backoff_time = 10s",
            "delay_warning_time = 0",
        ]) + "\n"

    def _opendkim_conf(self):
        d = self.dkim_dir
        key = d / f"{SELECTOR}.private"
        key.write_bytes(self.keys.rsa_pem)
        shutil.chown(key, "opendkim")
        key.chmod(0o600)
        # libunbound answers *.test from its RFC 6761 zone unless told, and
        # caches for the TTL: each test's relay has a new key (lab doc section 8)
        resolver = d / "unbound.conf"
        resolver.write_text(
            "server:\n"
            "    do-not-query-localhost: no\n"
            '    local-zone: "test." nodefault\n'
            "    cache-max-ttl: 0\n"
            "    cache-max-negative-ttl: 0\n"
            "forward-zone:\n"
            '    name: "."\n'
            f"    forward-addr: {fedlab.DNS_IP}@53\n")
        conf = d / "opendkim.conf"
        conf.write_text("\n".join([
            "Syslog no",
            "LogWhy yes",
            "LogResults yes",
            "Mode sv",
            f"Domain {self.domain}",
            f"Selector {SELECTOR}",
            f"KeyFile {key}",
            "Canonicalization relaxed/relaxed",
            "OversignHeaders From",
            f"Socket local:{self.milter_sock}",
            "UMask 000",
            f"PidFile {d / 'opendkim.pid'}",
            "UserID opendkim",
            # signs what send() injects; everything else, relays included,
            # is verified
            f"InternalHosts {INJECT_IP}",
            "AlwaysAddARHeader yes",
            f"AuthservID {self.domain}",
            f"ResolverConfiguration {resolver}",
            "RequireSafeKeys false",
        ]) + "\n")
        return conf

    def _start(self):
        for sub in ("etc", "spool", "data", "mail", "dkim"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir / "data", "postfix")
        os.chown(self.dir / "mail", 65534, 65534)
        shutil.chown(self.dkim_dir, "opendkim")
        key, chain = self._leaf(self.dir / "tls")
        if self.dkim:
            conf = self._opendkim_conf()
            self._dkim_logf = open(self.dkim_log, "ab")
            self.dkim_proc = subprocess.Popen([OPENDKIM, "-f", "-x", str(conf)],
                                              stdin=subprocess.DEVNULL, stdout=self._dkim_logf,
                                              stderr=self._dkim_logf)
        (self.etc / "main.cf").write_text(self.main_cf(key, chain))
        (self.etc / "master.cf").write_text(POSTFIX_MASTER_CF.format(ip=self.ip))
        # Postfix waits until a config file is over a second old (re-reads
        # it every 300 ms): backdate them, 2 s less to start
        past = time.time() - 60
        for f in ("main.cf", "master.cf"):
            os.utime(self.etc / f, (past, past))
        # the queue directories `postfix check` would make (post-install
        # create-missing: a few dozen postconf runs, about a second) and
        # `quick-start`, which skips those checks once
        spool = self.dir / "spool"
        for sub, group, mode in [(x, None, 0o700) for x in (
                "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
                "incoming", "saved", "trace", "private")] + [
                ("maildrop", "postdrop", 0o730), ("public", "postdrop", 0o710)]:
            (spool / sub).mkdir(exist_ok=True)
            shutil.chown(spool / sub, "postfix", group)
            (spool / sub).chmod(mode)
        (spool / "pid").mkdir(exist_ok=True)
        (spool / "quick-start").touch()
        _run(*_in_namespace([(self.resolv_conf, "/etc/resolv.conf")],
                            f"exec {POSTFIX} -c {self.etc} start"))

        def milter_up():
            if self.dkim_proc.poll() is not None:
                raise AssertionError(f"opendkim exited {self.dkim_proc.returncode}:\n"
                                     f"{self.dkim_log.read_text(errors='replace')}")
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(str(self.milter_sock))
                return True
            except OSError:
                return False
            finally:
                s.close()
        if self.dkim:
            cmtest.poll(milter_up, timeout=30, interval=0.05, what="opendkim's milter socket")

    def log_text(self):
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def dkim_log_text(self):
        return self.dkim_log.read_text(errors="replace") if self.dkim_log.exists() else ""

    def wait_outcome(self, rcpt, timeout=90):
        m = self.wait_log(rf"^.*to=<{re.escape(rcpt)}>.*status=(sent|bounced|deferred).*$", timeout)
        return m.group(1), m.group(0)

    def verified_tls_to(self, host):
        """A log line saying the peer's SMTP client verified `host`'s
        certificate (or None)."""
        m = re.search(rf"^.*Verified TLS connection established to {re.escape(host)}\[.*$",
                      self.log_text(), re.M)
        return m.group(0) if m else None

    def tls_from(self, ip=None):
        """A log line of an SMTP client (from `ip`, default: any but the
        injector) that came in over TLS, or None."""
        rx = re.escape(ip) if ip else rf"(?!{re.escape(INJECT_IP)}\])[0-9.]+"
        m = re.search(rf"^.*TLS connection established from \S*\[{rx}\].*$", self.log_text(), re.M)
        return m.group(0) if m else None

    def dkim_results(self, raw):
        """The Authentication-Results OpenDKIM wrote into a stored message."""
        return [v for v in header_values(raw, "Authentication-Results")
                if v.startswith(f"{self.domain};")]

    def queue(self):
        return _run("postqueue", "-c", self.etc, "-p", check=False)

    def reset(self):
        """Drops whatever is still queued (between tests)."""
        if self.started:
            _run(POSTSUPER, "-c", self.etc, "-d", "ALL", check=False)

    def _stop(self):
        if self.started:
            _run(POSTFIX, "-c", self.etc, "stop", check=False)
            # `postfix stop` returns before the master has gone
            try:
                _wait_gone(int((self.dir / "spool" / "pid" / "master.pid").read_text().strip()))
            except (OSError, ValueError):
                pass
            self.started = False
        if self.dkim_proc is not None:
            if self.dkim_proc.poll() is None:
                # OpenDKIM lingers ~4 s after SIGTERM once it has had milter
                # sessions; it keeps no state worth a clean exit here
                self.dkim_proc.terminate()
                try:
                    self.dkim_proc.wait(0.5)
                except subprocess.TimeoutExpired:
                    self.dkim_proc.kill()
                    self.dkim_proc.wait()
            self._dkim_logf.close()
            self.dkim_proc = None


# --------------------------------------------------------------------- Exim

class EximPeer(_Peer):
    domain = "exim.test"
    kind = "exim"
    recipient_header = "Envelope-to"

    def __init__(self, directory, ca):
        super().__init__(directory, ca)
        self.conf = self.dir / "exim.conf"
        self.trusted = self.dir / "trusted_configs"
        self.logdir = self.dir / "log"
        self.pidfile = self.dir / "exim.pid"
        self.maildir = self.dir / "mail" / "Maildir"
        self.spool = self.dir / "spool"

    def config(self, key, chain, dkim_key):
        return f"""\
primary_hostname = {self.domain}
exim_path = {EXIM}
spool_directory = {self.spool}
log_file_path = {self.logdir}/%slog
pid_file_path = {self.pidfile}
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
keep_environment =
local_interfaces = {self.ip}
daemon_smtp_ports = 25
host_lookup =
rfc1413_hosts =
log_selector = +dkim_verbose +received_recipients
domainlist local_domains = {self.domain}
hostlist relay_from_hosts = {INJECT_IP}
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_dkim = acl_check_dkim
acl_smtp_data = acl_check_data
# deliver every message at once, however many a connection carries (the
# default, 10, queues the rest for the next queue run: seconds of delay
# for a relay that reuses its connections)
smtp_accept_queue_per_connection = 0
tls_advertise_hosts = *
tls_certificate = {chain}
tls_privatekey = {key}
begin acl
acl_check_rcpt:
  accept  hosts   = +relay_from_hosts
  accept  domains = +local_domains
  deny    message = relay not permitted
acl_check_dkim:
  warn    add_header = :at_start:X-Exim-DKIM: d=$dkim_cur_signer s=$dkim_selector status=$dkim_verify_status
  accept
acl_check_data:
  warn    add_header = :at_start:${{authresults {{$primary_hostname}}}}
  accept
begin routers
remote:
  driver = dnslookup
  domains = ! +local_domains
  transport = remote_smtp
  ignore_target_hosts = 0.0.0.0
  no_more
local:
  driver = accept
  domains = +local_domains
  transport = maildir_all
begin transports
remote_smtp:
  driver = smtp
  interface = {self.ip}
  hosts_require_tls = *
  tls_verify_certificates = {self.ca_file}
  tls_verify_hosts = *
  tls_verify_cert_hostnames = *
  dkim_domain = {self.domain}
  dkim_selector = {SELECTOR}
  dkim_private_key = {dkim_key}
  dkim_canon = relaxed
maildir_all:
  driver = appendfile
  directory = {self.maildir}
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add
  user = Debian-exim
begin retry
# retry quickly while a test runs; give up after 10 minutes
*   *   F,10m,5s
"""

    def _ns(self, command):
        return _in_namespace([(self.resolv_conf, "/etc/resolv.conf"),
                              (self.trusted, str(EXIM_TRUSTED))], command)

    def _start(self):
        for sub in (self.spool, self.logdir, self.maildir.parent):
            sub.mkdir(parents=True, exist_ok=True)
            shutil.chown(sub, "Debian-exim", "Debian-exim")
        tls = self.dir / "tls"
        key, chain = self._leaf(tls)
        dkim_key = tls / f"{SELECTOR}.dkim.pem"
        dkim_key.write_bytes(self.keys.rsa_pem)
        for f in (key, dkim_key):  # read by the receiving / delivering exim user
            shutil.chown(f, "root", "Debian-exim")
            f.chmod(0o640)
        self.conf.write_text(self.config(key, chain, dkim_key))
        self.conf.chmod(0o644)
        # Debian's exim reads a -C file with root privilege only if the
        # TRUSTED_CONFIG_LIST file names it: ours, mounted over it in the
        # namespace the daemon (and every exim it re-executes) lives in
        self.trusted.write_text(f"{self.conf}\n")
        self.trusted.chmod(0o644)
        _run(*self._ns(f"exec {EXIM} -C {self.conf} -bV"))
        _run(*self._ns(f"exec {EXIM} -C {self.conf} -bd -q5s"))

    def exim(self, *args, check=True):
        """Runs the peer's exim with its config (e.g. "-bp"): the output."""
        return _run(*self._ns(" ".join(["exec", str(EXIM), "-C", str(self.conf), *args])),
                    check=check)

    def log_text(self):
        p = self.logdir / "mainlog"
        return p.read_text(errors="replace") if p.exists() else ""

    def panic_text(self):
        p = self.logdir / "paniclog"
        return p.read_text(errors="replace") if p.exists() else ""

    def wait_outcome(self, rcpt, timeout=90):
        r = re.escape(rcpt)
        m = self.wait_log(rf"^.* (=>|\*\*|==) {r}\b.*$", timeout)
        return {"=>": "sent", "**": "bounced", "==": "deferred"}[m.group(1)], m.group(0)

    def verified_tls_to(self, host):
        m = re.search(rf"^.* => .* H={re.escape(host)} \[.*X=TLS\S+ CV=yes.*$", self.log_text(), re.M)
        return m.group(0) if m else None

    def tls_from(self, ip=None):
        rx = re.escape(ip) if ip else rf"(?!{re.escape(INJECT_IP)}\])[0-9.]+"
        m = re.search(rf"^.* <= .* \[{rx}\]:?\d* .*P=esmtps X=TLS.*$", self.log_text(), re.M)
        return m.group(0) if m else None

    def dkim_results(self, raw):
        """X-Exim-DKIM (from $dkim_verify_status) and Exim's own
        Authentication-Results lines of a stored message."""
        return header_values(raw, "X-Exim-DKIM") + \
            [v for v in header_values(raw, "Authentication-Results") if v.startswith(f"{self.domain};")]

    def queue(self):
        return self.exim("-bp", check=False)

    def reset(self):
        """Drops queued messages and the retry hints (between tests: the
        next test's relay has the same address)."""
        if not self.started:
            return
        ids = re.findall(r"^\s*\S+\s+\S+\s+(\S{6}-\S{6,11}-\S{2,4})\b", self.queue(), re.M)
        if ids:
            self.exim("-Mrm", *ids, check=False)
        for p in (self.spool / "db").glob("*") if (self.spool / "db").is_dir() else []:
            if p.name.startswith("retry") or p.name.startswith("wait-"):
                p.unlink(missing_ok=True)

    def _stop(self):
        if not self.started:
            return
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is not None:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pid = None
            if pid is not None:
                _wait_gone(pid)
        self.started = False
