# timeout: 150
# `-M microvm,rtc=on` with Debian's cloud kernel (rtc-cmos built in): the guest runs
# guest/initramfs/tests/rtc (rtc0's name and time, an alarm through IRQ 8); its dmesg
# lines about rtc_cmos follow, for the test to check the probe found the clock.
exec "$MICROVM" -M microvm,legacy,rtc=on -m 256m -smp 1 \
    -kernel "$CLOUD_VMLINUX" -initrd "$GUEST_INITRAMFS" \
    -append "console=ttyS0 quiet panic=-1 microvm.run=/tests/rtc"
