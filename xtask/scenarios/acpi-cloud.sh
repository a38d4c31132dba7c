# timeout: 600
# Issue 10, acceptance 1: Debian's cloud kernel under -M microvm,acpi=on finds its devices
# through the DSDT (xtask/tests/power.rs). Boot 1: the guest (guest/initramfs/tests/
# acpi-devices) loads virtio_mmio, virtio_blk and virtio_net from CLOUD_INITRAMFS, prints
# /proc/cmdline, writes a file to its ext4 disk, checks eth0, and runs `poweroff -f`; the
# host then reads the file back with debugfs (HOST-READ). Boot 2: busybox acpid in the guest
# (tests/acpi-powerdown) and system_powerdown over QMP. VMM-EXIT-n: microvm's status.
if [ ! -d /rig ] && [ -z "$ACPI_NS" ]; then
    ACPI_NS=1 exec unshare -n sh "$0" "$@"
fi
trap '' PIPE
. "$SCENARIOS/lib-qmp.sh"
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/disk.img" || exit 1
ip tuntap add dev mvtap0 mode tap 2>/dev/null || tunctl -t mvtap0 >/dev/null || exit 1
ip link set mvtap0 up || exit 1
boot() {
    run=$1; shift
    "$MICROVM" -M microvm,legacy,acpi=on -m 256m -smp 1 -kernel "$CLOUD_VMLINUZ" -initrd "$CLOUD_INITRAMFS" \
        -append "console=ttyS0 quiet panic=-1 microvm.run=$run microvm.end=halt" \
        -drive id=d0,file="$dir/disk.img",format=raw,if=none -device virtio-blk-device,drive=d0 \
        -netdev tap,id=n0,ifname=mvtap0,script=no,downscript=no -device virtio-net-device,netdev=n0 "$@"
}
echo "== boot 1: devices through the DSDT, then poweroff -f"
boot /tests/acpi-devices
status1=$?
echo "VMM-EXIT-1 status=$status1"
"$DEBUGFS" -R "cat /acpi-check" "$dir/disk.img" 2>/dev/null | sed 's/^/HOST-READ /'

echo "== boot 2: system_powerdown with busybox acpid"
boot /tests/acpi-powerdown -qmp unix:"$dir/qmp.sock",server=on,wait=off > "$dir/console.txt" 2>&1 &
vmm=$!
console_wait ACPID-READY 2400
qmp_connect "$dir/qmp.sock"
sleep 0.5
qmp '{"execute": "system_powerdown", "id": "powerdown"}'
# The guest has 120 s to power off on its own.
vmm_end_within 1200 POWERDOWN
qmp_finish
status2=$status
echo "VMM-EXIT-2 status=$status2"
echo "== qmp"
cat "$dir/qmp.txt"
echo "== console 2"
cat "$dir/console.txt"
ip link del mvtap0 2>/dev/null
rm -rf "$dir"
[ $status1 -eq 0 ] && [ $status2 -eq 0 ]
