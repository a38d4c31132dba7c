# timeout: 1800
# vhost benchmark (xtask/src/bench_vhost.rs): the same guest (guest/rootfs/tests/
# bench-vhost) under microvm and QEMU's -M microvm, each with vhost-net off and on, all
# with a vhost-vsock device, virtio-fs through $VIRTIOFSD and guest RAM in a shared
# memfd; $BENCH_RUNS rounds, the four set-ups alternating within each round.
if [ ! -d /rig ] && [ -z "$BENCH_NET_NS" ]; then
    BENCH_NET_NS=1 exec unshare -n sh "$0" "$@"
fi
dir=$(mktemp -d) || exit 1
mkdir -p "$dir/share"
ip tuntap add dev mvtap0 mode tap 2>/dev/null || tunctl -t mvtap0 >/dev/null || exit 1
ip addr add 169.254.0.1/16 dev mvtap0 && ip link set mvtap0 up || exit 1
nc -ll -p 5001 -e sh -c 'cat > /dev/null' &
nc -ll -p 5002 -e head -c 67108864 /dev/zero &
append="console=ttyS0 root=/dev/vda ro quiet panic=-1 microvm.run=/tests/bench-vhost"
devices() {
    echo -object memory-backend-memfd,id=mem,size=512M,share=on \
        -drive "id=root,file=$GUEST_ROOTFS,format=raw,if=none,readonly=on" -device virtio-blk-device,drive=root \
        -device vhost-vsock-device,guest-cid=3 \
        -chardev socket,id=vfs,path="$dir/vfs.sock" -device vhost-user-fs-device,chardev=vfs,tag=share \
        -netdev tap,id=n0,ifname=mvtap0,script=no,downscript=no,vhost=$1 -device virtio-net-device,netdev=n0
}
backends() {
    rm -f "$dir/vfs.sock"
    "$VIRTIOFSD" --socket-path="$dir/vfs.sock" --shared-dir="$dir/share" --cache=auto \
        --sandbox=none --seccomp=none > /dev/null 2>&1 &
    vfsd=$!
    # Not i: shell functions share the script's variables, and i counts the rounds below.
    w=0
    while [ ! -S "$dir/vfs.sock" ] && [ $w -lt 100 ]; do sleep 0.1; w=$((w + 1)); done
    "$VSOCKIO" serve 5000 67108864 0 > /dev/null 2>&1 &
    vsk=$!
    sleep 0.2
}
# virtiofsd and vsockio end with their client; a failed guest leaves them to be killed.
reap() {
    kill $vfsd $vsk 2>/dev/null
    wait $vfsd $vsk 2>/dev/null
}
i=1
while [ $i -le "${BENCH_RUNS:-1}" ]; do
    for vhost in off on; do
        backends
        echo "== bench-io vmm=microvm-vhost-$vhost run=$i"
        "$MICROVM" -M microvm,legacy,memory-backend=mem -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults -serial stdio \
            -append "$append" $(devices $vhost)
        reap
        backends
        echo "== bench-io vmm=qemu-vhost-$vhost run=$i"
        "$QEMU" -M microvm,acpi=off,rtc=off,memory-backend=mem -accel kvm -cpu host -m 512m -smp 1 \
            -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
            -kernel "$GUEST_VMLINUX" -append "$append reboot=t" $(devices $vhost)
        reap
    done
    i=$((i + 1))
done
kill %1 %2 2>/dev/null
ip link del mvtap0 2>/dev/null
rm -rf "$dir"
