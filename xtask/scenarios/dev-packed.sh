# timeout: 420
# packed=on (virtio 1.1 packed virtqueues) on blk, net, console and rng with the guest's
# own drivers (guest/rootfs/tests/packed): each device's negotiated layout
# (VIRTIO-DEVICE lines), a 4 MiB file written to the root disk (GUEST-SHA256, then
# HOST-SHA256 from debugfs and E2FSCK-STATUS after the VM ended), pings over the tap
# (169.254.0.1 here, as in dev-net), bytes from /dev/hwrng; the console is hvc0, so
# every guest line arrives through a packed ring too.
if [ ! -d /rig ] && [ -z "$DEV_NET_NS" ]; then
    DEV_NET_NS=1 exec unshare -n sh "$0" "$@"
fi
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
ip tuntap add dev mvtap0 mode tap 2>/dev/null || tunctl -t mvtap0 >/dev/null || exit 1
ip addr add 169.254.0.1/16 dev mvtap0 && ip link set mvtap0 up || exit 1
"$MICROVM" -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/packed" \
    -chardev stdio,id=con0 -device virtio-serial-device,packed=on -device virtconsole,chardev=con0 \
    -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root,packed=on \
    -netdev tap,id=tap0,ifname=mvtap0,script=no,downscript=no -device virtio-net-device,netdev=tap0,packed=on \
    -device virtio-rng-device,packed=on
status=$?
echo "VMM-EXIT status=$status"
"$DEBUGFS" -R "dump /packed.bin $dir/packed.bin" "$dir/test.img" 2>&1
set -- $(sha256sum "$dir/packed.bin")
echo "HOST-SHA256 $1"
"$E2FSCK" -fn "$dir/test.img" 2>&1
echo "E2FSCK-STATUS $?"
ip link del mvtap0 2>/dev/null
rm -rf "$dir"
exit $status
