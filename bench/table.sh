#!/usr/bin/env bash
# bench/table.sh OUTDIR [VARIANT...]: prints the side-by-side table of
# chatbench results (OUTDIR/ours.json, OUTDIR/ref-<variant>.json, as written
# by bench/run.sh) with ratios ours/reference and the issue's targets.
set -uo pipefail
OUT=${1:?usage: table.sh OUTDIR [VARIANT...]}
shift
variants=${*:-patched stock}

get() { # file key -> value ("" if absent)
    [ -f "$1" ] || return 0
    awk -v k="\"$2\"" 'index($0, k ": ") == 1 { v = substr($0, length(k) + 3)
        sub(/,$/, "", v); gsub(/"/, "", v); print v; exit }' "$1"
}

status_of() { # file scenario-status-key -> "" when ok, else the n/a text
    local f=$1 k=$2 s p
    s=$(get "$f" "$k"); p=$(get "$f" prepare_status)
    [ -z "$s" ] && [ -n "$p" ] && s="n/a: $p"
    [ -z "$s" ] && { echo "n/a (not run)"; return; }
    case $s in
    ok|partial*) echo "" ;;
    *LOGIN\ refused*|*AUTH*refused*|*AUTHENTICATIONFAILED*|*"Unknown command"*|*"not implemented"*|*BAD*|*"502"*|*"500 "*)
        echo "n/a (server lacks LOGIN/AUTH)" ;;
    *) echo "n/a (${s#n/a: })" | cut -c1-48 ;;
    esac
}

cell() { # file key status-key
    local st v
    st=$(status_of "$1" "$3")
    if [ -n "$st" ]; then echo "$st"; return; fi
    v=$(get "$1" "$2")
    [ -z "$v" ] && { echo "-"; return; }
    case $v in
    *[!0-9.-]*) echo "$v" | cut -c1-48 ;;
    *) awk -v x="$v" 'BEGIN { if (x == int(x) && x >= 100) printf "%d", x;
                              else if (x >= 100) printf "%.0f", x; else printf "%.2f", x }' ;;
    esac
}

ratio() { # a b -> a/b
    awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^-?[0-9.]+$/ && b ~ /^-?[0-9.]+$/ && b + 0 != 0)
        printf "%.2fx", a / b; else printf "-" }'
}

rows=(
  "latency_exists_p50_ms|latency_status|submit->EXISTS p50 ms|<= 2"
  "latency_exists_p90_ms|latency_status|submit->EXISTS p90 ms|"
  "latency_exists_p99_ms|latency_status|submit->EXISTS p99 ms|<= 10"
  "latency_exists_max_ms|latency_status|submit->EXISTS max ms|"
  "latency_250_p50_ms|latency_status|submit->250 p50 ms|"
  "latency_250_p99_ms|latency_status|submit->250 p99 ms|"
  "latency_250_max_ms|latency_status|submit->250 max ms|"
  "throughput_accepted_per_s|throughput_status|accepted msg/s|"
  "throughput_delivered_per_s|throughput_status|delivered msg/s|>= 10x ref"
  "throughput_lost|throughput_status|lost messages|0"
  "idle_held|idle_status|idle TLS conns held|10000"
  "idle_kib_per_conn|idle_status|KiB per idle conn|<= 16"
  "idle_kib_per_conn_after_hold|idle_status|KiB per idle conn after hold|<= 16"
  "logins_existing_per_s|logins_existing_status|TLS+LOGIN/s existing|>= 10x ref"
  "logins_first_per_s|logins_first_status|TLS+LOGIN/s first (create)|>= 10x ref"
)

ours=$OUT/ours.json
first_ref=
for v in $variants; do [ -z "$first_ref" ] && first_ref=$v; done
fmt="%-30s %-24s"
hdr=("metric" "chatmaild-server")
for v in $variants; do fmt+=" %-24s"; hdr+=("ref $v"); done
fmt+=" %-14s %s\n"
hdr+=("ours/ref-$first_ref" "target")
echo
printf "$fmt" "${hdr[@]}"
printf "$fmt" "------" "----------------" $(for _ in $variants; do echo "---"; done) "---" "------"
for r in "${rows[@]}"; do
    IFS='|' read -r key sk label target <<< "$r"
    line=("$label" "$(cell "$ours" "$key" "$sk")")
    for v in $variants; do line+=("$(cell "$OUT/ref-$v.json" "$key" "$sk")"); done
    line+=("$(ratio "$(get "$ours" "$key")" "$(get "$OUT/ref-$first_ref.json" "$key")")" "$target")
    printf "$fmt" "${line[@]}"
done
echo
echo "Settings per target: $(get "$ours" target) | $(get "$OUT/ref-$first_ref.json" target)"
for f in "$ours" "$OUT"/ref-*.json; do
    [ -f "$f" ] || continue
    printf '  %-12s throughput C=%s for %s s; idle K=%s (accounts %s, open %s s, server procs %s -> %s); logins in flight %s\n' \
        "$(get "$f" label)" "$(get "$f" throughput_connections)" "$(get "$f" throughput_seconds)" \
        "$(get "$f" idle_requested)" "$(get "$f" idle_accounts)" "$(get "$f" idle_open_seconds)" \
        "$(get "$f" idle_server_procs_before)" "$(get "$f" idle_server_procs)" "$(get "$f" logins_concurrency)"
done
cat <<'EOF'

Notes:
  * The reference is Postfix 3.7 + Dovecot 2.3 from Debian configured like a chatmail relay
    (bench/reference/start.sh). It LACKS the filtermail hop (encryption check, rate limits:
    submission goes straight to Postfix's queue) and the OpenDKIM signing hop (reinjection on
    10025), so a real chatmail relay is slower than this reference on submission paths.
  * "ref patched": Dovecot with the 500 ms IDLE notification delay removed as chatmail runs it
    (private copy of libdovecot-storage, NOTIFY_DELAY_MSECS 0); "ref stock": Debian's Dovecot.
  * Reference: mail_fsync = never on LMTP (as chatmail); chatmaild-server fsyncs every delivery.
  * Reference first logins create the account through a checkpassword script (SHA512-CRYPT hash
    written to mail/<addr>/password, like chatmail's doveauth, but one process per creation).
  * "after hold": idle memory measured again after the hold (Dovecot moves IDLE sessions to
    imap-hibernate after 30 s). PSS is summed over every process of the server (descendants of
    the given pids), minus the PSS measured before the connections were opened.
  * Client side: one chatbench process (epoll, OpenSSL TLS 1.3, no certificate verification,
    no session resumption); idle and login connections come from 127.0.0.2..127.0.0.N+1 so
    per-IP connection caps are not what is measured.
EOF
