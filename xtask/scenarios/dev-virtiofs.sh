# timeout: 900
# virtio-fs through a real virtiofsd ($VIRTIOFSD, built by xtask): a host tree of 1000
# files, read and summed by the guest (guest/rootfs/tests/virtiofs), which also writes
# out/ (checked here). Once with guest RAM in a shared memfd, once in a file in /dev/shm.
# Then virtiofsd is killed while the guest reads (guest/rootfs/tests/virtiofs-kill): the
# guest must see errors, microvm must log once and exit 0 when the guest resets.
[ -d /dev/shm ] || { mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm; } || exit 1
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
mkdir -p "$dir/share/tree/sub"
i=1
while [ $i -le 1000 ]; do
    case $((i % 10)) in 0) d="$dir/share/tree/sub" ;; *) d="$dir/share/tree" ;; esac
    head -c $(( (i * 7919) % 20000 + 1 )) /dev/urandom > "$d/f$i"
    i=$((i + 1))
done
echo "RIG-TREE-FILES $(cd "$dir/share/tree" && find . -type f | wc -l)"
set -- $(cd "$dir/share/tree" && find . -type f | sort | xargs md5sum | md5sum)
echo "RIG-TREE-SUM $1"

# run NAME MEMORY-OPTIONS TEST CACHE: one VM with virtiofsd; microvm's stderr in $dir/NAME.err
run() {
    rm -rf "$dir/share/out" "$dir/vfs.sock"
    "$VIRTIOFSD" --socket-path="$dir/vfs.sock" --shared-dir="$dir/share" --cache="$4" \
        --sandbox=none --seccomp=none > "$dir/$1.vfsd.log" 2>&1 &
    vfsd=$!
    echo $vfsd > "$dir/vfsd.pid"
    i=0
    while [ ! -S "$dir/vfs.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    "$MICROVM" -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults $2 \
        -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/$3" \
        -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
        -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root \
        -chardev socket,id=vfs,path="$dir/vfs.sock" -device vhost-user-fs-device,chardev=vfs,tag=share \
        2> "$dir/$1.err"
    echo
    echo "RUN-STATUS $1 $?"
    echo "== $1 stderr"
    cat "$dir/$1.err"
    echo "== end"
    kill $vfsd 2>/dev/null
    wait $vfsd 2>/dev/null
}

check_out() {
    echo "RIG-OUT $1 files=$(ls "$dir/share/out" 2>/dev/null | wc -l) g7=$(cat "$dir/share/out/g7" 2>/dev/null | tr ' ' _)"
    set -- "$1" $(md5sum "$dir/share/out/big" 2>/dev/null)
    echo "RIG-BIG-MD5 $1 $2"
}

run memfd "-object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem" virtiofs auto
check_out memfd
run shm "-object memory-backend-file,id=mem,size=256M,mem-path=/dev/shm,share=on -numa node,memdev=mem" virtiofs auto
check_out shm

# The kill: wait in the background for the guest's out/kill-me, then kill virtiofsd.
(
    i=0
    while [ ! -e "$dir/share/out/kill-me" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
    sleep 1
    kill -KILL "$(cat "$dir/vfsd.pid")"
    echo "RIG-KILLED-VIRTIOFSD"
) &
run kill "-object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem" virtiofs-kill never
wait
rm -rf "$dir"
