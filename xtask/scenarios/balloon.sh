# timeout: 300
# virtio-balloon with a real Linux guest (xtask/tests/balloon.rs). The initramfs guest
# (/tests/balloon) fills 300 MiB and frees it; with free-page-reporting=on the freed memory
# goes back to the host, which this script sees in microvm's VmRSS. Then, over QMP, the
# balloon is inflated to leave the guest 256 MiB and deflated again while the guest
# prints its MemTotal. Prints BALLOON-RSS lines (KiB), "== qmp" and "== console".
trap '' PIPE
. "$SCENARIOS/lib-qmp.sh"
dir=$(mktemp -d)
"$MICROVM" -M microvm -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" -nodefaults \
    -serial stdio -append "console=ttyS0 quiet panic=-1 microvm.run=/tests/balloon" \
    -device virtio-balloon-device,id=balloon0,free-page-reporting=on \
    -qmp unix:"$dir/qmp.sock",server=on,wait=off > "$dir/console.txt" 2>&1 &
vmm=$!
rss() { awk '/^VmRSS/ { print $2 }' /proc/$vmm/status; }
memtotal() { grep -o 'MEMTOTAL [0-9]*' "$dir/console.txt" | tail -n 1 | cut -d' ' -f2; }

console_wait BALLOON-CHECK 1200
echo "BALLOON-RSS start=$(rss)"
console_wait BALLOON-FILLED 1200
sleep 2
echo "BALLOON-RSS filled=$(rss)"
console_wait BALLOON-FREED 1200
# Free page reporting runs about 2 s after memory is freed; give it time to finish.
low=$(rss)
i=0
while [ $i -lt 15 ]; do
    sleep 1
    now=$(rss)
    [ "$now" -lt "$low" ] && low=$now
    i=$((i + 1))
done
echo "BALLOON-RSS freed=$low"

qmp_connect "$dir/qmp.sock"
console_wait MEMTOTAL 1200
full=$(memtotal)
qmp '{"execute": "balloon", "arguments": {"value": 268435456}}'
i=0
# Until the guest has given up (nearly) all 256 MiB: it reports MemTotal as it goes.
while [ $i -lt 30 ] && [ "$(memtotal)" -gt $((full - 250 * 1024)) ]; do sleep 1; i=$((i + 1)); done
echo "BALLOON-MEM full=$full inflated=$(memtotal)"
qmp '{"execute": "query-balloon", "id": "inflated"}'
sleep 1
qmp '{"execute": "balloon", "arguments": {"value": 536870912}}'
i=0
while [ $i -lt 30 ] && [ "$(memtotal)" -lt $((full - 8 * 1024)) ]; do sleep 1; i=$((i + 1)); done
echo "BALLOON-MEM deflated=$(memtotal)"
qmp '{"execute": "query-balloon", "id": "deflated"}'
sleep 1
qmp '{"execute": "quit"}'
qmp_finish
qmp_logs
rm -rf "$dir"
exit $status
