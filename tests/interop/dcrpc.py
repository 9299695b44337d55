"""dcrpc.py: a Delta Chat "device" for the interop tests: one
deltachat-rpc-server 2.57.0 process (from the npm package
@deltachat/stdio-rpc-server, interop lab §12) with its own accounts
directory, spoken to directly with newline-delimited JSON-RPC 2.0 over its
stdin/stdout, run in a private mount namespace whose /etc/hosts maps
`_relay1.test` to the relay under test.

Python talks to the binary itself (no node layer in between): the npm
package is only how the binary is installed (ensure_client(), cached in
$CM_DC_CACHE outside the repository). A reader thread matches responses to
requests by id; an event thread keeps a `get_next_event` call pending and
stores every event, so tests wait for events with deadlines
(Device.wait_event). kill() sends SIGKILL to the process (a crash);
start() on the same object starts a new process on the same accounts
directory. Method names are the snake_case JSON-RPC names with positional
parameters (Device.call("get_message", acc, msg_id)), or attribute calls
(device.rpc.get_message(acc, msg_id)).
"""
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

CACHE = os.environ.get("CM_DC_CACHE", "/var/cache/chatmaild-tests/dc")
PKGS = ["@deltachat/stdio-rpc-server@2.57.0", "@deltachat/jsonrpc-client@2.57.0"]
BINARY = os.path.join(CACHE, "node_modules", "@deltachat", "stdio-rpc-server-linux-x64",
                      "deltachat-rpc-server")
CALL_TIMEOUT = 60.0  # configure takes < 1 s here; generous for ASan and load
EVENT_TIMEOUT = 60.0


class RpcError(Exception):
    pass


def ensure_client():
    """Installs the npm packages into the cache when missing; returns None
    when the binary is there, else a reason to skip."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare (for a private /etc/hosts)"
    if os.access(BINARY, os.X_OK):
        return None
    if not shutil.which("npm"):
        return "needs npm to install @deltachat/stdio-rpc-server"
    os.makedirs(CACHE, exist_ok=True)
    import fcntl
    with open(os.path.join(CACHE, ".install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers: one installs, the others wait
        if os.access(BINARY, os.X_OK):
            return None
        r = subprocess.run(["npm", "install", "--prefix", CACHE, "--no-audit", "--no-fund", *PKGS],
                           capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not os.access(BINARY, os.X_OK):
        return f"npm install {' '.join(PKGS)} failed: {r.stderr[-500:]}"
    return None


def ns_command(hosts_file, argv):
    """argv run in a private mount namespace with `hosts_file` as /etc/hosts."""
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
    return ["unshare", "-m", "sh", "-c", f"mount --bind '{hosts_file}' /etc/hosts && exec {quoted}"]


class _Rpc:
    def __init__(self, dev):
        self._dev = dev

    def __getattr__(self, name):
        return lambda *params, timeout=CALL_TIMEOUT: self._dev.call(name, *params, timeout=timeout)


class Device:
    """One rpc-server process; `directory` holds its accounts and its stderr log."""

    def __init__(self, directory, hosts_file):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.hosts_file = str(hosts_file)
        self.proc = None
        self.rpc = _Rpc(self)
        self.events = []          # (contextId, event dict), all runs
        self._cond = threading.Condition()
        self._pending = {}
        self._ids = itertools.count(1)
        self._wlock = threading.Lock()
        self.starts = 0

    # -- lifecycle
    def start(self):
        env = {"DC_ACCOUNTS_PATH": os.path.join(self.dir, "accounts"), "PATH": os.environ.get("PATH", ""),
               "RUST_LOG": os.environ.get("RUST_LOG", "info")}
        self._stderr = open(os.path.join(self.dir, "rpc-server.log"), "ab")
        self.proc = subprocess.Popen(ns_command(self.hosts_file, [BINARY]), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        self.starts += 1
        proc = self.proc
        threading.Thread(target=self._reader, args=(proc,), daemon=True).start()
        threading.Thread(target=self._event_loop, args=(proc,), daemon=True).start()
        return self

    def kill(self):
        """SIGKILL, as a crash: nothing is flushed or closed cleanly."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._fail_pending(self.proc, "rpc-server killed")

    def close(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._fail_pending(self.proc, "rpc-server closed")
        if getattr(self, "_stderr", None):
            self._stderr.close()
            self._stderr = None

    def log_tail(self, n=40):
        try:
            with open(os.path.join(self.dir, "rpc-server.log"), "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-n:])

    # -- JSON-RPC
    def _reader(self, proc):
        for raw in proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            with self._cond:
                entry = self._pending.get(msg.get("id"))
                if entry is not None and entry[0] is proc:
                    entry[1].append(msg)
                    self._cond.notify_all()
        self._fail_pending(proc, "rpc-server exited")

    def _fail_pending(self, proc, why):
        """Ends the calls waiting on `proc` (an old process never ends a new one's)."""
        with self._cond:
            for p, slot in self._pending.values():
                if p is proc and not slot:
                    slot.append({"error": {"message": why, "gone": True}})
            self._cond.notify_all()

    def call(self, method, *params, timeout=CALL_TIMEOUT):
        proc = self.proc
        if proc is None or proc.poll() is not None:
            raise RpcError(f"{method}: rpc-server is not running")
        rid = next(self._ids)
        slot = []
        with self._cond:
            self._pending[rid] = (proc, slot)
        line = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)})
        try:
            with self._wlock:
                proc.stdin.write(line.encode() + b"\n")
                proc.stdin.flush()
            deadline = time.monotonic() + timeout
            with self._cond:
                while not slot:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"{method}{tuple(params)!r}: no answer within {timeout}s")
                    self._cond.wait(left)
        except (BrokenPipeError, ValueError):
            raise RpcError(f"{method}: rpc-server is gone") from None
        finally:
            with self._cond:
                self._pending.pop(rid, None)
        msg = slot[0]
        if "error" in msg:
            raise RpcError(f"{method}: {msg['error'].get('message')}")
        return msg.get("result")

    def _event_loop(self, proc):
        while proc.poll() is None:
            try:
                ev = self.call("get_next_event", timeout=10 ** 6)
            except (RpcError, TimeoutError):
                return
            with self._cond:
                self.events.append((ev["contextId"], ev["event"]))
                self._cond.notify_all()

    # -- events
    def mark(self):
        """A position in the event list; wait_event(since=mark) looks only after it."""
        with self._cond:
            return len(self.events)

    def _wait(self, acc, kinds, pred, since, timeout):
        """(index, event) of the first event at or after `since` matching."""
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.events):
                    ctx, ev = self.events[i]
                    i += 1
                    if ctx == acc and ev.get("kind") in kinds and (pred is None or pred(ev)):
                        return i - 1, ev
                left = deadline - time.monotonic()
                if left <= 0:
                    mine = [e for c, e in self.events[since:] if c == acc]
                    errors = [e.get("msg") for e in mine if e.get("kind") in ("Error", "Warning")][-8:]
                    seen = [e.get("kind") + (f"({e['msgId']})" if "msgId" in e else "")
                            for e in mine if e.get("kind") != "Info"][-20:]
                    raise TimeoutError(f"account {acc}: no {'/'.join(kinds)} event within {timeout:.0f}s; "
                                       f"recent errors/warnings: {errors}; events since: {seen}")
                self._cond.wait(left)

    def wait_event(self, acc, kind, pred=None, since=0, timeout=EVENT_TIMEOUT):
        """The first event of `kind` (or a tuple of kinds) for account `acc`
        at or after `since` for which pred(event) holds; TimeoutError naming
        it and the events seen otherwise."""
        return self._wait(acc, kind if isinstance(kind, tuple) else (kind,), pred, since, timeout)[1]

    def wait_incoming(self, acc, text, since=0, timeout=EVENT_TIMEOUT):
        """Waits until a message on `acc` has the text `text` and is fully
        downloaded; returns it. Looks at IncomingMsg and MsgsChanged: a later
        message in a chat that is still a contact request comes with
        MsgsChanged only, and a large message first arrives as a small
        pre-message that the full one replaces (same id, MsgsChanged)."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            i, ev = self._wait(acc, ("IncomingMsg", "MsgsChanged"), lambda e: e.get("msgId"), since, left)
            since = i + 1
            msg = self.call("get_message", acc, ev["msgId"])
            if msg["text"] == text and msg["downloadState"] == "Done":
                return msg

    # -- helpers over the API
    def configure(self, acc, param):
        self.call("add_or_update_transport", acc, param)
        return self.call("batch_get_config", acc, ["configured_addr", "is_chatmail"])

    def chat_texts(self, acc, chat_id):
        ids = self.call("get_message_ids", acc, chat_id, False, False)
        return [self.call("get_message", acc, i) for i in ids]


def devices(request, hosts_file, workdir):
    """The body of a `devices` fixture: yields make() -> a started Device
    whose /etc/hosts is `hosts_file`; at teardown closes them all, showing
    each one's log tail when the test failed."""
    made = []

    def make():
        dev = Device(Path(workdir) / f"dev{len(made)}", hosts_file)
        made.append(dev)
        return dev.start()

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for dev in made:
        if failed:
            print(f"--- {dev.dir}/rpc-server.log (tail) ---\n{dev.log_tail(60)}")
        dev.close()
