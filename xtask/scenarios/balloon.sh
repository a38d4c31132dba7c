# timeout: 300
# virtio-balloon with a real Linux guest (xtask/tests/balloon.rs). The initramfs guest
# (/tests/balloon) fills 300 MiB and frees it; with free-page-reporting=on the freed memory
# goes back to the host, which this script sees in microvm's VmRSS. Then, over QMP, the
# balloon is inflated to leave the guest 256 MiB and deflated again while the guest
# prints its MemTotal. Prints BALLOON-RSS lines (KiB), "== qmp" and "== console".
trap '' PIPE
dir=$(mktemp -d)
"$MICROVM" -M microvm -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" -nodefaults \
    -serial stdio -append "console=ttyS0 quiet panic=-1 microvm.run=/tests/balloon" \
    -device virtio-balloon-device,id=balloon0,free-page-reporting=on \
    -qmp unix:"$dir/qmp.sock",server=on,wait=off > "$dir/console.txt" 2>&1 &
vmm=$!
rss() { awk '/^VmRSS/ { print $2 }' /proc/$vmm/status; }
wait_for() {
    i=0
    while ! grep -q "$1" "$dir/console.txt" && [ $i -lt 1200 ] && kill -0 $vmm 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
}
memtotal() { grep -o 'MEMTOTAL [0-9]*' "$dir/console.txt" | tail -n 1 | cut -d' ' -f2; }

wait_for BALLOON-CHECK
echo "BALLOON-RSS start=$(rss)"
wait_for BALLOON-FILLED
sleep 2
echo "BALLOON-RSS filled=$(rss)"
wait_for BALLOON-FREED
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

mkfifo "$dir/in"
"$UNIXCAT" "$dir/qmp.sock" < "$dir/in" > "$dir/qmp.txt" &
exec 3> "$dir/in"
echo '{"execute": "qmp_capabilities"}' >&3
wait_for MEMTOTAL
full=$(memtotal)
echo '{"execute": "balloon", "arguments": {"value": 268435456}}' >&3
i=0
while [ $i -lt 30 ] && [ "$(memtotal)" -gt $((full - 200 * 1024)) ]; do sleep 1; i=$((i + 1)); done
echo "BALLOON-MEM full=$full inflated=$(memtotal)"
echo '{"execute": "query-balloon", "id": "inflated"}' >&3
sleep 1
echo '{"execute": "balloon", "arguments": {"value": 536870912}}' >&3
i=0
while [ $i -lt 30 ] && [ "$(memtotal)" -lt $((full - 8 * 1024)) ]; do sleep 1; i=$((i + 1)); done
echo "BALLOON-MEM deflated=$(memtotal)"
echo '{"execute": "query-balloon", "id": "deflated"}' >&3
sleep 1
echo '{"execute": "quit"}' >&3
wait $vmm
status=$?
exec 3>&-
wait
echo "== qmp"
cat "$dir/qmp.txt"
echo "== console"
cat "$dir/console.txt"
rm -rf "$dir"
exit $status
