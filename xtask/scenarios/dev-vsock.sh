# timeout: 600
# vhost-vsock on the kernel's /dev/vhost-vsock (the rig loads vhost_vsock): the rig
# program ($VSOCKIO serve) listens on port 5000; the guest (guest/rootfs/tests/vsock)
# connects to CID 2, both exchange 64 MiB each way and print byte counts and sums, then
# the guest opens and closes 1000 connections; both print their descriptor counts.
# Once the guest is connected, a second microvm claims the same CID and must fail with
# one line (printed between SECOND-VM-BEGIN/END, then SECOND-VM-STATUS).
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
"$VSOCKIO" serve 5000 67108864 1000 > "$dir/rig.txt" 2>&1 &
rig=$!
"$MICROVM" -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/vsock" \
    -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
    -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root \
    -device vhost-vsock-device,guest-cid=42,id=vsock0 &
vmm=$!
i=0
while ! grep -q RIG-VSOCK-ACCEPTED "$dir/rig.txt" && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
echo "MICROVM-FDS-RUNNING $(ls /proc/$vmm/fd | wc -l)"
"$MICROVM" -M microvm -m 64m -kernel "$GUEST_VMLINUX" -nodefaults \
    -device vhost-vsock-device,guest-cid=42 > "$dir/second.txt" 2>&1
second=$?
echo "SECOND-VM-BEGIN"
cat "$dir/second.txt"
echo "SECOND-VM-END"
echo "SECOND-VM-STATUS $second"
wait $rig
echo
echo "== rig"
cat "$dir/rig.txt"
wait $vmm
status=$?
rm -rf "$dir"
exit $status
