# timeout: 600
# virtio-balloon with free-page-reporting on a 512 MiB guest (guest/rootfs/tests/balloon):
# microvm's RSS after the guest filled 300 MiB and after it freed them (RSS-FILLED,
# RSS-FREED, kB); then QMP balloon to 256 MiB and back, with query-balloon after each
# (QMP-...), while the guest prints its MemTotal. QMP goes through $UNIXCAT.
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
"$MICROVM" -M microvm -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/balloon" \
    -chardev file,id=con0,path="$dir/console.txt" -device virtio-serial-device -device virtconsole,chardev=con0 \
    -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root \
    -device virtio-balloon-device,free-page-reporting=on \
    -qmp unix:"$dir/qmp.sock",server=on,wait=off &
vmm=$!
wait_for() {
    i=0
    while ! grep -q "$1" "$dir/console.txt" 2>/dev/null && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
}
rss() { awk '/VmRSS/ {print $2}' /proc/$vmm/status; }
qmp() {
    printf '{"execute":"qmp_capabilities"}\n%s\n' "$1" | "$UNIXCAT" "$dir/qmp.sock" | tail -n 1 | tr -d '\r'
}
wait_for GUEST-FILLED
sleep 5
echo "RSS-FILLED $(rss)"
wait_for GUEST-FREED
sleep 15
echo "RSS-FREED $(rss)"
echo "QMP-BALLOON-256 $(qmp '{"execute":"balloon","arguments":{"value":268435456}}')"
sleep 20
echo "QMP-QUERY-256 $(qmp '{"execute":"query-balloon"}')"
echo "MEMTOTAL-256 $(grep GUEST-MEMTOTAL "$dir/console.txt" | tail -n 1)"
echo "QMP-BALLOON-512 $(qmp '{"execute":"balloon","arguments":{"value":536870912}}')"
sleep 20
echo "QMP-QUERY-512 $(qmp '{"execute":"query-balloon"}')"
echo "MEMTOTAL-512 $(grep GUEST-MEMTOTAL "$dir/console.txt" | tail -n 1)"
wait $vmm
status=$?
echo "== console"
cat "$dir/console.txt"
rm -rf "$dir"
exit $status
