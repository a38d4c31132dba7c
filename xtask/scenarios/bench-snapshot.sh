# timeout: 3600
# `cargo xtask bench --only snapshot`: the minimal kernel with the initramfs guest
# guest/initramfs/tests/savepoint, 1 vCPU, 256 MiB and 2 GiB, under microvm (QMP `migrate
# file:FILE`, which stops the guest first; `cont`, again; `quit`; restore with `-incoming
# file:FILE`) and QEMU's -M microvm (`migrate exec:cat > FILE`: live, then stopped; `quit`;
# restore with `-incoming "exec:cat FILE"`). Every save is taken at the same point of the
# same program, for both sizes: the guest has done a fixed amount of work, printed
# "SAVEPOINT round=R" and waits for a line on its console (blocked in read(2); then half a
# second more, so its printing is over and its vCPU idle). Each restore is given a line on
# the console from its exec on (a writer on its stdin: "1", then "2", ... every 50 ms
# while nothing came out, as QEMU drops what arrives before its incoming migration has
# loaded the 16550); the guest's answer "WOKE round=R by=N" is its first output. The
# guest runs when `migrate` comes: QEMU carries the run state over, so a guest stopped
# before its save would wait for `cont` after the restore. Per saved file (microvm:
# BENCH_INSTANTS rounds of one boot, `cont` and a line between; QEMU: one):
#   @@SNAPSAVE vmm=<microvm|qemu> mem=<MiB> instant=<k> total_ms=<query-migrate total-time> file_kib=<allocated> file_bytes=<size>
# then BENCH_RUNS rounds restoring each file once (microvm: both sizes in each round; then
# as many with the page list of one more restore's first second, vmm=microvm-pages), each:
#   @@SNAPRESTORE vmm=.. mem=.. file=.. run=<i> first_us=<exec to first byte on the console> rss_kib=<VmRSS> anon_kib=<RssAnon> kvm_run_us=<microvm: main to first KVM_RUN> npf=<KVM's pf_taken at that byte, -1 without debugfs> woke_by=<the line that woke it, -1 if none> status=<ok|...>
# RSS is read 1 s after the first byte, while the restored guest goes on ticking.
trap '' PIPE
. "$SCENARIOS/lib-qmp.sh"
runs=${BENCH_RUNS:-10}
instants=${BENCH_INSTANTS:-2}
# KVM's per-VM counters (pf_taken), where this may mount debugfs (the rig; root).
[ -d /sys/kernel/debug/kvm ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
stamp() { { read -r _; read -r _; read -r _ _ T _; } < /proc/timer_list; }
dir=$(mktemp -d)
A="console=ttyS0 quiet panic=-1 microvm.run=/tests/savepoint microvm.end=halt"
# args VMM MiB: the guest's command line under each VMM (the same for save and restore).
args() {
    case $1 in
        microvm | microvm-pages) echo "$MICROVM" -M microvm -m "$2"m -smp 1 -nodefaults -serial stdio ;;
        qemu) echo "$QEMU" -M microvm -accel kvm -cpu host -m "$2"m -smp 1 -nodefaults -no-user-config \
            -display none -serial stdio ;;
    esac
}
# save VMM MiB FILE: boots the guest, saves it at its save point to FILE, quits. microvm
# saves `instants` snapshots of one boot, FILE.0, FILE.1, ..., one per round of the guest
# (`cont` and a line on its console between): all at the same point of its program, so
# that what a restored guest does before its first line is the same for every file and
# size (with the ticking guest saved at arbitrary instants it was 37 to 807 KVM page
# faults, whatever the size: docs/snapshot.md, "Restore time and guest size").
save() {
    step "save $1 $2"
    # The last save's console goes first: the new VMM truncates it only once it runs, and
    # the wait below must not find the old lines.
    rm -f "$dir/qmp.sock" "$dir/in" "$dir/con" "$3"* "$dir/console.txt"
    mkfifo "$dir/con"
    exec 4<> "$dir/con"
    $(args $1 $2) -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" -append "$A" \
        -qmp unix:"$dir/qmp.sock",server=on,wait=off < "$dir/con" > "$dir/console.txt" 2>&1 &
    vmm=$!
    stamp
    b0=$T
    i=0
    while [ ! -S "$dir/qmp.sock" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
    qmp_connect "$dir/qmp.sock"
    k=0
    while :; do
        # Until the guest waits at its save point (not lib-qmp's console_wait: only the
        # console decides here, whatever the VMM's pid says), then half a second for its
        # last line to be out and its vCPU idle.
        i=0
        while ! grep -qw "SAVEPOINT round=$((k + 1))" "$dir/console.txt" 2>/dev/null && [ $i -lt 3000 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        sleep 0.5
        stamp
        echo "@@SNAPNOTE vmm=$1 mem=$2 at the save point of round $((k + 1)) after $(((T - b0) / 1000000)) ms: $(grep -c TICK "$dir/console.txt") lines"
        grep -qw "SAVEPOINT round=$((k + 1))" "$dir/console.txt" || head -c 1000 "$dir/console.txt"
        case $1 in
            microvm) f="$3.$k" uri="file:$3.$k" ;;
            qemu) f="$3" uri="exec:cat > $3" ;;
        esac
        # Only the answers after this migrate: the earlier ones are of the earlier saves.
        seen=$(wc -l < "$dir/qmp.txt")
        qmp '{"execute": "migrate", "arguments": {"uri": "'"$uri"'"}}'
        i=0
        total=
        while [ -z "$total" ] && [ $i -lt 600 ]; do
            sleep 0.1
            qmp '{"execute": "query-migrate"}'
            total=$(tail -n +$((seen + 1)) "$dir/qmp.txt" | grep -o '"status": "completed".*' |
                grep -o '"total-time": [0-9]*' | head -n 1 | cut -d' ' -f2)
            i=$((i + 1))
        done
        echo "@@SNAPSAVE vmm=$1 mem=$2 instant=$k total_ms=${total:--1} file_kib=$(du -k "$f" | cut -f1) file_bytes=$(stat -c %s "$f")"
        k=$((k + 1))
        [ $1 = microvm ] && [ $k -lt "$instants" ] || break
        qmp '{"execute": "cont"}'
        echo "next" >&4
    done
    qmp '{"execute": "quit"}'
    # Bounded, and said: a run of this scenario once went silent after its last save.
    vmm_end_within 600 "@@SNAPNOTE vmm=$1 mem=$2 QUIT"
    qmp_finish
    exec 4>&-
    echo "@@SNAPNOTE vmm=$1 mem=$2 saved and quit"
    rm -f "$dir/in" "$dir/con"
}
# A stall names itself: each step below (and each save) stamps $dir/step; a watchdog prints every
# process's state and wait channel when a step is a minute old (once per step).
# (seconds of uptime first: busybox's find may lack -mmin).
step() { read -r stepped_at _ < /proc/uptime; echo "${stepped_at%.*} $*" > "$dir/step"; }
watchdog() {
    told=
    while [ -d "$dir" ]; do
        sleep 10
        read -r since now < "$dir/step" 2>/dev/null || continue
        read -r up _ < /proc/uptime
        [ $((${up%.*} - since)) -ge 60 ] || continue
        [ "$since $now" = "$told" ] && continue
        told="$since $now"
        echo "@@SNAPNOTE stall: over a minute at: $now"
        # User processes only (a kernel thread's command line is empty).
        for p in /proc/[0-9]*; do
            read -r _ c st _ < "$p/stat" 2>/dev/null || continue
            line=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null | cut -c1-100)
            [ -n "$line" ] && echo "@@SNAPNOTE stall: ${p#/proc/} $st $c wchan=$(cat "$p/wchan" 2>/dev/null) $line"
        done
    done
}
# restore VMM MiB FILE RUN [record]: with `record`, the restore's pages are listed as
# FILE.pages (microvm snapshot-pages) 1 s after its first byte, for the microvm-pages rows.
restore() {
    case $1 in
        microvm | microvm-pages) incoming="file:$3" extra=--report-start-time ;;
        qemu) incoming="exec:cat $3" extra= ;;
    esac
    rm -f "$dir/out" "$dir/first" "$dir/pid" "$dir/npf" "$dir/con" "$dir/rest"
    mkfifo "$dir/out" "$dir/con"
    # The first byte stamps, then KVM's count of the guest's page faults so far (debugfs,
    # read with builtins only, so it is the first byte's instant); the rest is drained so
    # the guest never blocks on its console.
    {
        dd bs=1 count=1 of=/dev/null 2> /dev/null
        stamp
        echo $T > "$dir/first"
        npf=
        read -r p < "$dir/pid"
        for d in /sys/kernel/debug/kvm/$p-*; do
            [ -r "$d/pf_taken" ] && read -r npf < "$d/pf_taken"
        done
        echo "${npf:--1}" > "$dir/npf"
        cat > "$dir/rest"
    } < "$dir/out" &
    reader=$!
    # The line that wakes the guest, there from the exec on; again every 50 ms until
    # something comes out (QEMU drops input that arrives before its migration has loaded
    # the 16550), numbered, so the guest's answer says which one woke it.
    {
        n=1
        while [ ! -s "$dir/first" ] && [ $n -le 1200 ]; do
            echo $n
            sleep 0.05
            n=$((n + 1))
        done
    } > "$dir/con" &
    writer=$!
    step "restore $1 $2 ${3##*/} run $4"
    stamp
    t0=$T
    $(args $1 $2) -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" -append "$A" \
        -incoming "$incoming" $extra < "$dir/con" > "$dir/out" 2> "$dir/err" &
    vmm=$!
    echo $vmm > "$dir/pid"
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
    vmm_end_within 100 "@@SNAPNOTE vmm=$1 mem=$2 file=${3##*/} SIGTERM"
    wait $vmm 2>/dev/null
    [ "$4" = 0 ] && [ "${3##*.}" = 0 ] && [ $1 = microvm ] && echo "@@SNAPNOTE vmm=$1 mem=$2 $(grep 'start steps' "$dir/err")"
    kill $reader $writer 2>/dev/null
    wait $reader 2>/dev/null
    wait $writer 2>/dev/null
    by=$(grep -o 'round=[0-9]* by=[0-9]*' "$dir/rest" 2>/dev/null | head -n 1 | cut -d= -f3)
    kvm_run=$(grep -o 'first KVM_RUN after [0-9]*' "$dir/err" | grep -o '[0-9]*$')
    npf=$(cat "$dir/npf" 2>/dev/null)
    echo "@@SNAPRESTORE vmm=$1 mem=$2 file=${3##*/} run=$4 first_us=$first rss_kib=${rss:--1} anon_kib=${anon:--1} kvm_run_us=${kvm_run:--1} npf=${npf:--1} woke_by=${by:--1} status=$st"
    [ $st = ok ] || head -c 2000 "$dir/err"
}
# files MiB: microvm's snapshots of that size, one per instant.
files() {
    k=0
    while [ $k -lt "$instants" ]; do
        echo "$dir/microvm-$1.snap.$k"
        k=$((k + 1))
    done
}
# rounds VMM: BENCH_RUNS rounds, each restoring every instant of both sizes once: the sizes
# alternate, so a change in the host's load (it is shared) falls on both alike.
rounds() {
    r=0
    while [ $r -lt "$runs" ]; do
        for mem in 256 2048; do
            for f in $(files $mem); do restore $1 $mem "$f" $r; done
        done
        r=$((r + 1))
    done
}
# Not a child of this shell: lib-qmp's qmp_finish waits for every child.
(watchdog & echo $! > "$dir/watchdog.pid")
for mem in 256 2048; do save microvm $mem "$dir/microvm-$mem.snap"; done
rounds microvm
# The same files again, with the working set of their first moments prefetched.
for mem in 256 2048; do
    for f in $(files $mem); do restore microvm $mem "$f" -1 record > /dev/null; done
done
rounds microvm-pages
rm -f "$dir"/microvm-*
for mem in 256 2048; do
    save qemu $mem "$dir/qemu.snap"
    r=0
    while [ $r -lt "$runs" ]; do
        restore qemu $mem "$dir/qemu.snap" $r
        r=$((r + 1))
    done
    rm -f "$dir/qemu.snap"
done
kill "$(cat "$dir/watchdog.pid")" 2>/dev/null
rm -rf "$dir"
