#!/usr/bin/env bash
# bench/run.sh: the one benchmark command (issue 7). Builds chatbench and
# chatmaild-server, runs the scenarios against chatmaild-server (temporary
# config on 127.0.0.1), then against the Postfix+Dovecot reference relay
# with chatmail's patched Dovecot (no 500 ms IDLE delay) and with Debian's
# stock Dovecot, one after the other, and prints a side-by-side table with
# ratios. Run as root on Debian 12 (the reference is installed with apt and
# started by hand, bench/reference/). Scenario "mx" (part of "all") is
# bench/mxbench.py: port-25 intake with DKIM verification (STARTTLS, signed
# encrypted mail, keys from a test DNS server on 127.0.0.1:15353) against our
# smtp port and the reference's Postfix MX listener with OpenDKIM. Scenario
# "relay" (not part of "all") is bench/relaybench.py alone: two
# chatmaild-servers A -> B over /mxdeliv and over SMTP, and two
# Postfix+Dovecot reference relays, submit on A -> EXISTS on B; it starts
# every relay itself and prints its own table (--quick: 20 + 200 messages).
#
#   bench/run.sh [--quick] [--scenario S|mx|relay] [--messages M] [--connections C]
#                [--seconds T] [--idle K] [--idle-hold S] [--logins N]
#                [--sources N] [--only ours|ref] [--variants "patched stock"]
#
# Raw results (one JSON object per target) and logs go to $CHATBENCH_OUT
# (default /var/tmp/chatbench-run).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
OUT=${CHATBENCH_OUT:-/var/tmp/chatbench-run}
scenario=all messages=100 conns=8 seconds=10 idle=1000 hold=40 logins=500 sources=20
only= variants="patched stock"
mxport=14025 ref_mx=10025 mxdns=15353
while [ $# -gt 0 ]; do
    case $1 in
    --quick) messages=20 seconds=3 idle=100 hold=0 logins=100 ;;
    --scenario) scenario=$2; shift ;;
    --messages) messages=$2; shift ;;
    --connections) conns=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --idle) idle=$2; shift ;;
    --idle-hold) hold=$2; shift ;;
    --logins) logins=$2; shift ;;
    --sources) sources=$2; shift ;;
    --only) only=$2; shift ;;
    --variants) variants=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (the reference stack needs it)" >&2; exit 1; }
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log() { echo "run.sh: $*" >&2; }

# ---- relay-to-relay: its own script starts both pairs
if [ "$scenario" = relay ]; then
    bash "$root/bench/reference/setup.sh"
    log "building chatmaild-server (scripts/build.sh release)"
    bash scripts/build.sh release > "$OUT/build.log" 2>&1 || { log "chatmaild-server does not build, see $OUT/build.log"; exit 1; }
    targets="mxdeliv smtp ref"
    [ "$only" = ours ] && targets="mxdeliv smtp"
    [ "$only" = ref ] && targets=ref
    rargs=(--targets "$targets" --connections "$conns" --json --workdir "$OUT/relay")
    [ "$messages" = 20 ] && rargs+=(--quick) || rargs+=(--messages "$messages")
    /usr/bin/python3 "$root/bench/relaybench.py" "${rargs[@]}" | tee "$OUT/relay.txt"
    exit "${PIPESTATUS[0]}"
fi

# ---- build
bash "$root/bench/reference/setup.sh"
cc -std=c17 -O2 -Wall -Wextra -o "$OUT/chatbench" "$root/bench/chatbench.c" \
    $(pkg-config --cflags --libs openssl) -lz -lm || { log "chatbench does not build"; exit 1; }
ours_built=1
if [ "$only" != ref ]; then
    log "building chatmaild-server (scripts/build.sh release)"
    bash scripts/build.sh release > "$OUT/build.log" 2>&1 || { ours_built=0; log "chatmaild-server does not build, see $OUT/build.log"; }
fi

chatbench_wanted() { [ "$scenario" != mx ]; }
mx_wanted() { [ "$scenario" = all ] || [ "$scenario" = mx ]; }

mxbench() { # label host mxport imaps domain maildir
    /usr/bin/python3 "$root/bench/mxbench.py" --label "$1" --host "$2" --smtp-port "$3" \
        --imaps-port "$4" --domain "$5" --maildir-root "$6" --dns-port "$mxdns" \
        --connections "$conns" --seconds "$seconds" --messages "$messages" --json
}

bench() { # label host smtps imaps domain maildir pids
    "$OUT/chatbench" --label "$1" --host "$2" --smtps-port "$3" --imaps-port "$4" \
        --domain "$5" --maildir-root "$6" --server-pids "$7" --create \
        --scenario "$scenario" --messages "$messages" --connections "$conns" \
        --seconds "$seconds" --idle "$idle" --idle-hold "$hold" --logins "$logins" \
        --sources "$sources" --json
}

# ---- chatmaild-server
run_ours() {
    local d=$OUT/ours port_s=14465 port_i=14993
    rm -rf "$d"; mkdir -p "$d/state" "$d/mail"
    cat > "$d/bench.ini" <<EOF
[params]
mail_domain = _chatbench.localhost
listen = 127.0.0.1
smtp_port = $mxport
dns_servers = 127.0.0.1:$mxdns
submission_port = 0
submissions_port = $port_s
imap_port = 0
imaps_port = $port_i
https_port = 0
http_port = 0
state_dir = $d/state
mailboxes_dir = $d/mail
nocreate_file = $d/nocreate
run_as_user =
log_level = warn
max_load_1m = 1000
min_available_memory = 0
min_free_disk_space = 0
max_user_send_per_minute = 100000000
max_user_send_burst_size = 100000000
max_imap_connections = 12000
max_smtp_connections = 1000
EOF
    "$root/build/chatmaild-server" -c "$d/bench.ini" > "$d/server.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        (exec 3<>"/dev/tcp/127.0.0.1/$port_i") 2>/dev/null && break
        sleep 0.1
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        log "chatmaild-server did not start: $(tail -3 "$d/server.log" | tr '\n' ' ')"
        echo '{ "label": "ours", "prepare_status": "failed: server did not start" }' > "$OUT/ours.json"
        return
    fi
    log "chatmaild-server pid $pid: running scenarios"
    chatbench_wanted && bench ours 127.0.0.1 "$port_s" "$port_i" _chatbench.localhost "$d/mail/%a" "$pid" > "$OUT/ours.json"
    if mx_wanted; then
        log "chatmaild-server: port-25 intake (mxbench)"
        mxbench ours 127.0.0.1 "$mxport" "$port_i" _chatbench.localhost "$d/mail/%a" > "$OUT/mx-ours.json"
    fi
    kill "$pid"; wait "$pid" 2>/dev/null
}

run_ref() { # variant
    local v=$1 env
    log "reference ($v): starting"
    bash "$root/bench/reference/stop.sh" --clean
    local mxenv=()
    mx_wanted && mxenv=(CHATBENCH_REF_MX=$ref_mx CHATBENCH_REF_DNS=127.0.0.1:$mxdns)
    if ! env=$(env "${mxenv[@]}" bash "$root/bench/reference/start.sh" "$v" 2> "$OUT/ref-$v.start.log"); then
        log "reference ($v) did not start: $(tail -3 "$OUT/ref-$v.start.log" | tr '\n' ' ')"
        echo "{ \"label\": \"ref-$v\", \"prepare_status\": \"failed: reference did not start\" }" > "$OUT/ref-$v.json"
        return
    fi
    eval "$env"
    log "reference ($v): running scenarios"
    chatbench_wanted && bench "ref-$v" "$REF_HOST" "$REF_SMTPS" "$REF_IMAPS" "$REF_DOMAIN" "$REF_MAILDIR" "$REF_PIDS" > "$OUT/ref-$v.json"
    if mx_wanted; then
        log "reference ($v): port-25 intake (mxbench)"
        mxbench "ref-$v" "$REF_HOST" "$REF_MX" "$REF_IMAPS" "$REF_DOMAIN" "$REF_MAILDIR" > "$OUT/mx-ref-$v.json"
    fi
    bash "$root/bench/reference/stop.sh"
}

rm -f "$OUT"/*.json
if [ "$only" != ref ]; then
    if [ $ours_built = 1 ]; then run_ours
    else echo '{ "label": "ours", "prepare_status": "failed: does not build" }' > "$OUT/ours.json"; fi
fi
if [ "$only" != ours ]; then for v in $variants; do run_ref "$v"; done; fi

exec bash "$root/bench/table.sh" "$OUT" $variants
