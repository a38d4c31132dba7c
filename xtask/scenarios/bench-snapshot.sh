# timeout: 2400
# `cargo xtask bench --only snapshot`: the minimal kernel with the initramfs guest ticking
# every millisecond on ttyS0 (guest/initramfs/tests/tick), 1 vCPU, 256 MiB and 2 GiB,
# under microvm (QMP `migrate file:FILE`, which stops the guest first, then `quit`;
# restore with `-incoming file:FILE`) and QEMU's -M microvm (`migrate exec:cat > FILE`:
# live, then stopped; `quit`; restore with `-incoming "exec:cat FILE"`). The guest runs
# when `migrate` comes: QEMU carries the run state over, so a guest stopped before its
# save would wait for `cont` after the restore. Per saved guest (one per VMM and size):
#   @@SNAPSAVE vmm=<microvm|qemu> mem=<MiB> total_ms=<query-migrate total-time> file_kib=<allocated> file_bytes=<size>
# then BENCH_RUNS restores of that file (for microvm, then as many with the page list of
# one more restore's first second, vmm=microvm-pages), each:
#   @@SNAPRESTORE vmm=.. mem=.. run=<i> first_us=<exec to first byte on the console> rss_kib=<VmRSS> anon_kib=<RssAnon> kvm_run_us=<microvm: main to first KVM_RUN> status=<ok|...>
# RSS is read 1 s after the first byte, while the restored guest goes on ticking.
trap '' PIPE
. "$SCENARIOS/lib-qmp.sh"
runs=${BENCH_RUNS:-10}
stamp() { { read -r _; read -r _; read -r _ _ T _; } < /proc/timer_list; }
dir=$(mktemp -d)
A="console=ttyS0 quiet panic=-1 microvm.run=/tests/tick microvm.end=halt"
# args VMM MiB: the guest's command line under each VMM (the same for save and restore).
args() {
    case $1 in
        microvm | microvm-pages) echo "$MICROVM" -M microvm -m "$2"m -smp 1 -nodefaults -serial stdio ;;
        qemu) echo "$QEMU" -M microvm -accel kvm -cpu host -m "$2"m -smp 1 -nodefaults -no-user-config \
            -display none -serial stdio ;;
    esac
}
# save VMM MiB FILE: boots the guest, lets it tick, saves it to FILE, quits.
save() {
    # The last save's console goes first: the new VMM truncates it only once it runs, and
    # the wait below must not find the old ticks.
    rm -f "$dir/qmp.sock" "$dir/in" "$3" "$dir/console.txt"
    $(args $1 $2) -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" -append "$A" \
        -qmp unix:"$dir/qmp.sock",server=on,wait=off < /dev/null > "$dir/console.txt" 2>&1 &
    vmm=$!
    stamp
    b0=$T
    # Until the guest has ticked 200 times (not lib-qmp's console_wait: only the console
    # decides here, whatever the VMM's pid says).
    i=0
    while ! grep -q 'TICK 200[^0-9]' "$dir/console.txt" 2>/dev/null && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
    stamp
    echo "@@SNAPNOTE vmm=$1 mem=$2 ticking after $(((T - b0) / 1000000)) ms: $(grep -c TICK "$dir/console.txt") lines"
    grep -q 'TICK 200[^0-9]' "$dir/console.txt" || head -c 1000 "$dir/console.txt"
    while [ ! -S "$dir/qmp.sock" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
    qmp_connect "$dir/qmp.sock"
    case $1 in
        microvm) uri="file:$3" ;;
        qemu) uri="exec:cat > $3" ;;
    esac
    qmp '{"execute": "migrate", "arguments": {"uri": "'"$uri"'"}}'
    i=0
    total=
    while [ -z "$total" ] && [ $i -lt 600 ]; do
        sleep 0.1
        qmp '{"execute": "query-migrate"}'
        total=$(grep -o '"status": "completed".*' "$dir/qmp.txt" | grep -o '"total-time": [0-9]*' | head -n 1 | cut -d' ' -f2)
        i=$((i + 1))
    done
    stamp
    echo "@@SNAPNOTE vmm=$1 mem=$2 saved after $(((T - b0) / 1000000)) ms"
    qmp '{"execute": "quit"}'
    qmp_finish
    rm -f "$dir/in"
    echo "@@SNAPSAVE vmm=$1 mem=$2 total_ms=${total:--1} file_kib=$(du -k "$3" | cut -f1) file_bytes=$(stat -c %s "$3")"
}
# restore VMM MiB FILE RUN [record]: with `record`, the restore's pages are listed as
# FILE.pages (microvm snapshot-pages) 1 s after its first byte, for the microvm-pages rows.
restore() {
    case $1 in
        microvm | microvm-pages) incoming="file:$3" extra=--report-start-time ;;
        qemu) incoming="exec:cat $3" extra= ;;
    esac
    rm -f "$dir/out" "$dir/first"
    mkfifo "$dir/out"
    # The first byte stamps; the rest is drained so the guest never blocks on its console.
    { head -c 1 > /dev/null; stamp; echo $T > "$dir/first"; cat > /dev/null; } < "$dir/out" &
    reader=$!
    stamp
    t0=$T
    $(args $1 $2) -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" -append "$A" \
        -incoming "$incoming" $extra < /dev/null > "$dir/out" 2> "$dir/err" &
    vmm=$!
    i=0
    while [ ! -s "$dir/first" ] && [ $i -lt 300 ] && kill -0 $vmm 2>/dev/null; do sleep 0.02; i=$((i + 1)); done
    sleep 1
    st=ok
    [ -s "$dir/first" ] || st=no-output
    kill -0 $vmm 2>/dev/null || st=ended
    rss=$(grep VmRSS /proc/$vmm/status 2>/dev/null | tr -s ' ' | cut -d' ' -f2)
    anon=$(grep RssAnon /proc/$vmm/status 2>/dev/null | tr -s ' ' | cut -d' ' -f2)
    [ "$5" = record ] && "$MICROVM" snapshot-pages $vmm "$3" > /dev/null
    first=-1
    [ -s "$dir/first" ] && first=$((($(cat "$dir/first") - t0) / 1000))
    # TERM: microvm then prints its start steps (--report-start-time) on the way out.
    kill $vmm 2>/dev/null
    wait $vmm 2>/dev/null
    [ $4 = 0 ] && [ $1 = microvm ] && echo "@@SNAPNOTE vmm=$1 mem=$2 $(grep 'start steps' "$dir/err")"
    kill $reader 2>/dev/null
    wait $reader 2>/dev/null
    kvm_run=$(grep -o 'first KVM_RUN after [0-9]*' "$dir/err" | grep -o '[0-9]*$')
    echo "@@SNAPRESTORE vmm=$1 mem=$2 run=$4 first_us=$first rss_kib=${rss:--1} anon_kib=${anon:--1} kvm_run_us=${kvm_run:--1} status=$st"
    [ $st = ok ] || head -c 2000 "$dir/err"
}
for mem in 256 2048; do
    for v in microvm qemu; do
        save $v $mem "$dir/$v.snap"
        r=0
        while [ $r -lt "$runs" ]; do
            restore $v $mem "$dir/$v.snap" $r
            r=$((r + 1))
        done
        if [ $v = microvm ]; then
            # The same file again, with the working set of its first moments prefetched.
            restore microvm $mem "$dir/$v.snap" -1 record > /dev/null
            r=0
            while [ $r -lt "$runs" ]; do
                restore microvm-pages $mem "$dir/$v.snap" $r
                r=$((r + 1))
            done
            rm -f "$dir/$v.snap.pages"
        fi
        rm -f "$dir/$v.snap"
    done
done
rm -rf "$dir"
