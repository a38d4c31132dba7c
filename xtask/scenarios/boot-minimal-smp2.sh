# timeout: 60
# As boot-minimal-smp1 with two vCPUs: the guest must count cpus=2.
exec "$MICROVM" -M microvm,legacy -m 256m -smp 2 \
    -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" \
    -append "console=ttyS0 quiet panic=-1"
