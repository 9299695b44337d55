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

lacks="server lacks LOGIN/AUTH"  # what a 502/BAD/refused answer means for these rows
status_of() { # file scenario-status-key -> "" when ok, else the n/a text
    local f=$1 k=$2 s p
    s=$(get "$f" "$k"); p=$(get "$f" prepare_status)
    [ -z "$s" ] && [ -n "$p" ] && s="n/a: $p"
    [ -z "$s" ] && { echo "n/a (not run)"; return; }
    case $s in
    ok|partial*) echo "" ;;
    *LOGIN\ refused*|*AUTH*refused*|*AUTHENTICATIONFAILED*|*"Unknown command"*|*"not implemented"*|*BAD*|*"502"*|*"500 "*)
        echo "n/a ($lacks)" ;;
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
    *) num "$v" ;;
    esac
}

num() { # integers as integers, >= 100 without decimals, else 2 decimals
    awk -v x="$1" 'BEGIN { if (x == int(x)) printf "%d", x;
                           else if (x >= 100) printf "%.0f", x; else printf "%.2f", x }'
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
fmt="%-30s %-30s"
hdr=("metric" "chatmaild-server")
for v in $variants; do fmt+=" %-24s"; hdr+=("ref $v"); done
fmt+=" %-14s %s\n"
hdr+=("ours/ref-$first_ref" "target")
# the chatbench table (not when only --scenario mx ran)
have_chatbench=false
ls "$ours" "$OUT"/ref-*.json >/dev/null 2>&1 && have_chatbench=true
if $have_chatbench; then
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
fi

# ---- port-25 intake (bench/mxbench.py, files mx-*.json)
mxrows=(
  "mx_throughput_accepted_per_s|mx_throughput_status|MX accepted msg/s (DKIM on)|"
  "mx_throughput_delivered_per_s|mx_throughput_status|MX delivered msg/s|"
  "mx_throughput_lost|mx_throughput_status|MX lost messages|0"
  "mx_latency_exists_p50_ms|mx_latency_status|MX dot->EXISTS p50 ms|"
  "mx_latency_exists_p99_ms|mx_latency_status|MX dot->EXISTS p99 ms|"
  "mx_latency_accept_exists_p50_ms|mx_latency_status|MX 250->EXISTS p50 ms|"
  "mx_latency_accept_exists_p99_ms|mx_latency_status|MX 250->EXISTS p99 ms|"
  "mx_latency_250_p50_ms|mx_latency_status|MX dot->250 p50 ms|"
  "mx_latency_250_p99_ms|mx_latency_status|MX dot->250 p99 ms|"
  "mx_dkim_key_queries|mx_throughput_status|DKIM key DNS queries|1 (cached)"
)
if ls "$OUT"/mx-*.json >/dev/null 2>&1; then
    lacks="server lacks MX intake"
    echo
    echo "Port 25 (MX) intake, DKIM verification on: chatmaild-server vs Postfix smtpd + OpenDKIM milter -> Dovecot LMTP"
    printf "$fmt" "${hdr[@]}"
    printf "$fmt" "------" "----------------" $(for _ in $variants; do echo "---"; done) "---" "------"
    for r in "${mxrows[@]}"; do
        IFS='|' read -r key sk label target <<< "$r"
        line=("$label" "$(cell "$OUT/mx-ours.json" "$key" "$sk")")
        for v in $variants; do line+=("$(cell "$OUT/mx-ref-$v.json" "$key" "$sk")"); done
        line+=("$(ratio "$(get "$OUT/mx-ours.json" "$key")" "$(get "$OUT/mx-ref-$first_ref.json" "$key")")" "$target")
        printf "$fmt" "${line[@]}"
    done
    for f in "$OUT"/mx-*.json; do
        why=$(get "$f" mx_throughput_refusal)
        echo "  $(get "$f" label): C=$(get "$f" mx_throughput_connections) for $(get "$f" mx_throughput_seconds) s, $(get "$f" mx_throughput_accepted) accepted, $(get "$f" mx_latency_messages) latency samples ($(get "$f" mx_latency_missing) missing), $(get "$f" mx_message_bytes)-byte messages, load avg $(get "$f" mx_load_1m_before) on $(get "$f" mx_cpus) CPUs before${why:+, first refusal: $why}"
    done
fi
if $have_chatbench; then
echo
echo "Settings per target: $(get "$ours" target) | $(get "$OUT/ref-$first_ref.json" target)"
for f in "$ours" "$OUT"/ref-*.json; do
    [ -f "$f" ] || continue
    line="  $(get "$f" label):"
    [ -n "$(get "$f" latency_messages)" ] &&
        line+=" latency $(num "$(get "$f" latency_messages)") messages ($(num "$(get "$f" latency_missing)") missing);"
    [ -n "$(get "$f" throughput_connections)" ] &&
        line+=" throughput C=$(num "$(get "$f" throughput_connections)") for $(num "$(get "$f" throughput_seconds)") s, $(num "$(get "$f" throughput_accepted)") accepted;"
    [ -n "$(get "$f" idle_requested)" ] &&
        line+=" idle K=$(num "$(get "$f" idle_requested)") over $(num "$(get "$f" idle_accounts)") accounts, opened in $(num "$(get "$f" idle_open_seconds)") s, server processes $(num "$(get "$f" idle_server_procs_before)") -> $(num "$(get "$f" idle_server_procs)");"
    [ -n "$(get "$f" logins_concurrency)" ] && line+=" logins $(num "$(get "$f" logins_concurrency)") in flight"
    echo "$line"
done
fi
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
  * MX rows (bench/mxbench.py): each connection does STARTTLS once, then MAIL+RCPT+DATA
    pipelined per message; messages are encrypted.eml-like, rsa-sha256 relaxed/relaxed signed by
    dkimpy before the clock runs, keys served by a test DNS server (a new selector per run); the
    reference verifies with OpenDKIM (Mode v, reject on none/bad/missing key, no d=/From check)
    and lacks chatmail's filtermail incoming hop. The client is Python threads on the same
    2 cores: it takes CPU from the server under test; both targets pay the same.
    "250->EXISTS" is clamped at 0: 0 means the IDLE client heard of the message before the
    sender read its 250.
  * Client side: one chatbench process (epoll, OpenSSL TLS 1.3, no certificate verification,
    no session resumption); idle and login connections come from 127.0.0.2..127.0.0.N+1 so
    per-IP connection caps are not what is measured.
EOF
