//! `-drive format=qcow2` with a real Linux guest (scenario qcow2): the root disk is a
//! qcow2 overlay on a raw ext4 image; the guest writes, trims and writes again through
//! its own virtio-blk driver; outside the VM `qemu-img check` finds the image clean,
//! debugfs finds the guest's file in the flattened chain, `e2fsck -fn` finds the file
//! system clean and the backing file is untouched. Then `snapshot=on` leaves the overlay
//! as it was.

use xtask::scenario::run_test_case as run;

#[test]
fn a_guest_writes_a_qcow2_over_a_backing_file_and_qemu_img_checks_it_clean() {
    let Some(case) = run("qcow2") else { return };
    let r = case.report();
    assert_eq!(case.status, Some(0), "{r}");
    let value = |key: &str| case.output.lines().find_map(|l| l.split(key).nth(1)).map(|v| v.trim().to_owned());
    assert_eq!(value("VMM-EXIT qcow2 ").as_deref(), Some("status=0"), "{r}");
    assert_eq!(value("FSTRIM-STATUS ").as_deref(), Some("0"), "the guest could not trim (discard=unmap)\n{r}");
    assert_eq!(value("QEMU-IMG-CHECK-STATUS ").as_deref(), Some("0"), "qemu-img check\n{r}");
    assert!(case.output.contains("No errors were found on the image."), "{r}");
    let guest = value("GUEST-SHA256 ").unwrap_or_else(|| panic!("no guest checksum\n{r}"));
    assert_eq!(guest.len(), 64, "{r}");
    assert_eq!(value("HOST-SHA256 "), Some(guest), "debugfs found other data in the chain\n{r}");
    assert_eq!(value("E2FSCK-STATUS ").as_deref(), Some("0"), "e2fsck\n{r}");
    assert!(!case.output.contains("skipping journal recovery"), "the guest left the journal dirty\n{r}");
    assert_eq!(value("BASE-UNCHANGED ").as_deref(), Some("yes"), "the backing file was written\n{r}");
    assert_eq!(value("VMM-EXIT snapshot ").as_deref(), Some("status=0"), "{r}");
    assert_eq!(value("SNAPSHOT-UNCHANGED ").as_deref(), Some("yes"), "snapshot=on wrote the image\n{r}");
}
