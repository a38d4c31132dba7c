//! Multiqueue virtio-blk on an iothread with a real Linux guest (scenario blk-mq): with
//! num-queues=4 the kernel's own virtio_blk driver makes four hardware queues (the guest
//! has one online CPU and four possible ones), and through each engine (sync, the
//! aio=threads pool, io_uring) it writes 4 MiB to a file on the ext4 root disk and syncs;
//! outside the VM debugfs finds the same bytes and `e2fsck -fn` finds it clean.

use xtask::scenario::run_test_case as run;

#[test]
fn four_queues_on_an_iothread_with_every_engine_write_an_image_that_checks_clean() {
    let Some(case) = run("blk-mq") else { return };
    let r = case.report();
    assert_eq!(case.status, Some(0), "{r}");
    // Each mode's lines come after its "== engine=MODE" header (`Case::section`).
    let section = |mode: &str| {
        let s = case.section(&format!("engine={mode}"));
        assert!(!s.is_empty(), "no == engine={mode}\n{r}");
        s
    };
    let value = |text: &str, key: &str| text.lines().find_map(|l| l.split(key).nth(1)).map(|v| v.trim().to_owned());
    for mode in ["sync", "threads", "io_uring"] {
        let s = section(mode);
        assert_eq!(value(s, "MQ-QUEUES ").as_deref(), Some("4"), "{mode}: the guest's hardware queues\n{r}");
        assert_eq!(value(s, "CPUS ").as_deref(), Some("online=0 possible=0-3"), "{mode}\n{r}");
        assert_eq!(value(s, &format!("VMM-EXIT {mode} ")).as_deref(), Some("status=0"), "{mode}\n{r}");
        let guest = value(s, "GUEST-SHA256 ").unwrap_or_else(|| panic!("{mode}: no guest checksum\n{r}"));
        assert_eq!(guest.len(), 64, "{mode}\n{r}");
        assert_eq!(value(s, &format!("HOST-SHA256 {mode} ")), Some(guest), "{mode}: debugfs found other data\n{r}");
        assert_eq!(value(s, &format!("E2FSCK-STATUS {mode} ")).as_deref(), Some("0"), "{mode}: e2fsck\n{r}");
        assert!(!s.contains("skipping journal recovery"), "{mode}: the guest left the journal dirty\n{r}");
    }
}
