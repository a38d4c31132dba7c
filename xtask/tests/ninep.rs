//! 9p with a real Linux guest in the rig (issue 18 item 6): the guest's own v9fs client
//! mounts two shares (xtask/scenarios/dev-9p.sh, guest/rootfs/tests/ninep), reads what the
//! rig wrote, writes/renames/removes what the rig then reads, and tries to leave the share.

use xtask::scenario::{run_test_case as run, Case};

/// The rest of the first line starting with `key `.
fn value<'a>(case: &'a Case, key: &str) -> Option<&'a str> {
    let prefix = format!("{key} ");
    case.output.lines().find_map(|l| l.trim().strip_prefix(&prefix)).map(str::trim)
}

#[test]
fn a_9p_share_is_read_and_written_from_both_sides_and_stays_closed() {
    let Some(case) = run("dev-9p") else { return };
    let r = case.report();
    assert_eq!(value(&case, "GUEST-9P-READ"), Some("from the rig"), "the guest reads the rig's file\n{r}");
    assert_eq!(value(&case, "RIG-9P-MOVED"), Some("from the guest"), "the rig reads the guest's file\n{r}");
    assert_eq!(value(&case, "RIG-9P-GONE"), Some("absent"), "the guest's unlink reached the rig\n{r}");
    let listed = value(&case, "GUEST-9P-LS").unwrap_or_default();
    assert_eq!(listed.split_whitespace().collect::<Vec<_>>(), ["dir", "hello", "hostsecret", "passwd"], "{r}");
    // .. from the mount is the guest's own tree (its root has /tests, the rig's has none).
    let up = value(&case, "GUEST-9P-UP").unwrap_or_default();
    assert!(up.split_whitespace().any(|n| n == "tests"), "{up}\n{r}");
    assert_eq!(value(&case, "GUEST-9P-HOSTSECRET"), Some("refused"), "a host-only target is not reached\n{r}");
    // The rig's /etc/passwd (md5 of its contents) is not what the guest reads through
    // the link: the guest resolves /etc/passwd in its own tree.
    let rig_passwd = value(&case, "RIG-ETC-PASSWD").unwrap_or_default();
    assert_eq!(rig_passwd.len(), 32, "{r}");
    let guest_passwd = value(&case, "GUEST-9P-PASSWD").unwrap_or_default();
    assert!(!guest_passwd.is_empty() && guest_passwd != rig_passwd, "the link gave the rig's file\n{r}");
    assert_eq!(
        value(&case, "RIG-9P-PARENT"),
        Some("err ro secret share test.img"),
        "nothing new beside the share\n{r}"
    );
    assert_eq!(value(&case, "RIG-9P-SECRET"), Some("rig secret"), "{r}");
    assert_eq!(value(&case, "GUEST-9P-RO-READ"), Some("read only"), "{r}");
    let ro = value(&case, "GUEST-9P-RO-WRITE").unwrap_or_default();
    assert!(ro.contains("Read-only file system"), "readonly=on refuses writes: {ro}\n{r}");
    assert_eq!(value(&case, "RIG-9P-RO"), Some("kept"), "{r}");
    assert!(case.output.contains("GUEST-9P-DONE"), "{r}");
    assert_eq!(value(&case, "RUN-STATUS"), Some("0"), "{r}");
    let stderr = case.output.split("== stderr").nth(1).and_then(|s| s.split("== end").next()).unwrap_or("x");
    assert!(stderr.trim().is_empty(), "microvm logged: {stderr}\n{r}");
}
