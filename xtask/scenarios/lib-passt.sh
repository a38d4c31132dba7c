# Sourced by the -netdev user scenarios (dev-netuser.sh, bench-netuser.sh): what passt
# needs from the machine it runs on.
# - An interface with a default route: passt copies its set-up from it and refuses to
#   start without one. A tap nobody reads stands in for the rig's missing uplink.
# - A root it can pivot away from: passt's sandbox pivots into an empty root, which
#   the rig's initramfs root (rootfs) refuses (EINVAL). In the rig, $IN_ROOT chroots
#   microvm, and so passt, onto a recursive bind mount of /.
# PATH gets passt's directory, where microvm looks for it.
passt_host() {
    ip link set lo up
    ip tuntap add dev mvup0 mode tap 2>/dev/null || tunctl -t mvup0 >/dev/null || return 1
    ip addr add 192.0.2.1/24 dev mvup0 && ip link set mvup0 up || return 1
    ip route add default via 192.0.2.254 || return 1
    IN_ROOT=
    if [ -d /rig ]; then
        mkdir -p /mnt/rigroot && mount -o rbind / /mnt/rigroot || return 1
        IN_ROOT="chroot /mnt/rigroot"
    fi
    PATH="$(dirname "$PASST"):$PATH"
}

passt_host_done() {
    [ -n "$IN_ROOT" ] && umount -l /mnt/rigroot 2>/dev/null
    ip link del mvup0 2>/dev/null
}
