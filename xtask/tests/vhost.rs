//! Acceptance of the vhost devices (issue 11) with a real Linux guest in the rig, whose
//! kernel loads vhost_vsock and vhost_net (xtask/src/images/cloud.rs, RIG_MODULES), and of
//! Firecracker's hybrid vsock (issue 17), the same vsock exchange without the kernel's vhost. One
//! scenario (xtask/scenarios/*.sh) and one rig boot per test, as in devices.rs.

use xtask::scenario::{self, Case};

fn run(name: &str) -> Option<Case> {
    let mut live = |s: &str| eprint!("{s}");
    match scenario::run_one(name, &mut live) {
        Ok(Some(case)) => Some(case),
        Ok(None) => {
            eprintln!("{name}: skipped (MICROVM_TEST_MODE=skip)");
            None
        }
        Err(e) => panic!("{name} could not run: {e}"),
    }
}

/// `KEY=value` from the first line starting with `prefix`.
fn field<'a>(case: &'a Case, prefix: &str, key: &str) -> Option<&'a str> {
    let line = case.output.lines().find_map(|l| l.trim().strip_prefix(prefix))?;
    line.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The leading digits of `KEY=value`: a line of the guest's console and one of the rig's
/// may meet without a newline between them when both write at once.
fn number<'a>(case: &'a Case, prefix: &str, key: &str) -> Option<&'a str> {
    let value = field(case, prefix, key)?;
    let end = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    (end > 0).then(|| &value[..end])
}

const MIB64: &str = "67108864";

/// One exchange of `vsockio` (guest/tools/vsockio.c): `a` and `b`, the two ends' prefixes,
/// each sent and received 64 MiB, what one sent the other received (FNV-1a sums), and the
/// 1000 connect/close cycles after it left both ends' descriptor counts unchanged.
fn assert_exchange_and_cycles(case: &Case, a: &str, b: &str) {
    let report = case.report();
    for side in [a, b] {
        for dir in ["TX", "RX"] {
            let line = format!("{side}-{dir}");
            assert_eq!(field(case, &line, "bytes"), Some(MIB64), "{line}\n{report}");
        }
    }
    let a_tx = field(case, &format!("{a}-TX"), "sum");
    assert!(a_tx.is_some(), "{report}");
    assert_eq!(a_tx, field(case, &format!("{b}-RX"), "sum"), "{a} -> {b}: data differs\n{report}");
    let b_tx = field(case, &format!("{b}-TX"), "sum");
    assert_eq!(b_tx, field(case, &format!("{a}-RX"), "sum"), "{b} -> {a}: data differs\n{report}");
    assert_ne!(a_tx, b_tx, "each end sends its own stream\n{report}");
    for side in [a, b] {
        let fds = format!("{side}-FDS");
        assert_eq!(number(case, &fds, "cycles"), Some("1000"), "{fds}\n{report}");
        let before = number(case, &fds, "before");
        assert!(before.is_some_and(|n| n.parse::<i32>().is_ok_and(|n| n > 0)), "{fds}\n{report}");
        assert_eq!(before, number(case, &fds, "after"), "{fds}: descriptors leaked\n{report}");
    }
}

/// Acceptance 1: 64 MiB each way over AF_VSOCK with matching sums, 1000 connect/close
/// cycles that leave both ends' descriptor counts unchanged, and a second VM with the
/// same CID failing with one line.
#[test]
fn vsock_moves_64_mib_each_way_and_refuses_a_second_vm_with_the_same_cid() {
    let Some(case) = run("dev-vsock") else { return };
    let report = case.report();
    assert_exchange_and_cycles(&case, "GUEST-VSOCK", "RIG-VSOCK");
    let second = case.output.split("SECOND-VM-BEGIN").nth(1).and_then(|s| s.split("SECOND-VM-END").next());
    let lines: Vec<&str> = second.unwrap_or("").lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "the second VM printed {lines:?}\n{report}");
    assert!(lines[0].starts_with("microvm: ") && lines[0].contains("guest-cid=42"), "{lines:?}\n{report}");
    assert!(lines[0].contains("in use"), "{lines:?}\n{report}");
    let status = case.output.lines().find_map(|l| l.trim().strip_prefix("SECOND-VM-STATUS "));
    assert!(status.is_some_and(|s| s != "0"), "the second VM did not fail\n{report}");
    assert!(case.output.contains("MICROVM-GUEST-RUN-EXIT status=0"), "{report}");
    assert_eq!(case.status, Some(0), "the first VM did not exit 0\n{report}");
}

/// Issue 17, acceptance 4 (first part): Firecracker's hybrid vsock, microvm in Firecracker
/// mode with no /dev/vhost-vsock: 64 MiB each way on a guest-initiated connection (the
/// guest's AF_VSOCK to the rig's `<uds_path>_5000`) and on a host-initiated one (the rig's
/// `CONNECT 6000` on uds_path to the guest's listener), 1000 connect/close cycles each way,
/// and microvm holding no more descriptors after them than during the first connection.
#[test]
fn hybrid_vsock_moves_64_mib_each_way_both_directions_of_connect() {
    let Some(case) = run("dev-hvsock") else { return };
    let report = case.report();
    assert_exchange_and_cycles(&case, "GUEST-VSOCK", "RIG-HVSOCK");
    assert_exchange_and_cycles(&case, "RIG-HVSOCK-CONNECT", "GUEST-VSOCK-LISTEN");
    // Counted while microvm runs (a count of 0 would mean it was gone).
    let fds = |key: &str| value(&case, key).and_then(|n| n.parse::<u32>().ok()).filter(|&n| n > 0);
    let during = fds("MICROVM-FDS-CONNECTED").unwrap_or_else(|| panic!("{report}"));
    for after in ["MICROVM-FDS-GUEST-CYCLES", "MICROVM-FDS-HOST-CYCLES"] {
        let n = fds(after).unwrap_or_else(|| panic!("no {after}\n{report}"));
        assert!(n <= during, "microvm kept descriptors after the cycles: {during} -> {n} ({after})\n{report}");
    }
    assert!(!case.output.contains("seccomp"), "{report}");
    assert!(case.output.contains("MICROVM-GUEST-RUN-EXIT status=0"), "{report}");
    assert_eq!(case.status, Some(0), "microvm did not exit 0\n{report}");
}

fn value<'a>(case: &'a Case, key: &str) -> Option<&'a str> {
    let prefix = format!("{key} ");
    case.output.lines().find_map(|l| l.split(&prefix).nth(1)).map(str::trim)
}

/// Acceptance 3: the devices suite's TCP test (dev-net.sh) with vhost=on.
#[test]
fn vhost_net_moves_64_mib_each_way_over_tcp() {
    let Some(case) = run("dev-net-vhost") else { return };
    let r = case.report();
    assert!(case.output.contains("NET-PING ok"), "ping failed\n{r}");
    let sent = value(&case, "GUEST-TX-MD5").unwrap_or_else(|| panic!("guest sent nothing\n{r}"));
    assert_eq!(value(&case, "L2-RX-BYTES"), Some(MIB64), "guest→L2 length\n{r}");
    assert_eq!(value(&case, "L2-RX-MD5"), Some(sent), "guest→L2 data differ\n{r}");
    let l2 = value(&case, "L2-TX-MD5").unwrap_or_else(|| panic!("{r}"));
    assert_eq!(value(&case, "GUEST-RX-BYTES"), Some(MIB64), "L2→guest length\n{r}");
    assert_eq!(value(&case, "GUEST-RX-MD5"), Some(l2), "L2→guest data differ\n{r}");
    assert_eq!(value(&case, "MICROVM-GUEST-RUN-EXIT"), Some("status=0"), "{r}");
    assert_eq!(case.status, Some(0), "{r}");
    let logged: Vec<&str> = case.output.lines().filter(|l| l.starts_with("microvm:")).collect();
    assert!(logged.is_empty(), "microvm logged: {logged:?}\n{r}");
}

/// The section `== NAME stderr` ... `== end` of a run in dev-virtiofs.sh.
fn stderr_of<'a>(case: &'a Case, run: &str) -> Vec<&'a str> {
    let section = case.output.split(&format!("== {run} stderr\n")).nth(1).unwrap_or("");
    section.split("== end").next().unwrap_or("").lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

/// Acceptance 2: the guest mounts the tag, reads a host tree of 1000 files with a
/// matching sum and writes files the host sees, on memfd and on /dev/shm file memory;
/// virtiofsd killed mid-run: the guest gets errors, microvm logs once and exits 0.
#[test]
fn virtio_fs_reads_and_writes_host_files_and_survives_virtiofsd() {
    let Some(case) = run("dev-virtiofs") else { return };
    let r = case.report();
    assert_eq!(value(&case, "RIG-TREE-FILES"), Some("1000"), "{r}");
    let host_sum = value(&case, "RIG-TREE-SUM").unwrap_or_else(|| panic!("{r}"));
    let guest_sums: Vec<&str> = case.output.lines().filter_map(|l| l.trim().strip_prefix("GUEST-TREE-SUM ")).collect();
    assert_eq!(guest_sums, [host_sum, host_sum], "memfd and shm runs\n{r}");
    let guest_big: Vec<&str> = case.output.lines().filter_map(|l| l.trim().strip_prefix("GUEST-BIG-MD5 ")).collect();
    assert_eq!(guest_big.len(), 2, "{r}");
    for (i, run) in ["memfd", "shm"].into_iter().enumerate() {
        assert_eq!(value(&case, &format!("RUN-STATUS {run}")), Some("0"), "{run}\n{r}");
        assert!(stderr_of(&case, run).is_empty(), "{run}: microvm logged {:?}\n{r}", stderr_of(&case, run));
        let out = value(&case, &format!("RIG-OUT {run}")).unwrap_or_default();
        assert_eq!(out, "files=101 g7=guest_file_7", "{run}: what the host sees\n{r}");
        assert_eq!(value(&case, &format!("RIG-BIG-MD5 {run}")), Some(guest_big[i]), "{run}\n{r}");
    }
    let exits = case.output.matches("MICROVM-GUEST-RUN-EXIT status=0").count();
    assert_eq!(exits, 3, "each guest's test ran to its end\n{r}");
    assert!(case.output.contains("RIG-KILLED-VIRTIOFSD"), "{r}");
    let after = value(&case, "GUEST-FS-AFTER-KILL").unwrap_or_else(|| panic!("the guest hung or died\n{r}"));
    assert!(after.contains("I/O error") || after.contains("error"), "guest read after the kill: {after}\n{r}");
    assert_eq!(value(&case, "RUN-STATUS kill"), Some("0"), "microvm must survive and exit 0\n{r}");
    let logged = stderr_of(&case, "kill");
    assert_eq!(logged.len(), 1, "microvm must log once: {logged:?}\n{r}");
    assert!(logged[0].contains("virtiofsd") && logged[0].contains("gone"), "{logged:?}\n{r}");
}
