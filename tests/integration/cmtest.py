"""cmtest.py: helpers for the chatmaild-server integration tests.

Standard library only (plus the `openssl` CLI for the test CA). Provides:
  - TestCA: a throw-away EC P-256 CA and leaf certificates made with openssl;
  - free_ports(): distinct free TCP ports on 127.0.0.1;
  - Server: one chatmaild-server process with its own chatmail.ini, state
    and mail directories in a temporary directory, started and stopped
    with signals, its stderr captured in a log file;
  - LineConn and the tls_connect / starttls_smtp / starttls_imap helpers:
    line-oriented clients that read with deadlines, never with sleeps.
Every wait polls a condition until a deadline (TIMEOUT, generous because
the suite also runs under ASan); nothing here measures speed.
"""
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0  # seconds; per wait, generous for the ASan build
HOST = "127.0.0.1"
DOMAIN = "relay1.test"
LEAF_SANS = "DNS:relay1.test,DNS:www.relay1.test,DNS:mta-sts.relay1.test,IP:127.0.0.1"
PORT_NAMES = ("smtp", "submission", "submissions", "imap", "imaps", "https", "http")

# Set by conftest's session fixture: the CA file client helpers trust.
DEFAULT_CA_FILE = None


def server_bin():
    return os.environ.get("CM_SERVER_BIN") or str(REPO_ROOT / "build" / "chatmaild-server")


def poll(cond, timeout=TIMEOUT, interval=0.02, what="condition"):
    """Calls cond() until it returns a true value (returned) or the deadline
    passes (AssertionError naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- certificates

def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


class Leaf:
    """A leaf certificate: crt (leaf only), key, fullchain (leaf + CA)."""

    def __init__(self, crt, key, fullchain):
        self.crt, self.key, self.fullchain = Path(crt), Path(key), Path(fullchain)

    @property
    def der(self):
        return ssl.PEM_cert_to_DER_cert(self.crt.read_text())


class TestCA:
    """An EC P-256 test CA in `directory` (like interop-lab.md §3 mkca.sh)."""
    __test__ = False  # not a pytest test class

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.crt = self.dir / "ca.crt"
        self.key = self.dir / "ca.key"
        self.serial = self.dir / "ca.srl"
        _openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", str(self.key), "-out", str(self.crt), "-days", "3650",
                 "-subj", "/CN=Chatmail Integration Test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-addext", "subjectKeyIdentifier=hash")

    def make_leaf(self, name, sans=LEAF_SANS, cn=None):
        """Makes <dir>/<name>.{crt,key,fullchain.pem}; each call a new key and serial."""
        base = self.dir / name
        key, csr, ext = f"{base}.key", f"{base}.csr", f"{base}.ext"
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", f"/CN={cn or DOMAIN}")
        Path(ext).write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            f"subjectAltName={sans}\n"
            "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
        _openssl("x509", "-req", "-in", csr, "-CA", str(self.crt), "-CAkey", str(self.key),
                 "-CAserial", str(self.serial), "-CAcreateserial", "-out", f"{base}.crt",
                 "-days", "825", "-sha256", "-extfile", ext)
        Path(f"{base}.fullchain.pem").write_text(Path(f"{base}.crt").read_text() + self.crt.read_text())
        os.unlink(csr)
        os.unlink(ext)
        os.chmod(key, 0o600)
        return Leaf(f"{base}.crt", key, f"{base}.fullchain.pem")


def cert_text(der):
    """`openssl x509 -noout -text` of a DER certificate."""
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-text"],
                       input=der, capture_output=True)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode()


def cert_dns_sans(der):
    """The DNS names of a certificate's subjectAltName extension."""
    return re.findall(r"DNS:([^,\s]+)", cert_text(der))


# ---------------------------------------------------------------- ports

def free_ports(n):
    """n distinct ports that were free on 127.0.0.1 a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def connection_refused(port):
    """True when a TCP connect to the port is refused."""
    try:
        s = socket.create_connection((HOST, port), timeout=TIMEOUT)
    except ConnectionRefusedError:
        return True
    s.close()
    return False


# ---------------------------------------------------------------- server

class ServerStartError(AssertionError):
    pass


class Server:
    """One chatmaild-server process. `overrides` are extra chatmail.ini keys
    (value None removes a default key). `cert` is a (cert_path, key_path)
    pair for tls_external_cert_and_key, or None for no such line."""

    def __init__(self, tmpdir, ca_file, mail_domain=DOMAIN, cert=None, overrides=None,
                 binary=None):
        self.tmpdir = Path(tmpdir)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.ca_file = ca_file
        self.mail_domain = mail_domain
        self.cert = cert
        self.overrides = dict(overrides or {})
        self.binary = binary or server_bin()
        # The binary from the build tree finds appversions.json only when
        # told (an installed one looks beside itself: test_install.py).
        self.env = dict(os.environ)
        self.env.setdefault("CM_APPVERSIONS_FILE", str(REPO_ROOT / "config" / "appversions.json"))
        self.ini = self.tmpdir / "chatmail.ini"
        self.log_path = self.tmpdir / "server.log"
        self.ports = {}
        self.proc = None
        self.returncode = None
        self._logfile = None
        self.runs = 0

    # -- config
    def config_lines(self):
        t = self.tmpdir
        keys = {
            "mail_domain": self.mail_domain,
            "listen": HOST,
            **{f"{n}_port": str(self.ports[n]) for n in PORT_NAMES},
            "state_dir": str(t / "state"),
            "mailboxes_dir": str(t / "mail"),
            "run_as_user": "",
            "nocreate_file": str(t / "nocreate"),
            "max_load_1m": "100",
            "min_available_memory": "0",
            "min_free_disk_space": "0",
            # no DNS beyond loopback: the outbound queue of a test that does
            # not give its own DNS server gets temporary failures (port 1 is
            # closed) and keeps its mail queued
            "dns_servers": "127.0.0.1:1",
        }
        if self.cert:
            keys["tls_external_cert_and_key"] = f"{self.cert[0]} {self.cert[1]}"
        for k, v in self.overrides.items():
            if v is None:
                keys.pop(k, None)
            else:
                keys[k] = str(v)
        return ["[params]"] + [f"{k} = {v}".rstrip() for k, v in keys.items()]

    def write_config(self):
        self.ini.write_text("\n".join(self.config_lines()) + "\n")

    # -- lifecycle
    def start(self, attempts=3):
        """Starts the process (fresh ports unless kept from an earlier run)
        and waits for the "ready" line. Retries with other ports when a
        port was taken meanwhile."""
        for attempt in range(attempts):
            if not self.ports or attempt > 0:
                picked = iter(free_ports(len(PORT_NAMES)))
                self.ports = {n: next(picked) for n in PORT_NAMES}
                for n in PORT_NAMES:  # an explicit override wins (e.g. 0 = disabled)
                    if f"{n}_port" in self.overrides:
                        self.ports[n] = int(self.overrides[f"{n}_port"])
            try:
                self._start_once()
                return self
            except ServerStartError as e:
                if "in use" not in str(e).lower() or attempt == attempts - 1:
                    raise

    def _start_once(self):
        self.write_config()
        self.runs += 1
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._logfile = open(self.log_path, "ab")
        self.returncode = None
        self.proc = subprocess.Popen([self.binary, "-c", str(self.ini)], stdin=subprocess.DEVNULL,
                                     stdout=self._logfile, stderr=self._logfile,
                                     cwd=str(self.tmpdir), env=self.env)

        def ready_or_dead():
            if any(line.rstrip().endswith("ready") for line in self.run_log().splitlines()):
                return "ready"
            if self.proc.poll() is not None:
                return "dead"
            return None
        try:
            state = poll(ready_or_dead, what="the server's 'ready' log line")
        except AssertionError:
            self.kill()
            raise ServerStartError(f"server did not log 'ready' within {TIMEOUT}s\n{self.log_tail()}")
        if state == "dead":
            self.returncode = self.proc.returncode
            self._close_log()
            raise ServerStartError(
                f"server exited with {self.returncode} before 'ready'\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=TIMEOUT):
        """Waits for the exit; returns the exit code (negative = signal)."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"server (pid {self.proc.pid}) still running after {timeout}s\n"
                                 f"{self.log_tail()}")
        self._close_log()
        return self.returncode

    def stop(self, timeout=TIMEOUT):
        """SIGTERM (if still running) and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self):
        if self._logfile:
            self._logfile.close()
            self._logfile = None

    # -- accessors
    def port(self, name):
        name = name[:-5] if name.endswith("_port") else name
        return self.ports[name]

    def log_text(self):
        """Everything the server wrote (all runs)."""
        try:
            return self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text, timeout=TIMEOUT):
        """Waits until the log holds `text`: a server logs an outcome after
        the effect a test observes (a peer stores the message, then the
        sender writes "delivered"), so asserting at once races the log."""
        return poll(lambda: text in self.log_text(), timeout=timeout,
                    what=f"{text!r} in the server log")

    def run_log(self):
        """What the current run wrote."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset):
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_tail(self, n=60):
        lines = self.log_text().splitlines()
        return f"--- server log ({self.log_path}), last {n} lines ---\n" + "\n".join(lines[-n:])


# ---------------------------------------------------------------- clients

def client_context(alpn=None, min_version=None, max_version=None, verify=True, ca_file=None):
    if verify:
        ctx = ssl.create_default_context(cafile=str(ca_file or DEFAULT_CA_FILE))
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class LineConn:
    """A client connection read line by line with deadlines. Bytes are
    buffered here, so before wrapping for STARTTLS the buffer must be empty
    (starttls() asserts it: anything left would be plaintext the server sent
    after its go-ahead)."""

    def __init__(self, sock, timeout=TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""

    @classmethod
    def connect(cls, port, timeout=TIMEOUT):
        return cls(socket.create_connection((HOST, port), timeout=timeout), timeout)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete line within {self.timeout}s; got {self.buf!r}")
        self.sock.settimeout(left)
        try:
            return self.sock.recv(65536)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def readline(self, timeout=None):
        """One line without CRLF; EOFError when the peer closed first."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            chunk = self._recv(deadline)
            if not chunk:
                raise EOFError(f"connection closed; pending bytes {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def smtp_reply(self):
        """The lines of one SMTP reply (multi-line replies use `NNN-`)."""
        lines = [self.readline()]
        while len(lines[-1]) >= 4 and lines[-1][3] == "-":
            lines.append(self.readline())
        return lines

    def smtp_cmd(self, cmd):
        self.send(cmd + "\r\n")
        return self.smtp_reply()

    def imap_cmd(self, tag, cmd):
        """Sends `tag cmd`; returns (untagged lines, tagged line)."""
        self.send(f"{tag} {cmd}\r\n")
        return self.imap_until_tagged(tag)

    def imap_until_tagged(self, tag):
        untagged = []
        while True:
            line = self.readline()
            if line.startswith(tag + " "):
                return untagged, line
            untagged.append(line)

    def read_until_closed(self, timeout=None):
        """Everything until the peer closes (EOF or reset); TimeoutError if it does not."""
        deadline = time.monotonic() + (timeout or self.timeout)
        data, self.buf = self.buf, b""
        while True:
            try:
                chunk = self._recv(deadline)
            except TimeoutError:
                raise TimeoutError(f"connection still open after {timeout or self.timeout}s; "
                                   f"received {data!r}") from None
            except (ConnectionResetError, BrokenPipeError):
                return data
            except ssl.SSLError:
                return data
            if not chunk:
                return data
            data += chunk

    def starttls(self, server_hostname=DOMAIN, **ctx_args):
        assert self.buf == b"", f"plaintext bytes after the STARTTLS go-ahead: {self.buf!r}"
        ctx = client_context(**ctx_args)
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        return self

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def tls_connect(port, alpn=None, min_version=None, max_version=None, server_hostname=DOMAIN,
                verify=True, ca_file=None, timeout=TIMEOUT):
    """A LineConn over implicit TLS (handshake done), verified against the test CA."""
    ctx = client_context(alpn, min_version, max_version, verify, ca_file)
    raw = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise
    return LineConn(s, timeout)


def plain_connect(port, timeout=TIMEOUT):
    return LineConn.connect(port, timeout)


def starttls_smtp(port, ehlo=True, **tls_args):
    """Plain SMTP connection upgraded with STARTTLS. Returns the LineConn
    (TLS active, EHLO sent again over TLS when `ehlo`) and the post-TLS EHLO reply."""
    c = plain_connect(port)
    try:
        greeting = c.readline()
        assert greeting.startswith("220 "), greeting
        c.smtp_cmd("EHLO client.test")
        reply = c.smtp_cmd("STARTTLS")
        assert reply == ["220 2.0.0 Ready to start TLS"], reply
        c.starttls(**tls_args)
        return c, (c.smtp_cmd("EHLO client.test") if ehlo else None)
    except BaseException:
        c.close()
        raise


def starttls_imap(port, **tls_args):
    """Plain IMAP connection upgraded with STARTTLS; returns the LineConn."""
    c = plain_connect(port)
    try:
        greeting = c.readline()
        assert greeting.startswith("* OK"), greeting
        _, tagged = c.imap_cmd("s1", "STARTTLS")
        assert tagged == "s1 OK Begin TLS negotiation now.", tagged
        c.starttls(**tls_args)
        return c
    except BaseException:
        c.close()
        raise


IMAP_GREETING = re.compile(r"^\* OK \[CAPABILITY ([^\]]*)\] (\S+) ready\.$")


def imap_greeting_caps(line, domain=DOMAIN):
    """The capability list of an IMAP greeting line (asserts its shape)."""
    m = IMAP_GREETING.match(line)
    assert m, f"unexpected IMAP greeting {line!r}"
    assert m.group(2) == domain, line
    return m.group(1).split()


def smtp_greeting_ok(line, domain=DOMAIN):
    assert line == f"220 {domain} ESMTP chatmaild", f"unexpected SMTP greeting {line!r}"


def http_get(sock, path="/", host=DOMAIN):
    """GET over an already connected (TLS or plain) socket with http.client;
    returns (status, reason, version, body)."""
    import http.client
    conn = http.client.HTTPConnection(host)
    conn.sock = sock
    conn.request("GET", path, headers={"Connection": "close"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.reason, resp.version, body


def require(ok, why):
    """A test that needs a tool or privilege the machine lacks: skipped on a
    developer's machine, but a failure in CI (CI=true), where scripts/deps.sh
    installs everything and runs as root, so nothing is silently left out."""
    import pytest
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"required in CI: {why}", pytrace=False)
    pytest.skip(why)
