#!/usr/bin/env bash
# setup.sh: installs what the reference stack needs from Debian (idempotent):
# postfix ("No configuration": no system instance), dovecot-imapd,
# dovecot-lmtpd, opendkim (MX path), and the vmail user. No daemon is started here.
set -euo pipefail
need=()
command -v postfix >/dev/null 2>&1 || need+=(postfix)
[ -x /usr/lib/dovecot/imap ] || need+=(dovecot-imapd)
[ -x /usr/lib/dovecot/lmtp ] || need+=(dovecot-lmtpd)
command -v objdump >/dev/null 2>&1 || need+=(binutils)
command -v xxd >/dev/null 2>&1 || need+=(xxd)
command -v flock >/dev/null 2>&1 || need+=(util-linux)
command -v opendkim >/dev/null 2>&1 || need+=(opendkim)   # the MX path's DKIM verifier
if [ ${#need[@]} -gt 0 ]; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
id vmail >/dev/null 2>&1 || useradd -r -d /nonexistent -s /usr/sbin/nologin vmail
