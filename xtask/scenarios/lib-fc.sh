# Sourced by the Firecracker scenarios (fc-getting-started.sh, fc-mmds.sh): microvm started
# as `firecracker` (a link, the name selects the front end) on its API socket $S, and the
# guides' client, curl --unix-socket.

# fc_dir: a temporary $dir with a copy of the rootfs (rootfs.ext4) and the link.
fc_dir() {
    dir=$(mktemp -d)
    cp "$GUEST_ROOTFS" "$dir/rootfs.ext4" || exit 1
    ln -s "$MICROVM" "$dir/firecracker"
    S="$dir/firecracker.socket"
}

# fc_start OUT: starts it with --api-sock, its output in OUT, $vmm its pid; waits up to
# 10 s for the socket.
fc_start() {
    "$dir/firecracker" --api-sock "$S" > "$1" 2>&1 &
    vmm=$!
    i=0
    while [ ! -S "$S" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}

# call WHAT CURL-ARGS...: one API call; prints "FC-CALL WHAT <http status> <body>".
call() {
    what=$1
    shift
    code=$("$CURL" -sS -o "$dir/body" -w '%{http_code}' --unix-socket "$S" "$@")
    echo "FC-CALL $what $code $(cat "$dir/body" 2>/dev/null)"
}
