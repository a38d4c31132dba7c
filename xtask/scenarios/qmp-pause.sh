# timeout: 240
# QMP stop/cont with a real Linux guest (xtask/tests/control.rs): the initramfs guest
# counts on ttyS0 (/tests/count); through a QMP socket (unixcat as the client) the VM is
# paused and resumed 20 times, then quit. Prints one PAUSE-CHECK line per pause (the last
# count 300 ms after `stop`, and again 300 ms later), then "== qmp" (everything the
# monitor sent) and "== console" (the guest's output).
# A monitor that went away must not kill the script with SIGPIPE before it reports.
trap '' PIPE
. "$SCENARIOS/lib-qmp.sh"
dir=$(mktemp -d)
"$MICROVM" -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" -nodefaults \
    -serial stdio -append "console=ttyS0 quiet panic=-1 microvm.run=/tests/count" \
    -qmp unix:"$dir/qmp.sock",server=on,wait=off > "$dir/console.txt" 2>&1 &
vmm=$!
# Complete lines only (wc -l counts newlines): a guest paused mid-line leaves "COUNT 11"
# of "COUNT 112" at the end, which read as a count that went back (seen in CI).
last() {
    head -n "$(wc -l < "$dir/console.txt")" "$dir/console.txt" | grep -o 'COUNT [0-9]*' | tail -n 1 | cut -d' ' -f2
}
i=0
while [ -z "$(last)" ] && [ $i -lt 600 ] && kill -0 $vmm 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
if [ -z "$(last)" ]; then
    echo "PAUSE-CHECK no count after $i tenths of a second"
    kill $vmm 2>/dev/null
    cat "$dir/console.txt"
    exit 1
fi
qmp_connect "$dir/qmp.sock"
n=1
while [ $n -le 20 ]; do
    qmp '{"execute": "stop", "id": '$n'}'
    sleep 0.3
    paused=$(last)
    sleep 0.3
    echo "PAUSE-CHECK n=$n paused=$paused later=$(last)"
    qmp '{"execute": "cont"}'
    sleep 0.3
    n=$((n + 1))
done
echo "PAUSE-CHECK final=$(last)"
qmp '{"execute": "quit"}'
qmp_finish
qmp_logs
rm -rf "$dir"
exit $status
