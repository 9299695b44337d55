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
import scenario_times  # noqa: E402



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
    yield from dcrpc.devices(request, net.hosts_file, tmp_path)


# a test's measured figures (request.node.user_properties, name "figures")
# are printed at the end too, also from pytest-xdist workers, whose output
# is not shown
_TIMES = scenario_times.ScenarioTimes("federation scenario times", "federation figures")


def pytest_runtest_logreport(report):
    _TIMES.record(report)


def pytest_terminal_summary(terminalreporter):
    _TIMES.summary(terminalreporter)
