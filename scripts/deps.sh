#!/usr/bin/env bash
# Installs every Debian package the project needs to build, run and test.
# Idempotent: when everything is present it changes nothing and asks no mirror.
# Every other script calls this one first.
#   scripts/deps.sh                 build + test packages
#   scripts/deps.sh --build-only    build packages only (scripts/run-dev.sh, scripts/build.sh)
#   scripts/deps.sh --fresh-check   what scripts/fresh-check.sh needs on the host
# Packages go in with --no-install-recommends, so what a tool needs at run
# time but only "recommends" is listed here by name, next to the tool.
set -euo pipefail

# llvm: llvm-symbolizer, so that sanitizer reports have function names
# (tests/tsan.supp matches by name; clang does not pull it in)
BUILD_PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev llvm
  libssl-dev libuv1-dev libinih-dev node-llhttp libsodium-dev libsqlite3-dev
  libc-ares-dev libcurl4-openssl-dev zlib1g-dev libqrencode-dev libcrypt-dev)
TEST_PKGS=(
  python3 python3-pytest python3-pytest-timeout   # pytest + per-test deadlines
  python3-pytest-xdist                            # integration tests on every core (scripts/test.sh -n)
  openssl curl procps iproute2 util-linux mount ca-certificates
  swaks libnet-ssleay-perl libio-socket-ssl-perl  # swaks: STARTTLS/TLS need Net::SSLeay
  chromium fonts-liberation libnss3-tools zbar-tools  # headless browser test (certutil, zbarimg)
  isync                                           # mbsync
  offlineimap3                                    # python3-imaplib2/-distro are hard deps
  systemd                                         # systemd-analyze verify of the unit
  python3-dkim python3-dnslib                     # DKIM reference signer, test DNS server
  python3-cryptography python3-nacl               # DKIM test keys (RSA, Ed25519) made by the tests
  python3-h2                                      # HTTP/2 notification server (test_push.py)
  postfix                                         # MX interop peer + bench reference (debconf: "No configuration")
  opendkim opendkim-tools                         # DKIM milter (signing and verifying) for the Postfix peers, opendkim-genkey/-testkey
  pebble                                          # ACME test CA for test_acme.py (http-01, tls-alpn-01, renewal)
  knot                                            # authoritative DNS for tests/interop/test_dns_knot.py (`dns --check`)
  gpg gpgconf gpg-agent                           # an OpenPGP key for an outside contact (test_deltachat_dsn.py); key generation needs the agent (a Recommends of gpg)
  # the shared libraries of the unpacked Exim (below): the Depends of
  # exim4-daemon-light 4.96 that are libraries (a new machine lacked
  # libgnutls-dane0 and libidn12)
  libc6 libcrypt1 libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2 libpcre2-8-0
)
# Exim peer of the federation matrix (tests/federation/mtapeers.py): Debian's
# exim4-daemon-light conflicts with postfix (both are mail-transport-agent),
# so its packages are unpacked with dpkg-deb -x into EXIM_DIR, never
# installed (interop lab doc section 7). Exim runs as Debian-exim and, with
# -C, reads the config only when /etc/exim4/trusted_configs lists it: the
# tests bind-mount their own list over that (empty) file in a private mount
# namespace.
EXIM_DIR=/var/cache/chatmaild-tests/exim
EXIM_DEBS=(exim4-daemon-light exim4-base exim4-config)
exim_missing() {
  [ -x "$EXIM_DIR/root/usr/sbin/exim4" ] && getent passwd Debian-exim >/dev/null &&
    [ -f /etc/exim4/trusted_configs ] && return 1
  return 0
}
exim_libs_missing() {   # prints the shared libraries the unpacked Exim cannot find
  ldd "$EXIM_DIR/root/usr/sbin/exim4" 2>/dev/null | awk '/not found/ {print $1}'
}
install_exim() {
  local tmp
  tmp=$(mktemp -d)
  chown _apt "$tmp" 2>/dev/null || true  # apt-get download fetches as _apt
  (cd "$tmp" && apt-get download -qq "${EXIM_DEBS[@]}" >/dev/null)
  rm -rf "$EXIM_DIR/root.new"
  mkdir -p "$EXIM_DIR/root.new"
  for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$EXIM_DIR/root.new"; done
  rm -rf "$tmp" "$EXIM_DIR/root"
  mv "$EXIM_DIR/root.new" "$EXIM_DIR/root"
  getent passwd Debian-exim >/dev/null ||
    adduser --quiet --system --group --home /var/spool/exim4 --no-create-home \
      --allow-bad-names Debian-exim
  mkdir -p /etc/exim4
  [ -f /etc/exim4/trusted_configs ] || install -m 644 /dev/null /etc/exim4/trusted_configs
}
FRESH_PKGS=(mmdebstrap git)

want=()
case "${1:-}" in
  --build-only) want=("${BUILD_PKGS[@]}") ;;
  --fresh-check) want=("${FRESH_PKGS[@]}") ;;
  "") want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  *) echo "usage: $0 [--build-only|--fresh-check]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# node + npm (the Delta Chat client is installed with npm by the tests): any
# node on PATH will do (e.g. a newer one from elsewhere); otherwise Debian's.
if [ -z "${1:-}" ] && ! { command -v node && command -v npm; } >/dev/null; then
  missing+=(nodejs npm)
fi
exim=0
[ -z "${1:-}" ] && exim_missing && exim=1
[ ${#missing[@]} -eq 0 ] && [ $exim -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  [ ${#missing[@]} -eq 0 ] || echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
  [ $exim -eq 0 ] || echo "deps.sh: Exim not unpacked in $EXIM_DIR (run as root)" >&2
  exit 1
fi
[ ${#missing[@]} -eq 0 ] || echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# postfix asks which system instance to configure: none (the tests and the
# bench start their own instances with `postfix -c DIR`, lab doc §2/§6)
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
[ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ $exim -eq 1 ]; then
  echo "deps.sh: unpacking ${EXIM_DEBS[*]} into $EXIM_DIR" >&2
  install_exim
fi
if [ -z "${1:-}" ] && [ -n "$(exim_libs_missing)" ]; then
  echo "deps.sh: the unpacked Exim lacks $(exim_libs_missing | tr '\n' ' ')(add their packages to TEST_PKGS)" >&2
  exit 1
fi
