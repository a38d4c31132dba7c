# timeout: 900
# dev-net-mq.sh with vhost=on: one /dev/vhost-net per queue pair, each on its queue
# of the multiqueue tap; the control queue stays in microvm. Uses what dev-net-mq.sh
# uses: $MICROVM, $GUEST_VMLINUX, $GUEST_ROOTFS.
NET_VHOST=on exec sh "$SCENARIOS/dev-net-mq.sh"
