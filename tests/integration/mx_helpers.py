"""mx_helpers.py: shared helpers of the tests of mail from other relays
(port 25 and the pipeline's DKIM stage): test_mx25*.py, test_metrics.py.

  MxKeys()                    an RSA-2048 and an Ed25519 key with their TXT
                              records (dkimpy formats)
  mx_dns(keys)                a dnsserver.DnsServer serving them at
                              rsa._domainkey.<SENDER_DOMAIN> and
                              ed._domainkey.<SENDER_DOMAIN>
  mx_server(server, dns)      a server whose dns_servers is that server
  sign(msg, keys, ...)        msg with a dkimpy DKIM-Signature in front
  encrypted(rcpt) / plain(rcpt) / securejoin(rcpt) / mailer_daemon(rcpt)
                              test messages From alice@<SENDER_DOMAIN>
  mx_connect(srv)             a cmtest.LineConn on port 25 after STARTTLS
                              and EHLO
  mx_send(c, frm, rcpts, msg) MAIL, RCPT..., DATA, message: the replies
  make_account(srv, addr)     creates the account by logging in (587/465)
"""
import base64

import dkim
import nacl.encoding
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import cmtest
from dnsserver import DnsServer
from submit_helpers import DATA, login

SENDER_DOMAIN = "sender.example"
SENDER = f"alice@{SENDER_DOMAIN}"


class MxKeys:
    def __init__(self):
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_pem = k.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption())
        spki = k.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
        self.rsa_rec = "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()
        ed = nacl.signing.SigningKey.generate()
        self.ed_seed = ed.encode(encoder=nacl.encoding.Base64Encoder)
        self.ed_rec = "v=DKIM1; k=ed25519; p=" + \
            ed.verify_key.encode(encoder=nacl.encoding.Base64Encoder).decode()


def mx_dns(keys, domain=SENDER_DOMAIN):
    return DnsServer({f"rsa._domainkey.{domain}": {"TXT": [keys.rsa_rec]},
                      f"ed._domainkey.{domain}": {"TXT": [keys.ed_rec]}})


def mx_server(server, dns, extra=None):
    return server(extra={"dns_servers": dns.address, **(extra or {})})


def sign(msg, keys, alg=b"rsa-sha256", domain=SENDER_DOMAIN, canon=(b"relaxed", b"relaxed")):
    ed = alg == b"ed25519-sha256"
    sig = dkim.sign(msg, b"ed" if ed else b"rsa", domain.encode(),
                    keys.ed_seed if ed else keys.rsa_pem, canonicalize=canon,
                    signature_algorithm=alg)
    return sig + msg


def _fixture(name, rcpt, sender=SENDER):
    raw = (DATA / name).read_bytes()
    return raw.replace(b"alice@example.org", sender.encode()).replace(b"bob@example.net",
                                                                      rcpt.encode())


def encrypted(rcpt, sender=SENDER):
    return _fixture("encrypted.eml", rcpt, sender)


def securejoin(rcpt, sender=SENDER):
    return _fixture("securejoin-vc.eml", rcpt, sender)


def mailer_daemon(rcpt):
    return _fixture("mailer-daemon.eml", rcpt).replace(b"mx.example.net",
                                                       SENDER_DOMAIN.encode())


def plain(rcpt, sender=SENDER, body=b"hello\r\n"):
    return (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: hi\r\n"
            f"Message-ID: <p1@{SENDER_DOMAIN}>\r\n".encode() +
            b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + body)


def mx_connect(srv):
    c, ehlo = cmtest.starttls_smtp(srv.port("smtp"))
    assert ehlo[0].startswith("250-"), ehlo
    return c


def stuff(msg):
    """DATA form: dot-stuffed, ends with CRLF . CRLF."""
    if not msg.endswith(b"\r\n"):
        msg += b"\r\n"
    if msg.startswith(b"."):
        msg = b"." + msg
    return msg.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def mx_send(c, mail_from, rcpts, msg, timeout=None):
    """One transaction; returns (MAIL reply, [RCPT replies], final reply or
    None when DATA was refused / no recipient was accepted)."""
    mail = c.smtp_cmd(f"MAIL FROM:<{mail_from}>")
    rr = [c.smtp_cmd(f"RCPT TO:<{r}>") for r in rcpts]
    if not any(r[0].startswith("250") for r in rr):
        c.smtp_cmd("RSET")
        return mail, rr, None
    data = c.smtp_cmd("DATA")
    if not data[0].startswith("354"):
        return mail, rr, None
    c.send(stuff(msg))
    if timeout:
        old, c.timeout = c.timeout, timeout
        try:
            return mail, rr, c.smtp_reply()
        finally:
            c.timeout = old
    return mail, rr, c.smtp_reply()


def make_account(srv, address):
    login(srv, address).quit()
