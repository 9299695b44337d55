"""test_privdrop.py: started as root, the server binds its ports, gives the
state directory to run_as_user and drops to that user; an unknown user is a
startup error. (CI runs as root; as another user there is nothing to drop.)"""
import os
import pwd

import pytest

import cmtest


def proc_ids(pid):
    ids = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("Uid:", "Gid:")):
                ids[line.split(":")[0]] = [int(x) for x in line.split()[1:]]
    return ids


@pytest.fixture
def needs_root():
    cmtest.require(os.geteuid() == 0, "privilege drop needs root")


def test_drops_to_run_as_user(server, needs_root):
    nobody = pwd.getpwnam("nobody")
    srv = server(extra={"run_as_user": "nobody"})
    ids = proc_ids(srv.pid)
    assert ids["Uid"] == [nobody.pw_uid] * 4, ids
    assert ids["Gid"][0] == nobody.pw_gid, ids
    assert "running as nobody" in srv.log_text()
    state = srv.tmpdir / "state"
    assert state.stat().st_uid == nobody.pw_uid
    # still serving on the ports bound before the drop
    c = cmtest.LineConn.connect(srv.port("imap"))
    assert c.readline().startswith("* OK")
    c.close()


def test_unknown_run_as_user_is_an_error(server, needs_root):
    srv = server(extra={"run_as_user": "no-such-user-xyz"}, start=False)
    with pytest.raises(cmtest.ServerStartError) as e:
        srv.start(attempts=1)
    assert "no-such-user-xyz" in str(e.value)
    assert srv.returncode == 1
    srv.proc = None  # exited as expected: nothing for the teardown to stop
