"""test_expire_cli.py: `chatmaild-server -c FILE expire [--remove|--dry-run] [--days N]`
runs one expiry pass (spec §5.1) and prints the summary line; like chatmail's
chatmail-expire it only reports unless given --remove (--dry-run: the same
report, said explicitly)."""
import os
import subprocess
import time

import cmtest

DAY = 86400


def make_mailbox(root, addr, files, last_login_days=0):
    box = root / addr
    for d in ("cur", "new", "tmp"):
        (box / d).mkdir(parents=True, exist_ok=True)
    pw = box / "password"
    pw.write_text("{PLAIN}secretsecret")
    t = time.time() - last_login_days * DAY
    os.utime(pw, (t, t))
    for sub, name, size, age_days in files:
        p = box / sub / name
        p.write_bytes(b"x" * size)
        t = time.time() - age_days * DAY
        os.utime(p, (t, t))
    return box


def run_expire(tmp_path, server_bin, *args):
    ini = tmp_path / "chatmail.ini"
    ini.write_text(f"[params]\nmail_domain = relay1.test\nmailboxes_dir = {tmp_path}/mail\n"
                   f"state_dir = {tmp_path}/state\n")
    return subprocess.run([server_bin, "-c", str(ini), "expire", *args], capture_output=True,
                          text=True, timeout=cmtest.TIMEOUT)


def test_expire_reports_then_removes(tmp_path, server_bin):
    mail = tmp_path / "mail"
    box = make_mailbox(mail, "abcdefghi@relay1.test", [
        ("new", "1000.M1P1.h,S=10", 10, 30),           # older than delete_mails_after (20)
        ("cur", "1001.M1P1.h,S=300000:2,S", 300000, 8),  # large, seen, older than 7 days
        ("new", "1002.M1P1.h,S=300000", 300000, 8),     # large but in new/: kept
        ("cur", "1003.M1P1.h,S=10:2,S", 10, 1),         # fresh: kept
    ])
    stale = make_mailbox(mail, "zyxwvutsr@relay1.test", [("new", "1.M1P1.h,S=1", 1, 1)],
                         last_login_days=100)           # inactive for > 90 days
    doomed = [stale, box / "new" / "1000.M1P1.h,S=10", box / "cur" / "1001.M1P1.h,S=300000:2,S"]
    reports = []
    for args in ((), ("--dry-run",), ("-v",)):  # no --remove: report only
        r = run_expire(tmp_path, server_bin, *args)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stdout.startswith("Removed 1 out of 2 mailboxes and 2 out of "), (args, r.stdout)
        assert all(p.exists() for p in doomed), args  # nothing deleted
        reports.append(r.stdout.splitlines()[0].rsplit(" in ", 1)[0])
    assert reports[0] == reports[1] == reports[2]  # same counts (time aside)

    r = run_expire(tmp_path, server_bin, "--remove")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Removed 1 out of 2 mailboxes and 2 out of "), r.stdout
    assert not stale.exists()
    assert not (box / "new" / "1000.M1P1.h,S=10").exists()
    assert not (box / "cur" / "1001.M1P1.h,S=300000:2,S").exists()
    assert (box / "new" / "1002.M1P1.h,S=300000").exists()
    assert (box / "cur" / "1003.M1P1.h,S=10:2,S").exists()


def test_expire_days_and_usage(tmp_path, server_bin):
    mail = tmp_path / "mail"
    box = make_mailbox(mail, "abcdefghi@relay1.test", [("cur", "5.M1P1.h,S=1:2,S", 1, 1)])
    # --days 25 pretends the date is 25 days earlier: every file looks younger, nothing goes
    r = run_expire(tmp_path, server_bin, "--remove", "--days", "25")
    assert r.returncode == 0 and (box / "cur" / "5.M1P1.h,S=1:2,S").exists()
    r = run_expire(tmp_path, server_bin, "--bogus")
    assert r.returncode == 2 and "usage" in r.stderr
    r = run_expire(tmp_path, server_bin, "--remove", "--dry-run")
    assert r.returncode == 2 and "contradict" in r.stderr and "usage" in r.stderr
