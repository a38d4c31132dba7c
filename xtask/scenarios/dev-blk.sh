# timeout: 240
# virtio-blk, checked from outside the guest. Boot 1: the guest writes 4 MiB of random
# data to /data.bin on its root disk and prints its sha256 (GUEST-SHA256). Then, where
# the image lives (L2 in the rig), e2fsprogs reads the image: debugfs dumps the file
# (HOST-SHA256) and `e2fsck -fn` checks it (E2FSCK-STATUS, 0 = clean). Boot 2: the same
# image as a second, readonly=on disk; guest/rootfs/tests/blk-ro prints what worked.
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" && cp "$GUEST_ROOTFS" "$dir/ro.img" || exit 1
boot() {
    run=$1; shift
    "$MICROVM" -M microvm -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
        -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=$run" \
        -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
        -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root \
        "$@"
}
echo "== boot 1: write"
boot /tests/blk-write
echo "VMM-EXIT-1 status=$?"
"$DEBUGFS" -R "dump /data.bin $dir/data.bin" "$dir/test.img" 2>&1
set -- $(sha256sum "$dir/data.bin")
echo "HOST-SHA256 $1"
"$E2FSCK" -fn "$dir/test.img" 2>&1
echo "E2FSCK-STATUS $?"
echo "== boot 2: readonly=on disk"
boot /tests/blk-ro -drive id=ro,file="$dir/ro.img",format=raw,if=none,readonly=on \
    -device virtio-blk-device,drive=ro
echo "VMM-EXIT-2 status=$?"
cmp -s "$GUEST_ROOTFS" "$dir/ro.img" && echo "RO-IMAGE unchanged"
rm -rf "$dir"
