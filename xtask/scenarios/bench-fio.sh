# timeout: 1800
# In-guest fio benchmark (xtask/src/bench_fio.rs): Debian's cloud kernel with
# FIO_INITRAMFS runs guest/fio/bench-fio on a 256 MiB raw scratch disk (/dev/vda), under
# microvm and under QEMU's -M microvm, alternately, $BENCH_RUNS times each, for each
# disk engine of $BENCH_AIO (aio= modes; default threads and io_uring). The guest's own
# engine is fio's io_uring with O_DIRECT in every case. 1 vCPU, 512 MiB, ISA serial
# console, acpi=on (Debian's virtio_mmio finds its devices only in the DSDT); QEMU has no
# i8042, so its guest resets by triple fault (reboot=t).
# Each VMM run gets a scratch image written full beforehand (see bench-io.sh: a first
# write into a sparse tmpfs file pays for the host's page allocation).
dir=$(mktemp -d) || exit 1
append="console=ttyS0 quiet panic=-1 fio.seconds=${FIO_SECONDS:-5} microvm.run=/tests/bench-fio"
scratch() {
    rm -f "$dir/scratch.img"
    dd if=/dev/zero of="$dir/scratch.img" bs=1M count=256 2>/dev/null || exit 1
}
disk() {
    echo -drive "id=scratch,file=$dir/scratch.img,format=raw,if=none,aio=$1" -device virtio-blk-device,drive=scratch
}
i=1
while [ $i -le "${BENCH_RUNS:-1}" ]; do
    engines=${BENCH_AIO:-threads io_uring}
    # Every other run takes the engines in reverse order (see bench-io.sh).
    if [ $((i % 2)) = 0 ]; then
        reversed=
        for e in $engines; do reversed="$e $reversed"; done
        engines=$reversed
    fi
    for aio in $engines; do
        scratch
        echo "== bench-fio vmm=microvm-$aio run=$i"
        "$MICROVM" -M microvm,legacy,acpi=on -m 512m -smp 1 -kernel "$CLOUD_VMLINUX" -initrd "$FIO_INITRAMFS" \
            -nodefaults -serial stdio -append "$append" $(disk "$aio")
        scratch
        echo "== bench-fio vmm=qemu-$aio run=$i"
        "$QEMU" -M microvm,acpi=on,rtc=off -accel kvm -cpu host -m 512m -smp 1 \
            -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
            -kernel "$CLOUD_VMLINUX" -initrd "$FIO_INITRAMFS" -append "$append reboot=t" $(disk "$aio") ||
            echo "QEMU-FAILED aio=$aio"
    done
    i=$((i + 1))
done
rm -rf "$dir"
