"""test_deltachat.py: Delta Chat (deltachat-rpc-server 2.57.0) end to end
against a relay (issue 7 item 4): accounts configured through a
`dcaccount:` QR against /new, through `dclogin:` and through explicit
parameters over 993/465, 143/587 and the https port (ALPN); `is_chatmail`
= 1; encrypted messages both ways with the padlock; a group of three;
SecureJoin; a 5 MiB attachment; read receipts; delivery to an account that
was offline; a client killed with SIGKILL and restarted sees every message
exactly once. Every wait has a deadline (dcrpc.EVENT_TIMEOUT)."""
import hashlib
import os
import urllib.parse

import pytest

# Deadline per test (tests/pytest.ini has the default): real Delta Chat clients: 60 s per RPC wait, 120 s for the 5 MiB attachment, first run npm-installs the client.
pytestmark = pytest.mark.timeout(600)

HOST = "_relay1.test"
SELF = 1  # DC_CONTACT_ID_SELF
STATE_OUT_DELIVERED, STATE_OUT_MDN_RCVD = 26, 28
MODES = {  # name -> (imap port, imap security, smtp port, smtp security)
    "993-465": (993, "ssl", 465, "ssl"),
    "143-587": (143, "starttls", 587, "starttls"),
    "443-alpn": (443, "ssl", 443, "ssl"),
}


def login_param(addr, password, mode="993-465"):
    ip, isec, sp, ssec = MODES[mode]
    return {"addr": addr, "password": password, "imapServer": HOST, "imapPort": ip,
            "imapSecurity": isec, "smtpServer": HOST, "smtpPort": sp, "smtpSecurity": ssec,
            "certificateChecks": "strict"}


def new_account(dev, target, mode="993-465", start=True):
    """A configured account (explicit parameters) that has selected its INBOX
    once and waits in IDLE; returns (account id, address). Delta Chat takes
    what is in the INBOX at its first SELECT as old mail and never shows it,
    so a test that sends before that point races with the receiver's
    start-up. start=False: the account goes offline again (stop_io) after
    that first SELECT, as a phone that was switched off."""
    acc = dev.rpc.add_account()
    addr, pw = target.new_credentials()
    mark = dev.mark()
    cfg = dev.configure(acc, login_param(addr, pw, mode))
    assert cfg["configured_addr"] == addr, cfg
    dev.rpc.start_io(acc)
    dev.wait_event(acc, "ImapInboxIdle", since=mark)
    if not start:
        dev.rpc.stop_io(acc)
    return acc, addr


def introduce(dev_a, a, dev_b, b):
    """Each account imports the other's vCard (carries the OpenPGP key);
    returns (contact of b at a, contact of a at b)."""
    [b_at_a] = dev_a.rpc.import_vcard_contents(a, dev_b.rpc.make_vcard(b, [SELF]))
    [a_at_b] = dev_b.rpc.import_vcard_contents(b, dev_a.rpc.make_vcard(a, [SELF]))
    return b_at_a, a_at_b


def send_text(dev, acc, chat, text):
    return dev.rpc.misc_send_text_message(acc, chat, text)


# ------------------------------------------------------------ configuration

@pytest.mark.parametrize("mode", list(MODES))
def test_configure_explicit(target, devices, mode):
    dev = devices()
    acc = dev.rpc.add_account()
    addr, pw = target.new_credentials()
    cfg = dev.configure(acc, login_param(addr, pw, mode))
    assert cfg == {"configured_addr": addr, "is_chatmail": "1"}
    [t] = dev.rpc.list_transports(acc)
    assert (t["imapPort"], t["smtpPort"]) == (MODES[mode][0], MODES[mode][2]), t


def test_configure_dcaccount_new(target, devices):
    dev = devices()
    acc = dev.rpc.add_account()
    qr = f"dcaccount:https://{HOST}/new"
    check = dev.rpc.check_qr(acc, qr)
    assert check["kind"] == "account" and check["domain"] == HOST, check
    dev.rpc.add_transport_from_qr(acc, qr)
    cfg = dev.rpc.batch_get_config(acc, ["configured_addr", "is_chatmail"])
    local, _, domain = cfg["configured_addr"].partition("@")
    assert domain == HOST and len(local) == 9 and local.isalnum(), cfg
    assert cfg["is_chatmail"] == "1", cfg


@pytest.mark.parametrize("form", ["explicit-hosts", "spec-9.3"])
def test_configure_dclogin(target, devices, form):
    dev = devices()
    acc = dev.rpc.add_account()
    addr, pw = target.new_credentials()
    q = urllib.parse.quote(pw, safe="")
    if form == "explicit-hosts":
        qr = (f"dclogin:{addr}?p={q}&v=1&ih={HOST}&ip=993&is=ssl&sh={HOST}&sp=465&ss=ssl&ic=1")
    else:  # what /new returns as dclogin_url in self-signed mode: hosts from the domain
        qr = f"dclogin:{urllib.parse.quote(addr, safe='@[]')}?p={q}&v=1&ic=3"
    check = dev.rpc.check_qr(acc, qr)
    assert check["kind"] == "login" and check["address"] == addr, check
    dev.rpc.add_transport_from_qr(acc, qr)
    cfg = dev.rpc.batch_get_config(acc, ["configured_addr", "is_chatmail"])
    assert cfg == {"configured_addr": addr, "is_chatmail": "1"}


# ------------------------------------------------------------ messaging

def test_e2ee_both_ways(target, devices):
    dev = devices()
    a, _ = new_account(dev, target)
    b, _ = new_account(dev, target, mode="143-587")
    b_at_a, a_at_b = introduce(dev, a, dev, b)
    chat_b = dev.rpc.create_chat_by_contact_id(b, a_at_b)
    mark = dev.mark()
    send_text(dev, b, chat_b, "hello alice")
    m = dev.wait_incoming(a, "hello alice", since=mark)
    assert m["showPadlock"] is True, m
    dev.rpc.accept_chat(a, m["chatId"])
    send_text(dev, a, m["chatId"], "hi bob")
    r = dev.wait_incoming(b, "hi bob", since=mark)
    assert r["showPadlock"] is True and r["chatId"] == chat_b, r


def test_group_of_three(target, devices):
    dev = devices()
    (a, _), (b, _), (c, _) = (new_account(dev, target) for _ in range(3))
    b_at_a, _ = introduce(dev, a, dev, b)
    c_at_a, _ = introduce(dev, a, dev, c)
    group = dev.rpc.create_group_chat(a, "trio", False)
    dev.rpc.add_contact_to_chat(a, group, b_at_a)
    dev.rpc.add_contact_to_chat(a, group, c_at_a)
    mark = dev.mark()
    send_text(dev, a, group, "hello group")
    got = {acc: dev.wait_incoming(acc, "hello group", since=mark) for acc in (b, c)}
    for acc, m in got.items():
        assert m["showPadlock"] is True, m
        assert len(dev.rpc.get_chat_contacts(acc, m["chatId"])) == 3
        assert dev.rpc.get_basic_chat_info(acc, m["chatId"])["name"] == "trio"
        dev.rpc.accept_chat(acc, m["chatId"])
    send_text(dev, c, got[c]["chatId"], "c to all")
    for acc in (a, b):
        m = dev.wait_incoming(acc, "c to all", since=mark)
        assert m["showPadlock"] is True, m
    assert dev.wait_incoming(a, "c to all", since=mark)["chatId"] == group


def test_securejoin(target, devices):
    dev = devices()
    a, a_addr = new_account(dev, target)
    b, _ = new_account(dev, target)
    qr = dev.rpc.get_chat_securejoin_qr_code(a, None)
    assert dev.rpc.check_qr(b, qr)["kind"] == "askVerifyContact"
    mark = dev.mark()
    chat_b = dev.rpc.secure_join(b, qr)
    dev.wait_event(a, "SecurejoinInviterProgress", lambda e: e["progress"] == 1000, since=mark)
    dev.wait_event(b, "SecurejoinJoinerProgress", lambda e: e["progress"] == 1000, since=mark)
    contacts = dev.rpc.get_chat_contacts(b, chat_b)
    [a_at_b] = [cid for cid in contacts if cid != SELF]
    contact = dev.rpc.get_contact(b, a_at_b)
    assert contact["address"] == a_addr and contact["isVerified"] is True, contact
    send_text(dev, b, chat_b, "verified hello")
    m = dev.wait_incoming(a, "verified hello", since=mark)
    assert m["showPadlock"] is True, m


def test_attachment_5mib(target, devices, tmp_path):
    dev = devices()
    a, _ = new_account(dev, target)
    b, _ = new_account(dev, target)
    _, a_at_b = introduce(dev, a, dev, b)
    data = os.urandom(5 * 1024 * 1024)
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    chat_b = dev.rpc.create_chat_by_contact_id(b, a_at_b)
    mark = dev.mark()
    dev.rpc.send_msg(b, chat_b, {"text": "five mebibytes", "file": str(src), "filename": "blob.bin",
                                 "viewtype": "File"})
    m = dev.wait_incoming(a, "five mebibytes", since=mark, timeout=120)
    assert m["showPadlock"] is True and m["fileName"] == "blob.bin", m
    assert m["fileBytes"] == len(data), m
    with open(m["file"], "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_read_receipt(target, devices):
    dev = devices()
    a, _ = new_account(dev, target)
    b, _ = new_account(dev, target)
    b_at_a, _ = introduce(dev, a, dev, b)
    chat_a = dev.rpc.create_chat_by_contact_id(a, b_at_a)
    mark = dev.mark()
    sent = send_text(dev, a, chat_a, "please read")
    m = dev.wait_incoming(b, "please read", since=mark)
    dev.rpc.accept_chat(b, m["chatId"])
    dev.rpc.markseen_msgs(b, [m["id"]])
    dev.wait_event(a, "MsgRead", lambda e: e["msgId"] == sent, since=mark)
    assert dev.rpc.get_message(a, sent)["state"] == STATE_OUT_MDN_RCVD
    receipts = dev.rpc.get_message_read_receipts(a, sent)
    assert [r["contactId"] for r in receipts] == [b_at_a], receipts


def test_offline_recipient(target, devices):
    dev = devices()
    a, _ = new_account(dev, target)
    b, b_addr = new_account(dev, target, start=False)  # b is offline: no IMAP session
    b_at_a, _ = introduce(dev, a, dev, b)
    chat_a = dev.rpc.create_chat_by_contact_id(a, b_at_a)
    mark = dev.mark()
    sent = send_text(dev, a, chat_a, "while you were away")
    dev.wait_event(a, "MsgDelivered", lambda e: e["msgId"] == sent, since=mark)
    assert dev.rpc.get_message(a, sent)["state"] == STATE_OUT_DELIVERED
    pw = dev.rpc.list_transports(b)[0]["password"]
    imap = target.imap_login(b_addr, pw)
    try:
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) >= 1, data  # stored while b was away
    finally:
        imap.logout()
    dev.rpc.start_io(b)
    m = dev.wait_incoming(b, "while you were away", since=mark)
    assert m["showPadlock"] is True, m


def test_kill_restart_exactly_once(target, devices):
    """The receiver's rpc-server is SIGKILLed while messages arrive, more are
    sent while it is down; after the restart each text is in the chat once."""
    sender, receiver = devices(), devices()
    a, _ = new_account(sender, target)
    x, _ = new_account(receiver, target)
    x_at_a, a_at_x = introduce(sender, a, receiver, x)
    chat_a = sender.rpc.create_chat_by_contact_id(a, x_at_a)
    mark = receiver.mark()
    send_text(sender, a, chat_a, "m1")
    receiver.rpc.accept_chat(x, receiver.wait_incoming(x, "m1", since=mark)["chatId"])
    send_text(sender, a, chat_a, "m2")
    receiver.wait_incoming(x, "m2", since=mark)
    smark = sender.mark()
    ids = [send_text(sender, a, chat_a, f"m{i}") for i in (3, 4, 5)]
    receiver.wait_incoming(x, "m3", since=mark)
    receiver.kill()  # m4, m5 possibly half fetched
    ids += [send_text(sender, a, chat_a, f"m{i}") for i in (6, 7)]
    for sent in ids:
        sender.wait_event(a, "MsgDelivered", lambda e, s=sent: e["msgId"] == s, since=smark)
    receiver.start()
    mark = receiver.mark()
    receiver.rpc.start_io(x)
    send_text(sender, a, chat_a, "marker")
    m = receiver.wait_incoming(x, "marker", since=mark)
    chat_x = receiver.rpc.get_chat_id_by_contact_id(x, a_at_x)
    assert m["chatId"] == chat_x
    texts = [msg["text"] for msg in receiver.chat_texts(x, chat_x) if not msg["isInfo"]]
    expected = [f"m{i}" for i in range(1, 8)] + ["marker"]
    assert sorted(texts) == sorted(expected), texts
