# timeout: 120
# virtio-rng: the guest reads 1 MiB from /dev/hwrng (guest/rootfs/tests/rng).
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
"$MICROVM" -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/rng" \
    -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
    -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root \
    -device virtio-rng-device
status=$?
rm -rf "$dir"
exit $status
