"""Start-up failures are reported, not crashed on: a missing certificate
file or a port that is already taken makes the server exit 1 with a log
line naming the problem, without logging `ready`."""
import socket
import subprocess

import cmtest


def run_expecting_failure(srv):
    """Runs the configured server in the foreground; returns (rc, log)."""
    if not srv.ports:
        srv.ports = dict(zip(cmtest.PORT_NAMES, cmtest.free_ports(len(cmtest.PORT_NAMES))))
    srv.write_config()
    r = subprocess.run([srv.binary, "-c", str(srv.ini)], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=cmtest.TIMEOUT, cwd=str(srv.tmpdir))
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def test_missing_certificate_file(server, tmp_path):
    missing = tmp_path / "nope" / "fullchain.pem"
    srv = server(start=False, cert=(str(missing), str(tmp_path / "nope" / "privkey.pem")))
    rc, log = run_expecting_failure(srv)
    assert rc == 1, log
    assert str(missing) in log, log
    assert not any(l.rstrip().endswith("ready") for l in log.splitlines()), log


def test_port_in_use(server):
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind((cmtest.HOST, 0))
    taken.listen(1)
    with taken:
        srv = server(start=False)
        srv.ports = dict(zip(cmtest.PORT_NAMES, cmtest.free_ports(len(cmtest.PORT_NAMES))))
        srv.ports["imaps"] = taken.getsockname()[1]
        rc, log = run_expecting_failure(srv)
    assert rc == 1, log
    assert str(srv.port("imaps")) in log, log
    assert not any(l.rstrip().endswith("ready") for l in log.splitlines()), log
