# Sourced by the scenarios that run microvm once with its stderr in a file (dev-9p.sh,
# dev-9p-models.sh, dev-9p-owners.sh).

# run_report STATUS ERRFILE: after a blank line (the guest's console may end mid-line),
# "RUN-STATUS STATUS", then ERRFILE between "== stderr" and "== end", which the tests read
# to check that microvm logged nothing.
run_report() {
    echo
    echo "RUN-STATUS $1"
    echo "== stderr"
    cat "$2"
    echo "== end"
}

# run_guest KERNEL TEST [ARGS...]: the guest rootfs (a copy at $dir/test.img) under microvm
# with KERNEL, running /tests/TEST on a virtio console, plus ARGS; its stderr in $dir/err,
# then run_report. Sets status to microvm's exit status.
run_guest() {
    kernel=$1 script=$2
    shift 2
    "$MICROVM" -M microvm -m 256m -smp 1 -kernel "$kernel" -nodefaults \
        -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/$script" \
        -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
        -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root \
        "$@" 2> "$dir/err"
    status=$?
    run_report $status "$dir/err"
}
