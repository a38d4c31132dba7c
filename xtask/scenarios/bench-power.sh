# timeout: 1500
# `cargo xtask bench --only power`: Debian's cloud kernel (ELF, initramfs, 1 vCPU, 256 MiB,
# one 1 MiB virtio-blk disk so there is a device to describe) under microvm with acpi=on
# (the DSDT describes the disk; the guest ends with `poweroff -f`, which ACPI turns into S5),
# microvm with acpi=off (the virtio_mmio.device= entry on the command line; without ACPI the
# guest cannot power off, so it ends with `reboot -f`), the same with rtc=on (acpi=on also
# tells the kernel there is no CMOS clock, sparing it a slow probe; this row separates the
# two effects), and QEMU's -M microvm,acpi=on (`poweroff -f`). BENCH_RUNS rounds. Per boot:
#   @@POWER vmm=<microvm|qemu> acpi=<on|off|off,rtc=on> run=<i> ready_us=<exec to marker> exit_us=<exec to exit> status=<s>
runs=${BENCH_RUNS:-10}
stamp() { { read -r _; read -r _; read -r _ _ T _; } < /proc/timer_list; }
watch() {
    R=0
    while IFS= read -r line; do
        case "$line" in *MICROVM-GUEST-READY*) stamp; R=$T ;; esac
    done
    echo "$R" > /tmp/power-ready
}
disk=/tmp/power-disk.img
dd if=/dev/zero of=$disk bs=1048576 count=1 2>/dev/null
boot() {
    v=$1 a=$2 i=$3; shift 3
    stamp; t0=$T
    { timeout -s KILL 60 "$@" 2>&1; echo "status=$?" > /tmp/power-status; } | watch
    stamp; t1=$T
    echo "@@POWER vmm=$v acpi=$a run=$i ready_us=$((($(cat /tmp/power-ready) - t0) / 1000)) exit_us=$(((t1 - t0) / 1000)) $(cat /tmp/power-status)"
}
A="console=ttyS0 quiet panic=-1"
D="-drive id=d0,file=$disk,format=raw,if=none -device virtio-blk-device,drive=d0"
MV="-m 256m -smp 1 -initrd $GUEST_INITRAMFS -kernel $CLOUD_VMLINUX $D"
QV="-accel kvm -cpu host -m 256m -smp 1 -nodefaults -no-user-config -nographic -serial stdio -initrd $GUEST_INITRAMFS -kernel $CLOUD_VMLINUX $D"
i=0
while [ "$i" -lt "$runs" ]; do
    boot microvm on $i "$MICROVM" -M microvm,legacy,acpi=on $MV -append "$A microvm.end=poweroff"
    boot microvm off $i "$MICROVM" -M microvm,legacy,acpi=off $MV -append "$A"
    boot microvm off,rtc=on $i "$MICROVM" -M microvm,legacy,acpi=off,rtc=on $MV -append "$A"
    boot qemu on $i "$QEMU" -M microvm,acpi=on,rtc=off $QV -append "$A microvm.end=poweroff"
    i=$((i + 1))
done
