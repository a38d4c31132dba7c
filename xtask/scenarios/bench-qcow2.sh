# timeout: 2400
# qcow2 benchmark (xtask/src/bench_qcow2.rs): the disk figures of guest/rootfs/tests/bench-io
# (sequential O_DIRECT dd on /dev/vdb, 256 MiB in 1 MiB blocks then 16 MiB in 4 KiB
# blocks, write before read) with the scratch disk as a raw file and as a qcow2 image,
# under microvm and under QEMU's -M microvm, $BENCH_RUNS times each, in one rig run. The
# raw file is written full beforehand (no VMM pays for the host's first allocation of its
# pages); the qcow2 image is new for each run (64 KiB clusters, no preallocation), so its
# writes allocate clusters as a fresh cloud-image overlay's do, and its reads then read
# what was written. Both VMMs use aio=threads (QEMU's pool; microvm serves a qcow2 drive
# synchronously whatever aio= says).
dir=$(mktemp -d) || exit 1
append="console=ttyS0 root=/dev/vda ro quiet panic=-1 microvm.run=/tests/bench-io"
disks() {
    echo -drive "id=root,file=$GUEST_ROOTFS,format=raw,if=none,readonly=on" -device virtio-blk-device,drive=root \
        -drive "id=scratch,file=$dir/scratch.$1,format=$1,if=none,aio=threads" -device virtio-blk-device,drive=scratch
}
scratch() {
    rm -f "$dir/scratch.raw" "$dir/scratch.qcow2"
    if [ "$1" = raw ]; then
        dd if=/dev/zero of="$dir/scratch.raw" bs=1M count=256 2>/dev/null || exit 1
    else
        "$QEMU_IMG" create -q -f qcow2 "$dir/scratch.qcow2" 256M || exit 1
    fi
}
i=1
while [ $i -le "${BENCH_RUNS:-1}" ]; do
    # Every other run in reverse order, so a drift of the rig favours no format.
    formats="raw qcow2"
    [ $((i % 2)) = 0 ] && formats="qcow2 raw"
    for format in $formats; do
        scratch "$format"
        echo "== bench-io vmm=microvm-$format run=$i"
        "$MICROVM" -M microvm,legacy -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults -serial stdio \
            -append "$append" $(disks "$format")
        [ "$format" = qcow2 ] && { "$QEMU_IMG" check -q "$dir/scratch.qcow2" && echo "CHECK-CLEAN microvm run=$i"; }
        scratch "$format"
        echo "== bench-io vmm=qemu-$format run=$i"
        "$QEMU" -M microvm,acpi=off,rtc=off -accel kvm -cpu host -m 512m -smp 1 \
            -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
            -kernel "$GUEST_VMLINUX" -append "$append reboot=t" $(disks "$format") ||
            echo "QEMU-FAILED format=$format"
    done
    i=$((i + 1))
done
rm -rf "$dir"
