# timeout: 60
# The minimal 6.12 kernel (PVH ELF) with the busybox initramfs, one vCPU, legacy serial
# console. The guest prints MICROVM-GUEST-READY and reboots: microvm must exit 0.
exec "$MICROVM" -M microvm,legacy -m 256m -smp 1 \
    -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" \
    -append "console=ttyS0 quiet panic=-1"
