# timeout: 300
# 9p security models (issue 18 item 6): one share with security_model=passthrough, one
# with mapped-xattr, mounted by the guest's own v9fs client (guest/rootfs/tests/
# ninep-models), microvm run as root as passthrough needs. The rig writes a file of
# another owner into each before the boot; after it, it reads the owners, modes and
# user.virtfs.* xattrs (getfattr, QEMU's names) of what the guest made: files, directories,
# a FIFO, a symlink, a hard link and a character device node.
. "$SCENARIOS/lib-run.sh"
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
mkdir -p "$dir/pt" "$dir/mx" "$dir/outside"
echo "rig secret" > "$dir/secret"
echo "beside the share" > "$dir/outside/kept"
for m in pt mx; do
    printf 'from the rig' > "$dir/$m/from-rig"
    chown 4321:4322 "$dir/$m/from-rig" && chmod 0640 "$dir/$m/from-rig" || exit 1
    ln -s "$dir/secret" "$dir/$m/outfile"
    ln -s "$dir/outside" "$dir/$m/outdir"
done
run_guest "$GUEST_VMLINUX" ninep-models \
    -fsdev local,id=fs0,path="$dir/pt",security_model=passthrough \
    -device virtio-9p-device,fsdev=fs0,mount_tag=pt \
    -virtfs local,path="$dir/mx",mount_tag=mx,security_model=mapped-xattr
ids() { stat -c '%u:%g %a' "$1" 2>&1; }
for m in pt mx; do
    echo "RIG-$m-FILE $(ids "$dir/$m/file")"
    echo "RIG-$m-DIR $(ids "$dir/$m/dir")"
    echo "RIG-$m-READ $(cat "$dir/$m/file")"
    echo "RIG-$m-LS $(ls "$dir/$m" | tr '\n' ' ')"
done
# The guest's nodes as the rig sees them: the real objects under passthrough, plain files
# under mapped-xattr (whose type, owner and device numbers are in the xattrs).
for m in pt mx; do
    for n in fifo link null; do
        echo "RIG-$m-NODE-$n $(stat -c '%F %u:%g %t:%T' "$dir/$m/$n" 2>&1)"
    done
    echo "RIG-$m-LINKTARGET $(readlink "$dir/$m/link" || cat "$dir/$m/link")"
    echo "RIG-$m-HARD $(stat -c '%h %i' "$dir/$m/file") $(stat -c '%h %i' "$dir/$m/hard" 2>&1)"
done
for f in file dir fifo link null; do
    echo "RIG-mx-XATTR-$f $(cd "$dir/mx" && "$GETFATTR" -d -e hex -m '^user\.virtfs\.' "$f" 2>&1 | grep = | sort | tr '\n' ' ')"
done
echo "RIG-9P-PARENT $(ls "$dir" | tr '\n' ' ')"
echo "RIG-9P-OUTSIDE $(ls "$dir/outside" | tr '\n' ' ')$(cat "$dir/secret")"
rm -rf "$dir"
exit $status
