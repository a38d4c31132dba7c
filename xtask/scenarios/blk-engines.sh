# timeout: 600
# Block engines (docs/dropin.md, aio=): for each mode, a fresh copy of the rootfs is the
# root disk with that aio= (and the cache= it needs), the guest writes 4 MiB of random
# data to /data.bin, syncs and prints its sha256 (GUEST-SHA256), then where the image
# lives debugfs dumps the file (HOST-SHA256) and `e2fsck -fn` checks the ext4 image the
# guest wrote through that engine (E2FSCK-STATUS, 0 = clean). aio=native needs O_DIRECT,
# which the scratch directory's file system may lack: then O_DIRECT-UNSUPPORTED.
. "$SCENARIOS/lib-image.sh"
dir=$(mktemp -d) || exit 1
for mode in threads io_uring native; do
    props="aio=$mode"
    if [ "$mode" = native ]; then
        props="$props,cache=none"
        if ! dd if=/dev/zero of="$dir/probe" bs=4096 count=1 oflag=direct 2>/dev/null; then
            echo "== aio=$mode"
            echo "O_DIRECT-UNSUPPORTED $mode"
            continue
        fi
    fi
    cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
    echo "== aio=$mode"
    "$MICROVM" -M microvm -m 512m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
        -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/blk-write" \
        -chardev stdio,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
        -drive "id=root,file=$dir/test.img,format=raw,if=none,$props" -device virtio-blk-device,drive=root
    echo "VMM-EXIT $mode status=$?"
    check_image "$mode" "$dir/test.img"
done
rm -rf "$dir"
