# timeout: 300
# Firecracker's getting-started guide against microvm (xtask/tests/firecracker.rs; issue 17
# acceptance 1): the binary started as `firecracker` (a link) with --api-sock, then the
# guide's curl --unix-socket calls in its order: boot source (the minimal kernel), the root
# drive (a copy of the rootfs image), machine config, a network interface (a tap microvm
# opens), InstanceStart. The guest's console (microvm's stdout) shows its ready marker;
# `SendCtrlAltDel` makes it reboot, which ends microvm. Then `--no-api --config-file` with
# the same configuration boots the same guest, which reboots by itself.
# Lines: "FC-CALL <what> <http status>", "FC-READY <marker line>", "FC-EXIT api status=N",
# "FC-EXIT config-file status=N", then "== console api" and "== console config-file".
. "$SCENARIOS/lib-fc.sh"
fc_dir
fc_start "$dir/console-api.txt"
# `cat` reads the silent console: the guest waits for Ctrl-Alt-Delete.
ARGS="console=ttyS0 reboot=k panic=1 pci=off quiet microvm.run=cat"
call boot-source -X PUT 'http://localhost/boot-source' -H 'Accept: application/json' \
    -H 'Content-Type: application/json' \
    -d "{\"kernel_image_path\": \"$GUEST_VMLINUX\", \"boot_args\": \"$ARGS\"}"
call drives -X PUT 'http://localhost/drives/rootfs' -H 'Accept: application/json' \
    -H 'Content-Type: application/json' \
    -d "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$dir/rootfs.ext4\", \"is_root_device\": true, \"is_read_only\": false}"
call machine-config -X PUT 'http://localhost/machine-config' -H 'Accept: application/json' \
    -H 'Content-Type: application/json' -d '{"vcpu_count": 1, "mem_size_mib": 256}'
call network-interfaces -X PUT 'http://localhost/network-interfaces/eth0' -H 'Accept: application/json' \
    -H 'Content-Type: application/json' \
    -d '{"iface_id": "eth0", "guest_mac": "06:00:AC:10:00:02", "host_dev_name": "tap0"}'
call InstanceStart -X PUT 'http://localhost/actions' -H 'Accept: application/json' \
    -H 'Content-Type: application/json' -d '{"action_type": "InstanceStart"}'
i=0
while ! grep -q MICROVM-GUEST-READY "$dir/console-api.txt" && kill -0 $vmm 2>/dev/null && [ $i -lt 1200 ]; do
    sleep 0.1
    i=$((i + 1))
done
echo "FC-READY $(grep MICROVM-GUEST-READY "$dir/console-api.txt")"
call vm-config -X GET 'http://localhost/vm/config' -H 'Accept: application/json'
sleep 0.5
call SendCtrlAltDel -X PUT 'http://localhost/actions' -H 'Accept: application/json' \
    -H 'Content-Type: application/json' -d '{"action_type": "SendCtrlAltDel"}'
i=0
while kill -0 $vmm 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 $vmm 2>/dev/null
wait $vmm
echo "FC-EXIT api status=$?"

cat > "$dir/vm.json" <<JSON
{
  "boot-source": { "kernel_image_path": "$GUEST_VMLINUX", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off quiet" },
  "drives": [{ "drive_id": "rootfs", "path_on_host": "$dir/rootfs.ext4", "is_root_device": true, "is_read_only": false }],
  "machine-config": { "vcpu_count": 1, "mem_size_mib": 256 },
  "network-interfaces": [{ "iface_id": "eth0", "guest_mac": "06:00:AC:10:00:02", "host_dev_name": "tap0" }]
}
JSON
timeout -s KILL 120 "$dir/firecracker" --no-api --config-file "$dir/vm.json" > "$dir/console-config.txt" 2>&1
echo "FC-EXIT config-file status=$?"
echo "== console api"
cat "$dir/console-api.txt"
echo "== console config-file"
cat "$dir/console-config.txt"
rm -rf "$dir"
