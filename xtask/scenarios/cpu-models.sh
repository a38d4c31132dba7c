# timeout: 300
# Named CPU models with real Linux (issue 18, acceptance 1; xtask/tests/cpu_models.rs): the
# minimal kernel prints its /proc/cpuinfo under -cpu host, EPYC, EPYC,-sse4a and qemu64.
# The rig's CPU is QEMU's EPYC with +svm,+npt (xtask/src/rig.rs), so "host" there is the
# model plus what the rig's KVM adds. Then EPYC-Rome, whose features this host partly
# lacks: its warnings, and with enforce its error.
boot() {
    "$MICROVM" -M microvm -m 256m -smp 1 -cpu "$1" -kernel "$GUEST_VMLINUX" -nodefaults \
        -append "console=hvc0 root=/dev/vda ro quiet panic=-1 microvm.run=cat</proc/cpuinfo" \
        -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
        -drive id=root,file="$GUEST_ROOTFS",format=raw,if=none,readonly=on -device virtio-blk-device,drive=root
}
for cpu in host EPYC EPYC,-sse4a qemu64 EPYC-Rome; do
    echo "== CPU $cpu"
    boot "$cpu" || exit $?
done
echo "== CPU EPYC-Rome,enforce"
boot EPYC-Rome,enforce
echo "ENFORCE-EXIT $?"
