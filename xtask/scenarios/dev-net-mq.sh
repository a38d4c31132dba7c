# timeout: 900
# Multiqueue virtio-net: microvm creates tap mvtap0 with 4 queues (queues=4, behind
# virtio-net-device,mq=on; busybox's ip cannot make a multiqueue tap beforehand) and
# this script gives it 169.254.0.1/16 once it exists. The guest
# (guest/rootfs/tests/net-mq) enables the 4 pairs with ETHTOOL_SCHANNELS, pings, sends
# 2 MiB on each of 8 TCP connections (ports 5101-5108) and fetches 16 MiB from port
# 5002; both ends print byte counts and md5sums, the guest its per-queue packet
# counters, this side how many tap queues microvm kept attached (sysfs tx-N) before
# and after the guest enabled the pairs. The L2 guest keeps one vCPU. NET_VHOST=on
# (dev-net-mq-vhost.sh) adds vhost=on to the netdev.
if [ ! -d /rig ] && [ -z "$DEV_NET_NS" ]; then
    DEV_NET_NS=1 exec unshare -n sh "$0" "$@"
fi
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
head -c 16777216 /dev/urandom > "$dir/l2tx.bin"
set -- $(md5sum "$dir/l2tx.bin")
echo "L2-TX-MD5 $1"
for port in 5101 5102 5103 5104 5105 5106 5107 5108; do
    nc -l -p $port -e sh -c "cat > $dir/l2rx-$port.bin" &
done
nc -l -p 5002 -e cat "$dir/l2tx.bin" &
# The console goes to a file (shown at the end) that this script watches.
"$MICROVM" -M microvm -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/net-mq" \
    -chardev file,id=con0,path="$dir/guest.txt" -device virtio-serial-device -device virtconsole,chardev=con0 \
    -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root \
    -netdev tap,id=tap0,ifname=mvtap0,script=no,downscript=no,queues=4${NET_VHOST:+,vhost=$NET_VHOST} \
    -device virtio-net-device,netdev=tap0,mq=on &
vmm=$!
# Waits (up to 600 tries) for the guest to print $1, or for microvm to end; shows the
# line, or the console's end when it gives up.
guest_said() {
    i=0
    while ! grep -q "$1" "$dir/guest.txt" 2>/dev/null && kill -0 $vmm 2>/dev/null && [ $i -lt 600 ]; do
        sleep 0.2
        i=$((i + 1))
    done
    grep -m1 "$1" "$dir/guest.txt" || { echo "L2-NOT-SEEN $1"; tail -5 "$dir/guest.txt"; }
}
i=0
while [ ! -d /sys/class/net/mvtap0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
ip addr add 169.254.0.1/16 dev mvtap0 && ip link set mvtap0 up || echo "L2-TAP-SETUP failed"
tap_queues() { echo "$1 $(ls -d /sys/class/net/mvtap0/queues/tx-* 2>/dev/null | wc -l)"; }
# The guest waits 3 s after this line before it enables the other pairs.
guest_said MQ-QUEUES-PROBE
tap_queues L2-TAP-QUEUES-PROBE
guest_said NET-PING
tap_queues L2-TAP-QUEUES-SET
wait $vmm
status=$?
for port in 5101 5102 5103 5104 5105 5106 5107 5108; do
    set -- $(md5sum "$dir/l2rx-$port.bin")
    echo "L2-RX $port bytes=$(wc -c < "$dir/l2rx-$port.bin") md5=$1"
done
echo "== guest"
cat "$dir/guest.txt"
echo "== end"
kill $(jobs -p) 2>/dev/null
rm -rf "$dir"
exit $status
