"""Self-signed TLS mode (spec §1.3 "Derived TLS settings"): a mail_domain
starting with `_` and no tls_external_cert_and_key makes the server generate
a certificate once into <state_dir>/tls/selfsigned.crt, naming the domain,
www. and mta-sts.; it is served on every TLS port and reused on restart."""
import re
import ssl

import pytest

from cmtest import cert_dns_sans, cert_text, imap_greeting_caps, smtp_greeting_ok, tls_connect

DOMAIN = "_relay1.test"


def presented(port, alpn=None):
    with tls_connect(port, alpn=alpn, verify=False, server_hostname=DOMAIN) as c:
        return c.sock.getpeercert(binary_form=True)


def file_der(path):
    text = path.read_text()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(text[:end] + "\n")


@pytest.fixture
def srv(server):
    return server(selfsigned=True)


def test_generates_certificate_with_sans(srv):
    crt = srv.tmpdir / "state" / "tls" / "selfsigned.crt"
    assert crt.is_file(), f"{crt} not created"
    der = presented(srv.port("imaps"))
    assert der == file_der(crt)
    sans = cert_dns_sans(der)
    for name in (DOMAIN, "www." + DOMAIN, "mta-sts." + DOMAIN):
        assert name in sans, sans
    assert presented(srv.port("submissions")) == der
    assert presented(srv.port("https"), alpn=["http/1.1"]) == der


def test_greetings_use_the_underscore_domain(srv):
    with tls_connect(srv.port("imaps"), verify=False, server_hostname=DOMAIN) as c:
        imap_greeting_caps(c.readline(), domain=DOMAIN)
    with tls_connect(srv.port("submissions"), verify=False, server_hostname=DOMAIN) as c:
        smtp_greeting_ok(c.readline(), domain=DOMAIN)


def test_verifying_client_rejects_it(srv):
    # it is not signed by the test CA (nor any CA)
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(srv.port("imaps"), server_hostname=DOMAIN).close()


def test_certificate_reused_on_restart(srv):
    crt = srv.tmpdir / "state" / "tls" / "selfsigned.crt"
    before_bytes = crt.read_bytes()
    before = presented(srv.port("imaps"))
    assert srv.stop() == 0, srv.log_tail()
    srv.start()
    assert crt.read_bytes() == before_bytes
    assert presented(srv.port("imaps")) == before


def test_certificate_details_and_key_mode(srv):
    tls_dir = srv.tmpdir / "state" / "tls"
    text = cert_text(presented(srv.port("imaps")))
    assert re.search(r"Subject:.*CN\s*=\s*_relay1\.test", text), text
    assert "prime256v1" in text or "P-256" in text, text
    assert re.search(r"CA:FALSE", text), text
    assert "TLS Web Server Authentication" in text and "TLS Web Client Authentication" in text, text
    key = tls_dir / "selfsigned.key"
    assert key.is_file(), sorted(p.name for p in tls_dir.iterdir())
    assert key.stat().st_mode & 0o077 == 0, oct(key.stat().st_mode)


def test_ipv4_relay_is_self_signed(server):
    srv = server(mail_domain="127.0.0.1", selfsigned=True)
    assert (srv.tmpdir / "state" / "tls" / "selfsigned.crt").is_file()
    with tls_connect(srv.port("submissions"), verify=False, server_hostname=None) as c:
        smtp_greeting_ok(c.readline(), domain="[127.0.0.1]")


def test_external_certificate_wins_for_underscore_domain(server, leaf):
    srv = server(mail_domain=DOMAIN)  # external cert (the test leaf) configured
    assert presented(srv.port("imaps")) == leaf.der
    assert not (srv.tmpdir / "state" / "tls" / "selfsigned.crt").exists()
