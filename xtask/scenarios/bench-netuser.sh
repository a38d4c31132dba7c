# timeout: 7200
# -netdev user benchmark (xtask/src/bench_netuser.rs): the same guest (guest/rootfs/tests/
# bench-netuser) under microvm (passt) and QEMU's -M microvm (libslirp), $BENCH_RUNS
# rounds, alternating. Both map the gateway 10.0.2.2 to the rig's loopback, where nc
# serves ports 5001 (sink) and 5002 (64 MiB source). What passt needs: lib-passt.sh.
if [ ! -d /rig ] && [ -z "$BENCH_NET_NS" ]; then
    BENCH_NET_NS=1 exec unshare -n sh "$0" "$@"
fi
. "$SCENARIOS/lib-passt.sh"
passt_host || exit 1
# The sink sends one byte before it reads: Debian 12's passt (0.0~git20230309) counts the
# guest's SYN as acknowledged before it is, so on a connection where it never sends data
# it waits forever for an ACK that cannot advance, retransmits nothing seven times and
# resets the connection after about 24 s (fixed upstream by passt commit 4e73e9b, 2023-03-27;
# docs/dropin.md). The byte's ACK is that progress.
nc -ll -p 5001 -e sh -c 'echo; cat > /dev/null' &
nc -ll -p 5002 -e head -c 67108864 /dev/zero &
append="console=ttyS0 root=/dev/vda ro quiet panic=-1 microvm.run=/tests/bench-netuser"
disk="id=root,file=$GUEST_ROOTFS,format=raw,if=none,readonly=on"
i=1
while [ $i -le "${BENCH_RUNS:-1}" ]; do
    echo "== bench-io vmm=qemu-user run=$i"
    timeout 600 "$QEMU" -M microvm,acpi=off,rtc=off -accel kvm -cpu host -m 256m -smp 1 \
        -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
        -kernel "$GUEST_VMLINUX" -append "$append reboot=t" -drive "$disk" -device virtio-blk-device,drive=root \
        -netdev user,id=n0 -device virtio-net-device,netdev=n0
    # QEMU on the same passt microvm starts (its -netdev stream, as QEMU 7.2 connects to
    # passt): separates passt's own speed from microvm's device.
    echo "== bench-io vmm=qemu-passt run=$i"
    rm -f /tmp/passt-bench.sock
    "$PASST" --foreground --one-off --quiet --runas 65534:65534 --socket /tmp/passt-bench.sock &
    sleep 1
    timeout 600 "$QEMU" -M microvm,acpi=off,rtc=off -accel kvm -cpu host -m 256m -smp 1 \
        -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
        -kernel "$GUEST_VMLINUX" -append "$append reboot=t" -drive "$disk" -device virtio-blk-device,drive=root \
        -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/passt-bench.sock \
        -device virtio-net-device,netdev=n0
    wait $! 2>/dev/null
    echo "== bench-io vmm=microvm-user run=$i"
    timeout 600 "$MICROVM" -M microvm,legacy -m 256m -smp 1 -kernel "$GUEST_VMLINUX" \
        -nodefaults -serial stdio -append "$append" -drive "$disk" -device virtio-blk-device,drive=root \
        -netdev user,id=n0 -device virtio-net-device,netdev=n0
    i=$((i + 1))
done
kill %1 %2 2>/dev/null
passt_host_done
