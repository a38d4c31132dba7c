//! Diff snapshots through QEMU's interface (microvm's own extension of it): `-M
//! microvm,track-dirty-pages=on`, QMP `migrate file:` for the base, then with the
//! `x-diff-snapshot` capability for the diff, on the host's /dev/kvm with the page-writing
//! tiny guest. The diff file holds its state, the dirtied pages and its tag; `microvm
//! rebase-snap` merges it into the base file, which then restores (`-incoming file:`) the
//! guest of the diff's instant, with tracking again for a second diff; the unmerged diff
//! is refused in one line, and a diff without tracking.

mod common;

use common::counter::machine;
use common::pages::*;
use common::qmp::Qmp;
use common::*;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// The guest's output: its serial files one after another (a restored guest's first
/// line is the one the saved guest left unfinished).
fn serial_output(serials: &[&Path]) -> Vec<u8> {
    serials.iter().flat_map(|s| std::fs::read(s).unwrap_or_default()).collect()
}

/// The guest's last complete turn, once it is at least `turn`.
fn wait_turn(serials: &[&Path], turn: u64) -> u64 {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if let Some(&(_, last)) = lines(&serial_output(serials)).last() {
            if last >= turn {
                return last;
            }
        }
        assert!(Instant::now() < deadline, "the guest never reached turn {turn}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops the VM and saves it to `file`; the guest's last turn before.
fn stop_and_migrate(qmp: &mut Qmp, serials: &[&Path], file: &Path) -> Result<u64, String> {
    qmp.execute("stop", json!({})).unwrap();
    // The serial file catches up with the stopped guest's last line.
    std::thread::sleep(Duration::from_millis(200));
    let turn = last_turn(&serial_output(serials));
    qmp.execute("migrate", json!({ "uri": format!("file:{}", file.display()) }))?;
    Ok(turn)
}

fn set_diff(qmp: &mut Qmp) {
    let caps = json!({ "capabilities": [{ "capability": "x-diff-snapshot", "state": true }] });
    qmp.execute("migrate-set-capabilities", caps).unwrap();
}

#[test]
fn a_diff_migrate_merged_into_its_base_restores_the_guest_of_its_instant() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("qmp-diff");
    let kernel = dir.file("vmlinux", &guest());
    let path = |name: &str| dir.path().join(name);
    let (base, diff, out0) = (path("base.snap"), path("diff.snap"), path("out0"));

    let vm = Running::spawn(machine("microvm,legacy,track-dirty-pages=on", &kernel, &out0, &path("qmp0"), &[]));
    let mut qmp = Qmp::connect(&path("qmp0"));
    wait_turn(&[&out0], 300);
    set_diff(&mut qmp);
    let e = stop_and_migrate(&mut qmp, &[&out0], &diff).unwrap_err();
    assert!(e.contains("take a Full snapshot first"), "{e}");
    let caps = json!({ "capabilities": [{ "capability": "x-diff-snapshot", "state": false }] });
    qmp.execute("migrate-set-capabilities", caps).unwrap();
    let base_turn = stop_and_migrate(&mut qmp, &[&out0], &base).unwrap();
    qmp.execute("cont", json!({})).unwrap();
    wait_turn(&[&out0], base_turn + BEHIND + 36);
    set_diff(&mut qmp);
    let diff_turn = stop_and_migrate(&mut qmp, &[&out0], &diff).unwrap();
    qmp.execute("quit", json!({})).unwrap();
    let (status, output) = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());

    // The diff file: its header and state (a few KiB), the dirtied pages, its tag.
    assert!(diff_turn < PAGES, "{diff_turn} turns: the guest went round its region");
    let header = snapshot::decode_header(&std::fs::read(&diff).unwrap()[..snapshot::HEADER_LEN]).unwrap();
    let state = (snapshot::HEADER_LEN as u64 + header.content_len).next_multiple_of(PAGE);
    assert_eq!(header.memory_offset, Some(1 << 20), "memory where its base's is");
    assert_holds_about(&diff, (diff_turn - base_turn) * PAGE + state);

    // Unmerged, the diff is refused before the guest runs.
    let restore = |machine_type: &str, file: &Path, serial: &Path, qmp: &Path| {
        let incoming = format!("file:{}", file.display());
        machine(machine_type, &kernel, serial, qmp, &["-incoming", &incoming])
    };
    let out = run(restore("microvm,legacy", &diff, &path("bad"), &path("qmp-bad")));
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert_one_line_error(&out, &["microvm rebase-snap"]);

    rebase_snap(&base, &diff);
    // The merged file restores with tracking: the next diff counts from it.
    let out1 = path("out1");
    let vm = Running::spawn(restore("microvm,legacy,track-dirty-pages=on", &base, &out1, &path("qmp1")));
    let mut qmp = Qmp::connect(&path("qmp1"));
    // Until the restored guest has read back the pages written last before the diff.
    wait_turn(&[&out0, &out1], diff_turn + BEHIND + 5);
    set_diff(&mut qmp);
    let diff2 = path("diff2.snap");
    let diff2_turn = stop_and_migrate(&mut qmp, &[&out0, &out1], &diff2).unwrap();
    qmp.execute("quit", json!({})).unwrap();
    let (status, output) = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());
    assert!(diff2_turn < PAGES, "{diff2_turn} turns: the guest went round its region");
    assert_holds_about(&diff2, (diff2_turn - diff_turn) * PAGE + state);

    // Merged onto the first merge; restored without tracking: a diff of it is refused.
    rebase_snap(&base, &diff2);
    let out2 = path("out2");
    let vm = Running::spawn(restore("microvm,legacy", &base, &out2, &path("qmp2")));
    let mut qmp = Qmp::connect(&path("qmp2"));
    wait_turn(&[&out0, &out1, &out2], diff2_turn + BEHIND + 5);
    set_diff(&mut qmp);
    let e = stop_and_migrate(&mut qmp, &[&out0, &out1, &out2], &path("diff3.snap")).unwrap_err();
    assert!(e.contains("dirty page tracking disabled"), "{e}");
    qmp.execute("quit", json!({})).unwrap();
    let (status, output) = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());
    assert_memory_consistent(&lines(&serial_output(&[&out0, &out1, &out2])));
}

/// `rebase-snap`'s own errors are one line: a flag missing, a file that is not there, a
/// file that is no diff.
#[test]
fn rebase_snap_errors_are_one_line() {
    let dir = TempDir::new("rebase-errors");
    let rebase = |args: &[&str]| {
        let mut cmd = microvm();
        cmd.arg("rebase-snap").args(args);
        run(cmd)
    };
    let out = rebase(&["--base-file", "a"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert_one_line_error(&out, &["--diff-file"]);
    let missing = dir.path().join("missing.mem");
    let out = rebase(&["--base-file", "a", "--diff-file", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert_one_line_error(&out, &["missing.mem"]);
    let plain = dir.file("plain.mem", &[0u8; 8192]);
    let out = rebase(&["--base-file", plain.to_str().unwrap(), "--diff-file", plain.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert_one_line_error(&out, &["not a microvm diff snapshot"]);
}
