# timeout: 1800
# In-guest fio benchmark (xtask/src/bench_fio.rs): Debian's cloud kernel with
# FIO_INITRAMFS runs guest/fio/bench-fio on a 256 MiB raw scratch disk (/dev/vda), under
# microvm and under QEMU's -M microvm, alternately, $BENCH_RUNS times each, for each
# disk engine of $BENCH_AIO (aio= modes; default threads and io_uring). The guest's own
# engine is fio's io_uring with O_DIRECT in every case. 1 vCPU, 512 MiB, ISA serial
# console, acpi=on (Debian's virtio_mmio finds its devices only in the DSDT); QEMU has no
# i8042, so its guest resets by triple fault (reboot=t).
# Each VMM run gets a scratch image written full beforehand, and the engines' order
# alternates from run to run (lib-bench.sh says why).
# $FIO_JOBS (e.g. randread-4k-qd1,randread-4k-qd32) runs only those jobs. With
# $MICROVM_BASELINE (another microvm binary, packed by xtask when the host's environment
# names one) each run also runs it, as vmm microvm-baseline-<aio>, next to microvm (before
# it on odd runs, after it on even ones): old and new builds alternate in one rig run.
. "$SCENARIOS/lib-bench.sh"
dir=$(mktemp -d) || exit 1
append="console=ttyS0 quiet panic=-1 fio.seconds=${FIO_SECONDS:-5} ${FIO_JOBS:+fio.jobs=$FIO_JOBS }microvm.run=/tests/bench-fio"
# threads_cpu PID: "comm ticks" for each thread of PID (user + system, clock ticks), then
# the rig's own "idle" and "all" ticks (every CPU, from /proc/stat).
threads_cpu() {
    for t in /proc/$1/task/*; do
        s=$(cat "$t/stat" 2>/dev/null) || continue
        comm=${s#*(}
        comm=$(echo "${comm%)*}" | tr ' ' '_')
        set -- ${s##*) }
        echo "$comm $((${12} + ${13}))"
    done
    set -- $(head -1 /proc/stat)
    echo "idle $(($5 + $6))"
    echo "all $(($2 + $3 + $4 + $5 + $6 + $7 + $8 + $9))"
}
# vmm_run COMMAND...: runs the VMM with its console copied through; for each fio job
# (from the guest's BENCH-FIO-BEGIN to its result line) adds a line
#   BENCH-CPU <job> all=<ms> idle=<ms> <thread>=<ms>...
# with the rig's CPU time over the job and what the VMM's threads took of it: what bounds
# a job when the rig's CPU, not the VMM, is the limit.
vmm_run() {
    rm -f "$dir/console"
    mkfifo "$dir/console" || exit 1
    "$@" >"$dir/console" 2>&1 &
    pid=$!
    while IFS= read -r line; do
        echo "$line"
        case "$line" in
            *BENCH-FIO-BEGIN*) threads_cpu $pid >"$dir/cpu0" ;;
            *"BENCH-FIO "*)
                threads_cpu $pid >"$dir/cpu1"
                job=${line#*BENCH-FIO }
                awk -v job="${job%% *}" -v hz="$(getconf CLK_TCK 2>/dev/null || echo 100)" '
                    FNR == NR { before[$1] += $2; next }
                    { after[$1] += $2 }
                    END {
                        out = "BENCH-CPU " job " all=" int((after["all"] - before["all"]) * 1000 / hz) \
                            " idle=" int((after["idle"] - before["idle"]) * 1000 / hz)
                        for (t in after) if (t != "all" && t != "idle") out = out " " t "=" int((after[t] - before[t]) * 1000 / hz)
                        print out
                    }' "$dir/cpu0" "$dir/cpu1"
                ;;
        esac
    done <"$dir/console"
    wait $pid
}
disk() {
    echo -drive "id=scratch,file=$dir/scratch.img,format=raw,if=none,aio=$1" -device virtio-blk-device,drive=scratch
}
microvm() { # BINARY NAME AIO
    scratch
    echo "== bench-fio vmm=$2-$3 run=$i"
    vmm_run "$1" -M microvm,legacy,acpi=on -m 512m -smp 1 -kernel "$CLOUD_VMLINUX" -initrd "$FIO_INITRAMFS" \
        -nodefaults -serial stdio -append "$append" $(disk "$3")
}
i=1
while [ $i -le "${BENCH_RUNS:-1}" ]; do
    for aio in $(engines_of_run $i); do
        if [ -z "${MICROVM_BASELINE:-}" ]; then
            microvm "$MICROVM" microvm "$aio"
        elif [ $((i % 2)) = 1 ]; then
            microvm "$MICROVM_BASELINE" microvm-baseline "$aio"
            microvm "$MICROVM" microvm "$aio"
        else
            microvm "$MICROVM" microvm "$aio"
            microvm "$MICROVM_BASELINE" microvm-baseline "$aio"
        fi
        scratch
        echo "== bench-fio vmm=qemu-$aio run=$i"
        # debug-threads: QEMU's threads by name in BENCH-CPU (its vCPU apart from the rest).
        vmm_run "$QEMU" -name qemu,debug-threads=on -M microvm,acpi=on,rtc=off -accel kvm -cpu host -m 512m -smp 1 \
            -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
            -kernel "$CLOUD_VMLINUX" -initrd "$FIO_INITRAMFS" -append "$append reboot=t" $(disk "$aio") ||
            echo "QEMU-FAILED aio=$aio"
    done
    i=$((i + 1))
done
rm -rf "$dir"
