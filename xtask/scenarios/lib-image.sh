# Sourced by the block scenarios that check, after each engine's run, what the guest wrote
# into its root disk (blk-engines.sh, blk-mq.sh).

# check_image MODE IMAGE: debugfs dumps the guest's /data.bin out of the ext4 IMAGE and
# prints its sha256 (HOST-SHA256 MODE HASH, compared by the tests with the guest's own
# GUEST-SHA256), then `e2fsck -fn` checks the image the guest wrote through that engine
# (E2FSCK-STATUS MODE STATUS, 0 = clean). The dump goes beside IMAGE, replacing any
# earlier one, so a failed dump cannot pass with the previous engine's file.
check_image() {
    dump="$(dirname "$2")/data.bin"
    rm -f "$dump"
    "$DEBUGFS" -R "dump /data.bin $dump" "$2" 2>&1
    set -- "$1" "$2" $(sha256sum "$dump")
    echo "HOST-SHA256 $1 $3"
    "$E2FSCK" -fn "$2" 2>&1
    echo "E2FSCK-STATUS $1 $?"
}
