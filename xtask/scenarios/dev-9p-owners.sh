# timeout: 300
# 9p owners other than root (issue 18 item 6): the minimal kernel with CONFIG_MULTIUSER
# (guest/kernel/multiuser.config; the default one has a single user) mounts a passthrough
# and a mapped-xattr share (guest/rootfs/tests/ninep-owners), chowns to 1000:1000 and
# creates as guest user 1000; microvm runs as root, as passthrough needs. The rig then
# reads the host owners and the user.virtfs.* xattrs (getfattr).
. "$SCENARIOS/lib-run.sh"
dir=$(mktemp -d) && cp "$GUEST_ROOTFS" "$dir/test.img" || exit 1
mkdir -p "$dir/pt" "$dir/mx"
run_guest "$GUEST_VMLINUX_MULTIUSER" ninep-owners \
    -virtfs local,path="$dir/pt",mount_tag=pt,security_model=passthrough \
    -virtfs local,path="$dir/mx",mount_tag=mx,security_model=mapped-xattr
for m in pt mx; do
    echo "RIG-$m-OWNERS $(cd "$dir/$m" && stat -c '%u:%g' chowned home home/mine | tr '\n' ' ')"
done
for f in chowned home home/mine; do
    echo "RIG-mx-XATTR-$f $(cd "$dir/mx" && "$GETFATTR" -d -e hex -m '^user\.virtfs\.' "$f" 2>&1 | grep = | sort | tr '\n' ' ')"
done
rm -rf "$dir"
exit $status
