#!/usr/bin/env bash
# start.sh [stock|patched]: the reference chatmail relay for bench/, by hand
# (no systemd): Postfix 3.7 + Dovecot 2.3 from Debian, configured like
# chatmail (spec §6-7), on one loopback address, everything under
# $CHATBENCH_REF_DIR (default /var/tmp/chatbench-ref). Must run as root.
#
#   stock    Debian's Dovecot as it is (500 ms IDLE notification delay)
#   patched  the same with a private copy of libdovecot-storage whose
#            NOTIFY_DELAY_MSECS is 0, as chatmail runs it (patch-dovecot.sh)
#
# What it is: smtps (implicit TLS, TLS >= 1.3) with Dovecot SASL and
# MAIL FROM = login; delivery by LMTP to Dovecot; Maildir at
# mail/<addr>/ with gzip (zlib_save = gz), quota, mail_fsync = never, no
# Received header; IMAP 993-style implicit TLS (TLS >= 1.3), capabilities
# +XDELTAPUSH XCHATMAIL, imap_hibernate_timeout = 30s, imap-login in
# high-performance mode; create-on-login through a checkpassword script
# (closest to chatmail's doveauth: SHA512-CRYPT hash written to
# mail/<addr>/password on the first login; later logins are verified by the
# passwd-file passdb reading that file). What it lacks compared with a
# chatmail relay: filtermail (encryption enforcement, rate limits) and
# OpenDKIM signing on the submission path, the nginx 443 ALPN proxy, the
# last-login dict and the Lua push hook.
#
# With CHATBENCH_REF_MX=PORT also a port-25-style MX listener on IP:PORT for
# bench/mxbench.py: STARTTLS required, no AUTH, mail for the domain only,
# DKIM verification by an OpenDKIM milter (Mode v; no signature, a bad one
# or a missing key -> reject, DNS error -> tempfail; OpenDKIM does not check
# d= against From) whose libunbound asks CHATBENCH_REF_DNS (IP:PORT, default
# 127.0.0.1:15353) for the keys (sender domains outside .test), then LMTP to
# Dovecot as the submission path.
#
# Prints the environment for chatbench: REF_HOST, REF_SMTPS, REF_IMAPS,
# REF_DOMAIN, REF_MAILDIR (template), REF_PIDS (and REF_MX with the MX port).
set -euo pipefail
variant=${1:-patched}
here=$(cd "$(dirname "$0")" && pwd)
R=${CHATBENCH_REF_DIR:-/var/tmp/chatbench-ref}
IP=${CHATBENCH_REF_IP:-127.0.0.30}
DOMAIN=${CHATBENCH_REF_DOMAIN:-chatbench.test}
SMTPS=${CHATBENCH_REF_SMTPS:-10465}
IMAPS=${CHATBENCH_REF_IMAPS:-10993}
IMAP=${CHATBENCH_REF_IMAP:-10143}
MX=${CHATBENCH_REF_MX:-}
MXDNS=${CHATBENCH_REF_DNS:-127.0.0.1:15353}
P=$R/postfix

[ "$(id -u)" = 0 ] || { echo "start.sh: must run as root" >&2; exit 1; }
case $variant in stock|patched) ;; *) echo "usage: start.sh [stock|patched]" >&2; exit 2;; esac
bash "$here/setup.sh"
bash "$here/stop.sh" >/dev/null 2>&1 || true

mkdir -p "$R" "$R/run" "$R/state" "$R/mail" "$P/etc" "$P/spool" "$P/data"
chown vmail:vmail "$R/mail"
chown postfix "$P/data"
VUID=$(id -u vmail)

# test CA and a certificate for the domain and the address
if [ ! -f "$R/ca/server.key" ]; then
    mkdir -p "$R/ca"
    (cd "$R/ca"
     openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout ca.key -out ca.crt -days 3650 -subj "/CN=chatbench test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
     openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout server.key -out server.csr -subj "/CN=$DOMAIN" 2>/dev/null
     printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s,IP:%s\n' \
        "$DOMAIN" "$IP" > server.ext
     openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out server.crt -days 825 -sha256 -extfile server.ext 2>/dev/null
     cat server.crt ca.crt > server.fullchain.pem
     rm -f server.csr server.ext; chmod 600 server.key)
fi

# chatmail raises these for Dovecot's IDLE (spec §6); only ever raised here
for k in max_user_instances max_user_watches; do
    f=/proc/sys/fs/inotify/$k
    if [ -w "$f" ] && [ "$(cat "$f")" -lt 65535 ]; then echo 65535 > "$f" || true; fi
done

# create-on-login (doveauth stand-in): Dovecot checkpassword protocol
cat > "$R/create-account.sh" <<EOF
#!/bin/bash
# Dovecot checkpassword script: the first login of a valid address creates
# the account (mail/<addr>/password with a SHA512-CRYPT hash), as doveauth.
IFS= read -r -d '' user <&3 || exit 111
IFS= read -r -d '' pass <&3 || exit 111
[[ \$user =~ ^[a-z0-9]{9}@${DOMAIN//./\\.}\$ ]] || exit 1
[ \${#pass} -ge 9 ] || exit 1
d="$R/mail/\$user"
exec 9>"$R/mail/.create.lock"
flock 9
if [ -e "\$d/password" ]; then  # created meanwhile (IMAP and SMTP at once): verify, as doveauth does
    h=\$(cut -d: -f2- "\$d/password"); h=\${h#"{SHA512-CRYPT}"}
    salt=\$(cut -d'\$' -f3 <<< "\$h")
    [ "\$(openssl passwd -6 -salt "\$salt" -stdin <<< "\$pass")" = "\$h" ] || exit 1
    flock -u 9
    exec "\$1"
fi
mkdir -p "\$d" && chmod 700 "\$d"
printf '%s:{SHA512-CRYPT}%s\n' "\$user" "\$(openssl passwd -6 -stdin <<< "\$pass")" > "\$d/password"
: > "\$d/enforceE2EEincoming"
chown -R vmail:vmail "\$d"
flock -u 9
exec "\$1"
EOF
chmod 755 "$R/create-account.sh"

cat > "$R/dovecot.conf" <<EOF
# chatbench reference: Dovecot configured like chatmail (spec §6)
base_dir = $R/run
state_dir = $R/state
log_path = $R/dovecot.log
info_log_path = $R/dovecot.log
protocols = imap lmtp
listen = $IP
import_environment = TZ LD_LIBRARY_PATH
ssl = required
ssl_cert = <$R/ca/server.fullchain.pem
ssl_key = <$R/ca/server.key
ssl_min_protocol = TLSv1.3
ssl_prefer_server_ciphers = yes
disable_plaintext_auth = yes
auth_mechanisms = plain
mail_location = maildir:~
mail_uid = vmail
mail_gid = vmail
first_valid_uid = $VUID
last_valid_uid = $VUID
mail_cache_max_size = 500K
default_client_limit = 20000
mail_plugins = \$mail_plugins zlib quota
imap_capability = +XDELTAPUSH XCHATMAIL
imap_hibernate_timeout = 30s
imap_metadata = yes
mail_attribute_dict = file:%h/dovecot-attributes
namespace inbox {
  inbox = yes
  separator = .
  mailbox Drafts {
    special_use = \\Drafts
  }
  mailbox Junk {
    special_use = \\Junk
  }
  mailbox Trash {
    special_use = \\Trash
  }
  mailbox Sent {
    special_use = \\Sent
  }
}
protocol imap {
  mail_plugins = \$mail_plugins imap_quota imap_zlib
}
protocol lmtp {
  mail_fsync = never
  lmtp_add_received_header = no
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=500M
  zlib_save = gz
}
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u $R/mail/%u/password
}
passdb {
  driver = checkpassword
  args = $R/create-account.sh
}
userdb {
  driver = static
  args = uid=vmail gid=vmail home=$R/mail/%u
}
service imap-login {
  inet_listener imap {
    port = $IMAP
  }
  inet_listener imaps {
    port = $IMAPS
    ssl = yes
  }
  service_count = 0
  process_min_avail = 10
  vsz_limit = 1G
}
service imap {
  process_limit = 12000
  unix_listener imap-master {
    user = \$default_internal_user
  }
}
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0660
    group = vmail
  }
}
service lmtp {
  user = vmail
  unix_listener $P/spool/private/dovecot-lmtp {
    user = postfix
    group = postfix
    mode = 0600
  }
}
service auth {
  user = vmail
  unix_listener $P/spool/private/auth {
    user = postfix
    group = postfix
    mode = 0660
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF

cat > "$P/etc/main.cf" <<EOF
# chatbench reference: Postfix configured like chatmail (spec §7), minus
# filtermail and OpenDKIM
compatibility_level = 3.6
queue_directory = $P/spool
data_directory = $P/data
maillog_file_prefixes = $P
maillog_file = $P/maillog
mail_owner = postfix
setgid_group = postdrop
myhostname = $DOMAIN
mydomain = $DOMAIN
myorigin = $DOMAIN
mydestination = $DOMAIN
local_recipient_maps =
local_transport = lmtp:unix:private/dovecot-lmtp
default_transport = error:the benchmark reference sends nothing out
mynetworks = 127.0.0.0/8
inet_interfaces = loopback-only
inet_protocols = ipv4
alias_maps =
alias_database =
recipient_delimiter = +
biff = no
append_dot_mydomain = no
smtpd_peername_lookup = no
message_size_limit = 31457280
mailbox_size_limit = 0
maximal_queue_lifetime = 2d
disable_mime_input_processing = yes
smtpd_tls_chain_files = $R/ca/server.key, $R/ca/server.fullchain.pem
smtpd_tls_security_level = may
tls_preempt_cipherlist = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sender_login_maps = regexp:$P/etc/login_map
smtpd_relay_restrictions = reject
lmtp_header_checks = regexp:$P/etc/lmtp_header_cleanup
EOF
echo '/^(.*)$/ ${1}' > "$P/etc/login_map"
echo '/^(DKIM-Signature|Authentication-Results|Received):/ IGNORE' > "$P/etc/lmtp_header_cleanup"

mxservice=
if [ -n "$MX" ]; then
    # OpenDKIM as the verifying milter; its libunbound forwards to the bench's
    # DNS server (Nameservers ip@port). No ResolverConfiguration file: with
    # one, concurrent queries crashed it ("fatal flex scanner internal
    # error"); so the sender domain is not under .test, which libunbound
    # would answer from its built-in RFC 6761 zone (lab doc §8).
    K=$R/opendkim
    mkdir -p "$K"
    cat > "$K/opendkim.conf" <<EOF
Syslog              no
Mode                v
Socket              local:$K/opendkim.sock
UMask               000
PidFile             $K/opendkim.pid
UserID              opendkim
InternalHosts       csl:192.0.2.254
Nameservers         ${MXDNS%:*}@${MXDNS##*:}
RequireSafeKeys     false
AlwaysAddARHeader   yes
AuthservID          $DOMAIN
On-NoSignature      reject
On-BadSignature     reject
On-KeyNotFound      reject
On-SignatureError   reject
On-DNSError         tempfail
EOF
    chown -R opendkim "$K"
    rm -f "$K/opendkim.pid"
    # in the foreground (-f), detached: daemonized, this OpenDKIM crashed in
    # libc on its first message here (general protection fault); -f did not
    # a unix socket as chatmail's (unix:opendkim/opendkim.sock)
    rm -f "$K/opendkim.sock"
    setsid opendkim -f -x "$K/opendkim.conf" < /dev/null > "$K/opendkim.log" 2>&1 &
    for _ in $(seq 50); do [ -S "$K/opendkim.sock" ] && break; sleep 0.1; done
    [ -S "$K/opendkim.sock" ] ||
        { echo "start.sh: opendkim did not start: $(tail -2 "$K/opendkim.log")" >&2; exit 1; }
    mxservice="$IP:$MX inet n       -       n       -       1000    smtpd
  -o syslog_name=postfix/mx
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=no
  -o smtpd_client_restrictions=
  -o smtpd_helo_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=reject_unauth_destination
  -o smtpd_recipient_restrictions=
  -o smtpd_milters=unix:$K/opendkim.sock
  -o milter_default_action=tempfail"
fi

cat > "$P/etc/master.cf" <<EOF
$mxservice
$IP:$SMTPS inet n       -       n       -       1000    smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_protocols=>=TLSv1.3
  -o smtpd_tls_mandatory_protocols=>=TLSv1.3
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sender_restrictions=reject_sender_login_mismatch,permit_sasl_authenticated,reject
  -o smtpd_helo_restrictions=permit
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=
  -o smtpd_client_connection_count_limit=200
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if ! out=$(postfix -c "$P/etc" check 2>&1 && postfix -c "$P/etc" start 2>&1); then
    echo "start.sh: postfix failed: $out" >&2; exit 1
fi
libdir=
if [ "$variant" = patched ]; then
    libdir=$R/lib-patched
    [ -f "$libdir/.patched" ] || { rm -rf "$libdir"; bash "$here/patch-dovecot.sh" "$libdir" >&2; touch "$libdir/.patched"; }
fi
LD_LIBRARY_PATH=$libdir dovecot -c "$R/dovecot.conf"

for _ in $(seq 100); do
    if [ -s "$R/run/master.pid" ] && [ -s "$P/spool/pid/master.pid" ] &&
       (exec 3<>"/dev/tcp/$IP/$IMAPS") 2>/dev/null && (exec 3<>"/dev/tcp/$IP/$SMTPS") 2>/dev/null &&
       { [ -z "$MX" ] || (exec 3<>"/dev/tcp/$IP/$MX") 2>/dev/null; }; then
        break
    fi
    sleep 0.1
done
dpid=$(cat "$R/run/master.pid")
ppid=$(tr -d ' ' < "$P/spool/pid/master.pid")
if [ "$variant" = patched ] && ! grep -q "$R/lib-patched/libdovecot-storage" /proc/"$dpid"/maps 2>/dev/null; then
    # the master itself may not map it; check that the patched copy is what imap would load
    LD_LIBRARY_PATH=$libdir ldd /usr/lib/dovecot/imap | grep "$libdir/libdovecot-storage" >/dev/null ||
        { echo "start.sh: patched library not picked up" >&2; exit 1; }
fi
echo "$variant" > "$R/variant"
cat <<EOF
REF_VARIANT=$variant
REF_HOST=$IP
REF_SMTPS=$SMTPS
REF_IMAPS=$IMAPS
REF_DOMAIN=$DOMAIN
REF_MAILDIR=$R/mail/%a
REF_PIDS="$dpid $ppid${MX:+ $(cat "$R/opendkim/opendkim.pid" 2>/dev/null)}"
${MX:+REF_MX=$MX}
EOF
