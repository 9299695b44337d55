"""test_dkim_dkimpy.py: src/dkim against dkimpy (Debian python3-dkim), through
the test-only `dkimtool` built next to the server binary; no DNS (key records
are given to the tool in files).

- messages dkimpy signs (RSA 2048 and Ed25519, all four canonicalisation
  pairs, long folded headers, 8-bit bodies, no final CRLF) verify with our
  verifier, fed in odd chunk sizes; one changed byte in a signed header or
  in the body fails;
- messages our signer signs (RSA 2048 as PKCS#1 and PKCS#8, Ed25519,
  relaxed/simple) verify with dkimpy, with the header set and over-signing
  of the federation facts;
- the refusals and their SMTP texts: d=/From misalignment, l=, expired x=,
  revoked key, rsa-sha1, no signature, key lookup failing temporarily (451).
"""
import base64
import hashlib
import os
import subprocess
from pathlib import Path

import dkim
import nacl.encoding
import nacl.signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import CanonicalizationPolicy
from dkim.crypto import parse_pem_private_key

import cmtest

DOMAIN = b"sender.example"
SEL = b"sel"
KEYNAME = "sel._domainkey.sender.example"
CANONS = [(b"simple", b"simple"), (b"simple", b"relaxed"), (b"relaxed", b"simple"),
          (b"relaxed", b"relaxed")]
NOW = 1800000000


def tool():
    path = Path(cmtest.server_bin()).parent / "dkimtool"
    if not path.exists():
        pytest.fail(f"dkimtool not found next to the server binary: {path}", pytrace=False)
    return str(path)


def crlf(text):
    return text.replace("\n", "\r\n").encode()


LONG_SUBJECT = ("Subject: " + " ".join(f"word{i}" for i in range(40)) + "\n"
                "\tand a folded continuation   with  odd   spacing \n")
MESSAGES = {
    "folded": crlf("From: Alice <alice@sender.example>\nTo: bob@relay.example\n" + LONG_SUBJECT +
                   "Date: Sat, 05 Dec 2026 08:00:00 +0000\nMessage-ID: <m1@sender.example>\n"
                   "References: <a@x>\n <b@x>\n\t<c@x>\n\nHello  Bob,  \n\n\n"),
    "8bit": ("From: =?utf-8?q?J=C3=B6rg?= <joerg@sender.example>\r\nTo: bob@relay.example\r\n"
             "Subject: Grüße\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n\r\nÄpfel und Birnen \t \r\n€ 100\r\n").encode(),
    "nofinalcrlf": crlf("From: alice@sender.example\nTo: bob@relay.example\nSubject: x\n\n"
                        "line one\n\nlast line without CRLF"),
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("dkimkeys")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs1 = rsa_key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption())
    pkcs8 = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    spki = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    rsa_rec = b"v=DKIM1; k=rsa; p=" + base64.b64encode(spki)
    ed = nacl.signing.SigningKey.generate()
    ed_seed_b64 = ed.encode(encoder=nacl.encoding.Base64Encoder)
    ed_rec = b"v=DKIM1; k=ed25519; p=" + ed.verify_key.encode(encoder=nacl.encoding.Base64Encoder)
    ed_pem = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(ed)).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    files = {}
    for name, data in [("rsa1.pem", pkcs1), ("rsa8.pem", pkcs8), ("ed.pem", ed_pem),
                       ("rsa.txt", rsa_rec + b"\n"), ("ed.txt", ed_rec + b"\n"),
                       ("revoked.txt", b"v=DKIM1; k=rsa; p=\n")]:
        (d / name).write_bytes(data)
        files[name] = str(d / name)
    return {"dir": d, "files": files, "rsa_pem": pkcs1, "rsa_rec": rsa_rec, "ed_seed": ed_seed_b64,
            "ed_rec": ed_rec}


def verify(msg, keyfile, *extra, from_domain="sender.example", now=NOW, chunk=7):
    args = [tool(), "verify", "--now", str(now), "--from-domain", from_domain, "--chunk",
            str(chunk)]
    if keyfile:
        args += ["--key", f"{KEYNAME}={keyfile}"]
    p = subprocess.run(args + list(extra), input=msg, capture_output=True, timeout=60)
    out = p.stdout.decode()
    assert p.returncode in (0, 1), out + p.stderr.decode()
    results = [line.split(" ", 5) for line in out.splitlines() if line.startswith("result ")]
    verdict = [line for line in out.splitlines() if line.startswith("verdict ")]
    assert len(verdict) == 1, out
    return p.returncode, results, verdict[0]


def dkimpy_sign(msg, alg, keys, canon=(b"relaxed", b"simple"), domain=DOMAIN, **kw):
    priv = keys["ed_seed"] if alg == b"ed25519-sha256" else keys["rsa_pem"]
    sig = dkim.sign(msg, SEL, domain, priv, canonicalize=canon, signature_algorithm=alg, **kw)
    return sig + msg


def keyfile_for(alg, keys):
    return keys["files"]["ed.txt" if alg == b"ed25519-sha256" else "rsa.txt"]


@pytest.mark.parametrize("alg", [b"rsa-sha256", b"ed25519-sha256"])
@pytest.mark.parametrize("canon", CANONS, ids=lambda c: b"/".join(c).decode())
@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_dkimpy_signed_verifies(keys, alg, canon, kind):
    signed = dkimpy_sign(MESSAGES[kind], alg, keys, canon)
    kf = keyfile_for(alg, keys)
    for chunk in (1, 7, 4096):
        rc, results, verdict = verify(signed, kf, chunk=chunk)
        assert rc == 0, (results, verdict)
        assert results[0][2] == "pass"
        assert verdict == "verdict pass -"


@pytest.mark.parametrize("alg", [b"rsa-sha256", b"ed25519-sha256"])
@pytest.mark.parametrize("canon", CANONS, ids=lambda c: b"/".join(c).decode())
def test_one_changed_byte_fails(keys, alg, canon):
    signed = dkimpy_sign(MESSAGES["folded"], alg, keys, canon)
    kf = keyfile_for(alg, keys)
    in_header = signed.replace(b"word17", b"word18", 1)
    rc, results, verdict = verify(in_header, kf)
    assert rc == 1
    assert results[0][2] == "fail" and results[0][5] == "signature did not verify"
    assert verdict == "verdict invalid 554 5.7.1 No valid DKIM signature found"
    in_body = signed.replace(b"Hello", b"Hallo", 1)
    rc, results, verdict = verify(in_body, kf)
    assert rc == 1
    assert results[0][5] == "body hash mismatch"
    assert verdict == "verdict invalid 554 5.7.1 No valid DKIM signature found"


@pytest.mark.parametrize("keyname,recname", [("rsa1.pem", "rsa_rec"), ("rsa8.pem", "rsa_rec"),
                                             ("ed.pem", "ed_rec")])
@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_we_sign_dkimpy_verifies(keys, keyname, recname, kind):
    msg = MESSAGES[kind]
    p = subprocess.run([tool(), "sign", "--key", keys["files"][keyname], "--domain",
                        "sender.example", "--selector", "sel", "--chunk", "5"],
                       input=msg, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    signed = p.stdout
    assert signed.endswith(msg)
    field = signed[:len(signed) - len(msg)].decode()
    assert field.startswith("DKIM-Signature: v=1; a=")
    assert all(len(line) <= 78 for line in field.split("\r\n"))
    unfolded = field.replace("\r\n\t", "")
    assert "c=relaxed/simple;" in unfolded
    # over-signing: From occurs once and is listed twice; absent Reply-To once
    assert "h=from:from:reply-to:subject:subject:" in unfolded
    rec = keys[recname]

    def dns(name, timeout=5):
        assert name == b"sel._domainkey.sender.example."
        return rec
    assert dkim.verify(signed, dnsfunc=dns), field
    # and our own verifier agrees
    rc, results, verdict = verify(signed, keyfile_for(
        b"ed25519-sha256" if keyname == "ed.pem" else b"rsa-sha256", keys), now=0)
    assert rc == 0 and verdict == "verdict pass -"
    # a header added above the signed From breaks it for dkimpy too
    assert not dkim.verify(b"From: evil@sender.example\r\n" + signed, dnsfunc=dns)


def test_our_generated_key_and_record(tmp_path, keys):
    path = tmp_path / "dkim" / "opendkim.private"
    p = subprocess.run([tool(), "record", "--key", str(path), "--create"], capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert b"created" in p.stderr
    assert (path.stat().st_mode & 0o777) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    rec = p.stdout.strip()
    assert rec.startswith(b"v=DKIM1;k=rsa;p=") and rec.endswith(b";s=email;t=s")
    der = base64.b64decode(rec.split(b"p=")[1].split(b";")[0])
    from cryptography.hazmat.primitives.serialization import load_der_public_key
    assert load_der_public_key(der).key_size == 2048
    # a second run reuses the key
    p2 = subprocess.run([tool(), "record", "--key", str(path), "--create"], capture_output=True,
                        timeout=60)
    assert p2.stdout.strip() == rec and b"created" not in p2.stderr
    msg = MESSAGES["8bit"]
    s = subprocess.run([tool(), "sign", "--key", str(path), "--domain", "sender.example",
                        "--selector", "sel"], input=msg, capture_output=True, timeout=60)
    assert dkim.verify(s.stdout, dnsfunc=lambda name, timeout=5: rec)


def test_misaligned_domain(keys):
    # signed correctly, but by another domain than the From domain
    signed = dkimpy_sign(MESSAGES["folded"], b"rsa-sha256", keys, domain=b"other.example")
    args = ["--key", f"sel._domainkey.other.example={keys['files']['rsa.txt']}"]
    rc, results, verdict = verify(signed, None, *args)
    assert results[0][2:5] == ["pass", "other.example", "sel"]
    assert rc == 1
    assert verdict == "verdict invalid 554 5.7.1 No valid DKIM signature found"
    # nor does a parent domain pass for a subdomain From
    rc, _, verdict = verify(signed, None, *args, from_domain="sub.other.example")
    assert verdict == "verdict invalid 554 5.7.1 No valid DKIM signature found"


def test_l_tag_refused(keys):
    signed = dkimpy_sign(MESSAGES["folded"], b"rsa-sha256", keys, length=True)
    assert b"l=" in signed.split(b"From:")[0]
    rc, results, verdict = verify(signed, keys["files"]["rsa.txt"])
    assert results[0][2] == "permerror" and results[0][5] == "l= not accepted"
    assert verdict == "verdict invalid 554 5.7.1 No valid DKIM signature found"


def test_rsa_sha1_refused(keys):
    signed = dkimpy_sign(MESSAGES["folded"], b"rsa-sha1", keys)
    rc, results, verdict = verify(signed, keys["files"]["rsa.txt"])
    assert results[0][5] == "rsa-sha1 not accepted"
    assert verdict == "verdict invalid 554 5.7.1 No valid DKIM signature found"


def sign_with_expiry(msg, keys, t, x):
    """dkimpy has no x= option: build the field with its own internals."""
    d = dkim.DKIM(msg, signature_algorithm=b"rsa-sha256")
    d.hasher = hashlib.sha256
    canon = CanonicalizationPolicy.from_c_value(b"relaxed/simple")
    include = tuple(h.lower() for h in d.default_sign_headers())
    bh = base64.b64encode(hashlib.sha256(canon.canonicalize_body(d.body)).digest())
    fields = [(b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", b"relaxed/simple"), (b"d", DOMAIN),
              (b"s", SEL), (b"t", str(t).encode()), (b"x", str(x).encode()),
              (b"h", b":".join(include)), (b"bh", bh), (b"b", b"0" * 60)]
    res = d.gen_header(fields, include, canon, b"DKIM-Signature",
                       parse_pem_private_key(keys["rsa_pem"]))
    return b"DKIM-Signature: " + res + msg


def test_expired_x_refused(keys):
    signed = sign_with_expiry(MESSAGES["folded"], keys, NOW - 100, NOW + 100)
    rc, results, verdict = verify(signed, keys["files"]["rsa.txt"], now=NOW)
    assert rc == 0 and results[0][2] == "pass"  # not yet expired
    rc, results, verdict = verify(signed, keys["files"]["rsa.txt"], now=NOW + 101)
    assert results[0][2] == "permerror" and results[0][5] == "signature expired"
    assert verdict == "verdict invalid 554 5.7.1 No valid DKIM signature found"


def test_revoked_key_refused(keys):
    signed = dkimpy_sign(MESSAGES["folded"], b"rsa-sha256", keys)
    rc, results, verdict = verify(signed, keys["files"]["revoked.txt"])
    assert results[0][2] == "permerror" and results[0][5] == "key revoked"
    assert verdict == "verdict invalid 554 5.7.1 No valid DKIM signature found"


def test_unsigned_and_missing_key_and_temporary_failure(keys):
    rc, results, verdict = verify(MESSAGES["folded"], None)
    assert results == [] and verdict == "verdict none 554 5.7.1 No DKIM signature found"
    signed = dkimpy_sign(MESSAGES["folded"], b"rsa-sha256", keys)
    rc, results, verdict = verify(signed, None)  # NXDOMAIN
    assert results[0][5] == "no key record"
    assert verdict == "verdict invalid 554 5.7.1 No valid DKIM signature found"
    rc, results, verdict = verify(signed, None, "--tempfail", KEYNAME)
    assert results[0][2] == "temperror"
    assert verdict.startswith("verdict temp 451 4.7.5 ")
    # an address-literal From is exempt
    rc, _, verdict = verify(MESSAGES["folded"], None, from_domain="[192.0.2.7]")
    assert rc == 0 and verdict == "verdict pass -"
