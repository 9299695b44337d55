#!/usr/bin/env python3
"""make_fixtures.py: regenerates the .eml fixtures of the filter tests.

Needs gpg (GnuPG 2.2) ONLY here; the tests read the committed .eml files.
It makes throw-away keys in a temporary GNUPGHOME, lets gpg encrypt real
payloads (PKESK x2 + SEIPD, SKESK + SEIPD, literal data), then re-frames the
packets (new-format 1/2/5-octet lengths, legacy 1/2/4-octet lengths, partial
lengths) and re-armours them itself, so that every framing variant is real
OpenPGP data. Messages use CRLF line endings (SMTP data form).

    python3 tests/data/filter/make_fixtures.py
"""
import base64
import os
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ALICE, BOB = "alice@example.org", "bob@example.net"


def gpg(home, *args, data=b""):
    return subprocess.run(["gpg", "--batch", "--quiet", "--homedir", home, *args],
                          input=data, check=True, capture_output=True).stdout


def make_keys(home):
    for uid in (f"alice <{ALICE}>", f"bob <{BOB}>"):
        gpg(home, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "cert", "never")
        out = gpg(home, "--with-colons", "--list-keys", uid).decode()
        fpr = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr")][0]
        gpg(home, "--passphrase", "", "--quick-add-key", fpr, "cv25519", "encr", "never")


# ---- packet framing ----

def parse_packets(data):
    """Returns [(tag, body)] with partial bodies joined."""
    out, i = [], 0
    while i < len(data):
        ctb = data[i]
        i += 1
        assert ctb & 0x80
        if ctb & 0x40:
            tag, body = ctb & 0x3F, b""
            while True:
                o1 = data[i]
                if o1 < 192:
                    n, i = o1, i + 1
                elif o1 < 224:
                    n, i = ((o1 - 192) << 8) + data[i + 1] + 192, i + 2
                elif o1 == 255:
                    n, i = int.from_bytes(data[i + 1:i + 5], "big"), i + 5
                else:
                    n = 1 << (o1 & 0x1F)
                    body += data[i + 1:i + 1 + n]
                    i += 1 + n
                    continue
                body += data[i:i + n]
                i += n
                break
        else:
            tag, lt = (ctb >> 2) & 0xF, ctb & 3
            if lt == 3:
                body, i = data[i:], len(data)
            else:
                w = (1, 2, 4)[lt]
                n = int.from_bytes(data[i:i + w], "big")
                body, i = data[i + w:i + w + n], i + w + n
        out.append((tag, body))
    return out


def new_len(n, form=None):
    form = form or (1 if n < 192 else 2 if n < 8384 else 5)
    if form == 1:
        assert n < 192
        return bytes([n])
    if form == 2:
        assert 192 <= n < 8384
        n -= 192
        return bytes([(n >> 8) + 192, n & 0xFF])
    return b"\xff" + n.to_bytes(4, "big")


def new_pkt(tag, body, form=None):
    return bytes([0xC0 | tag]) + new_len(len(body), form) + body


def old_pkt(tag, body, lt):
    w = (1, 2, 4)[lt]
    return bytes([0x80 | (tag << 2) | lt]) + len(body).to_bytes(w, "big") + body


def partial_pkt(tag, body, chunk_pow=9):
    out, chunk = bytearray([0xC0 | tag]), 1 << chunk_pow
    while len(body) > chunk:
        out += bytes([224 + chunk_pow]) + body[:chunk]
        body = body[chunk:]
    return bytes(out + new_len(len(body)) + body)


# ---- armour ----

def crc24(data):
    crc = 0xB704CE
    for b in data:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armor(binary, headers=(), crc=True, crc_text=None):
    b64 = base64.b64encode(binary).decode()
    lines = ["-----BEGIN PGP MESSAGE-----", *headers, ""]
    lines += [b64[i:i + 76] for i in range(0, len(b64), 76)]
    if crc_text is not None:
        lines.append(crc_text)
    elif crc:
        lines.append("=" + base64.b64encode(crc24(binary).to_bytes(3, "big")).decode())
    lines.append("-----END PGP MESSAGE-----")
    return "\r\n".join(lines) + "\r\n"


# ---- messages ----

def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def headers(frm=ALICE, to=BOB, subject="[...]", extra=""):
    return (f"From: <{frm}>\nTo: <{to}>\nSubject: {subject}\n"
            "Date: Tue, 01 Jun 2027 10:00:00 +0000\n"
            "Message-ID: <Mr.abc123@example.org>\nChat-Version: 1.0\n"
            "MIME-Version: 1.0\n" + extra)


def encrypted_msg(armored, frm=ALICE, version="Version: 1", extra_part="",
                  payload_cte="7bit"):
    b = "1Dq4dUzQyVqz7bN9Wkhs3iXfPV1KQo"
    if payload_cte == "base64":
        body = base64.encodebytes(armored.encode()).decode()
    else:
        body = armored
    return crlf(headers(frm) +
                f'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\n'
                f' boundary="{b}"\n\n'
                f"--{b}\nContent-Type: application/pgp-encrypted; charset=utf-8\n"
                "Content-Description: PGP/MIME version identification\n"
                f"Content-Transfer-Encoding: 7bit\n\n{version}\n\n"
                f"--{b}\nContent-Type: application/octet-stream; name=\"encrypted.asc\";\n"
                " charset=utf-8\nContent-Description: OpenPGP encrypted message\n"
                'Content-Disposition: inline; filename="encrypted.asc";\n'
                f"Content-Transfer-Encoding: {payload_cte}\n\n{body}\n\n"
                f"{extra_part}--{b}--\n")


def multipart(ctype, parts, hdrs, boundary="aBcD1234"):
    text = hdrs + f'Content-Type: {ctype}; boundary="{boundary}"\n\n'
    for p in parts:
        text += f"--{boundary}\n{p}\n"
    return crlf(text + f"--{boundary}--\n")


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    with tempfile.TemporaryDirectory() as home:
        make_keys(home)
        inner = ("Content-Type: text/plain; charset=utf-8\n\n" +
                 base64.encodebytes(os.urandom(3000)).decode()).encode()
        enc = gpg(home, "--trust-model", "always", "-e", "-r", ALICE, "-r", BOB, data=inner)
        sym = gpg(home, "--passphrase", "pw", "--symmetric", data=inner)
        lit = gpg(home, "--store", data=inner)
    pk = parse_packets(enc)
    assert [t for t, _ in pk] == [1, 1, 18], pk
    (_, e1), (_, e2), (_, seipd) = pk
    sk = parse_packets(sym)
    assert [t for t, _ in sk] == [3, 18]

    dc = new_pkt(1, e1) + new_pkt(1, e2) + new_pkt(18, seipd)  # rPGP-like
    write("encrypted.eml", encrypted_msg(armor(dc)))
    write("encrypted-gpg-raw.eml", encrypted_msg(armor(enc)))  # as gpg framed it
    write("encrypted-skesk.eml", encrypted_msg(armor(new_pkt(sk[0][0], sk[0][1]) +
                                                     new_pkt(18, sk[1][1]))))
    # legacy headers (1-, 2- and 4-octet lengths); tags above 15 (SEIPD) cannot
    # be written in the legacy format, so SEIPD gets a new 5-octet header
    legacy = old_pkt(1, e1, 1) + old_pkt(1, e2, 2) + new_pkt(18, seipd, 5)
    write("encrypted-legacy.eml", encrypted_msg(armor(legacy)))
    write("encrypted-partial.eml", encrypted_msg(armor(
        new_pkt(1, e1) + new_pkt(1, e2) + partial_pkt(18, seipd, 9))))
    nocrc = new_pkt(1, e1) + new_pkt(1, e2) + new_pkt(18, seipd)
    while len(nocrc) % 3 == 0:  # make sure the base64 ends in '=' padding
        nocrc = new_pkt(1, e1) + new_pkt(1, e2) + new_pkt(18, seipd + b"\0")
    write("encrypted-nocrc-padding.eml", encrypted_msg(armor(nocrc, crc=False)))
    write("encrypted-crc-mismatch.eml", encrypted_msg(armor(dc, crc_text="=AAAA")))
    write("encrypted-b64-cte.eml", encrypted_msg(armor(dc), payload_cte="base64"))
    write("armor-version-header.eml",
          encrypted_msg(armor(dc, headers=["Version: GnuPG v2"])))
    write("armor-comment-header.eml",
          encrypted_msg(armor(dc, headers=["Comment: https://gnupg.org"])))
    write("encrypted-from-mismatch.eml", encrypted_msg(armor(dc), frm="mallory@example.org"))

    write("literal.eml", encrypted_msg(armor(lit)))
    good = armor(dc)
    lines = good.split("\r\n")
    write("truncated-armor.eml", encrypted_msg("\r\n".join(lines[:5]) + "\r\n"))
    write("bad-base64.eml", encrypted_msg(good.replace(lines[3], lines[3][:10] + "*" +
                                                       lines[3][11:])))
    write("bad-crc-line.eml", encrypted_msg(armor(dc, crc_text="=ABCDE")))
    write("packets-past-end.eml", encrypted_msg(armor(new_pkt(1, e1) +
                                                      new_pkt(18, seipd, 5)[:-7])))
    write("esk-after-seipd.eml", encrypted_msg(armor(new_pkt(18, seipd) + new_pkt(1, e1))))
    write("empty-payload.eml", encrypted_msg("-----BEGIN PGP MESSAGE-----\r\n\r\n"
                                             "-----END PGP MESSAGE-----\r\n"))
    write("trailing-garbage.eml", encrypted_msg(good + "more text\r\n"))
    write("version-2.eml", encrypted_msg(good, version="Version: 2"))
    write("three-parts.eml", encrypted_msg(
        good, extra_part="--1Dq4dUzQyVqz7bN9Wkhs3iXfPV1KQo\nContent-Type: text/plain\n\nhi\n\n"))
    b = "1Dq4dUzQyVqz7bN9Wkhs3iXfPV1KQo"
    write("one-part.eml", crlf(headers() +
                               f'Content-Type: multipart/encrypted; boundary="{b}"\n\n'
                               f"--{b}\nContent-Type: application/pgp-encrypted\n\n"
                               f"Version: 1\n\n--{b}--\n"))
    write("nested-multipart.eml", crlf(
        headers() + f'Content-Type: multipart/encrypted; boundary="{b}"\n\n'
        f"--{b}\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n"
        f'--{b}\nContent-Type: multipart/mixed; boundary="inner"\n\n'
        f"--inner\nContent-Type: application/octet-stream\n\n{good}\n--inner--\n\n--{b}--\n"))
    write("fake-encrypted.eml", crlf(headers() + "Content-Type: text/plain\n\n" + good))

    write("plain.eml", crlf(headers(subject="hello") +
                            "Content-Type: text/plain; charset=utf-8\n\nHello Bob!\n"))
    write("mdn.eml", multipart(
        "multipart/report; report-type=disposition-notification",
        ["Content-Type: text/plain; charset=utf-8\n\nThis is a receipt notification.\n",
         "Content-Type: message/disposition-notification\n\n"
         "Reporting-UA: Delta Chat 1.150.0\nOriginal-Recipient: rfc822;bob@example.net\n"
         "Final-Recipient: rfc822;bob@example.net\nOriginal-Message-ID: <Mr.x@example.net>\n"
         "Disposition: manual-action/MDN-sent-automatically; displayed\n"],
        headers(subject="Receipt Notification")))
    asm_parts = ["Content-Type: text/plain; charset=utf-8\n\nThis is the Autocrypt Setup Message "
                 "used to transfer your end-to-end setup between clients.\n",
                 'Content-Type: application/autocrypt-setup\nContent-Disposition: attachment; '
                 'filename="autocrypt-setup-message.html"\n\n<html><body><pre>\n' +
                 armor(sym, headers=["Passphrase-Format: numeric9x4", "Passphrase-Begin: 12"]) +
                 "</pre></body></html>\n"]
    asm_hdr = headers(to=ALICE, subject="Autocrypt Setup Message",
                      extra="Autocrypt-Setup-Message: v1\n")
    write("asm.eml", multipart("multipart/mixed", asm_parts, asm_hdr))
    write("asm-folded-subject.eml", multipart(
        "multipart/mixed", asm_parts, asm_hdr.replace("Subject: Autocrypt Setup Message",
                                                      "Subject: Autocrypt Setup\n Message")))
    for kind in ("vc", "vg"):
        write(f"securejoin-{kind}.eml", multipart(
            "multipart/mixed", [f"Content-Type: text/plain; charset=utf-8\n\n"
                                f"Secure-Join: {kind}-request\n"],
            headers(subject="Message from alice@example.org",
                    extra=f"Secure-Join: {kind}-request\nSecure-Join-Invitenumber: Xj4kq\n")))
    write("securejoin-vc-fake.eml", multipart(
        "multipart/mixed", ["Content-Type: text/plain; charset=utf-8\n\nHi, buy cheap stuff!\n"],
        headers(extra="Secure-Join: vc-request\n")))
    write("securejoin-vc-two-parts.eml", multipart(
        "multipart/mixed", ["Content-Type: text/plain\n\nSecure-Join: vc-request\n",
                            "Content-Type: text/plain\n\nmore\n"],
        headers(extra="Secure-Join: vc-request\n")))
    write("securejoin-vc-qp.eml", multipart(
        "multipart/mixed", ["Content-Type: text/plain\nContent-Transfer-Encoding: "
                            "quoted-printable\n\nSecure-Join: vc-req=\nuest=20\n"],
        headers(extra="Secure-Join: vc-request\n")))
    write("mailer-daemon.eml", multipart(
        "multipart/report; report-type=delivery-status",
        ["Content-Type: text/plain\n\nThis is the mail system at host mx.example.net.\n"
         "I'm sorry to have to inform you that your message could not be delivered.\n",
         "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
         "Final-Recipient: rfc822; carol@example.net\nAction: failed\nStatus: 5.1.1\n",
         "Content-Type: text/rfc822-headers\n\nFrom: <bob@example.net>\nSubject: [...]\n"],
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
        "To: bob@example.net\nSubject: Undelivered Mail Returned to Sender\n"
        "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"))
    write("mailer-daemon-no-autosubmitted.eml", multipart(
        "multipart/report; report-type=delivery-status",
        ["Content-Type: text/plain\n\nundeliverable\n"],
        "From: MAILER-DAEMON@mx.example.net\nTo: bob@example.net\nMIME-Version: 1.0\n"))
    write("no-from.eml", crlf("To: <bob@example.net>\nSubject: x\n\nhi\n"))
    write("bad-from.eml", crlf("From: undisclosed sender\nTo: <bob@example.net>\n\nhi\n"))


if __name__ == "__main__":
    main()
