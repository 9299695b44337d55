#!/usr/bin/env bash
# Installs every Debian package the project needs to build, run and test.
# Idempotent: when everything is present it changes nothing and asks no mirror.
# Every other script calls this one first.
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
  libssl-dev libuv1-dev libinih-dev node-llhttp libsodium-dev libsqlite3-dev
  libc-ares-dev libcurl4-openssl-dev zlib1g-dev libqrencode-dev libcrypt-dev)
TEST_PKGS=(python3 python3-pytest openssl curl swaks procps iproute2
  chromium libnss3-tools zbar-tools isync offlineimap3 python3-dkim python3-dnslib)

want=("${BUILD_PKGS[@]}")
if [ "${1:-}" != "--build-only" ]; then
  want+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
