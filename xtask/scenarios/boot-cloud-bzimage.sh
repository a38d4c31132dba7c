# timeout: 120
# Debian's stock cloud kernel as shipped (bzImage, 64-bit boot protocol entry), same
# initramfs. A distribution kernel probes much more hardware than the minimal one.
exec "$MICROVM" -M microvm,legacy -m 256m -smp 1 \
    -kernel "$CLOUD_VMLINUZ" -initrd "$GUEST_INITRAMFS" \
    -append "console=ttyS0 quiet panic=-1"
