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

/// An xattr of getfattr's hex dump (`name=0x..` pairs): the 4-byte little-endian value QEMU
/// writes.
fn xattr(line: &str, name: &str) -> Option<u32> {
    u32::try_from(xattr_bytes(line, name)?).ok()
}

/// The same for a value of any width up to 8 bytes (user.virtfs.rdev is a 64-bit dev_t).
fn xattr_bytes(line: &str, name: &str) -> Option<u64> {
    let hex = line.split_whitespace().find_map(|kv| kv.strip_prefix(name)?.strip_prefix("=0x"))?;
    let mut bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    if !matches!(bytes.len(), 4 | 8) {
        return None;
    }
    bytes.resize(8, 0);
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The two security models with real Linux (xtask/scenarios/dev-9p-models.sh, guest/rootfs/
/// tests/ninep-models). The minimal guest kernel has no CONFIG_MULTIUSER: every owner in
/// that guest is 0 (its chown to 1234 sets 0, and the rig's 4321 shows as 0), so owners
/// other than root are the tiny-guest tests' (crates/cli/tests/ninep.rs); here the modes
/// tell the models apart. passthrough: the guest's chmod is the host file's mode.
/// mapped-xattr: the host files stay microvm's (root's, 0600/0700) and the guest's
/// credentials are in QEMU's user.virtfs.* xattrs, whose modes a new mount shows back.
/// Both: the rig reads the guest's file and the guest the rig's, and the rig's links out of
/// the share lead nowhere. The guest's FIFO, symlink, hard link and device node: the real
/// objects on the host under passthrough, plain files with the type in user.virtfs.mode
/// (and the device numbers in user.virtfs.rdev) under mapped-xattr; both read back alike.
#[test]
fn security_models_passthrough_and_mapped_xattr_in_a_linux_guest() {
    let Some(case) = run("dev-9p-models") else { return };
    let r = case.report();
    let v = |key: &str| value(&case, key).unwrap_or_default().to_owned();
    for m in ["pt", "mx"] {
        assert_eq!(v(&format!("GUEST-{m}-READ")), "from the rig", "{m}\n{r}");
        // The rig's 0640 file (owned by 4321:4322, which this guest shows as 0).
        assert_eq!(v(&format!("GUEST-{m}-RIGFILE")), "0:0 640", "{m}: the rig's mode\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-FILE")), "0:0 751", "{m}: the guest sees its chmod\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-DIR")), "0:0 705", "{m}\n{r}");
        assert_eq!(v(&format!("RIG-{m}-READ")), "from the guest", "{m}: the rig reads the guest's file\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-OUTFILE")), "refused", "{m}: a link out of the share\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-OUTDIR")), "refused", "{m}\n{r}");
        // mkfifo, ln -s, ln and mknod c 1 3 (the guest's root) under both models, and what
        // the guest sees of them now and after a remount (nothing cached).
        assert_eq!(v(&format!("GUEST-{m}-FIFO")), "fifo", "{m}\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-SYMLINK")), "somewhere", "{m}\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-HARDLINK")), "2 from the guest", "{m}: two names, one file\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-NODE")), "character special file 1:3", "{m}\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-REMOUNT-fifo")), "p fifo 0:0", "{m}\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-REMOUNT-link")), "l symbolic link 0:0 somewhere", "{m}\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-REMOUNT-null")), "c character special file 1:3", "{m}\n{r}");
        assert_eq!(v(&format!("RIG-{m}-LINKTARGET")), "somewhere", "{m}: the target, as the host holds it\n{r}");
        let hard = v(&format!("RIG-{m}-HARD"));
        let hard: Vec<&str> = hard.split_whitespace().collect();
        assert!(hard.len() == 4 && hard[0] == "2" && hard[0..2] == hard[2..4], "{m}: one inode, two names\n{r}");
        let listed = v(&format!("RIG-{m}-LS"));
        let names: Vec<&str> = listed.split_whitespace().collect();
        let all = ["dir", "fifo", "file", "from-rig", "hard", "link", "null", "outdir", "outfile"];
        assert_eq!(names, all, "{m}\n{r}");
    }
    // passthrough: the real FIFO, symlink and device node on the host (microvm is root).
    assert_eq!(v("RIG-pt-NODE-fifo"), "fifo 0:0 0:0", "{r}");
    assert_eq!(v("RIG-pt-NODE-link"), "symbolic link 0:0 0:0", "{r}");
    assert_eq!(v("RIG-pt-NODE-null"), "character special file 0:0 1:3", "{r}");
    // mapped-xattr: plain files (the link's holds its target), the guest's view in xattrs.
    assert_eq!(v("RIG-mx-NODE-fifo"), "regular empty file 0:0 0:0", "{r}");
    assert_eq!(v("RIG-mx-NODE-link"), "regular file 0:0 0:0", "{r}");
    assert_eq!(v("RIG-mx-NODE-null"), "regular empty file 0:0 0:0", "{r}");
    for (f, kind) in [("fifo", 0o010000), ("link", 0o120000), ("null", 0o020000)] {
        let line = v(&format!("RIG-mx-XATTR-{f}"));
        assert_eq!(xattr(&line, "user.virtfs.uid"), Some(0), "{f}: {line}\n{r}");
        let stored = xattr(&line, "user.virtfs.mode").unwrap_or_default();
        assert_eq!(stored & 0o170000, kind, "{f}: {line}\n{r}");
    }
    assert_eq!(xattr(&v("RIG-mx-XATTR-link"), "user.virtfs.mode"), Some(0o120777), "{r}");
    // makedev(1, 3) as the host's C library encodes it, as QEMU stores it.
    assert_eq!(xattr_bytes(&v("RIG-mx-XATTR-null"), "user.virtfs.rdev"), Some(0x103), "{r}");
    // passthrough: the guest's modes on the host files.
    assert_eq!(v("RIG-pt-FILE"), "0:0 751", "{r}");
    assert_eq!(v("RIG-pt-DIR"), "0:0 705", "{r}");
    // mapped-xattr: the host files stay microvm's, the guest's values are in the xattrs.
    assert_eq!(v("RIG-mx-FILE"), "0:0 600", "{r}");
    assert_eq!(v("RIG-mx-DIR"), "0:0 700", "{r}");
    for (f, mode, kind) in [("file", 0o751, 0o100000), ("dir", 0o705, 0o040000)] {
        let line = v(&format!("RIG-mx-XATTR-{f}"));
        assert_eq!(xattr(&line, "user.virtfs.uid"), Some(0), "{f}: {line}\n{r}");
        assert_eq!(xattr(&line, "user.virtfs.gid"), Some(0), "{f}: {line}\n{r}");
        let stored = xattr(&line, "user.virtfs.mode").unwrap_or_default();
        assert_eq!((stored & 0o7777, stored & 0o170000), (mode, kind), "{f}: {line}\n{r}");
    }
    // A new mount caches nothing: 751 and 705 come from the xattrs (the host has 600/700).
    assert_eq!(v("GUEST-mx-REMOUNT-FILE"), "0:0 751", "after a remount\n{r}");
    assert_eq!(v("GUEST-mx-REMOUNT-DIR"), "0:0 705", "{r}");
    assert_eq!(v("GUEST-mx-REMOUNT-READ"), "from the guest", "{r}");
    assert_eq!(v("RIG-9P-PARENT"), "err mx outside pt secret test.img", "nothing new beside the shares\n{r}");
    assert_eq!(v("RIG-9P-OUTSIDE"), "kept rig secret", "the rig's files beside the shares are untouched\n{r}");
    assert!(case.output.contains("GUEST-9P-MODELS-DONE"), "{r}");
    assert_eq!(v("RUN-STATUS"), "0", "{r}");
    let stderr = case.output.split("== stderr").nth(1).and_then(|s| s.split("== end").next()).unwrap_or("x");
    assert!(stderr.trim().is_empty(), "microvm logged: {stderr}\n{r}");
}

/// Owners other than root from real Linux (xtask/scenarios/dev-9p-owners.sh, guest/rootfs/
/// tests/ninep-owners), on the minimal kernel with CONFIG_MULTIUSER: the guest's root
/// chowns a file and a directory to 1000:1000 and guest user 1000 creates a file in that
/// directory. passthrough: the host files are 1000's. mapped-xattr: they stay root's (the
/// rig runs microvm as root) with 1000 in user.virtfs.uid/gid. `ls -n` in the guest shows
/// 1000:1000 for all three, on a new mount too.
#[test]
fn owners_other_than_root_in_a_multiuser_linux_guest() {
    let Some(case) = run("dev-9p-owners") else { return };
    let r = case.report();
    let v = |key: &str| value(&case, key).unwrap_or_default().to_owned();
    let all_1000 = "1000:1000 1000:1000 1000:1000";
    for m in ["pt", "mx"] {
        assert_eq!(v(&format!("GUEST-{m}-SU")), "1000", "{m}: the guest user ran\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-OWNERS")), all_1000, "{m}\n{r}");
        assert_eq!(v(&format!("GUEST-{m}-REMOUNT-OWNERS")), all_1000, "{m}: after a remount\n{r}");
    }
    assert_eq!(v("RIG-pt-OWNERS"), all_1000, "passthrough: the real owners on the host\n{r}");
    assert_eq!(v("RIG-mx-OWNERS"), "0:0 0:0 0:0", "mapped-xattr: the host files stay microvm's\n{r}");
    for f in ["chowned", "home", "home/mine"] {
        let line = v(&format!("RIG-mx-XATTR-{f}"));
        assert_eq!(xattr(&line, "user.virtfs.uid"), Some(1000), "{f}: {line}\n{r}");
        assert_eq!(xattr(&line, "user.virtfs.gid"), Some(1000), "{f}: {line}\n{r}");
    }
    assert!(case.output.contains("GUEST-9P-OWNERS-DONE"), "{r}");
    assert_eq!(v("RUN-STATUS"), "0", "{r}");
    let stderr = case.output.split("== stderr").nth(1).and_then(|s| s.split("== end").next()).unwrap_or("x");
    assert!(stderr.trim().is_empty(), "microvm logged: {stderr}\n{r}");
}
