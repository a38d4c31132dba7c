# timeout: 900
# Issue 22, acceptance 1 (VMGenID half): Debian's cloud kernel under -M microvm,acpi=on
# with -device vmgenid (xtask/tests/vmgenid.rs). Boot: the guest (guest/initramfs/tests/
# vmgenid) says which device its vmgenid driver bound and prints /dev/urandom bytes twice
# a second; the host stops it, saves it (migrate file:) and quits. Then two clones restore
# the one snapshot, one after the other, each printing on; the test compares their bytes
# at the same line. QMP answers (query-vm-generation-id) follow each run's console. Then
# the control: the same without -device vmgenid (boot, snapshot, two clones), whose
# clones' bytes the test reports without asserting on them (that is the kernel's affair).
trap '' PIPE
. "$SCENARIOS/lib-qmp.sh"
dir=$(mktemp -d) || exit 1
vm() {
    name=$1; shift
    # The console file exists before microvm does: the waits below count its lines at once
    # (a missing file made the count empty, the wait end, and QMP connect too early).
    : > "$dir/console.txt"
    "$MICROVM" -M microvm,legacy,acpi=on -m 256m -smp 1 -kernel "$CLOUD_VMLINUZ" -initrd "$CLOUD_INITRAMFS" \
        -append "console=ttyS0 quiet panic=-1 microvm.run=/tests/vmgenid microvm.end=halt" \
        $vgen -qmp unix:"$dir/$name.sock",server=on,wait=off "$@" >> "$dir/console.txt" 2>&1 &
    vmm=$!
}
# finish NAME: quits over QMP after asking for the generation ID, prints the run's output.
finish() {
    qmp '{"execute": "query-vm-generation-id", "id": "genid"}'
    qmp_quit_run "$1"
}

# snapshot_and_clone PREFIX: boots, saves after three lines, restores two clones.
snapshot_and_clone() {
    echo "== boot$1"
    vm boot
    console_wait "VMGENID-URANDOM n=3 " 3000
    qmp_connect "$dir/boot.sock"
    qmp '{"execute": "stop"}'
    qmp "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:$dir/vm.snap\"}}"
    finish boot$1
    for c in 1 2; do
        echo "== restore $1$c"
        vm clone$c -incoming "file:$dir/vm.snap"
        # Four more lines: two seconds of guest time after the restore.
        i=0
        while [ "$(grep -c VMGENID-URANDOM "$dir/console.txt")" -lt 4 ] && [ $i -lt 1200 ] && kill -0 $vmm 2>/dev/null; do
            sleep 0.1
            i=$((i + 1))
        done
        qmp_connect "$dir/clone$c.sock"
        finish clone$1$c
    done
    rm -f "$dir"/*.sock "$dir/vm.snap"
}
vgen="-device vmgenid"
snapshot_and_clone ""
vgen=""
snapshot_and_clone "-control"
rm -rf "$dir"
