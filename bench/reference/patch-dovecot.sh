#!/usr/bin/env bash
# patch-dovecot.sh OUTDIR [MSECS]: a private copy of Debian's Dovecot
# libraries in OUTDIR with the 500 ms IDLE notification delay removed, as
# chatmail's patched Dovecot does (spec §13.1).
#
# The delay is NOTIFY_DELAY_MSECS in src/lib-storage/mailbox-watch.c
# (notify_callback: timeout_add_short(NOTIFY_DELAY_MSECS, notify_delay_callback,
# box)). In the binary that is `mov $0x1f4,%edi` (bf f4 01 00 00) right
# before the `lea` of the "mailbox-watch.c" source-name string and the call
# to timeout_add_short. This script finds exactly that instruction, checks its
# bytes and rewrites the immediate to MSECS (default 0). Only the copy is
# changed; the system's /usr/lib/dovecot stays as it is. Dovecot then loads
# the copy through LD_LIBRARY_PATH (it is searched before the binaries'
# RUNPATH /usr/lib/dovecot; Dovecot must pass it on: import_environment).
set -euo pipefail
out=${1:?usage: patch-dovecot.sh OUTDIR [MSECS]}
ms=${2:-0}
src=/usr/lib/dovecot
lib=$out/libdovecot-storage.so.0
mkdir -p "$out"
cp -a "$src"/lib*.so* "$out"/
real=$(readlink -f "$lib")
[ -f "$real" ] || { echo "patch-dovecot: $lib missing" >&2; exit 1; }
# the source-name string's file offset, then its virtual address
stroff=$(grep -obUa 'mailbox-watch\.c' "$real" | head -1 | cut -d: -f1)
[ -n "$stroff" ] || { echo "patch-dovecot: mailbox-watch.c string not found" >&2; exit 1; }
# LOAD segments as "fileoff vaddr filesz" (decimal), for the conversions
segs=$(readelf -lW "$real" | while read -r t fo va _pa fs _rest; do
    if [ "$t" = LOAD ]; then echo "$((fo)) $((va)) $((fs))"; fi; done)
off2va() { # file offset -> hex vaddr
    while read -r fo va fs; do
        if (( $1 >= fo && $1 < fo + fs )); then printf '%x\n' $(( $1 - fo + va )); return; fi
    done <<< "$segs"
}
va2off() { # vaddr -> decimal file offset
    while read -r fo va fs; do
        if (( $1 >= va && $1 < va + fs )); then echo $(( $1 - va + fo )); return; fi
    done <<< "$segs"
}
strva=$(off2va "$stroff")
# the mov $0x1f4,%edi whose next instruction loads that string and whose
# next-but-one calls timeout_add_short
movva=$(objdump -d --no-show-raw-insn "$real" | awk -v s="# $strva " '
    { line[NR]=$0 }
    END { for (i=1;i<NR-1;i++)
        if (line[i] ~ /mov +\$0x1f4,%edi/ && index(line[i+1], s) && line[i+2] ~ /timeout_add_short/) {
            split(line[i], a, ":"); gsub(/ /, "", a[1]); print a[1]; n++ }
        if (n != 1) exit 1 }') || { echo "patch-dovecot: delay instruction not found (exactly once)" >&2; exit 1; }
off=$(va2off "$((16#$movva))")
bytes=$(xxd -s "$off" -l 5 -p "$real")
if [ "$bytes" != "bff4010000" ]; then
    echo "patch-dovecot: unexpected bytes $bytes at $off" >&2; exit 1
fi
printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((ms & 255)) $(((ms >> 8) & 255)) \
    $(((ms >> 16) & 255)) $(((ms >> 24) & 255)))" |
    dd of="$real" bs=1 seek=$((off + 1)) conv=notrunc status=none
echo "patch-dovecot: $real: NOTIFY_DELAY_MSECS 500 -> $ms (vaddr 0x$movva, file offset $off)"
