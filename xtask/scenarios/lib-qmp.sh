# Sourced (not run) by the scenarios that drive a VM over QMP with unixcat as the client.
# The caller sets $dir (its temporary directory) and $vmm (microvm's pid, its console
# going to $dir/console.txt). Replies and events collect in $dir/qmp.txt.

# console_wait PATTERN TENTHS: until PATTERN is on the console, TENTHS tenths of a second
# pass, or microvm ends.
console_wait() {
    i=0
    while ! grep -q "$1" "$dir/console.txt" && [ $i -lt "$2" ] && kill -0 $vmm 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
}

# qmp_connect SOCKET: connects a client through a fifo (fd 3) and leaves command mode on.
qmp_connect() {
    mkfifo "$dir/in"
    "$UNIXCAT" "$1" < "$dir/in" > "$dir/qmp.txt" &
    exec 3> "$dir/in"
    qmp '{"execute": "qmp_capabilities"}'
}

# qmp JSON: sends one command.
qmp() {
    echo "$1" >&3
}

# vmm_end_within TENTHS NAME: lets microvm end on its own; past TENTHS tenths of a second
# prints NAME-TIMEOUT and kills it.
vmm_end_within() {
    i=0
    while kill -0 $vmm 2>/dev/null && [ $i -lt "$1" ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 $vmm 2>/dev/null && { echo "$2-TIMEOUT"; kill -9 $vmm; }
}

# qmp_finish: waits for microvm, closes the client, sets $status to microvm's exit status.
qmp_finish() {
    wait $vmm
    status=$?
    exec 3>&-
    wait
}

# qmp_logs [NAME]: prints the QMP replies and events ("== qmp NAME") and the console
# ("== console NAME"), the sections the tests read.
qmp_logs() {
    echo "== qmp${1:+ $1}"
    cat "$dir/qmp.txt"
    echo "== console${1:+ $1}"
    cat "$dir/console.txt"
}

# qmp_quit_run NAME: quits over QMP (microvm given 60 s to end), prints VMM-EXIT-NAME and
# the run's logs, and removes them for the next run in $dir.
qmp_quit_run() {
    qmp '{"execute": "quit"}'
    vmm_end_within 600 QUIT
    qmp_finish
    echo "VMM-EXIT-$1 status=$status"
    qmp_logs "$1"
    rm -f "$dir/in" "$dir/console.txt" "$dir/qmp.txt"
}
