"""Out of file descriptors: the server refuses what it cannot take (the
client sees the connection closed), keeps serving the connections it has,
does not spin or flood its log, and takes new clients again once
descriptors are free.

libuv retries accept() at once after reporting EMFILE; without the server
shedding the pending connections its loop spun (one bench run wrote 83 GB of
"too many open files" lines while nobody was served)."""
import os
import socket
import time

import cmtest
from cmtest import HOST

NOFILE = 48


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_line(s):
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_out_of_descriptors_sheds_and_recovers(tmp_path, server):
    srv = server(start=False, extra={"max_imap_connections": "10000"})
    wrapper = tmp_path / "limited-server"
    wrapper.write_text(f"#!/bin/sh\nexec prlimit --nofile={NOFILE}:{NOFILE} -- "
                       f"{srv.binary} \"$@\"\n")
    wrapper.chmod(0o755)
    srv.binary = str(wrapper)
    srv.start()
    assert f"file descriptor limit {NOFILE}" in srv.log_text()
    port = srv.port("imap")
    held, refused = [], 0
    for _ in range(NOFILE + 20):
        s = socket.create_connection((HOST, port), timeout=5)
        s.settimeout(3)
        try:
            greeting = read_line(s)
        except (ConnectionResetError, socket.timeout):
            greeting = b""
        if greeting.startswith(b"* OK"):
            held.append(s)
        else:
            refused += 1
            s.close()
    assert held and refused, (len(held), refused)
    # no spinning while the table is full
    c0 = cpu_seconds(srv.pid)
    time.sleep(1.0)
    assert cpu_seconds(srv.pid) - c0 < 0.5
    # the connections it holds are served
    held[0].sendall(b"a NOOP\r\n")
    assert read_line(held[0]).startswith(b"a OK")
    lines = [ln for ln in srv.log_text().splitlines() if "connection(s) refused" in ln]
    assert len(lines) <= 3, lines  # libuv's own reserve usually sheds them first
    assert srv.alive()
    for s in held:
        s.close()

    def greeted():
        try:
            with socket.create_connection((HOST, port), timeout=3) as s:
                s.settimeout(3)
                return read_line(s).startswith(b"* OK")
        except OSError:
            return False
    cmtest.poll(greeted, what="a greeting once descriptors are free")
    assert os.path.getsize(srv.log_path) < 200_000
