# timeout: 700
# Issue 9, acceptance 2: public QEMU microvm command lines boot real Linux (the rootfs
# guest, /tests/devices), with only the paths replaced; then a mux on a pty is driven
# from here: the guest's hvc0 and the human monitor share it (C-a h, C-a c, info
# status, quit). Last, a multiport virtio-serial-device meets Linux's driver.
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" && cp "$GUEST_ROOTFS" "$dir/boot.img" || exit 1
cd "$dir" || exit 1

echo "== microvm.nix line (hvc0 through a stdio mux)"
"$MICROVM" -name my-microvm -M microvm,x-option-roms=off,isa-serial=off,pit=off,pic=off,rtc=off -m 512 \
    -cpu host,+x2apic -smp 1 -no-acpi -enable-kvm -nodefaults -no-user-config -nographic -no-reboot \
    -serial null -device virtio-serial-device -chardev stdio,mux=on,id=virtiocon0,signal=off \
    -device virtconsole,chardev=virtiocon0 -device virtio-rng-device \
    -drive id=root,format=raw,media=cdrom,file=boot.img,if=none,aio=io_uring \
    -device virtio-blk-device,drive=root -kernel "$GUEST_VMLINUX" \
    -append "console=hvc0 acpi=off reboot=t panic=-1 root=/dev/vda ro quiet microvm.run=/tests/devices" \
    -sandbox on -qmp unix:control.socket,server,nowait < /dev/null
echo "NIX-EXIT status=$?"

echo "== QEMU documentation line (ttyS0 on -serial stdio, a tap NIC)"
"$MICROVM" -M microvm -enable-kvm -cpu host -m 512m -smp 2 -kernel "$GUEST_VMLINUX" \
    -append "earlyprintk=ttyS0 console=ttyS0 root=/dev/vda" -nodefaults -no-user-config -nographic \
    -serial stdio -drive id=test,file=test.img,format=raw,if=none -device virtio-blk-device,drive=test \
    -netdev tap,id=tap0,script=no,downscript=no -device virtio-net-device,netdev=tap0 < /dev/null
echo "DOCS-EXIT status=$?"

echo "== mux on a pty: hvc0 and the human monitor"
"$MICROVM" -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/console-io" \
    -chardev pty,mux=on,id=con0 -device virtio-serial-device -device virtconsole,chardev=con0 \
    -mon chardev=con0 -drive id=root,file=test.img,format=raw,if=none -device virtio-blk-device,drive=root \
    2> err.txt < /dev/null &
vmm=$!
i=0
while ! grep -q "redirected to" err.txt && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
pts=$(sed -n 's|.*redirected to \(/dev/pts/[0-9]*\).*|\1|p' err.txt)
echo "PTY $pts"
: > out.txt
cat "$pts" > out.txt &
reader=$!
wait_for() {
    i=0
    while ! grep -q "$1" out.txt && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
    grep -q "$1" out.txt && echo "SEEN $1"
}
wait_for CONSOLE-WAITING
printf '\001h' > "$pts"
wait_for "switch between console and monitor"
printf '\001c' > "$pts"
wait_for "type 'help' for more information"
printf 'info status\r' > "$pts"
wait_for "VM status: running"
printf 'quit\r' > "$pts"
wait $vmm
echo "MUX-EXIT status=$?"
kill $reader 2>/dev/null
wait $reader 2>/dev/null
echo "== pty"
tr -d '\r' < out.txt
echo
cat err.txt

echo "== multiport virtio-serial: two virtconsoles and a named virtserialport"
# A QMP client (connected before the guest starts: wait=on) sees the guest open and
# close the named port: VSERPORT_CHANGE.
trap '' PIPE
. "$SCENARIOS/lib-qmp.sh"
"$MICROVM" -M microvm -m 256m -smp 1 -kernel "$GUEST_VMLINUX" -nodefaults \
    -append "console=hvc0 root=/dev/vda rw quiet panic=-1 microvm.run=/tests/vports" \
    -chardev stdio,id=con0 -chardev file,id=con1,path=con1.txt -chardev file,id=port,path=port.txt \
    -device virtio-serial-device,max_ports=4 -device virtconsole,chardev=con0 -device virtconsole,chardev=con1 \
    -device virtserialport,chardev=port,name=org.test.port,id=testport \
    -drive id=root,file=test.img,format=raw,if=none -device virtio-blk-device,drive=root \
    -qmp unix:"$dir/qmp.sock",server=on,wait=on < /dev/null &
vmm=$!
i=0
while [ ! -S "$dir/qmp.sock" ] && [ $i -lt 100 ] && kill -0 $vmm 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
qmp_connect "$dir/qmp.sock"
qmp_finish
echo "PORTS-EXIT status=$status"
echo "PORT-FILE $(cat port.txt)"
echo "CON1-FILE $(cat con1.txt)"
grep -o '"event": "VSERPORT_CHANGE"[^}]*}' "$dir/qmp.txt" | sed 's/^/PORTS-QMP /'
cd / && rm -rf "$dir"
