# timeout: 420
# Drive rate limits measured by a real guest (xtask/tests/ratelimit.rs): each boot limits
# the 48 MiB scratch disk /dev/vdb one way, and guest/rootfs/tests/ratelimit prints the
# bytes and requests per second its O_DIRECT reads got. Through QEMU's command line
# (throttling.bps-total, the legacy iops=) and through Firecracker's config file
# (rate_limiter bandwidth, ops), all 10 MB/s or 100 requests/s.
dir=$(mktemp -d) || exit 1
dd if=/dev/zero of="$dir/scratch.img" bs=1M count=48 2>/dev/null || exit 1
append="console=ttyS0 ro quiet panic=-1 microvm.run=/tests/ratelimit"
qemu_line() {
    "$MICROVM" -M microvm,legacy -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults -serial stdio \
        -append "root=/dev/vda $append" \
        -drive "id=root,file=$GUEST_ROOTFS,format=raw,if=none,readonly=on" -device virtio-blk-device,drive=root \
        -drive "id=scratch,file=$dir/scratch.img,format=raw,if=none,$1" -device virtio-blk-device,drive=scratch
}
firecracker_config() {
    cat > "$dir/vm.json" <<JSON
{
  "boot-source": { "kernel_image_path": "$GUEST_VMLINUX", "boot_args": "$append reboot=k" },
  "drives": [
    { "drive_id": "root", "path_on_host": "$GUEST_ROOTFS", "is_root_device": true, "is_read_only": true },
    { "drive_id": "scratch", "path_on_host": "$dir/scratch.img", "is_root_device": false,
      "is_read_only": false, "rate_limiter": $1 }
  ],
  "machine-config": { "vcpu_count": 1, "mem_size_mib": 256 }
}
JSON
    "$MICROVM" --no-api --config-file "$dir/vm.json"
}
echo "== qemu bps"
qemu_line throttling.bps-total=10000000
echo "VMM-EXIT-qemu-bps status=$?"
echo "== qemu iops"
qemu_line iops=100
echo "VMM-EXIT-qemu-iops status=$?"
echo "== firecracker bps"
firecracker_config '{ "bandwidth": { "size": 1000000, "refill_time": 100 } }'
echo "VMM-EXIT-firecracker-bps status=$?"
echo "== firecracker iops"
firecracker_config '{ "ops": { "size": 10, "refill_time": 100 } }'
echo "VMM-EXIT-firecracker-iops status=$?"
rm -rf "$dir"
