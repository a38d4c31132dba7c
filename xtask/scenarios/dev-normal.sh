# timeout: 120
# The proposal's normal-mode line: no initramfs, root=/dev/vda (a copy of the ext4
# rootfs image: the guest writes it), console on hvc0 through a file chardev, plus the
# tap-backed virtio-net (microvm creates the tap). The file is printed afterwards.
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
"$MICROVM" -M microvm -m 512m -smp 2 -kernel "$GUEST_VMLINUX" \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/devices" \
    -nodefaults -no-user-config \
    -chardev file,id=virtiocon0,path="$dir/console.txt" \
    -device virtio-serial-device -device virtconsole,chardev=virtiocon0 \
    -drive id=test,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=test \
    -netdev tap,id=tap0,script=no,downscript=no -device virtio-net-device,netdev=tap0
status=$?
echo "== hvc0 (file chardev)"
cat "$dir/console.txt"
rm -rf "$dir"
exit $status
