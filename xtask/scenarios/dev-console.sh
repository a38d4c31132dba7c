# timeout: 120
# virtio-console on a Unix-socket chardev (server=on,wait=on: microvm waits for the
# client before the guest runs). unixcat (guest/tools) is the client: the guest's hvc0
# output lands in out.txt; once the guest says CONSOLE-WAITING (guest/rootfs/tests/
# console-io), a line goes in through the socket and the guest echoes it back as
# CONSOLE-IN. out.txt is printed afterwards under "== socket".
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
"$MICROVM" -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/console-io" \
    -chardev socket,id=con0,path="$dir/con.sock",server=on,wait=on \
    -device virtio-serial-device -device virtconsole,chardev=con0 \
    -drive id=root,file="$dir/test.img",format=raw,if=none -device virtio-blk-device,drive=root &
vmm=$!
i=0
while [ ! -S "$dir/con.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mkfifo "$dir/in"
"$UNIXCAT" "$dir/con.sock" < "$dir/in" > "$dir/out.txt" &
exec 3> "$dir/in"
i=0
while ! grep -q CONSOLE-WAITING "$dir/out.txt" && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
echo "hello-through-the-socket" >&3
wait $vmm
status=$?
exec 3>&-
wait
echo "== socket"
cat "$dir/out.txt"
rm -rf "$dir"
exit $status
