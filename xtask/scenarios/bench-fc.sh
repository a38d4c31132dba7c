# timeout: 1500
# `cargo xtask bench --only firecracker` (issue 17 acceptance 6): the minimal kernel with the
# initramfs counting on its console (/tests/count), 1 vCPU, 256 MiB, booted and then
# restored from a snapshot through Firecracker's API (microvm as `firecracker`, curl) and
# through QMP (microvm with the same devices: acpi=on, i8042, vmgenid), in turns; the timed
# request (InstanceStart, /snapshot/load, `cont`) is sent with unixcat under both,
# BENCH_RUNS rounds. Per run and front end:
#   @@FC what=<boot|restore> via=<api|qmp> run=<i> exec_us=<exec to console marker> call_us=<request to marker>
# boot: the marker is MICROVM-GUEST-READY and the request InstanceStart or `cont` (after
# -S); restore: the marker is the first console line after a /snapshot/load with
# resume_vm (the process already listening) or an `-incoming file:` (exec: no request, so
# call_us is exec_us). Times from /proc/timer_list (ns), taken by this script.
runs=${BENCH_RUNS:-5}
stamp() { { read -r _; read -r _; read -r _ _ T _; } < /proc/timer_list; }
dir=$(mktemp -d)
ln -s "$MICROVM" "$dir/firecracker"
A="console=ttyS0 quiet panic=-1 microvm.run=/tests/count"
# launch NAME MARKER CMD...: runs CMD with its console watched; the time MARKER first
# shows goes to $dir/NAME.t, the pid to $dir/NAME.pid.
launch() {
    name=$1 marker=$2
    shift 2
    rm -f "$dir/$name.t" "$dir/$name.pid"
    {
        "$@" 2> "$dir/$name.err" &
        echo $! > "$dir/$name.pid"
        wait
    } | {
        while IFS= read -r line; do
            case "$line" in *"$marker"*) stamp; echo "$T" > "$dir/$name.t"; break ;; esac
        done
        cat > /dev/null
    } &
    until [ -s "$dir/$name.pid" ]; do sleep 0.01; done
}
# marked NAME: the marker's time once it is there (at most 60 s).
marked() {
    n=0
    while [ ! -s "$dir/$1.t" ] && [ $n -lt 6000 ]; do sleep 0.01; n=$((n + 1)); done
    cat "$dir/$1.t" 2> /dev/null || echo 0
}
end() { kill -9 "$(cat "$dir/$1.pid")" 2> /dev/null; wait 2> /dev/null; }
socket() { n=0; while [ ! -S "$1" ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n + 1)); done; }
# Each API request and its answer are kept in $dir/x.<k>.* and printed as an FC-EXCHANGE
# line (lib-fc.sh's format) by `exchanges` once a round's times are taken, so the
# recording adds no process to what is timed; bench/firecracker.rs checks them against
# Firecracker's OpenAPI file.
k=0
keep() {
    k=$((k + 1))
    echo "$1 $2" > "$dir/x.$k.meta"
    printf '%s' "$3" > "$dir/x.$k.req"
}
api() {
    keep "$@"
    "$CURL" -sS -o "$dir/x.$k.body" -w '%{http_code}' --unix-socket "$S" -X "$1" "http://localhost$2" \
        -H 'Content-Type: application/json' -d "$3" > "$dir/x.$k.code"
}
# The timed requests go through unixcat, as QMP's do: curl's own start (dozens of shared
# libraries, in the TCG-run rig) would otherwise count against the API.
http() {
    keep "$@"
    printf '%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
        "$1" "$2" "${#3}" "$3" | "$UNIXCAT" "$S" > "$dir/x.$k.raw"
}
exchanges() {
    i=1
    while [ "$i" -le "$k" ]; do
        x="$dir/x.$i"
        if [ -f "$x.raw" ]; then
            head -n 1 "$x.raw" | cut -d ' ' -f 2 > "$x.code"
            tr -d '\r' < "$x.raw" | sed '1,/^$/d' > "$x.body"
        fi
        request=$(tr '\n' ' ' < "$x.req")
        answer=$(tr '\n' ' ' < "$x.body" 2> /dev/null)
        echo "FC-EXCHANGE $(cat "$x.meta") $(cat "$x.code") ${request:--} ${answer:--}"
        rm -f "$x".*
        i=$((i + 1))
    done
    k=0
}
qmp_send() { printf '{"execute": "qmp_capabilities"}\n%s\n' "$1" | "$UNIXCAT" "$Q" > /dev/null; }
line() { echo "@@FC what=$1 via=$2 run=$round exec_us=$((($4 - $3) / 1000)) call_us=$((($4 - $5) / 1000))"; }
QEMU_LIKE="-M microvm,legacy,acpi=on -device i8042 -device vmgenid -m 256m -smp 1 -nodefaults -serial stdio"
round=0
while [ "$round" -lt "$runs" ]; do
    S="$dir/fc.sock"
    rm -f "$S" "$dir/fc.state" "$dir/fc.mem"
    stamp; t0=$T
    launch fcboot MICROVM-GUEST-READY "$dir/firecracker" --api-sock "$S"
    socket "$S"
    api PUT /boot-source "{\"kernel_image_path\": \"$GUEST_VMLINUX\", \"initrd_path\": \"$GUEST_INITRAMFS\", \"boot_args\": \"$A\"}"
    api PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 256}'
    stamp; ts=$T
    http PUT /actions '{"action_type": "InstanceStart"}'
    line boot api "$t0" "$(marked fcboot)" "$ts"
    sleep 0.5
    api PATCH /vm '{"state": "Paused"}'
    api PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$dir/fc.state\", \"mem_file_path\": \"$dir/fc.mem\"}"
    end fcboot
    rm -f "$S"
    stamp; t0=$T
    launch fcload COUNT "$dir/firecracker" --api-sock "$S"
    socket "$S"
    stamp; ts=$T
    http PUT /snapshot/load "{\"snapshot_path\": \"$dir/fc.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$dir/fc.mem\"}, \"resume_vm\": true}"
    line restore api "$t0" "$(marked fcload)" "$ts"
    end fcload
    exchanges

    Q="$dir/qmp.sock"
    rm -f "$Q" "$dir/q.snap"
    stamp; t0=$T
    # shellcheck disable=SC2086
    launch qboot MICROVM-GUEST-READY "$MICROVM" $QEMU_LIKE -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" \
        -append "$A" -qmp unix:"$Q",server=on,wait=off -S
    socket "$Q"
    stamp; ts=$T
    qmp_send '{"execute": "cont"}'
    line boot qmp "$t0" "$(marked qboot)" "$ts"
    sleep 0.5
    qmp_send '{"execute": "stop"}'
    qmp_send "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:$dir/q.snap\"}}"
    end qboot
    stamp; t0=$T
    # shellcheck disable=SC2086
    launch qload COUNT "$MICROVM" $QEMU_LIKE -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" \
        -append "$A" -incoming "file:$dir/q.snap"
    line restore qmp "$t0" "$(marked qload)" "$t0"
    end qload
    round=$((round + 1))
done
for f in "$dir"/*.err; do [ -s "$f" ] && echo "== $f" && cat "$f"; done
rm -rf "$dir"
