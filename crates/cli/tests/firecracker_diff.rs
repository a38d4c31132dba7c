//! Firecracker's diff snapshots through its API (`curl --unix-socket`), on the host's
//! /dev/kvm with a tiny guest that dirties one known page a turn and prints what it finds
//! there (`tiny_guest::page_writer_on_serial`): a Full snapshot, the guest runs on, a Diff
//! snapshot whose file holds the dirtied pages and little else, `microvm rebase-snap`, and
//! a restore of the merged memory that goes on from the diff's instant with the memory
//! it had. And the refusals: a diff without a base or without tracking, a diff's memory
//! loaded unmerged.

mod common;

use common::firecracker::*;
use common::pages::*;
use common::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn set_state(socket: &Path, state: &str) {
    let body = json!({ "state": state }).to_string();
    assert_eq!(curl(socket, "PATCH", "/vm", Some(&body)).status, 204, "PATCH /vm {state}");
}

fn create(socket: &Path, kind: &str, state: &Path, mem: &Path) -> Answer {
    let body = json!({ "snapshot_type": kind, "snapshot_path": state, "mem_file_path": mem });
    put(socket, "/snapshot/create", &body.to_string())
}

fn load(socket: &Path, state: &Path, mem: &Path, track_dirty_pages: bool) -> Answer {
    let body = json!({ "snapshot_path": state, "mem_backend": { "backend_type": "File", "backend_path": mem },
        "resume_vm": true, "track_dirty_pages": track_dirty_pages });
    put(socket, "/snapshot/load", &body.to_string())
}

#[test]
fn diff_snapshot_holds_the_dirtied_pages_and_restores_merged() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-diff");
    let kernel = dir.file("vmlinux", &guest());
    let path = |name: &str| dir.path().join(name);
    let (base_state, base_mem, diff_state, diff_mem) = (path("base"), path("base.mem"), path("diff"), path("diff.mem"));

    let socket = path("fc1.socket");
    let machine = r#"{"vcpu_count": 1, "mem_size_mib": 32, "track_dirty_pages": true}"#;
    let mut vm = start_tiny_guest_with(&socket, &kernel, machine);
    // A few hundred pages hold data in the base.
    assert!(vm.wait_for_stdout(format!(" {:010}\n", 300).as_bytes(), RUN_TIMEOUT), "the guest did not run");
    set_state(&socket, "Paused");

    let no_base = create(&socket, "Diff", &diff_state, &diff_mem);
    assert_eq!(no_base.status, 400);
    assert!(no_base.fault().contains("take a Full snapshot first"), "{}", no_base.fault());
    assert_eq!(create(&socket, "Full", &base_state, &base_mem).status, 204);
    let base_turn = last_turn(vm.stdout_now(Duration::from_millis(200)));

    set_state(&socket, "Resumed");
    assert!(
        vm.wait_for_stdout(format!(" {:010}\n", base_turn + 100).as_bytes(), RUN_TIMEOUT),
        "no turns after the base"
    );
    set_state(&socket, "Paused");
    let diff = create(&socket, "Diff", &diff_state, &diff_mem);
    assert_eq!(diff.status, 204, "{}", diff.body);
    let diff_turn = last_turn(vm.stdout_now(Duration::from_millis(200)));
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (_, first) = vm.wait(RUN_TIMEOUT, started);

    // One new page a turn since the base: the diff holds those (and its 4 KiB tag); a
    // full snapshot would hold the base's pages too.
    assert!(diff_turn < PAGES, "{diff_turn} turns: the guest went round its region");
    assert_holds_about(&diff_mem, (diff_turn - base_turn) * PAGE);
    let base_size = allocated(&base_mem);
    assert!(base_size >= base_turn * PAGE, "the base holds the pages written before it: {base_size}");

    let info = run({
        let mut cmd = microvm();
        cmd.arg("snapshot-info").arg(&diff_state);
        cmd
    });
    assert!(info.stdout_lossy().contains("type: diff of snapshot"), "{}", info.describe());

    // A new process: the diff's memory alone, and the base's memory alone, are refused.
    let socket = path("fc2.socket");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    let unmerged = load(&socket, &diff_state, &diff_mem, true);
    assert_eq!(unmerged.status, 400);
    assert!(
        unmerged.fault().contains("microvm rebase-snap")
            && unmerged.fault().contains("holds only the pages of diff snapshot"),
        "{}",
        unmerged.fault()
    );
    let base_only = load(&socket, &diff_state, &base_mem, true);
    assert_eq!(base_only.status, 400);
    assert!(base_only.fault().contains("is of snapshot"), "{}", base_only.fault());

    rebase_snap(&base_mem, &diff_mem);

    // Restored with tracking: the next diff counts from the restored snapshot.
    assert_eq!(load(&socket, &diff_state, &base_mem, true).status, 204);
    // The pages written last before the diff are read back.
    let past = format!(" {:010}\n", diff_turn + BEHIND + 5);
    assert!(vm.wait_for_stdout(past.as_bytes(), RUN_TIMEOUT), "the restored guest did not go on");
    set_state(&socket, "Paused");
    let (diff2_state, diff2_mem) = (path("diff2"), path("diff2.mem"));
    assert_eq!(create(&socket, "Diff", &diff2_state, &diff2_mem).status, 204);
    // The restored guest's first line is the one the first process left unfinished.
    let diff2_turn = last_turn(&[&first.stdout[..], vm.stdout_now(Duration::from_millis(200))].concat());
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (_, second) = vm.wait(RUN_TIMEOUT, started);
    assert!(diff2_turn < PAGES, "{diff2_turn} turns: the guest went round its region");
    assert_holds_about(&diff2_mem, (diff2_turn - diff_turn) * PAGE);

    // The second diff merged onto the first merge; restored without tracking.
    rebase_snap(&base_mem, &diff2_mem);
    let socket = path("fc3.socket");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    assert_eq!(load(&socket, &diff2_state, &base_mem, false).status, 204);
    let past = format!(" {:010}\n", diff2_turn + BEHIND + 5);
    assert!(vm.wait_for_stdout(past.as_bytes(), RUN_TIMEOUT), "the guest restored from the second diff did not go on");
    // Loaded without tracking: a diff is Firecracker's 400.
    set_state(&socket, "Paused");
    let untracked = create(&socket, "Diff", &path("diff3"), &path("diff3.mem"));
    assert_eq!(untracked.status, 400);
    assert_eq!(
        untracked.fault(),
        "Create snapshot error: Diff snapshots are not allowed on uVMs with dirty page tracking disabled."
    );
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (_, third) = vm.wait(RUN_TIMEOUT, started);
    let all = [first.stdout, second.stdout, third.stdout].concat();
    assert_memory_consistent(&lines(&all));
}
