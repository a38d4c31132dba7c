# timeout: 150
# -trace-boot with both kernels, one after the other, each under a "== boot-trace KERNEL"
# line: the minimal kernel (boot-trace.patch: writes 6 and 7 itself) should report all
# four points; Debian's cloud kernel (unpatched) only the initramfs's 7, so
# linux_start_kernel is missing.
echo "== boot-trace minimal"
"$MICROVM" -M microvm,legacy -m 256m -smp 1 -trace-boot \
    -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" \
    -append "console=ttyS0 quiet panic=-1" || exit
echo "== boot-trace cloud"
exec "$MICROVM" -M microvm,legacy -m 256m -smp 1 -trace-boot \
    -kernel "$CLOUD_VMLINUX" -initrd "$GUEST_INITRAMFS" \
    -append "console=ttyS0 quiet panic=-1"
