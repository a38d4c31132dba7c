# timeout: 180
# `cargo xtask run`: the default guest (minimal kernel, busybox initramfs, legacy serial
# console), the acceptance command line. DEMO_SMP and DEMO_APPEND come from xtask's flags.
exec "$MICROVM" -M microvm,legacy -m 256m -smp "${DEMO_SMP:-1}" \
    -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" \
    -append "${DEMO_APPEND:-console=ttyS0 quiet panic=-1}"
