"""conftest.py: fixtures for the chatmaild-server integration tests.

  test_ca     (session) the throw-away EC P-256 CA (cmtest.TestCA)
  leaf        (session) leaf for relay1.test (+ www., mta-sts., IP 127.0.0.1)
  server_bin  (session) path of the binary: $CM_SERVER_BIN or <repo>/build/chatmaild-server
  server      factory: server(mail_domain=..., selfsigned=False, cert=None,
              extra={key: value}, start=True) -> cmtest.Server, running and
              logged "ready". Every server is stopped at teardown with
              SIGTERM and must exit 0 (an ASan leak report makes it fail);
              when a test fails (or hits its deadline), the tails of its
              servers' logs are shown with the failure.
Each server gets its own temporary directory, config and ports on 127.0.0.1.
"""
import os

import pytest

import cmtest


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    # A failed setup or call - an assertion, an error, or the deadline of
    # tests/pytest.ini (pytest-timeout) - shows the tail of each server's log.
    if rep.when in ("setup", "call") and rep.failed:
        for srv in getattr(item, "cm_servers", ()):
            rep.sections.append(("server log", srv.log_tail(200)))


@pytest.fixture(scope="session")
def server_bin():
    path = cmtest.server_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"server binary not found: {path} (set CM_SERVER_BIN)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    ca = cmtest.TestCA(tmp_path_factory.mktemp("ca"))
    cmtest.DEFAULT_CA_FILE = str(ca.crt)
    return ca


@pytest.fixture(scope="session")
def leaf(test_ca):
    return test_ca.make_leaf("relay1.test")


@pytest.fixture
def server(request, tmp_path, server_bin, test_ca, leaf):
    servers = []
    request.node.cm_servers = servers  # for pytest_runtest_makereport

    def make(mail_domain=cmtest.DOMAIN, selfsigned=False, cert=None, extra=None, start=True):
        """cert: (cert_path, key_path); default: the session leaf (fullchain).
        selfsigned=True: no tls_external_cert_and_key line and, unless given,
        mail_domain `_relay1.test`."""
        if selfsigned:
            if mail_domain == cmtest.DOMAIN:
                mail_domain = "_" + cmtest.DOMAIN
            cert_pair = None
        else:
            cert_pair = cert or (str(leaf.fullchain), str(leaf.key))
        srv = cmtest.Server(tmp_path / f"srv{len(servers)}", str(test_ca.crt), mail_domain,
                            cert_pair, extra, server_bin)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield make

    problems = []
    for srv in servers:
        if srv.proc is None:
            continue
        try:
            rc = srv.stop()
        except AssertionError as e:
            srv.kill()
            problems.append(str(e))
            continue
        if rc != 0:
            problems.append(f"server exited with {rc} (expected 0)\n{srv.log_tail()}")
    assert not problems, "\n".join(problems)  # (each with its log tail)
