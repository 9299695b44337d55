"""conftest.py: fixtures for the hostile-load suite (tests/hostile).

Each test plays an attacker against one server of its own and measures that
other clients keep being served (login latency, delivery latency) and that
the server's memory stays under the README's bound. Reuses tests/integration:
its directory goes on sys.path (so `import cmtest` works) and its conftest's
fixtures (server_bin, test_ca, leaf, server) are re-exported here.
"""
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

import cmtest  # noqa: E402,F401

_spec = importlib.util.spec_from_file_location("integration_conftest", HERE.parent / "integration" / "conftest.py")
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)
server_bin = _integration.server_bin
test_ca = _integration.test_ca
leaf = _integration.leaf
server = _integration.server
pytest_runtest_makereport = _integration.pytest_runtest_makereport
