# timeout: 900
# Multiqueue virtio-blk on an iothread (docs/dropin.md): for each engine (the default
# sync one, aio=threads, aio=io_uring) a fresh copy of the rootfs is the root disk with
# num-queues=4 on -object iothread io0. The guest has one online vCPU (the rig's rule)
# but four possible ones (-smp 4 with the kernel's maxcpus=1: Linux's virtio_blk uses
# min(num_queues, nr_cpu_ids) queues; possible_cpus= only lowers nr_cpu_ids since Linux
# 6.9), prints how many hardware queues it made (MQ-QUEUES, the entries of
# /sys/block/vda/mq) and its online/possible CPUs, writes 4 MiB of random data to
# /data.bin, syncs and prints its sha256 (GUEST-SHA256); then debugfs dumps the file
# (HOST-SHA256) and `e2fsck -fn` checks the image (E2FSCK-STATUS, 0 = clean).
. "$SCENARIOS/lib-image.sh"
dir=$(mktemp -d) || exit 1
# Run by the guest's init with sh -c; no spaces on the kernel command line, so ${IFS}.
run='echo${IFS}MQ-QUEUES${IFS}$(ls${IFS}/sys/block/vda/mq|wc${IFS}-l);echo${IFS}CPUS${IFS}online=$(cat${IFS}/sys/devices/system/cpu/online)${IFS}possible=$(cat${IFS}/sys/devices/system/cpu/possible);/tests/blk-write'
for mode in sync threads io_uring; do
    props=
    [ "$mode" = sync ] || props=",aio=$mode"
    cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
    echo "== engine=$mode"
    "$MICROVM" -M microvm -m 512m -smp 4 -kernel "$GUEST_VMLINUX" -nodefaults \
        -append "console=hvc0 root=/dev/vda rw quiet panic=-1 maxcpus=1 microvm.run=$run" \
        -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
        -object iothread,id=io0 \
        -drive "id=root,file=$dir/test.img,format=raw,if=none$props" \
        -device virtio-blk-device,drive=root,num-queues=4,iothread=io0
    echo "VMM-EXIT $mode status=$?"
    check_image "$mode" "$dir/test.img"
done
rm -rf "$dir"
