//! `-drive format=qcow2` and `snapshot=on` on the real binary and /dev/kvm, with the
//! sandbox on (the default). The tiny guest's own virtio-blk driver writes a pattern,
//! reads it back and writes what it read elsewhere (block_engines.rs); QEMU's own tools
//! (qemu-img, qemu-io from qemu-utils) make the images, then check them and compare
//! what the guest left with what it should have.

mod common;

use common::qmp::Qmp;
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use tiny_guest::{pattern_byte, COPY_SECTOR, PATTERN_SECTOR, READ_BYTES, VIRTIO_MMIO_SLOT0};

/// The disk's size: a few qcow2 clusters (64 KiB each).
const SIZE: usize = 1 << 20;

/// Runs `tool args` (qemu-img, qemu-io) in `dir`; returns its stdout, or fails.
fn qemu_tool(dir: &Path, tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).current_dir(dir).args(args).output().unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have_qemu_img() -> bool {
    let found = Command::new("qemu-img").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: no qemu-img (apt package qemu-utils)");
    }
    found
}

/// The backing file's bytes: each sector its number, so a sector read from the wrong
/// place shows.
fn base_bytes() -> Vec<u8> {
    (0..SIZE).map(|i| (i / 512) as u8 ^ 0x5a).collect()
}

/// `base` as the guest should leave it: the pattern at PATTERN_SECTOR and its copy at
/// COPY_SECTOR.
fn with_pattern(mut image: Vec<u8>) -> Vec<u8> {
    for sector in [PATTERN_SECTOR, COPY_SECTOR] {
        let at = (sector * 512) as usize;
        for i in 0..READ_BYTES as usize {
            image[at + i] = pattern_byte(i);
        }
    }
    image
}

/// `qemu-img check` finds nothing wrong (no corruption, no leaked cluster).
fn assert_check_clean(dir: &Path, image: &str) {
    let out = Command::new("qemu-img").current_dir(dir).args(["check", image]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("No errors were found"),
        "qemu-img check {image}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The guest's view of `image` (whole chain) equals the raw bytes `want`.
fn assert_reads_as(dir: &Path, image: &str, want: &[u8], what: &str) {
    std::fs::write(dir.join("want.raw"), want).unwrap();
    let out = Command::new("qemu-img").current_dir(dir).args(["compare", image, "want.raw"]).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: qemu-img compare: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// base.raw ← mid.qcow2 (4 KiB of 0x77 at 0, written by qemu-io) ← top.qcow2, each
/// naming its backing file relative to its own directory, with backing_fmt. Returns
/// what the chain reads as.
fn make_chain(dir: &Path) -> Vec<u8> {
    std::fs::write(dir.join("base.raw"), base_bytes()).unwrap();
    qemu_tool(dir, "qemu-img", &["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "mid.qcow2"]);
    qemu_tool(dir, "qemu-io", &["-c", "write -q -P 0x77 0 4k", "mid.qcow2"]);
    qemu_tool(dir, "qemu-img", &["create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2"]);
    let mut chain = base_bytes();
    chain[..4096].fill(0x77);
    chain
}

/// Whether files in `dir` can be opened with O_DIRECT (tmpfs cannot).
fn has_o_direct(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let probe = dir.join("probe");
    std::fs::write(&probe, [0u8; 4096]).unwrap();
    let ok = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&probe).is_ok();
    std::fs::remove_file(probe).unwrap();
    ok
}

/// Runs the write-read-copy guest on `drive` until it ends the VM itself.
fn run_guest(dir: &Path, drive: &str) -> Output {
    let kernel = dir.join("vmlinux");
    std::fs::write(&kernel, tiny_guest::virtio_blk_write_read_copy(VIRTIO_MMIO_SLOT0)).unwrap();
    let mut cmd = tiny_block_vm(&kernel, drive);
    cmd.env("TMPDIR", dir);
    let mut vm = Running::spawn(cmd);
    assert!(vm.wait_for_stdout(b"...\ndone\n", RUN_TIMEOUT), "{drive}: the requests did not all complete");
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{drive}: {}", out.describe());
    assert_no_panic(&out);
    out
}

/// The guest writes into a qcow2 whose backing chain is a qcow2 and a raw file: its
/// reads see its own writes, the rest of each cluster comes from the chain (copy on
/// write), the backing files are untouched, and qemu-img finds the image clean.
#[test]
fn guest_writes_qcow2_over_a_backing_chain_and_qemu_img_checks_it_clean() {
    if !kvm_tests_enabled() || !have_qemu_img() {
        return;
    }
    for props in ["", ",cache=writethrough", ",cache=unsafe", ",aio=io_uring", ",cache=none"] {
        let dir = TempDir::new("qcow2-chain");
        if props == ",cache=none" && !has_o_direct(dir.path()) {
            eprintln!("cache=none skipped: the temp directory has no O_DIRECT");
            continue;
        }
        let chain = make_chain(dir.path());
        let mid_before = std::fs::read(dir.path().join("mid.qcow2")).unwrap();
        let top = dir.path().join("top.qcow2");
        let out = run_guest(dir.path(), &format!("id=d,file={},format=qcow2,if=none{props}", top.display()));
        if props.contains("io_uring") {
            assert!(out.stderr.contains("aio=io_uring does not apply to format=qcow2"), "{}", out.describe());
        }
        assert_check_clean(dir.path(), "top.qcow2");
        assert_reads_as(dir.path(), "top.qcow2", &with_pattern(chain.clone()), props);
        assert_reads_as(dir.path(), "mid.qcow2", &chain, "the backing chain");
        assert_eq!(std::fs::read(dir.path().join("mid.qcow2")).unwrap(), mid_before, "{props}: backing file written");
        assert_eq!(std::fs::read(dir.path().join("base.raw")).unwrap(), base_bytes(), "{props}: base written");
    }
}

/// QMP `quit` while the guest still runs: the metadata the guest's writes allocated is
/// written back as the VM ends, so the image is whole.
#[test]
fn qcow2_is_clean_after_quit() {
    if !kvm_tests_enabled() || !have_qemu_img() {
        return;
    }
    let dir = TempDir::new("qcow2-quit");
    let chain = make_chain(dir.path());
    let kernel = dir.file("vmlinux", &tiny_guest::virtio_blk_write_read_copy_then_halt(VIRTIO_MMIO_SLOT0));
    let socket = dir.path().join("qmp.sock");
    let top = dir.path().join("top.qcow2");
    let mut cmd = tiny_block_vm(&kernel, &format!("id=d,file={},format=qcow2,if=none", top.display()));
    cmd.args(["-qmp", &format!("unix:{},server=on,wait=off", socket.display())]);
    let mut vm = Running::spawn(cmd);
    assert!(vm.wait_for_stdout(b"...\ndone\n", RUN_TIMEOUT), "the requests did not all complete");
    let mut qmp = Qmp::connect(&socket);
    assert_eq!(qmp.execute("quit", json!({})), Ok(json!({})));
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
    assert_no_panic(&out);
    assert_check_clean(dir.path(), "top.qcow2");
    assert_reads_as(dir.path(), "top.qcow2", &with_pattern(chain), "after quit");
}

/// A VM snapshot (QMP `migrate`) writes the metadata back first, on the main thread
/// under its filter: the image is whole while the VM still holds it. A snapshot=on
/// drive refuses the snapshot in one error.
#[test]
fn a_vm_snapshot_leaves_the_qcow2_whole_and_snapshot_on_refuses_it() {
    if !kvm_tests_enabled() || !have_qemu_img() {
        return;
    }
    let dir = TempDir::new("qcow2-migrate");
    let chain = make_chain(dir.path());
    let kernel = dir.file("vmlinux", &tiny_guest::virtio_blk_write_read_copy_then_halt(VIRTIO_MMIO_SLOT0));
    let top = dir.path().join("top.qcow2");
    for snapshot in [false, true] {
        let socket = dir.path().join("qmp.sock");
        let drive =
            format!("id=d,file={},format=qcow2,if=none,snapshot={}", top.display(), ["off", "on"][snapshot as usize]);
        let mut cmd = tiny_block_vm(&kernel, &drive);
        cmd.env("TMPDIR", dir.path()).args(["-qmp", &format!("unix:{},server=on,wait=off", socket.display())]);
        let mut vm = Running::spawn(cmd);
        assert!(vm.wait_for_stdout(b"...\ndone\n", RUN_TIMEOUT), "the requests did not all complete");
        let mut qmp = Qmp::connect(&socket);
        let saved = qmp.execute("migrate", json!({ "uri": format!("file:{}", dir.path().join("vm.snap").display()) }));
        if snapshot {
            let e = saved.unwrap_err();
            assert!(e.contains("snapshot=on"), "{e}");
        } else {
            saved.unwrap();
            assert_check_clean(dir.path(), "top.qcow2");
            assert_reads_as(dir.path(), "top.qcow2", &with_pattern(chain.clone()), "after migrate");
        }
        assert_eq!(qmp.execute("quit", json!({})), Ok(json!({})));
        let started = vm.started;
        let (status, out) = vm.wait(RUN_TIMEOUT, started);
        assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
        std::fs::remove_file(&socket).ok();
    }
    assert_reads_as(dir.path(), "top.qcow2", &with_pattern(chain), "snapshot=on left it");
}

/// snapshot=on: the guest's writes succeed but go to a temporary overlay; the image,
/// raw or qcow2, is left as it was, and nothing is left in $TMPDIR.
#[test]
fn snapshot_on_leaves_the_image_unchanged() {
    if !kvm_tests_enabled() || !have_qemu_img() {
        return;
    }
    let dir = TempDir::new("qcow2-snapshot");
    let chain = make_chain(dir.path());
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    for (file, format) in [("base.raw", "raw"), ("top.qcow2", "qcow2")] {
        let before = std::fs::read(dir.path().join(file)).unwrap();
        let path = dir.path().join(file);
        run_guest(&tmp, &format!("id=d,file={},format={format},if=none,snapshot=on", path.display()));
        assert_eq!(std::fs::read(&path).unwrap(), before, "{file}: changed under snapshot=on");
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, ["vmlinux"], "{file}: the overlay was left behind");
    }
    assert_check_clean(dir.path(), "top.qcow2");
    assert_reads_as(dir.path(), "top.qcow2", &chain, "top.qcow2 after snapshot=on");
}

/// Runs microvm on a drive expected to be refused; returns the one error line.
fn refused(drive: &str, culprits: &[&str]) -> String {
    let out = run(tiny_block_vm(Path::new("/nonexistent/vmlinux"), drive));
    let line = assert_one_line_error(&out, culprits);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    line
}

/// Bad images each get one line naming the file and why, exit status 1, no panic.
#[test]
fn bad_qcow2_inputs_are_one_clear_line() {
    if !have_qemu_img() {
        return;
    }
    let dir = TempDir::new("qcow2-bad");
    let d = dir.path();
    // A raw file given format=qcow2.
    let raw = dir.file("disk.raw", &[0u8; 65536]);
    let line = refused(&format!("id=d,file={},format=qcow2,if=none", raw.display()), &["disk.raw"]);
    assert!(line.contains("not a qcow2 image"), "{line}");
    // A backing file that is not there (named relative to the image's directory).
    std::fs::write(d.join("base.raw"), base_bytes()).unwrap();
    qemu_tool(d, "qemu-img", &["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2"]);
    std::fs::remove_file(d.join("base.raw")).unwrap();
    let top = d.join("top.qcow2");
    let line = refused(&format!("id=d,file={},format=qcow2,if=none", top.display()), &["base.raw"]);
    assert!(line.contains("backing file") && line.contains("No such file"), "{line}");
    assert!(line.contains(&d.join("base.raw").display().to_string()), "resolved from the image's directory: {line}");
    // A corrupt header: the magic, then a version no qcow2 has.
    let mut corrupt = std::fs::read(&top).unwrap();
    corrupt[4..8].copy_from_slice(&7u32.to_be_bytes());
    let bad = dir.file("corrupt.qcow2", &corrupt);
    let line = refused(&format!("id=d,file={},format=qcow2,if=none", bad.display()), &["corrupt.qcow2"]);
    assert!(line.contains("qcow2"), "{line}");
    // A header whose tables point past the end of a file cut short.
    let cut = dir.file("cut.qcow2", &std::fs::read(&top).unwrap()[..512]);
    let line = refused(&format!("id=d,file={},format=qcow2,if=none", cut.display()), &["cut.qcow2"]);
    assert!(!line.chars().any(char::is_control) && line.contains("corrupt"), "{line:?}");
    // A qcow2 image without format= is raw, as the line says (nothing is probed), with a
    // warning that QEMU would have probed it.
    let out = run(tiny_block_vm(Path::new("/nonexistent/vmlinux"), &format!("id=d,file={},if=none", top.display())));
    assert!(
        out.stderr.contains("a qcow2 image used as raw") && out.stderr.contains("add format=qcow2"),
        "{}",
        out.describe()
    );
    let out = run(tiny_block_vm(Path::new("/nonexistent/vmlinux"), &format!("id=d,file={},if=none", raw.display())));
    assert!(!out.stderr.contains("qcow2"), "a raw image is not taken for qcow2: {}", out.describe());
    // Formats other than raw and qcow2 are named in the refusal.
    let line = refused(&format!("id=d,file={},format=vmdk,if=none", raw.display()), &["vmdk"]);
    assert!(line.contains("format=qcow2"), "{line}");
}
