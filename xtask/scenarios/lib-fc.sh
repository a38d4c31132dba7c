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

# call WHAT CURL-ARGS...: one API call; prints "FC-CALL WHAT <http status> <body>", then
# the exchange for the xtask test to check against Firecracker's OpenAPI file
# (crates/fc-openapi/src/record.rs): "FC-EXCHANGE <method> <path> <status> <request> <answer>",
# each body one line of JSON or "-". Method, path and body are read from the curl
# arguments (-X, the http://localhost URL, -d), so the calls stay the guide's.
call() {
    what=$1
    shift
    method= request=- path=/ prev=
    for arg in "$@"; do
        case "$prev" in
            -X) method=$arg ;;
            -d | --data | --data-binary) request=$(printf '%s' "${arg:--}" | tr '\n' ' ') ;;
        esac
        case "$arg" in http://localhost*) path=${arg#http://localhost} ;; esac
        prev=$arg
    done
    # Without -X, curl sends GET, or POST when there is a body.
    [ -z "$method" ] && method=GET && [ "$request" != - ] && method=POST
    rm -f "$dir/body"
    code=$("$CURL" -sS -o "$dir/body" -w '%{http_code}' --unix-socket "$S" "$@")
    answer=$(tr '\n' ' ' < "$dir/body" 2>/dev/null)
    echo "FC-CALL $what $code $answer"
    echo "FC-EXCHANGE $method ${path:-/} $code $request ${answer:--}"
}
