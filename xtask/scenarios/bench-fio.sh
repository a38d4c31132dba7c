# timeout: 1800
# In-guest fio benchmark (xtask/src/bench_fio.rs): Debian's cloud kernel with
# FIO_INITRAMFS runs guest/fio/bench-fio on a 256 MiB raw scratch disk (/dev/vda), under
# microvm and under QEMU's -M microvm, alternately, $BENCH_RUNS times each, for each
# disk engine of $BENCH_AIO (aio= modes; default threads and io_uring). The guest's own
# engine is fio's io_uring with O_DIRECT in every case. 1 vCPU, 512 MiB, ISA serial
# console, acpi=on (Debian's virtio_mmio finds its devices only in the DSDT); QEMU has no
# i8042, so its guest resets by triple fault (reboot=t).
# Each VMM run gets a scratch image written full beforehand, and the engines' order
# alternates from run to run (lib-bench.sh says why).
# $FIO_JOBS (e.g. randread-4k-qd1,randread-4k-qd32) runs only those jobs. With
# $MICROVM_BASELINE (another microvm binary, packed by xtask when the host's environment
# names one) each run also runs it, as vmm microvm-baseline-<aio>, just before microvm:
# old and new builds alternate in one rig run.
. "$SCENARIOS/lib-bench.sh"
dir=$(mktemp -d) || exit 1
append="console=ttyS0 quiet panic=-1 fio.seconds=${FIO_SECONDS:-5} ${FIO_JOBS:+fio.jobs=$FIO_JOBS }microvm.run=/tests/bench-fio"
disk() {
    echo -drive "id=scratch,file=$dir/scratch.img,format=raw,if=none,aio=$1" -device virtio-blk-device,drive=scratch
}
microvm() { # BINARY NAME AIO
    scratch
    echo "== bench-fio vmm=$2-$3 run=$i"
    "$1" -M microvm,legacy,acpi=on -m 512m -smp 1 -kernel "$CLOUD_VMLINUX" -initrd "$FIO_INITRAMFS" \
        -nodefaults -serial stdio -append "$append" $(disk "$3")
}
i=1
while [ $i -le "${BENCH_RUNS:-1}" ]; do
    for aio in $(engines_of_run $i); do
        if [ -n "${MICROVM_BASELINE:-}" ]; then
            microvm "$MICROVM_BASELINE" microvm-baseline "$aio"
        fi
        microvm "$MICROVM" microvm "$aio"
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
