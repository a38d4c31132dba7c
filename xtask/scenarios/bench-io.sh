# timeout: 1800
# I/O benchmark (xtask/src/bench_io.rs): the same guest (minimal kernel, ext4 rootfs
# read-only on vda, a 256 MiB scratch disk on vdb, virtio-net on tap mvtap0 with the
# rig side at 169.254.0.1) runs guest/rootfs/tests/bench-io under microvm and under
# QEMU's -M microvm, alternately, $BENCH_RUNS times each, for each scratch-disk engine
# of $BENCH_AIO (aio= modes; default threads and io_uring). Both use the ISA serial
# console; QEMU has no i8042, so its guest resets by triple fault (reboot=t).
# Each VMM run gets a scratch image written full beforehand, and the engines' order
# alternates from run to run (lib-bench.sh says why).
if [ ! -d /rig ] && [ -z "$BENCH_NET_NS" ]; then
    BENCH_NET_NS=1 exec unshare -n sh "$0" "$@"
fi
. "$SCENARIOS/lib-bench.sh"
dir=$(mktemp -d) || exit 1
ip tuntap add dev mvtap0 mode tap 2>/dev/null || tunctl -t mvtap0 >/dev/null || exit 1
ip addr add 169.254.0.1/16 dev mvtap0 && ip link set mvtap0 up || exit 1
nc -ll -p 5001 -e sh -c 'cat > /dev/null' &
nc -ll -p 5002 -e head -c 67108864 /dev/zero &
append="console=ttyS0 root=/dev/vda ro quiet panic=-1 microvm.run=/tests/bench-io"
# The scratch disk's engine: $1 is an aio= mode (docs/dropin.md), the same for both VMMs.
disks() {
    echo -drive "id=root,file=$GUEST_ROOTFS,format=raw,if=none,readonly=on" -device virtio-blk-device,drive=root \
        -drive "id=scratch,file=$dir/scratch.img,format=raw,if=none,aio=$1" -device virtio-blk-device,drive=scratch
}
i=1
while [ $i -le "${BENCH_RUNS:-1}" ]; do
    for aio in $(engines_of_run $i); do
        scratch
        echo "== bench-io vmm=microvm-$aio run=$i"
        "$MICROVM" -M microvm,legacy -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults -serial stdio \
            -append "$append" $(disks "$aio") \
            -netdev tap,id=n0,ifname=mvtap0,script=no,downscript=no -device virtio-net-device,netdev=n0
        scratch
        echo "== bench-io vmm=qemu-$aio run=$i"
        "$QEMU" -M microvm,acpi=off,rtc=off -accel kvm -cpu host -m 512m -smp 1 \
            -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
            -kernel "$GUEST_VMLINUX" -append "$append reboot=t" $(disks "$aio") \
            -netdev tap,id=n0,ifname=mvtap0,script=no,downscript=no,vhost=off -device virtio-net-device,netdev=n0 ||
            echo "QEMU-FAILED aio=$aio"
        rm -f "$dir/scratch.img"
    done
    i=$((i + 1))
done
kill %1 %2 2>/dev/null
ip link del mvtap0 2>/dev/null
rm -rf "$dir"
