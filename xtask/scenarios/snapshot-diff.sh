# timeout: 600
# Diff snapshots with a real Linux guest (xtask/tests/snapshot_diff.rs): the snapshot rig
# test's guest (guest/rootfs/tests/snapshot) on -M microvm,track-dirty-pages=on, saved at
# tick 20 (migrate file:, the base), run on while a console "check" makes virtio-net and
# the console write guest memory (the VMM's writes, which KVM's dirty log does not see),
# saved again as a diff (the x-diff-snapshot capability), quit. The diff alone is refused,
# rebase-snap merges it into the base, and the merged file restores the guest of the
# diff's instant: its ticks go on from the diff's, "check" shows the tmpfs file, the
# disk's sum and a ping. Prints DIFF-* lines and the consoles in sections.
trap '' PIPE
if [ ! -d /rig ] && [ -z "$SNAP_NS" ]; then
    SNAP_NS=1 exec unshare -n sh "$0" "$@"
fi
. "$SCENARIOS/lib-qmp.sh"
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/disk.img" || exit 1
ip tuntap add dev mvtap0 mode tap 2>/dev/null || tunctl -t mvtap0 > /dev/null || exit 1
ip link set mvtap0 up || exit 1
ip addr add 169.254.0.1/16 dev mvtap0 || exit 1

# vm MACHINE ARGS..: execs microvm with the command line every VM here shares.
vm() {
    machine=$1
    shift
    exec "$MICROVM" -M "$machine" -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
        -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/snapshot" \
        -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
        -drive id=root,file="$dir/disk.img",format=raw,if=none -device virtio-blk-device,drive=root \
        -netdev tap,id=tap0,ifname=mvtap0,script=no,downscript=no -device virtio-net-device,netdev=tap0 "$@"
}
last_tick() { grep 'SNAP-TICK' "$1" | tail -n 1 | sed 's/.*SNAP-TICK \([0-9]*\) .*/\1/'; }
# wait_for FILE PATTERN TENTHS PID
wait_for() {
    i=0
    while ! grep -q "$2" "$1" && [ $i -lt "$3" ] && kill -0 "$4" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    grep -q "$2" "$1"
}
qmp_wait() { wait_for "$dir/qmp.txt" "\"id\": \"$1\"" 600 $vmm; }
now_ms() { read -r up _ < /proc/uptime; echo "${up%.*}${up#*.}0"; }

# --- the source VM: base at tick 20, a diff some 30 ticks and a "check" later
mkfifo "$dir/con-src"
exec 4<> "$dir/con-src"
vm microvm,track-dirty-pages=on -qmp unix:"$dir/qmp.sock",server=on,wait=off \
    < "$dir/con-src" > "$dir/console.txt" 2>&1 &
vmm=$!
if ! wait_for "$dir/console.txt" 'SNAP-TICK 20 ' 3000 $vmm; then
    echo "DIFF-ERROR the source never ticked 20 times"
    cat "$dir/console.txt"
    kill $vmm
    exit 1
fi
qmp_connect "$dir/qmp.sock"
qmp '{"execute": "stop", "id": "stop1"}'
qmp_wait stop1
qmp '{"execute": "migrate", "arguments": {"uri": "file:'"$dir"'/base.snap"}, "id": "base"}'
qmp_wait base
base=$(last_tick "$dir/console.txt")
echo "DIFF-BASE-TICK $base"
qmp '{"execute": "cont", "id": "cont"}'
qmp_wait cont
echo check >&4
wait_for "$dir/console.txt" 'SNAP-PING' 300 $vmm
wait_for "$dir/console.txt" "SNAP-TICK $((base + 30)) " 600 $vmm
qmp '{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "x-diff-snapshot", "state": true}]}, "id": "caps"}'
qmp_wait caps
qmp '{"execute": "stop", "id": "stop2"}'
qmp_wait stop2
sleep 0.3
t0=$(now_ms)
qmp '{"execute": "migrate", "arguments": {"uri": "file:'"$dir"'/diff.snap"}, "id": "diff"}'
qmp_wait diff
echo "DIFF-SAVE-MS $(($(now_ms) - t0))"
last=$(last_tick "$dir/console.txt")
echo "DIFF-LAST-TICK $last"
qmp '{"execute": "quit"}'
qmp_finish
exec 4>&-
echo "DIFF-SRC-STATUS $status"
echo "DIFF-FILES base-kib=$(du -k "$dir/base.snap" | cut -f1) diff-kib=$(du -k "$dir/diff.snap" | cut -f1)"

# --- the diff alone is refused; merged, it restores
(vm microvm -incoming file:"$dir/diff.snap" < /dev/null > "$dir/alone.txt" 2>&1)
echo "DIFF-ALONE status=$? $(head -n 1 "$dir/alone.txt")"
"$MICROVM" rebase-snap --base-file "$dir/base.snap" --diff-file "$dir/diff.snap"
echo "DIFF-REBASE status=$?"
mkfifo "$dir/restored.in"
sleep 3600 > "$dir/restored.in" &
holder=$!
: > "$dir/restored.txt"
vm microvm -incoming file:"$dir/base.snap" < "$dir/restored.in" > "$dir/restored.txt" 2>&1 &
vmm=$!
wait_for "$dir/restored.txt" "SNAP-TICK $((last + 10)) " 600 $vmm
echo check > "$dir/restored.in"
wait_for "$dir/restored.txt" 'SNAP-PING' 300 $vmm
echo "DIFF-RESTORED-FIRST n=$(grep 'SNAP-TICK' "$dir/restored.txt" | head -n 1 | sed 's/.*SNAP-TICK \([0-9]*\) .*/\1/')"
kill -TERM $vmm
wait $vmm
echo "DIFF-RESTORED-STATUS $?"
kill $holder 2>/dev/null
for f in console restored; do
    echo "== $f"
    grep -v SNAP-TICK "$dir/$f.txt"
done
echo "== qmp"
cat "$dir/qmp.txt"
ip link del mvtap0 2>/dev/null
rm -rf "$dir"
exit 0
