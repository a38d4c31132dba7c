# timeout: 300
# The MMDS reached from a Linux guest (xtask/tests/mmds.rs; issue 17, "MMDS V2: token then
# GET from the guest"): microvm started as `firecracker`, configured with curl
# --unix-socket: boot source (the minimal kernel, the rootfs's /tests/mmds as the guest's
# program), root drive, one vCPU, network interface eth0 (a tap microvm opens; the MMDS's
# frames never reach it), PUT /mmds/config V2 on eth0, PUT /mmds with a value, then
# InstanceStart and a PATCH /mmds after boot. The guest prints what it read; it then
# reboots, which ends microvm.
# Lines: "FC-CALL <what> <http status> <body>", "FC-STORED <value>", "FC-EXIT status=N",
# then "== console" and the guest's console, then "== metrics" and the metrics file
# (PUT /metrics before the start: Firecracker's JSON lines, the `mmds` section's counts).
. "$SCENARIOS/lib-fc.sh"
fc_dir
put() {
    call "$1" -X "${3:-PUT}" "http://localhost/$1" -H 'Content-Type: application/json' -d "$2"
}
fc_start "$dir/console.txt"
value="s3cr3t-$$-$(date +%s)"
echo "FC-STORED $value"
put boot-source "{\"kernel_image_path\": \"$GUEST_VMLINUX\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off quiet microvm.run=/tests/mmds\"}"
put drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$dir/rootfs.ext4\", \"is_root_device\": true, \"is_read_only\": false}"
put machine-config '{"vcpu_count": 1, "mem_size_mib": 256}'
put network-interfaces/eth0 '{"iface_id": "eth0", "guest_mac": "06:00:AC:10:00:02", "host_dev_name": "tap0"}'
put mmds/config '{"version": "V2", "network_interfaces": ["eth0"]}'
put mmds "{\"latest\": {\"meta-data\": {\"secret\": \"$value\", \"zone\": \"rig-a\"}}}"
put metrics "{\"metrics_path\": \"$dir/metrics.json\"}"
put actions '{"action_type": "InstanceStart"}'
put mmds '{"latest": {"late": "patched-after-boot"}}' PATCH
call mmds-get -X GET 'http://localhost/mmds'
i=0
while kill -0 $vmm 2>/dev/null && [ $i -lt 2400 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 $vmm 2>/dev/null
wait $vmm
echo "FC-EXIT status=$?"
echo "== console"
cat "$dir/console.txt"
echo "== metrics"
cat "$dir/metrics.json"
rm -rf "$dir"
