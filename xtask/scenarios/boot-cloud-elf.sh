# timeout: 120
# Debian's stock cloud kernel as the ELF vmlinux extracted from its bzImage, booted
# through its PVH entry note.
exec "$MICROVM" -M microvm,legacy -m 256m -smp 1 \
    -kernel "$CLOUD_VMLINUX" -initrd "$GUEST_INITRAMFS" \
    -append "console=ttyS0 quiet panic=-1"
