# Sourced by the -netdev user scenarios (dev-netuser.sh, bench-netuser.sh): what passt
# needs from the machine it runs on.
# - An interface with a default route: passt copies its set-up from it and refuses to
#   start without one. A tap nobody reads stands in for the rig's missing uplink.
# - A root it can pivot away from and a user namespace: the rig's init provides them
#   (guest/rig/init, /rig/real-root, packed because these scripts mention $PASST).
# PATH gets passt's directory, where microvm looks for it.
passt_host() {
    ip link set lo up
    ip tuntap add dev mvup0 mode tap 2>/dev/null || tunctl -t mvup0 >/dev/null || return 1
    ip addr add 192.0.2.1/24 dev mvup0 && ip link set mvup0 up || return 1
    ip route add default via 192.0.2.254 || return 1
    PATH="$(dirname "$PASST"):$PATH"
}

passt_host_done() {
    ip link del mvup0 2>/dev/null
}
