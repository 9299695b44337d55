"""conftest.py: fixtures for the federation matrix (issue 14).

Reuses tests/integration (cmtest, the `server` factory, the test CA) and
tests/interop (dcrpc: the Delta Chat rpc-server client) the way
tests/interop/conftest.py does.

  net      fedlab.Internet for this test: DNS on 127.0.53.53:53, the test
           CA, a hosts file; add relays with net.add_relay("relay1.test")
  devices  factory: devices() -> a started dcrpc.Device whose /etc/hosts is
           the internet's; closed at teardown (its log tail shown on failure)

Needs root (port 53/25/443 on loopback addresses, private mount
namespaces). At the end pytest prints a "federation scenario times" table.
"""
import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "interop"))
sys.path.insert(0, str(HERE.parent / "integration"))

import cmtest  # noqa: E402

_spec = importlib.util.spec_from_file_location("integration_conftest_fed",
                                               HERE.parent / "integration" / "conftest.py")
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)
server_bin = _integration.server_bin
test_ca = _integration.test_ca
leaf = _integration.leaf
server = _integration.server
pytest_runtest_makereport = _integration.pytest_runtest_makereport

import dcrpc  # noqa: E402
import fedlab  # noqa: E402

_TIMES = []


@pytest.fixture
def net(request, tmp_path, server, test_ca):
    if os.geteuid() != 0:
        cmtest.require(False, "the federation matrix needs root (ports 25/53/443, namespaces)")
    n = fedlab.Internet(tmp_path / "net", server, test_ca)
    yield n
    n.close()


@pytest.fixture(scope="session")
def dc_client():
    why = dcrpc.ensure_client()
    if why:
        cmtest.require(False, why)
    return dcrpc.BINARY


@pytest.fixture
def devices(request, net, dc_client, tmp_path):
    made = []

    def make():
        dev = dcrpc.Device(tmp_path / f"dev{len(made)}", net.hosts_file)
        made.append(dev)
        return dev.start()

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for dev in made:
        if failed:
            print(f"--- {dev.dir}/rpc-server.log (tail) ---\n{dev.log_tail(60)}")
        dev.close()


_FIGURES = []


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _TIMES.append((report.nodeid.split("::", 1)[-1], report.outcome, report.duration))
    if report.when == "call":
        # a test's measured figures (request.node.user_properties, name
        # "figures"): printed at the end, also from pytest-xdist workers,
        # whose output is not shown
        _FIGURES.extend(v for k, v in report.user_properties if k == "figures")


def pytest_terminal_summary(terminalreporter):
    if not _TIMES:
        return
    tr = terminalreporter
    tr.section("federation scenario times")
    width = max(len(n) for n, _, _ in _TIMES)
    for name, outcome, secs in _TIMES:
        tr.write_line(f"{name:<{width}}  {outcome:<7}  {secs:7.2f} s")
    tr.write_line(f"{'total':<{width}}  {'':<7}  {sum(s for _, _, s in _TIMES):7.2f} s  "
                  f"(wall {time.monotonic() - _START:.1f} s)")
    if _FIGURES:
        tr.section("federation figures")
        for text in _FIGURES:
            for line in text.splitlines():
                tr.write_line(line)


_START = time.monotonic()
