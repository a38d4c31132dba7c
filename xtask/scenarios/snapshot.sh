# timeout: 900
# Snapshot and restore with a real Linux guest (issue 16, acceptance 1 and 2;
# xtask/tests/snapshot.rs). The rootfs guest (guest/rootfs/tests/snapshot) writes known
# data to tmpfs and to its virtio disk, then ticks every 100 ms with its boot id and
# uptime and answers console lines. The source VM is stopped, saved with
# `migrate file:` and quit; then:
#   1. one restore with the same command line plus -incoming: a line on its console is
#      echoed, "check" shows the tmpfs file, the disk's md5sum, a ping over virtio-net
#      (tap mvtap0, 169.254.0.1/16 in the rig) and a new vhost-vsock connection;
#   2. the same snapshot restored 20 times one after another, then 4 at once (each its
#      own disk copy, CID and tap); each clone must tick on and echo a line;
#   3. one clone of `microvm clone-server` (its VM made before the request), the same.
# Prints SNAP-SRC-LAST, SNAP-RESTORED-FIRST, CLONE lines, and the consoles in sections.
trap '' PIPE
if [ ! -d /rig ] && [ -z "$SNAP_NS" ]; then
    SNAP_NS=1 exec unshare -n sh "$0" "$@"
fi
. "$SCENARIOS/lib-qmp.sh"
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/disk.img" || exit 1
for t in 0 1 2 3 4; do
    ip tuntap add dev mvtap$t mode tap 2>/dev/null || tunctl -t mvtap$t > /dev/null || exit 1
    ip link set mvtap$t up || exit 1
done
ip addr add 169.254.0.1/16 dev mvtap0 || exit 1

# vm DISK CID TAP ARGS..: execs microvm with the command line every VM of this scenario
# shares; the clones differ only in host resources (disk copy, vsock CID, tap). Run in the
# background, so $! is microvm's pid. $VM_PREFIX (unquoted, no spaces in its words) goes
# before the machine's options: a clone server's own.
vm() {
    disk=$1 cid=$2 tap=$3
    shift 3
    # shellcheck disable=SC2086
    exec "$MICROVM" $VM_PREFIX -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
        -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/snapshot" \
        -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
        -drive id=root,file="$disk",format=raw,if=none -device virtio-blk-device,drive=root \
        -netdev tap,id=tap0,ifname="$tap",script=no,downscript=no -device virtio-net-device,netdev=tap0 \
        -device vhost-vsock-device,guest-cid="$cid",id=vsock0 "$@"
}
# last_tick FILE: "n up" of the last SNAP-TICK line in FILE.
last_tick() { grep 'SNAP-TICK' "$1" | tail -n 1 | sed 's/.*SNAP-TICK \([0-9]*\) boot=[^ ]* up=\([0-9.]*\).*/\1 \2/'; }
# wait_for FILE PATTERN TENTHS PID
wait_for() {
    i=0
    while ! grep -q "$2" "$1" && [ $i -lt "$3" ] && kill -0 "$4" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    grep -q "$2" "$1"
}
now_ms() { read -r up _ < /proc/uptime; echo "${up%.*}${up#*.}0"; }

# --- the source VM: boot, tick, stop, migrate, quit
mkfifo "$dir/con-src"
exec 4<> "$dir/con-src"
vm "$dir/disk.img" 42 mvtap0 -qmp unix:"$dir/qmp.sock",server=on,wait=off \
    < "$dir/con-src" > "$dir/console.txt" 2>&1 &
vmm=$!
if ! wait_for "$dir/console.txt" 'SNAP-TICK 20 ' 3000 $vmm; then
    echo "SNAP-ERROR the source never ticked 20 times"
    cat "$dir/console.txt"
    kill $vmm
    exit 1
fi
qmp_connect "$dir/qmp.sock"
qmp '{"execute": "stop"}'
t0=$(now_ms)
qmp '{"execute": "migrate", "arguments": {"uri": "file:'"$dir"'/vm.snap"}, "id": "save"}'
wait_for "$dir/qmp.txt" '"id": "save"' 600 $vmm
echo "SNAP-SAVE-MS $(($(now_ms) - t0))"
qmp '{"execute": "query-migrate", "id": "query"}'
wait_for "$dir/qmp.txt" '"id": "query"' 100 $vmm
qmp '{"execute": "quit"}'
qmp_finish
exec 4>&-
echo "SNAP-SRC-STATUS $status"
if [ ! -s "$dir/vm.snap" ]; then
    echo "SNAP-ERROR no snapshot file"
    echo "== console"
    grep -v SNAP-TICK "$dir/console.txt"
    echo "== qmp"
    cat "$dir/qmp.txt"
    exit 1
fi
# The disk as the snapshot left it: every clone starts from a copy of this one.
cp "$dir/disk.img" "$dir/disk.snap"
set -- $(last_tick "$dir/console.txt")
last=$1
echo "SNAP-SRC-LAST n=$1 up=$2 boot=$(grep -o 'SNAP-READY boot=[^ ]*' "$dir/console.txt" | cut -d= -f2)"
echo "SNAP-FILE bytes=$(stat -c %s "$dir/vm.snap") allocated-kib=$(du -k "$dir/vm.snap" | cut -f1)"

# restore NAME DISK CID TAP: starts a restored VM, console in $dir/NAME.txt, input
# through the fifo $dir/NAME.in; sets $vmm.
restore() {
    mkfifo "$dir/$1.in"
    # A writer that stays, so the console never reads end-of-file between lines.
    sleep 3600 > "$dir/$1.in" &
    holders="$holders $!"
    vm "$2" "$3" "$4" -incoming file:"$dir/vm.snap" < "$dir/$1.in" > "$dir/$1.txt" 2>&1 &
    vmm=$!
}
# goes_on NAME PID: waits for a tick after the saved one, then for the echo of a line.
# Every wait is bounded, so a restore that stalls names itself (CI once saw this scenario
# silent after its 18th restore in turn until the 900 s limit).
goes_on() {
    next=$((last + 1))
    wait_for "$dir/$1.txt" "SNAP-TICK $((last + 10)) " 600 "$2" || { echo "no-ticks"; return; }
    # Read-write: opening a fifo for writing alone waits for a reader, forever if the
    # VMM has just ended.
    echo "hello-$1" 1<> "$dir/$1.in"
    wait_for "$dir/$1.txt" "SNAP-ECHO hello-$1" 300 "$2" || { echo "no-echo"; return; }
    first=$(grep 'SNAP-TICK' "$dir/$1.txt" | head -n 1 | sed 's/.*SNAP-TICK \([0-9]*\) .*/\1/')
    [ "$first" = "$next" ] || { echo "first-tick-$first"; return; }
    echo ok
}

# vmm_state NAME PID: what a VMM that did not do what it should is doing: each thread's
# state and kernel wait channel, KVM's counters of its VM, the end of its console.
vmm_state() {
    echo "SNAP-STATE $1 pid=$2 at $(now_ms) ms: $(grep State /proc/$2/status 2>/dev/null || echo ended)"
    for t in /proc/$2/task/*; do
        [ -r "$t/stat" ] || continue
        echo "SNAP-STATE $1 thread $(cut -d' ' -f1-3 "$t/stat") wchan=$(cat "$t/wchan" 2>/dev/null)"
        sed "s/^/SNAP-STATE $1   /" "$t/stack" 2>/dev/null | head -n 12
    done
    for d in /sys/kernel/debug/kvm/$2-*; do
        [ -d "$d" ] || continue
        for c in exits halt_exits halt_wakeup pf_taken irq_injections signal_exits; do
            [ -r "$d/$c" ] && echo "SNAP-STATE $1 kvm $c=$(cat "$d/$c")"
        done
    done
    echo "SNAP-STATE $1 console, last lines:"
    tail -n 5 "$dir/$1.txt" | sed "s/^/SNAP-STATE $1   /"
}
# stop NAME PID: SIGTERM, and the VMM must end within 10 s; else its state, and SIGKILL.
stop() {
    kill -TERM "$2" 2>/dev/null
    i=0
    while kill -0 "$2" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$2" 2>/dev/null; then
        echo "SNAP-STALL $1: microvm (pid $2) still runs 10 s after SIGTERM"
        vmm_state "$1" "$2"
        kill -KILL "$2"
    fi
    wait "$2"
}
[ -d /sys/kernel/debug/kvm ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

# --- 1: one restore, checked in depth
"$VSOCKIO" serve 5000 65536 3 > "$dir/rig-vsock.txt" 2>&1 &
rig=$!
t0=$(now_ms)
restore restored "$dir/disk.img" 42 mvtap0
wait_for "$dir/restored.txt" 'SNAP-TICK' 600 $vmm
echo "SNAP-RESTORE-FIRST-OUTPUT-MS $(($(now_ms) - t0))"
echo "SNAP-RESTORED-GOES-ON $(goes_on restored $vmm)"
echo "check" > "$dir/restored.in"
wait_for "$dir/restored.txt" 'GUEST-VSOCK-FDS\|GUEST-VSOCK-ERROR' 600 $vmm
set -- $(grep 'SNAP-TICK' "$dir/restored.txt" | head -n 1 | sed 's/.*SNAP-TICK \([0-9]*\) boot=\([^ ]*\) up=\([0-9.]*\).*/\1 \2 \3/')
echo "SNAP-RESTORED-FIRST n=$1 up=$3 boot=$2"
echo "SNAP-RSS-KIB $(grep VmRSS /proc/$vmm/status | tr -s ' ' | cut -d' ' -f2)"
stop restored $vmm
echo "SNAP-RESTORED-STATUS $?"
kill $rig 2>/dev/null
wait $rig 2>/dev/null

# --- 2a: 20 restores one after another, each on a fresh disk copy
k=1
while [ $k -le 20 ]; do
    echo "SNAP-PROGRESS seq=$k restoring at $(now_ms) ms"
    cp "$dir/disk.snap" "$dir/clone.img"
    restore seq$k "$dir/clone.img" 42 mvtap0
    r=$(goes_on seq$k $vmm)
    echo "CLONE seq=$k $r"
    [ "$r" = ok ] || vmm_state seq$k $vmm
    stop seq$k $vmm
    k=$((k + 1))
done

# --- 2b: 4 at once, each its own disk copy, CID and tap
pids=
for k in 1 2 3 4; do
    cp "$dir/disk.snap" "$dir/par$k.img"
done
echo "SNAP-PROGRESS par restoring at $(now_ms) ms"
for k in 1 2 3 4; do
    restore par$k "$dir/par$k.img" $((42 + k)) mvtap$k
    pids="$pids $vmm"
done
k=1
for p in $pids; do
    r=$(goes_on par$k $p)
    echo "CLONE par=$k $r"
    [ "$r" = ok ] || vmm_state par$k $p
    k=$((k + 1))
done
for p in $pids; do
    echo "CLONE-ALIVE pid=$p $(kill -0 $p 2>/dev/null && echo yes || echo no)"
done
k=1
for p in $pids; do
    stop par$k $p
    k=$((k + 1))
done
echo "SNAP-PROGRESS clone server at $(now_ms) ms"

# --- 3: a clone of the clone server: forked ahead, its VM made before the request; the
# machine's options are the server's (console on the server's stdio, its own disk copy)
cp "$dir/disk.snap" "$dir/cs.img"
mkfifo "$dir/cs.in"
sleep 3600 > "$dir/cs.in" &
holders="$holders $!"
VM_PREFIX="clone-server --snapshot $dir/vm.snap --listen $dir/cs.sock --"
vm "$dir/cs.img" 42 mvtap0 < "$dir/cs.in" > "$dir/cs.txt" 2>&1 &
server=$!
VM_PREFIX=
if wait_for "$dir/cs.txt" 'clone-server: listening' 600 $server; then
    answer=$("$MICROVM" clone "$dir/cs.sock")
    echo "CLONE-SERVER-ANSWER $answer"
    pid=$(echo "$answer" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
    echo "CLONE server=1 $(goes_on cs "${pid:-0}")"
    [ -n "$pid" ] && kill -TERM "$pid"
else
    echo "CLONE server=1 no-server"
fi
kill $server 2>/dev/null
wait $server 2>/dev/null

kill $holders 2>/dev/null
for f in console restored seq1 seq20 par1 par4 cs; do
    echo "== $f"
    cat "$dir/$f.txt"
done
echo "== qmp"
cat "$dir/qmp.txt"
echo "== rig-vsock"
cat "$dir/rig-vsock.txt"
for t in 0 1 2 3 4; do ip link del mvtap$t 2>/dev/null; done
rm -rf "$dir"
exit 0
