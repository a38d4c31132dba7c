# timeout: 120
# The proposal's legacy-mode line: the same root filesystem and blk+net devices, the
# console on the ISA serial port (console=ttyS0, -serial stdio).
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
"$MICROVM" -M microvm,legacy -m 512m -smp 2 -kernel "$GUEST_VMLINUX" \
    -append "console=ttyS0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/devices" \
    -nodefaults -no-user-config -serial stdio \
    -drive id=test,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=test \
    -netdev tap,id=tap0,script=no,downscript=no -device virtio-net-device,netdev=tap0
status=$?
rm -rf "$dir"
exit $status
