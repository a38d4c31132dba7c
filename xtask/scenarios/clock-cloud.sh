# timeout: 900
# Issue 22, acceptance 1 (the clock): Debian's cloud kernel under -M microvm,acpi=on
# (xtask/tests/clock.rs). The guest (guest/initramfs/tests/clock) prints its wall clock
# about every second; every such console line is stamped here with this host's time as it
# is read (host-date=, host-time=). Boot, stop, save (migrate file:), quit; wait 60 s;
# restore the one snapshot twice, one after the other: with clock=realtime, then without
# (the default: the clock continues from the saved instant). Each run prints its console,
# kernel messages included (a soft lockup is pr_emerg: `quiet` still lets it through).
trap '' PIPE
. "$SCENARIOS/lib-qmp.sh"
dir=$(mktemp -d) || exit 1
cr=$(printf '\r')
# now: this host's wall clock to the microsecond (busybox's date has no %N).
now() {
    adjtimex | awk '/tv_sec/ {s = $2} /tv_usec/ {u = $2} END {printf "%d.%06d", s, u}'
}
# stamp: copies the console, appending this host's time to the guest's clock lines: taken
# first, then once more (host-after=) to show what taking it costs here (forks, under TCG
# in the rig): the stamp is late by about that much.
stamp() {
    while IFS= read -r line; do
        line=${line%"$cr"}
        case $line in
        *CLOCK-GUEST*)
            t=$(now)
            echo "$line host-date=${t%.*} host-time=$t host-after=$(now)"
            ;;
        *) echo "$line" ;;
        esac
    done
}
vm() {
    name=$1; shift
    rm -f "$dir/console.fifo"
    mkfifo "$dir/console.fifo"
    # The file exists before the stamper opens it (that waits for microvm to open the
    # fifo): lines_wait counts in it from the start.
    : > "$dir/console.txt"
    stamp < "$dir/console.fifo" >> "$dir/console.txt" &
    "$MICROVM" -M microvm,legacy,acpi=on -m 256m -smp 1 -kernel "$CLOUD_VMLINUZ" -initrd "$CLOUD_INITRAMFS" \
        -append "console=ttyS0 quiet panic=-1 microvm.run=/tests/clock microvm.end=halt" \
        -qmp unix:"$dir/$name.sock",server=on,wait=off "$@" > "$dir/console.fifo" 2>&1 &
    vmm=$!
}
# finish NAME: quits over QMP, prints the run's console (stamped) and QMP replies.
finish() {
    qmp_quit_run "$1"
}
# lines_wait N: until the console has N clock lines (or 120 s pass, or microvm ends).
lines_wait() {
    i=0
    while [ "$(grep -c CLOCK-GUEST "$dir/console.txt")" -lt "$1" ] && [ $i -lt 1200 ] && kill -0 $vmm 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
}

echo "== host"
# KVM reports KVM_CLOCK_REALTIME (what clock=realtime needs) only while its master clock
# is in use, which needs a TSC clocksource on this host.
echo "HOST-CLOCKSOURCE current=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)" \
    "available=$(cat /sys/devices/system/clocksource/clocksource0/available_clocksource | tr ' ' ,)"
echo "== boot"
vm boot
console_wait "CLOCK-GUEST n=3 " 3000
qmp_connect "$dir/boot.sock"
qmp '{"execute": "stop"}'
qmp "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:$dir/vm.snap\"}}"
finish boot
echo "SAVED host-date=$(date +%s) host-time=$(now)"
sleep 60
for run in realtime:",clock=realtime" continue:""; do
    name=${run%%:*}
    echo "== restore $name"
    echo "RESTORE-$name host-date=$(date +%s) host-time=$(now)"
    vm "$name" -incoming "file:$dir/vm.snap${run#*:}"
    lines_wait 4
    qmp_connect "$dir/$name.sock"
    finish "$name"
done
rm -rf "$dir"
