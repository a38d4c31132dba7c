# timeout: 400
# Huge pages (xtask/tests/hugepages.rs; `cargo xtask bench --only hugepages`): the minimal
# kernel with an initramfs, 256 MiB, writing 128 MiB into a tmpfs (/tests/memtouch), with
# its RAM on a hugetlb memfd (2 MiB pages) and on microvm's default memory, in turns,
# BENCH_RUNS rounds (1 by default). Per run: "HUGE-RUN mode=M ready=S touch=S pagekib=K
# held=N status=N" (guest uptime at the ready marker, seconds the touch took by the guest
# clock, KernelPageSize of the VMM's RAM mapping and huge pages the VMM held while the
# guest ran). Then the one-line error when the pool is too small.
runs=${BENCH_RUNS:-1}
hp=/sys/kernel/mm/hugepages/hugepages-2048kB
echo 136 > $hp/nr_hugepages
echo "HUGE-POOL total=$(cat $hp/nr_hugepages) free=$(cat $hp/free_hugepages)"
dir=$(mktemp -d)
# Pages nobody holds or has reserved (a hugetlb mapping reserves all its pages at mmap).
avail() { echo $(($(cat $hp/free_hugepages) - $(cat $hp/resv_hugepages))); }
one() {
    mode=$1
    mem=
    [ "$mode" = huge ] && mem="-object memory-backend-memfd,id=m,size=256M,hugetlb=on,hugetlbsize=2M -M memory-backend=m"
    free0=$(avail)
    # shellcheck disable=SC2086
    "$MICROVM" -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -initrd "$GUEST_INITRAMFS" -nodefaults \
        -serial stdio $mem -append "console=ttyS0 quiet panic=-1 microvm.run=/tests/memtouch" \
        > "$dir/$mode.txt" 2>&1 &
    vmm=$!
    i=0
    while ! grep -q MEMTOUCH-DONE "$dir/$mode.txt" && kill -0 $vmm 2>/dev/null && [ $i -lt 1200 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    # The RAM mapping (256 MiB) and its kernel page size, while the guest holds its pages.
    pagekib=$(awk '/^Size: *262144 kB/ { ram = 1 } ram && /^KernelPageSize:/ { print $2; exit }' /proc/$vmm/smaps)
    held=$((free0 - $(avail)))
    wait $vmm
    status=$?
    ready=$(sed -n 's/.*MICROVM-GUEST-READY cpus=[0-9]* uptime=\([0-9.]*\).*/\1/p' "$dir/$mode.txt")
    set -- $(sed -n 's/.*MEMTOUCH-DONE mib=128 t0=\([0-9.]*\) t1=\([0-9.]*\).*/\1 \2/p' "$dir/$mode.txt")
    touch=$(awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "") printf "%.2f", b - a }')
    echo "HUGE-RUN mode=$mode ready=$ready touch=$touch pagekib=$pagekib held=$held status=$status"
    [ "$status" = 0 ] || cat "$dir/$mode.txt"
}
n=0
while [ $n -lt "$runs" ]; do
    one huge
    one plain
    n=$((n + 1))
done
echo 16 > $hp/nr_hugepages
"$MICROVM" -M microvm -m 256m -kernel "$GUEST_VMLINUX" -nodefaults \
    -object memory-backend-memfd,id=m,size=256M,hugetlb=on -M memory-backend=m > "$dir/short.txt" 2>&1
echo "HUGE-SHORT status=$? $(head -n 1 "$dir/short.txt")"
rm -rf "$dir"
