# timeout: 300
# 9p (issue 18 item 6): -fsdev local + -device virtio-9p-device and a read-only -virtfs,
# mounted by the guest's own v9fs client (guest/rootfs/tests/ninep). The rig writes the
# share before the boot and reads what the guest wrote after it; escapes are tried from
# inside (.., a host symlink to a host-only file and one to /etc/passwd).
. "$SCENARIOS/lib-run.sh"
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
mkdir -p "$dir/share" "$dir/ro"
echo "rig secret" > "$dir/secret"
printf 'from the rig' > "$dir/share/hello"
printf 'read only' > "$dir/ro/kept"
ln -s "$dir/secret" "$dir/share/hostsecret"
ln -s /etc/passwd "$dir/share/passwd"
# The rig's initramfs has no /etc/passwd: give it one, so the link has a host file to leak.
[ -e /etc/passwd ] || { mkdir -p /etc && echo "rig:x:0:0:rig only:/:/bin/sh" > /etc/passwd; } || exit 1
echo "RIG-ETC-PASSWD $(cat /etc/passwd | md5sum | cut -d' ' -f1)"
run_guest "$GUEST_VMLINUX" ninep \
    -fsdev local,id=fs0,path="$dir/share",security_model=none \
    -device virtio-9p-device,fsdev=fs0,mount_tag=host9p \
    -virtfs local,path="$dir/ro",mount_tag=ro9p,security_model=none,readonly=on
echo "RIG-9P-MOVED $(cat "$dir/share/dir/moved" 2>/dev/null)"
echo "RIG-9P-GONE $([ -e "$dir/share/gone" ] && echo present || echo absent)"
echo "RIG-9P-PARENT $(ls "$dir" | tr '\n' ' ')"
echo "RIG-9P-SECRET $(cat "$dir/secret")"
echo "RIG-9P-RO $(ls "$dir/ro" | tr '\n' ' ')"
rm -rf "$dir"
exit $status
