# Sourced by the block benchmarks (bench-io.sh, bench-fio.sh): what they share besides
# their guest.

# scratch: a 256 MiB scratch image $dir/scratch.img written full, for each VMM run: a
# first write into a sparse tmpfs file pays for the host's page allocation, which would
# land on whichever VMM wrote the file first (it once made microvm's writes look half as
# fast as QEMU's).
scratch() {
    rm -f "$dir/scratch.img"
    dd if=/dev/zero of="$dir/scratch.img" bs=1M count=256 2>/dev/null || exit 1
}

# engines_of_run N: the disk engines (aio= modes) of $BENCH_AIO, default threads and
# io_uring, in reverse order on every other run, so that a drift of the rig (it warms
# up, a neighbour's load comes and goes) does not always favour the last.
engines_of_run() {
    engines=${BENCH_AIO:-threads io_uring}
    if [ $(($1 % 2)) = 0 ]; then
        reversed=
        for e in $engines; do reversed="$e $reversed"; done
        engines=$reversed
    fi
    echo $engines
}
