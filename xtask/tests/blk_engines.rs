//! Each `-drive aio=` engine with a real Linux guest (scenario blk-engines): the
//! kernel's own virtio-blk driver writes 4 MiB to a file on the ext4 root disk through
//! that engine and syncs; outside the VM debugfs finds the same bytes and `e2fsck -fn`
//! finds the file system clean.

use xtask::scenario::run_test_case as run;

#[test]
fn every_engine_writes_an_ext4_image_that_reads_back_and_checks_clean() {
    let Some(case) = run("blk-engines") else { return };
    let r = case.report();
    assert_eq!(case.status, Some(0), "{r}");
    // Each mode's lines come after its "== aio=MODE" header (`Case::section`).
    let section = |mode: &str| {
        let s = case.section(&format!("aio={mode}"));
        assert!(!s.is_empty(), "no == aio={mode}\n{r}");
        s
    };
    let value = |text: &str, key: &str| text.lines().find_map(|l| l.split(key).nth(1)).map(|v| v.trim().to_owned());
    for mode in ["threads", "io_uring", "native"] {
        let s = section(mode);
        if mode == "native" && s.contains("O_DIRECT-UNSUPPORTED") {
            eprintln!("aio=native: the rig's scratch file system has no O_DIRECT; not run");
            continue;
        }
        assert_eq!(value(s, &format!("VMM-EXIT {mode} ")).as_deref(), Some("status=0"), "{mode}\n{r}");
        let guest = value(s, "GUEST-SHA256 ").unwrap_or_else(|| panic!("{mode}: no guest checksum\n{r}"));
        assert_eq!(guest.len(), 64, "{mode}\n{r}");
        assert_eq!(value(s, &format!("HOST-SHA256 {mode} ")), Some(guest), "{mode}: debugfs found other data\n{r}");
        assert_eq!(value(s, &format!("E2FSCK-STATUS {mode} ")).as_deref(), Some("0"), "{mode}: e2fsck\n{r}");
        assert!(!s.contains("skipping journal recovery"), "{mode}: the guest left the journal dirty\n{r}");
    }
}
