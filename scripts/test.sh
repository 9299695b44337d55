#!/usr/bin/env bash
# README command 2 (and .ci/run): install dependencies, build, and run every
# test: unit tests (ctest), integration tests and interop tests with real
# clients (pytest: Delta Chat, mbsync, offlineimap, swaks, Chromium) and the
# hostile-client tests and the federation matrix (tests/federation: two
# relays, Postfix and Exim peers, Delta Chat across relays, network faults,
# a mixed load) on a normal build, the unit, integration and interop tests
# and the federation scenarios 1 and 4 again on an ASan+UBSan build, the
# worker-path tests on a
# ThreadSanitizer build, then a short run of every fuzz harness.
#   CM_FUZZ_SECONDS   seconds per fuzz harness (default 10)
#   CM_SKIP_ASAN=1    skip the sanitizer pass (local iteration only)
#   CM_SKIP_FUZZ=1    skip the fuzz pass (local iteration only)
#   CM_SKIP_TSAN=1    skip the ThreadSanitizer pass (local iteration only)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
fail=0
step() { echo; echo "=== $* === ($(date +%T))"; }

run_suite() {   # $1 = build dir, $2... = federation matrix tests to run with it
  local dir=$1
  shift
  step "unit tests ($dir)"
  (cd "$dir" && ctest --output-on-failure -j "$(nproc)") || fail=1
  step "integration tests ($dir)"
  # one pytest worker per core (python3-pytest-xdist): most of a test's
  # time is waiting on a server, a peer or a deadline, so two run side by
  # side in about half the wall time. Every test has its own server, ports
  # and directory. --basetemp keeps paths short: libinih cuts config lines
  # at 200 characters, and xdist puts the worker's name into every path.
  CM_SERVER_BIN="$PWD/$dir/chatmaild-server" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    -n "$(nproc)" --basetemp="$(mktemp -d)" tests/integration || fail=1
  step "interop tests: Delta Chat, mbsync, offlineimap ($dir)"
  CM_SERVER_BIN="$PWD/$dir/chatmaild-server" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/interop || fail=1
  # a small internet on this machine (issue 14): relays, Postfix, Exim, a
  # DNS server and Delta Chat clients; each xdist worker has its own
  # addresses (tests/federation/fedlab.py), and a table of scenario times
  # closes the output
  step "federation matrix ($dir)"
  CM_SERVER_BIN="$PWD/$dir/chatmaild-server" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    -n "$(nproc)" --basetemp="$(mktemp -d)" "$@" || fail=1
}

step "build (release)"
bash scripts/build.sh release
step "install into a staging prefix; systemd-analyze verify the unit"
stage=$(mktemp -d)
if cmake --install build --prefix "$stage" >/dev/null &&
   systemd-analyze verify "$stage/lib/systemd/system/chatmaild-server.service"; then
  echo "installed unit verified"
else
  fail=1
fi
rm -rf "$stage"
run_suite build tests/federation
# hostile clients (connection floods, slow and stalled clients, password
# guessing, memory per connection, IMAP resource attacks): release build
# only, as their memory and timing figures are about the real binary
step "hostile-client tests (build)"
CM_SERVER_BIN="$PWD/build/chatmaild-server" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/hostile || fail=1

if [ -z "${CM_SKIP_ASAN:-}" ]; then
  step "build (asan+ubsan)"
  bash scripts/build.sh asan
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # the push scale test's figures are about the release build; here it
  # checks the same paths for memory errors with 2,000 accounts (CI time)
  export CM_PUSH_SCALE_N=${CM_PUSH_SCALE_N:-2000}
  # the federation matrix under ASan: Delta Chat across relays and the
  # network faults (issue 14), the paths most likely to hide memory errors
  run_suite build-asan tests/federation/test_smoke.py tests/federation/test_deltachat_fed.py \
    tests/federation/test_faults.py
  unset ASAN_OPTIONS UBSAN_OPTIONS CM_PUSH_SCALE_N
fi

# ThreadSanitizer: the unit tests and the integration tests that drive the
# worker paths (IMAP commands on libuv's pool, logins, submission filter and
# delivery, IDLE notifications racing deliveries), plus a short pipelining
# stress run. Any report ends the server with 66 (halt_on_error), which the
# fixtures' "exit 0 at SIGTERM" check and the stress run's own check turn
# into a failure. tests/tsan.supp: reports judged benign, each with its why.
TSAN_TESTS=(test_pipelining.py test_imap_commands.py test_imap_dc.py test_imap_rfc.py
  test_imap_compress_idle.py test_imap_idle_race.py test_submission.py test_http_deltachat.py
  test_quota_drift.py test_shutdown.py test_push.py)
if [ -z "${CM_SKIP_TSAN:-}" ]; then
  step "build (tsan)"
  bash scripts/build.sh tsan
  export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
  step "unit tests (build-tsan)"
  (cd build-tsan && ctest --output-on-failure -j "$(nproc)") || fail=1
  step "integration tests on worker paths (build-tsan)"
  (cd tests/integration && CM_PIPELINE_SESSIONS=20 CM_SERVER_BIN="$PWD/../../build-tsan/chatmaild-server" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider -n "$(nproc)" --basetemp="$(mktemp -d)" \
    "${TSAN_TESTS[@]}") || fail=1
  step "imap stress, 10 clients x 15 s (build-tsan)"
  /usr/bin/python3 tests/stress/imap_stress.py --seconds 15 --bin build-tsan/chatmaild-server \
    || fail=1
  unset TSAN_OPTIONS
fi

if [ -z "${CM_SKIP_FUZZ:-}" ]; then
  step "build (fuzz)"
  bash scripts/build.sh fuzz
  secs=${CM_FUZZ_SECONDS:-10}
  min_rate=5000   # executions per second every harness should reach (issue 10)
  # one harness per core at a time: each is single-threaded, so running
  # nproc of them side by side keeps every harness's own rate and divides
  # the pass's wall time
  jobs=$(nproc)
  fuzzdir=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
  fuzz_one() {   # $1 = harness; writes $fuzzdir/<name>.{log,rc}
    local f=$1 name work corpus
    name=$(basename "$f")
    corpus=fuzz/corpus/${name#fuzz_}
    # the corpus libFuzzer grows lives in memory (tmpfs) when it can: each
    # new input is a file, and creating ~1,000 of them on a disk was a tenth
    # of a short run's time
    work=$fuzzdir/$name.corpus
    mkdir -p "$work"
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    local rc=0
    "$f" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$work" \
         > "$fuzzdir/$name.log" 2>&1 || rc=$?
    echo "$rc" > "$fuzzdir/$name.rc"
    rm -rf "$work"
  }
  harnesses=()
  for f in build-fuzz/fuzz_*; do [ -x "$f" ] && harnesses+=("$f"); done
  step "fuzz ${#harnesses[@]} harnesses, ${secs}s each, $jobs at a time"
  running=0
  for f in "${harnesses[@]}"; do
    if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
    fuzz_one "$f" &
    running=$((running + 1))
  done
  wait || true
  rates=""
  for f in "${harnesses[@]}"; do
    name=$(basename "$f")
    log=$fuzzdir/$name.log
    if [ "$(cat "$fuzzdir/$name.rc" 2>/dev/null)" != 0 ]; then
      echo "--- $name failed:"; tail -50 "$log"; fail=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    note=""
    [ -n "$rate" ] && [ "$rate" -lt "$min_rate" ] && note="  (below $min_rate exec/s)"
    rates+=$(printf '%-22s %10s executions %8s exec/s%s' "$name" "${execs:-?}" "${rate:-?}" "$note")$'\n'
  done
  rm -rf "$fuzzdir"
  step "fuzz executions per harness (${secs}s each)"
  printf '%s' "$rates"
fi

step "result"
if [ $fail -ne 0 ]; then echo "FAILED"; exit 1; fi
echo "all test passes succeeded"
