# timeout: 900
# qcow2 (docs/dropin.md, format=qcow2): the root disk is a qcow2 overlay whose backing
# file is a copy of the ext4 rootfs (raw), named relative to the overlay's directory,
# with backing_fmt raw, as cloud images are used. The guest kernel's virtio-blk driver
# writes, deletes and trims 8 MiB (discard=unmap: FSTRIM-STATUS), then writes 4 MiB to
# /data.bin and syncs (GUEST-SHA256, guest/rootfs/tests/blk-qcow2). After the VM:
# `qemu-img check` of the overlay (QEMU-IMG-CHECK-STATUS, 0 = no corruption and no
# leaked cluster), the chain flattened by qemu-img convert, where debugfs finds the
# file (HOST-SHA256) and `e2fsck -fn` checks the file system (E2FSCK-STATUS), and the
# backing file's checksum before and after (BASE-UNCHANGED). Then the same guest with
# snapshot=on: it runs (VMM-EXIT snapshot) and the overlay file is unchanged
# (SNAPSHOT-UNCHANGED).
dir=$(mktemp -d) || exit 1
cp "$GUEST_ROOTFS" "$dir/base.raw" || exit 1
set -- $(sha256sum "$dir/base.raw")
base_sum=$1
(cd "$dir" && "$QEMU_IMG" create -q -f qcow2 -b base.raw -F raw top.qcow2) || exit 1
run() {
    "$MICROVM" -M microvm -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
        -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/blk-qcow2" \
        -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
        -drive "id=root,file=$dir/top.qcow2,format=qcow2,if=none,discard=unmap$1" -device virtio-blk-device,drive=root
}
echo "== qcow2"
run ""
echo "VMM-EXIT qcow2 status=$?"
"$QEMU_IMG" check "$dir/top.qcow2" 2>&1
echo "QEMU-IMG-CHECK-STATUS $?"
"$QEMU_IMG" convert -O raw "$dir/top.qcow2" "$dir/flat.raw" || exit 1
"$DEBUGFS" -R "dump /data.bin $dir/data.bin" "$dir/flat.raw" 2>&1
set -- $(sha256sum "$dir/data.bin")
echo "HOST-SHA256 $1"
"$E2FSCK" -fn "$dir/flat.raw" 2>&1
echo "E2FSCK-STATUS $?"
set -- $(sha256sum "$dir/base.raw")
[ "$1" = "$base_sum" ] && echo "BASE-UNCHANGED yes" || echo "BASE-UNCHANGED no"
echo "== snapshot"
set -- $(sha256sum "$dir/top.qcow2")
top_sum=$1
TMPDIR=$dir run ",snapshot=on"
echo "VMM-EXIT snapshot status=$?"
set -- $(sha256sum "$dir/top.qcow2")
[ "$1" = "$top_sum" ] && echo "SNAPSHOT-UNCHANGED yes" || echo "SNAPSHOT-UNCHANGED no"
rm -rf "$dir"
