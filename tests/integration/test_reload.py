"""Certificate reload on SIGHUP: new connections get the new certificate on
every TLS listener, connections already open keep working; a broken
certificate or key is refused with a logged error and the old certificate
stays in use."""
import os
import re
import shutil
import signal

import pytest

from cmtest import poll, tls_connect, starttls_smtp


def install(leaf, live):
    """Atomically puts leaf's fullchain and key at live/{fullchain,privkey}."""
    for src, name in ((leaf.fullchain, "fullchain.pem"), (leaf.key, "privkey.pem")):
        tmp = live / (name + ".tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, live / name)


def peer_der(port, alpn=None):
    with tls_connect(port, alpn=alpn) as c:
        return c.sock.getpeercert(binary_form=True)


@pytest.fixture
def live_server(server, tmp_path, leaf):
    live = tmp_path / "live"
    live.mkdir()
    install(leaf, live)
    srv = server(cert=(str(live / "fullchain.pem"), str(live / "privkey.pem")))
    return srv, live


def test_sighup_switches_certificate(live_server, leaf, test_ca):
    srv, live = live_server
    leaf_b = test_ca.make_leaf("relay1.test-b", cn="relay1.test")
    assert leaf_b.der != leaf.der
    old = tls_connect(srv.port("imaps"))
    with old:
        assert old.readline().startswith("* OK")
        assert old.sock.getpeercert(binary_form=True) == leaf.der
        install(leaf_b, live)
        srv.signal(signal.SIGHUP)
        poll(lambda: peer_der(srv.port("imaps")) == leaf_b.der, what="IMAPS to present leaf B")
        assert peer_der(srv.port("submissions")) == leaf_b.der
        assert peer_der(srv.port("https"), alpn=["http/1.1"]) == leaf_b.der
        c, _ = starttls_smtp(srv.port("submission"))
        with c:
            assert c.sock.getpeercert(binary_form=True) == leaf_b.der
        # the connection opened before the reload is untouched
        untagged, tagged = old.imap_cmd("a", "NOOP")
        assert tagged.startswith("a OK"), (untagged, tagged)
    assert srv.alive()


@pytest.mark.parametrize("breakage", ["garbage-cert", "mismatched-key"])
def test_sighup_with_broken_certificate_keeps_old(live_server, leaf, test_ca, breakage):
    srv, live = live_server
    leaf_b = test_ca.make_leaf("relay1.test-b", cn="relay1.test")
    if breakage == "garbage-cert":
        (live / "fullchain.pem").write_text("-----BEGIN CERTIFICATE-----\nnot a cert\n"
                                            "-----END CERTIFICATE-----\n")
    else:
        shutil.copyfile(leaf_b.fullchain, live / "fullchain.pem")  # key stays leaf A's
    offset = srv.log_size()
    srv.signal(signal.SIGHUP)
    problem = re.compile(r"\b(error|warn):")
    poll(lambda: problem.search(srv.log_since(offset)), what="an error logged for the reload")
    assert srv.alive()
    with tls_connect(srv.port("imaps")) as c:
        assert c.sock.getpeercert(binary_form=True) == leaf.der
        assert c.readline().startswith("* OK")
    # once the files are good again, the next SIGHUP takes them
    install(leaf_b, live)
    srv.signal(signal.SIGHUP)
    poll(lambda: peer_der(srv.port("imaps")) == leaf_b.der, what="IMAPS to present leaf B")
