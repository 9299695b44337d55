#!/usr/bin/env bash
# stop.sh: stops the reference stack started by start.sh (its own Dovecot
# and Postfix instances only, by their config). Add --clean to remove
# $CHATBENCH_REF_DIR's mail and state too.
R=${CHATBENCH_REF_DIR:-/var/tmp/chatbench-ref}
[ -f "$R/dovecot.conf" ] && doveadm -c "$R/dovecot.conf" stop 2>/dev/null
[ -f "$R/postfix/etc/main.cf" ] && postfix -c "$R/postfix/etc" stop 2>/dev/null
for _ in $(seq 50); do
    [ -s "$R/run/master.pid" ] && kill -0 "$(cat "$R/run/master.pid")" 2>/dev/null || break
    sleep 0.1
done
rm -f "$R/run/master.pid"
# the MX path's OpenDKIM milter (CHATBENCH_REF_MX), by its pid file
if [ -s "$R/opendkim/opendkim.pid" ]; then
    kpid=$(cat "$R/opendkim/opendkim.pid")
    kill "$kpid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$kpid" 2>/dev/null || break; sleep 0.1; done  # frees its port
    rm -f "$R/opendkim/opendkim.pid"
fi
if [ "${1:-}" = --clean ]; then
    rm -rf "$R/mail" "$R/state" "$R/postfix/spool" "$R/run" "$R/dovecot.log" "$R/postfix/maillog"
fi
exit 0
