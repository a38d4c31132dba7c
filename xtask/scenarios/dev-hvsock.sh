# timeout: 1200
# Firecracker's hybrid vsock (issue 17), microvm in Firecracker mode (--no-api
# --config-file): AF_VSOCK in the guest, Unix sockets in the rig, no /dev/vhost-vsock.
# Guest-initiated: the rig program ($VSOCKIO serve-unix) listens on <uds_path>_5000, the
# guest (guest/rootfs/tests/hvsock) connects to CID 2 port 5000; both exchange 64 MiB each
# way and print byte counts and sums, then the guest opens and closes 1000 connections.
# Host-initiated: the guest listens on port 6000 and the rig ($VSOCKIO connect-unix)
# connects to uds_path with CONNECT 6000; the same exchange and 1000 cycles. microvm's
# descriptor count is printed during the first connection and after each side's cycles
# (the guest then waits for one last connection to port 6001 before it ends the VM).
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
uds="$dir/v.sock"
cat > "$dir/vm.json" <<JSON
{
  "boot-source": {
    "kernel_image_path": "$GUEST_VMLINUX",
    "boot_args": "console=ttyS0 quiet panic=-1 microvm.run=/tests/hvsock"
  },
  "drives": [{"drive_id": "root", "path_on_host": "$dir/test.img", "is_root_device": true, "is_read_only": false}],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
  "vsock": {"guest_cid": 3, "uds_path": "$uds"}
}
JSON
"$VSOCKIO" serve-unix "${uds}_5000" 67108864 1000 > "$dir/rig.txt" 2>&1 &
rig=$!
# The guest's console goes to a file, shown whole at the end: the serial port writes a
# byte at a time, which the lines this script prints meanwhile would split.
"$MICROVM" --no-api --config-file "$dir/vm.json" > "$dir/guest.txt" &
vmm=$!
i=0
while ! grep -q RIG-HVSOCK-ACCEPTED "$dir/rig.txt" && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
echo "MICROVM-FDS-CONNECTED $(ls /proc/$vmm/fd | wc -l)"
wait $rig
echo "MICROVM-FDS-GUEST-CYCLES $(ls /proc/$vmm/fd | wc -l)"
"$VSOCKIO" connect-unix "$uds" 6000 67108864 1000 > "$dir/rig2.txt" 2>&1
sleep 1
echo "MICROVM-FDS-HOST-CYCLES $(ls /proc/$vmm/fd | wc -l)"
# The guest waits on port 6001 for this one before it ends the VM.
"$VSOCKIO" connect-unix "$uds" 6001 0 0 > /dev/null 2>&1
wait $vmm
status=$?
echo
echo "== guest"
cat "$dir/guest.txt"
echo
echo "== rig"
cat "$dir/rig.txt" "$dir/rig2.txt"
rm -rf "$dir"
exit $status
