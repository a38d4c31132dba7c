# timeout: 60
# Reference: QEMU's own -M microvm boots the same minimal guest. If this passes and the
# microvm scenarios fail, the fault is in microvm, not in the images or the rig.
# QEMU 7.2 has no "legacy" property (its ISA serial is on by default) and, with ACPI on,
# does not put virtio_mmio.device= on the command line of a no-ACPI kernel: acpi=off.
# It has no i8042 either, so the guest must reset by triple fault (reboot=t), which
# -no-reboot turns into QEMU exiting with status 0.
exec "$QEMU" -M microvm,acpi=off,rtc=off -accel kvm -cpu host -m 256m -smp 2 \
    -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
    -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" \
    -append "console=ttyS0 quiet panic=-1 reboot=t"
