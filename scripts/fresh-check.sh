#!/usr/bin/env bash
# The fresh-machine check: does a new contributor's first run of the README's
# two commands work on a new Debian 12 machine?
#
# Builds a minimal Debian 12 root (mmdebstrap --variant=minbase: only the
# "required" packages and apt, so every other package must come from
# scripts/deps.sh), puts a clean clone of this repository's HEAD into it, and
# runs inside it, as root:
#   1. scripts/run-dev.sh  - started in the background; must log "ready", answer
#                            GET / on its HTTP port 8080 (200, or the redirect
#                            to https), accept on IMAPS 2993, and exit 0 on
#                            SIGTERM;
#   2. scripts/test.sh     - must exit 0.
# The root gets its own mount namespace with /proc, /sys, /dev, /dev/pts,
# /dev/shm and a tmpfs /tmp; the network is the host's (deps.sh reaches the
# Debian mirror, the tests reach npm). Mirrors are taken from this machine's
# apt sources. pytest lists every skipped test with its reason (-rs), and
# the skips are summed up at the end: nothing is left out silently.
#
#   CM_FRESH_ROOT     where the root is built (default /var/tmp/chatmaild-fresh;
#                     removed and rebuilt on every run)
#   CM_FRESH_STAGE    "run" stops after command 1 (default: both)
#   Other CM_* variables (CM_SKIP_ASAN, CM_SKIP_FUZZ, CM_FUZZ_SECONDS) are
#   passed on to test.sh.
# Needs root. Run it whenever a change adds a package or a tool.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[ "$(id -u)" -eq 0 ] || { echo "fresh-check: needs root" >&2; exit 1; }
bash scripts/deps.sh --fresh-check

root=${CM_FRESH_ROOT:-/var/tmp/chatmaild-fresh}
stage=${CM_FRESH_STAGE:-all}
say() { echo; echo "=== fresh-check: $* ($(date -u +%H:%M:%S)) ==="; }

# --- mirrors of this machine (deb822 .sources or one-line .list files)
mirror="" security=""
for uri in $( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true) |
              sed -n 's/^URIs:[[:space:]]*//p';
              (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true) |
              awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }'); do
  case "$uri" in
    */debian-security|*/debian-security/) [ -n "$security" ] || security=${uri%/} ;;
    */debian|*/debian/) [ -n "$mirror" ] || mirror=${uri%/} ;;
  esac
done
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}

# --- the root
say "building a minimal Debian 12 root in $root from $mirror"
if [ -e "$root" ]; then
  if findmnt -rn -o TARGET | grep -q "^$root/"; then
    echo "fresh-check: something is still mounted under $root" >&2; exit 1
  fi
  rm -rf --one-file-system "$root"
fi
mmdebstrap --variant=minbase --quiet bookworm "$root" \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Local trust anchors of this machine (e.g. the CA of an HTTPS proxy in front
# of the npm registry): a new machine behind the same proxy would have them
# too. ca-certificates (installed by deps.sh) adds them to the system store;
# node is pointed at that store.
extra_ca=""
if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  extra_ca=NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"

# --- a clean clone of HEAD (committed state only: no local changes, no build dirs)
say "cloning HEAD $(git -C "$repo" rev-parse --short HEAD)"
src=/root/chatmaild-server
git clone --quiet --no-hardlinks "$repo" "$root$src"
git -C "$root$src" checkout --quiet --detach "$(git -C "$repo" rev-parse HEAD)"

# --- inside: a private mount namespace, so every mount goes away with it
inner=$(cat <<'INNER'
set -euo pipefail
cd /root/chatmaild-server
say() { echo; echo "=== fresh-check: $* ($(date -u +%H:%M:%S)) ==="; }
say "README command 1: scripts/run-dev.sh"
scripts/run-dev.sh > /tmp/run-dev.log 2>&1 &
pid=$!
ok=""
for _ in $(seq 1200); do   # 20 min: deps + build on a busy machine
  if ! kill -0 $pid 2>/dev/null; then break; fi
  if grep -q 'ready$' /tmp/run-dev.log; then ok=1; break; fi
  sleep 1
done
grep -m1 '^deps.sh' /tmp/run-dev.log || true
echo "... $(grep -c 'Building C object' /tmp/run-dev.log || true) C files compiled ..."
tail -3 /tmp/run-dev.log
if [ -z "$ok" ]; then
  echo "fresh-check: run-dev.sh never logged ready"; tail -50 /tmp/run-dev.log; kill $pid 2>/dev/null; exit 1
fi
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET / HTTP/1.1\r\nHost: _chatmail.localhost\r\nConnection: close\r\n\r\n' >&3
reply=$(timeout 10 cat <&3 || true); exec 3<&-
echo "GET / -> $(printf '%s' "$reply" | head -1)"
printf '%s' "$reply" | grep -i '^location:' || true
printf '%s' "$reply" | head -1 | grep -Eq '^HTTP/1.1 (200|301)' || { echo "fresh-check: no web page on 8080"; kill $pid; exit 1; }
exec 3<>/dev/tcp/127.0.0.1/2993 || { echo "fresh-check: IMAPS 2993 refused"; kill $pid; exit 1; }
exec 3<&-
echo "IMAPS 2993 accepts connections"
kill -TERM $pid
rc=0; wait $pid || rc=$?
echo "run-dev.sh server exited with $rc after SIGTERM"
[ $rc -eq 0 ] || { tail -20 /tmp/run-dev.log; exit 1; }
[ "$CM_FRESH_STAGE" = run ] && { say "stopping after command 1 (CM_FRESH_STAGE=run)"; exit 0; }
rm -rf var
say "README command 2: scripts/test.sh"
rc=0; PYTEST_ADDOPTS="-rs" scripts/test.sh 2>&1 | tee /tmp/test.log || rc=$?
say "tests skipped inside the fresh root (each with its reason)"
grep -E '^SKIPPED' /tmp/test.log || echo "(none)"
say "scripts/test.sh exit status $rc"
exit $rc
INNER
)
say "entering the root"
env_pass=(CM_FRESH_STAGE="$stage" $extra_ca)
while IFS='=' read -r k v; do
  case "$k" in CM_SKIP_*|CM_FUZZ_SECONDS|CM_DC_CACHE) env_pass+=("$k=$v") ;; esac
done < <(env)
rc=0
unshare --mount --propagation private -- bash -c '
  set -e
  r=$1; shift
  # the root must be a mount point itself: the tests run `unshare -m`
  # inside, which makes "/" private and fails (EINVAL) on a plain directory
  mount --bind "$r" "$r"
  mount -t proc proc "$r/proc"
  mount --rbind /sys "$r/sys"
  mount --rbind /dev "$r/dev"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts" 2>/dev/null || true
  mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
  mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
  exec chroot "$r" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
' fresh "$root" "${env_pass[@]}" bash -c "$inner" || rc=$?
say "result: $([ $rc -eq 0 ] && echo PASSED || echo "FAILED (exit $rc)")"
exit $rc
