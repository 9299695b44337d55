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


# ---------------------------------------------------------------- without SIGHUP

def test_replaced_files_served_within_a_second(live_server, leaf, test_ca):
    """The certificate files replaced on disk (rename, as acmetool and
    certbot do; then overwritten in place): new connections get the new
    certificate within a second, with no signal and no restart; an IDLE
    connection opened before stays open and answers."""
    import time
    srv, live = live_server
    leaf_b = test_ca.make_leaf("relay1.test-b", cn="relay1.test")
    leaf_c = test_ca.make_leaf("relay1.test-c", cn="relay1.test")
    old = tls_connect(srv.port("imaps"))
    with old:
        assert old.readline().startswith("* OK")
        assert old.sock.getpeercert(binary_form=True) == leaf.der
        t0 = time.monotonic()
        install(leaf_b, live)
        poll(lambda: peer_der(srv.port("imaps")) == leaf_b.der, timeout=5,
             what="IMAPS to present leaf B without a signal")
        took = time.monotonic() - t0
        print(f"new certificate served after {took:.2f} s")
        assert took < 2.5  # ~0.2 s here; slack for a loaded sanitizer run
        assert peer_der(srv.port("submissions")) == leaf_b.der
        assert "certificate reloaded" in srv.log_text()
        # in place: the key first, then the certificate (a half-done pair in between)
        shutil.copyfile(leaf_c.key, live / "privkey.pem")
        shutil.copyfile(leaf_c.fullchain, live / "fullchain.pem")
        poll(lambda: peer_der(srv.port("imaps")) == leaf_c.der, timeout=5,
             what="IMAPS to present leaf C after in-place copies")
        untagged, tagged = old.imap_cmd("a", "NOOP")
        assert tagged.startswith("a OK"), (untagged, tagged)
    assert srv.alive()


def test_symlink_swap_is_seen(server, tmp_path, leaf, test_ca):
    """acmetool's layout: live/<domain> is a symlink to certs/<id>; a renewal
    points it at a new directory."""
    certs = tmp_path / "certs"
    a, b = certs / "a", certs / "b"
    a.mkdir(parents=True)
    b.mkdir()
    install(leaf, a)
    leaf_b = test_ca.make_leaf("relay1.test-b", cn="relay1.test")
    install(leaf_b, b)
    link = tmp_path / "l"  # short: libinih's lines end at 200 characters
    link.symlink_to(a)
    srv = server(cert=(str(link / "fullchain.pem"), str(link / "privkey.pem")))
    assert peer_der(srv.port("imaps")) == leaf.der
    tmp = tmp_path / "l.new"
    tmp.symlink_to(b)
    os.replace(tmp, link)
    poll(lambda: peer_der(srv.port("imaps")) == leaf_b.der, timeout=5,
         what="IMAPS to present leaf B after the symlink swap")
