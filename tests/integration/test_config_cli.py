"""`chatmaild-server -c FILE --check`: the effective configuration as
`key = value` lines and exit 0, or one `config: KEY = "VALUE": REASON` line
per problem on stderr and exit 1 (spec §1.1-§1.3). Also the one warning line
for keys that have no effect, at --check and at server start."""
import re
import subprocess

import pytest

import cmtest

ERROR_LINE = re.compile(r'^config: (\S+) = "(.*)": (.+)$')


def run_check(server_bin, ini_path, cwd=None):
    r = subprocess.run([server_bin, "-c", str(ini_path), "--check"], cwd=cwd, capture_output=True,
                       timeout=cmtest.TIMEOUT)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def write_ini(tmp_path, body, name="chatmail.ini"):
    p = tmp_path / name
    p.write_text("[params]\n" + body)
    return p


def settings(stdout):
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\w+) = ?(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def size_mb(value):
    """Reads a size as printed (e.g. `500M`, `500`, `1G`, `1024MB`) in MB."""
    m = re.match(r"^(\d+)\s*([MG]?)B?\b", value.strip(), re.I)
    assert m, f"not a size: {value!r}"
    return int(m.group(1)) * (1024 if m.group(2).upper() == "G" else 1)


def error_lines(stderr):
    return [ERROR_LINE.match(l) for l in stderr.splitlines() if ERROR_LINE.match(l)]


def test_minimal_file_shows_spec_defaults(server_bin, tmp_path):
    rc, out, err = run_check(server_bin, write_ini(tmp_path, "mail_domain = relay1.test\n"))
    assert rc == 0, err
    s = settings(out)
    assert s.get("mail_domain") == "relay1.test", out
    expected_ints = {
        "max_user_send_per_minute": 60, "max_user_send_burst_size": 10,
        "max_message_size": 31457280, "delete_mails_after": 20, "delete_large_after": 7,
        "delete_inactive_users_after": 90, "username_min_length": 9, "username_max_length": 9,
        "password_min_length": 9, "max_imap_connections": 10000, "max_smtp_connections": 1000,
    }
    for key, want in expected_ints.items():
        assert key in s, f"{key} missing from --check output:\n{out}"
        assert int(s[key]) == want, f"{key} = {s[key]!r}, spec default {want}"
    assert float(s["max_load_1m"]) == 5.0, s.get("max_load_1m")
    assert any(l.startswith("max_mailbox_size") for l in out.splitlines()), out
    assert size_mb(s["max_mailbox_size"]) == 500
    assert size_mb(s["min_available_memory"]) == 200
    assert size_mb(s["min_free_disk_space"]) == 1024
    assert s["mailboxes_dir"] == "/home/vmail/mail/relay1.test", s.get("mailboxes_dir")
    assert s["turn_socket_path"] == "", s.get("turn_socket_path")
    assert s["disable_ipv6"].lower() in ("false", "0", "no", "off"), s["disable_ipv6"]
    # acme mode for a normal domain: the certificate paths of spec §1.3
    assert "/var/lib/acme/live/relay1.test/fullchain" in out, out


def test_values_from_file_are_effective(server_bin, server):
    srv = server(start=False, extra={"max_user_send_per_minute": "42", "max_mailbox_size": "2G"})
    srv.ports = {n: p for n, p in zip(cmtest.PORT_NAMES, cmtest.free_ports(7))}
    srv.write_config()
    rc, out, err = run_check(server_bin, srv.ini)
    assert rc == 0, err
    s = settings(out)
    assert s["mail_domain"] == "relay1.test"
    assert int(s["max_user_send_per_minute"]) == 42
    assert size_mb(s["max_mailbox_size"]) == 2048
    assert int(s["imaps_port"]) == srv.port("imaps")
    assert s["state_dir"] == str(srv.tmpdir / "state")


def test_missing_mail_domain(server_bin, tmp_path):
    rc, out, err = run_check(server_bin, write_ini(tmp_path, "max_user_send_per_minute = 5\n"))
    assert rc == 1, (out, err)
    assert any("mail_domain" in l and "missing" in l for l in err.splitlines()), err


@pytest.mark.parametrize("key,value,reason", [
    ("max_user_send_per_minute", "abc", None),
    ("max_mailbox_size", "1.5G", None),
    ("imap_port", "70000", None),
    ("tls_external_cert_and_key", "onlyone",
     "tls_external_cert_and_key must have two space-separated paths: CERT_PATH KEY_PATH"),
])
def test_bad_value_is_named(server_bin, tmp_path, key, value, reason):
    rc, out, err = run_check(server_bin, write_ini(tmp_path, f"mail_domain = relay1.test\n{key} = {value}\n"))
    assert rc == 1, (out, err)
    found = [m for m in error_lines(err) if m.group(1) == key]
    assert found, f"no `config: {key} = \"{value}\": ...` line in stderr:\n{err}"
    assert found[0].group(2) == value, found[0].group(0)
    if reason:
        assert reason in found[0].group(3), found[0].group(0)


def test_two_bad_keys_both_reported(server_bin, tmp_path):
    ini = write_ini(tmp_path, "mail_domain = relay1.test\nmax_user_send_per_minute = abc\n"
                              "imap_port = 70000\n")
    rc, out, err = run_check(server_bin, ini)
    assert rc == 1, (out, err)
    keys = {m.group(1) for m in error_lines(err)}
    assert {"max_user_send_per_minute", "imap_port"} <= keys, err


def test_unreadable_file_fails(server_bin, tmp_path):
    rc, out, err = run_check(server_bin, tmp_path / "does-not-exist.ini")
    assert rc == 1, (rc, out, err)
    assert err.strip(), "no reason given on stderr"


def test_garbage_file_fails_cleanly(server_bin, tmp_path):
    p = tmp_path / "garbage.ini"
    p.write_bytes(b"\x00\xff\xfe[params\n=\n\x01mail_domain\n" + b"x" * 5000 + b"\n")
    rc, out, err = run_check(server_bin, p)
    assert rc == 1, (rc, out, err)


def test_unused_keys_are_not_errors(server_bin, tmp_path):
    ini = write_ini(tmp_path, "mail_domain = relay1.test\npassthrough_senders = x\n"
                              "filtermail_smtp_port = 10080\n")
    rc, out, err = run_check(server_bin, ini)
    assert rc == 0, err
    assert not error_lines(err), err
    assert "passthrough_senders" not in settings(out), "an unused key shown as a setting"


def test_unused_keys_warning_at_start(server):
    srv = server(extra={"passthrough_senders": "x", "filtermail_smtp_port": "10080"})
    warn = [l for l in srv.log_text().splitlines() if "settings that have no effect" in l]
    assert len(warn) == 1, srv.log_tail()
    assert "passthrough_senders" in warn[0] and "filtermail_smtp_port" in warn[0], warn[0]


def test_dev_ini_checks(server_bin):
    dev = cmtest.REPO_ROOT / "config" / "dev.ini"
    assert dev.is_file(), f"{dev} is missing"
    rc, out, err = run_check(server_bin, "config/dev.ini", cwd=cmtest.REPO_ROOT)
    assert rc == 0, err
    assert "mail_domain" in settings(out), out
