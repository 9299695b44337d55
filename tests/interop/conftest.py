"""conftest.py: fixtures for the interop suite (real clients against a relay).

Reuses tests/integration: its directory goes on sys.path (so `import
cmtest` works) and its conftest is loaded under another module name and its
fixtures (server_bin, test_ca, leaf, server) re-exported here.

  target   a relay to test against (targets.py), one per name in
           $CM_INTEROP_TARGETS (comma separated; default "ours"):
             ours       chatmaild-server ($CM_SERVER_BIN or build/), self-signed
                        `_relay1.test` on the standard ports of a random 127.x.y.z
             reference  Postfix + Dovecot from bench/reference (root; started
                        once per session, stopped at the end)
  devices  factory: devices() -> a started dcrpc.Device for the target (Delta
           Chat rpc-server process in a private mount namespace); closed at teardown.

At the end the terminal summary lists every test with its outcome and
duration (the "scenario times" table).
"""
import importlib.util
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

import cmtest  # noqa: E402

_spec = importlib.util.spec_from_file_location("integration_conftest", HERE.parent / "integration" / "conftest.py")
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)
server_bin = _integration.server_bin
test_ca = _integration.test_ca
leaf = _integration.leaf
server = _integration.server
pytest_runtest_makereport = _integration.pytest_runtest_makereport

import dcrpc  # noqa: E402
import scenario_times  # noqa: E402
import targets  # noqa: E402

TARGETS = [t.strip() for t in os.environ.get("CM_INTEROP_TARGETS", "ours").split(",") if t.strip()]
_TIMES = scenario_times.ScenarioTimes("interop scenario times")


@pytest.fixture(scope="session")
def reference_target(tmp_path_factory):
    if os.geteuid() != 0:
        cmtest.require(False, "the reference stand-in needs root")
    ref = targets.ReferenceTarget(tmp_path_factory.mktemp("ref"))
    try:
        ref.start()
    except Exception:
        ref.stop()
        raise
    yield ref
    ref.stop()


@pytest.fixture(params=TARGETS)
def target(request, tmp_path):
    if request.param == "reference":
        return request.getfixturevalue("reference_target")
    if request.param == "ours":
        return targets.OursTarget(request.getfixturevalue("server"), tmp_path / "target")
    raise ValueError(f"unknown interop target {request.param!r}")


@pytest.fixture(scope="session")
def dc_client():
    why = dcrpc.ensure_client()
    if why:
        cmtest.require(False, why)
    return dcrpc.BINARY


@pytest.fixture
def devices(request, target, dc_client, tmp_path):
    yield from dcrpc.devices(request, target.hosts_file, tmp_path)


def pytest_runtest_logreport(report):
    _TIMES.record(report)


def pytest_terminal_summary(terminalreporter):
    _TIMES.summary(terminalreporter)
