# timeout: 420
# virtio-net on a tap: L2 (or a fresh network namespace in direct mode) owns
# 169.254.0.1/16 on tap mvtap0 (link-local, never routed); the guest
# (guest/rootfs/tests/net) takes 169.254.0.2, pings, sends 64 MiB to port 5001 and
# fetches 64 MiB from port 5002. Both ends print byte counts and md5sums.
# NET_VHOST=on (dev-net-vhost.sh) adds vhost=on to the netdev.
if [ ! -d /rig ] && [ -z "$DEV_NET_NS" ]; then
    DEV_NET_NS=1 exec unshare -n sh "$0" "$@"
fi
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
ip tuntap add dev mvtap0 mode tap 2>/dev/null || tunctl -t mvtap0 >/dev/null || exit 1
ip addr add 169.254.0.1/16 dev mvtap0 && ip link set mvtap0 up || exit 1
head -c 67108864 /dev/urandom > "$dir/l2tx.bin"
set -- $(md5sum "$dir/l2tx.bin")
echo "L2-TX-MD5 $1"
# -e: the program gets the connection; the peer's EOF ends it cleanly.
nc -l -p 5001 -e sh -c "cat > $dir/l2rx.bin" &
nc -l -p 5002 -e cat "$dir/l2tx.bin" &
"$MICROVM" -M microvm -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/net" \
    -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
    -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root \
    -netdev tap,id=tap0,ifname=mvtap0,script=no,downscript=no${NET_VHOST:+,vhost=$NET_VHOST} \
    -device virtio-net-device,netdev=tap0
status=$?
echo "L2-RX-BYTES $(wc -c < "$dir/l2rx.bin")"
set -- $(md5sum "$dir/l2rx.bin")
echo "L2-RX-MD5 $1"
kill %1 %2 2>/dev/null
ip link del mvtap0 2>/dev/null
rm -rf "$dir"
exit $status
