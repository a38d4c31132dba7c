# timeout: 420
# dev-net.sh with -netdev tap,...,vhost=on: the rig's kernel (vhost_net) moves the
# frames. Uses what dev-net.sh uses: $MICROVM, $GUEST_VMLINUX, $GUEST_ROOTFS.
NET_VHOST=on exec sh "$SCENARIOS/dev-net.sh"
