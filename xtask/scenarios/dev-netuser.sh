# timeout: 420
# -netdev user: microvm starts passt, the real guest (guest/rootfs/tests/netuser) takes
# its address by DHCP, resolves rig.test through the DNS address the lease names (the
# rig's resolver is dnsone, a one-name DNS server on 127.0.0.1, which passt offers the
# guest as the gateway address), reaches the rig's server on port 5001 through the
# gateway address, and serves port 22, which a rig client reaches through
# hostfwd=tcp:127.0.0.1:2222-:22. What passt needs from the rig: lib-passt.sh.
# In direct mode all of this happens in fresh network and mount namespaces.
if [ ! -d /rig ] && [ -z "$DEV_NET_NS" ]; then
    DEV_NET_NS=1 exec unshare -n -m sh "$0" "$@"
fi
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
. "$SCENARIOS/lib-passt.sh"
passt_host || exit 1
echo "nameserver 127.0.0.1" > "$dir/resolv.conf"
if [ -d /rig ]; then cp "$dir/resolv.conf" /etc/resolv.conf; else mount --bind "$dir/resolv.conf" /etc/resolv.conf; fi
"$DNSONE" 127.0.0.1 53 rig.test 192.0.2.77 &
nc -l -p 5001 -e sh -c 'echo HOST-SAYS-HELLO' &
# The host client: passt accepts at once and resets if the guest is not listening yet,
# so it tries until the guest's greeting comes back.
(
    for i in $(seq 1 150); do
        out=$(timeout 5 nc 127.0.0.1 2222 < /dev/null 2>/dev/null)
        case "$out" in *GUEST-SAYS-HELLO*) echo "HOSTFWD-CLIENT-GOT $out"; exit 0 ;; esac
        sleep 1
    done
    echo "HOSTFWD-CLIENT-GOT nothing"
) &
"$MICROVM" -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/netuser" \
    -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
    -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root \
    -netdev user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22,ipv6=off -device virtio-net-device,netdev=n0
status=$?
echo "VMM-EXIT status=$status"
wait %3 2>/dev/null
kill %1 %2 2>/dev/null
passt_host_done
rm -rf "$dir"
exit $status
