# timeout: 1500
# `cargo xtask bench`: BENCH_RUNS rounds, 1 vCPU, 256 MiB, initramfs, `quiet`. Each round:
# the minimal kernel with microvm and QEMU -M microvm, then Debian's cloud kernel (PCI,
# ACPI) with those two and QEMU -M q35 (the proposal's comparison), then the cloud kernel
# again with both microvm machines given a CMOS clock (rtc=on; q35 always has one). Per boot:
#   @@BENCH kernel=<minimal|cloud|cloud-rtc> vmm=<microvm|qemu|q35> run=<i> ready_us=<exec to marker> status=<s>
# and after microvm's `@@BENCH-TRACE <-trace-boot-json>`. Times: "now at N nsecs" of
# /proc/timer_list (CLOCK_MONOTONIC, read with no fork; busybox date has no %N).
runs=${BENCH_RUNS:-10}
stamp() { { read -r _; read -r _; read -r _ _ T _; } < /proc/timer_list; }

# Reads the console; writes the time the marker line arrived (0 if never) and the last line.
watch() {
    R=0
    while IFS= read -r line; do
        case "$line" in *MICROVM-GUEST-READY*) stamp; R=$T ;; esac
        [ -n "$line" ] && L=$line
    done
    echo "$R" > /tmp/bench-ready
    echo "$L" > /tmp/bench-last
}

# boot KERNEL_NAME VMM_NAME RUN command...: runs the VMM (killed after 60 s), console
# through watch.
boot() {
    k=$1 v=$2 i=$3; shift 3
    rm -f /tmp/bench-trace.json
    stamp; t0=$T
    { timeout -s KILL 60 "$@" 2>&1; echo "status=$?" > /tmp/bench-status; } | watch
    echo "@@BENCH kernel=$k vmm=$v run=$i ready_us=$((($(cat /tmp/bench-ready) - t0) / 1000)) $(cat /tmp/bench-status)"
    grep -q '^status=0$' /tmp/bench-status || echo "@@BENCH-FAIL $k $v: $(cat /tmp/bench-last)"
    [ "$v" = microvm ] && echo "@@BENCH-TRACE $(cat /tmp/bench-trace.json 2>/dev/null)"
}

A="console=ttyS0 quiet panic=-1"
MV="-m 256m -smp 1 -initrd $GUEST_INITRAMFS"
# QEMU has no i8042 on microvm: the guest resets by triple fault, which -no-reboot ends.
QV="-accel kvm -cpu host -m 256m -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot -initrd $GUEST_INITRAMFS"
i=0
while [ "$i" -lt "$runs" ]; do
    boot minimal microvm $i "$MICROVM" -M microvm,legacy $MV -trace-boot-json /tmp/bench-trace.json \
        -kernel "$GUEST_VMLINUX" -append "$A"
    boot minimal qemu $i "$QEMU" -M microvm,acpi=off,rtc=off $QV -kernel "$GUEST_VMLINUX" -append "$A reboot=t"
    boot cloud microvm $i "$MICROVM" -M microvm,legacy $MV -trace-boot-json /tmp/bench-trace.json \
        -kernel "$CLOUD_VMLINUX" -append "$A"
    boot cloud qemu $i "$QEMU" -M microvm,acpi=off,rtc=off $QV -kernel "$CLOUD_VMLINUX" -append "$A reboot=t"
    # One failure is enough: each can cost the whole 60 s.
    if [ "$i" = 0 ] || grep -q '^status=0$' /tmp/bench-q35; then
        boot cloud q35 $i "$QEMU" -M q35 $QV -kernel "$CLOUD_VMLINUZ" -append "$A reboot=t"
        cp /tmp/bench-status /tmp/bench-q35
    fi
    boot cloud-rtc microvm $i "$MICROVM" -M microvm,legacy,rtc=on $MV -trace-boot-json /tmp/bench-trace.json \
        -kernel "$CLOUD_VMLINUX" -append "$A"
    boot cloud-rtc qemu $i "$QEMU" -M microvm,acpi=off,rtc=on $QV -kernel "$CLOUD_VMLINUX" -append "$A reboot=t"
    i=$((i + 1))
done
