#!/bin/sh
# run-case.sh NAME TIMEOUT: runs $SCENARIOS/NAME.sh (stderr merged into stdout, as on a
# serial console), killing it after TIMEOUT seconds, between markers that xtask parses:
#   @@CASE-BEGIN NAME
#   @@CASE-END NAME status=<exit status, 137 if killed> ms=<wall time>
# Used unchanged on the host (direct mode) and inside the rig (busybox sh).
name=$1
limit=$2

# ms from /proc/uptime ("12.34 ..."): available and alike in both places, 10 ms steps.
now_ms() {
    read -r up _ < /proc/uptime
    echo $(( ${up%.*} * 1000 + 1${up#*.} * 10 - 1000 ))
}

echo "@@CASE-BEGIN $name"
t0=$(now_ms)
timeout -s KILL "$limit" sh "$SCENARIOS/$name.sh" 2>&1
status=$?
t1=$(now_ms)
# A leading newline: the guest's last console line may lack one.
echo
echo "@@CASE-END $name status=$status ms=$((t1 - t0))"
