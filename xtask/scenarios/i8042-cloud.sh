# timeout: 600
# Issue 10, acceptance 2: -device i8042 with Debian's cloud kernel, which has the i8042
# and AT keyboard drivers built in (the minimal kernel has neither), booted twice: with
# acpi=off (the driver probes the ports) and with acpi=on (it finds the controller through
# the DSDT's PNP0303 entry). Each time the guest prints what it found
# (guest/initramfs/tests/keyboard, KBD-CHECK lines) and KBD-READY; QMP send-key
# ctrl-alt-delete must make it reboot, which ends microvm.
trap '' PIPE
. "$SCENARIOS/lib-qmp.sh"
overall=0
for acpi in off on; do
    dir=$(mktemp -d)
    echo "== boot acpi=$acpi"
    "$MICROVM" -M microvm,legacy,acpi=$acpi -m 256m -smp 1 -kernel "$CLOUD_VMLINUZ" -initrd "$GUEST_INITRAMFS" \
        -device i8042 -append "console=ttyS0 quiet panic=-1 microvm.run=/tests/keyboard microvm.end=halt" \
        -qmp unix:"$dir/qmp.sock",server=on,wait=off > "$dir/console.txt" 2>&1 &
    vmm=$!
    console_wait KBD-READY 2400
    qmp_connect "$dir/qmp.sock"
    sleep 0.5
    keys='[{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}]'
    qmp '{"execute": "send-key", "arguments": {"keys": '"$keys"'}, "id": "cad"}'
    vmm_end_within 600 SEND-KEY
    qmp_finish
    echo "VMM-EXIT status=$status"
    echo "== qmp"
    cat "$dir/qmp.txt"
    echo "== console"
    cat "$dir/console.txt"
    rm -rf "$dir"
    [ "$status" -eq 0 ] || overall=$status
done
exit $overall
