# timeout: 300
# Issue 10, acceptance 2: -M microvm (acpi=off) -device i8042 with Debian's cloud kernel,
# which has the i8042 and AT keyboard drivers built in (the minimal kernel has neither).
# The guest prints what it found (guest/initramfs/tests/keyboard, KBD-CHECK lines) and
# KBD-READY; QMP send-key ctrl-alt-delete must make it reboot, which ends microvm.
trap '' PIPE
dir=$(mktemp -d)
"$MICROVM" -M microvm,legacy -m 256m -smp 1 -kernel "$CLOUD_VMLINUZ" -initrd "$GUEST_INITRAMFS" -device i8042 \
    -append "console=ttyS0 quiet panic=-1 microvm.run=/tests/keyboard microvm.end=halt" \
    -qmp unix:"$dir/qmp.sock",server=on,wait=off > "$dir/console.txt" 2>&1 &
vmm=$!
i=0
while ! grep -q KBD-READY "$dir/console.txt" && [ $i -lt 2400 ] && kill -0 $vmm 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
done
mkfifo "$dir/in"
"$UNIXCAT" "$dir/qmp.sock" < "$dir/in" > "$dir/qmp.txt" &
exec 3> "$dir/in"
echo '{"execute": "qmp_capabilities"}' >&3
sleep 0.5
keys='[{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}]'
echo '{"execute": "send-key", "arguments": {"keys": '"$keys"'}, "id": "cad"}' >&3
i=0
while kill -0 $vmm 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 $vmm 2>/dev/null && { echo "SEND-KEY-TIMEOUT"; kill -9 $vmm; }
wait $vmm
status=$?
exec 3>&-
wait
echo "VMM-EXIT status=$status"
echo "== qmp"
cat "$dir/qmp.txt"
echo "== console"
cat "$dir/console.txt"
rm -rf "$dir"
exit $status
