//! Guest RAM in memory backends (`-object memory-backend-*`, `-mem-path`),
//! with tiny guests on the host's /dev/kvm: the guest runs on memfd and
//! file memory, a shared file mapping carries the guest's writes into the
//! file (what a vhost-user backend relies on), a private one does not, and
//! bad backends are one-line errors.

mod common;

use common::*;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Where the guest stores its marker: 2 MiB, above the kernel image and page tables.
const MARKER_ADDR: u32 = 0x20_0000;
const MARKER: u32 = 0x6d76_6d21;

/// Stores MARKER at MARKER_ADDR, prints `msg`, resets.
fn marker_guest(dir: &TempDir, msg: &str) -> std::path::PathBuf {
    let mut a = tiny_guest::Asm::new();
    a.mov_eax(MARKER).store_eax(MARKER_ADDR).out_bytes(tiny_guest::COM1, msg.as_bytes()).i8042_reset().halt_forever();
    dir.file("marker.elf", &tiny_guest::pvh_elf(&a.finish()))
}

fn with_memory(kernel: &Path, memory: &[&str]) -> std::process::Command {
    let mut cmd = microvm_legacy(kernel);
    cmd.args(memory);
    cmd
}

fn marker_in(file: &Path) -> u32 {
    let mut word = [0u8; 4];
    std::fs::File::open(file).unwrap().read_exact_at(&mut word, u64::from(MARKER_ADDR)).unwrap();
    u32::from_le_bytes(word)
}

#[test]
fn guest_runs_on_shared_memfd_memory() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("memfd");
    let kernel = marker_guest(&dir, "on memfd\n");
    let memfd = ["-m", "64M", "-object", "memory-backend-memfd,id=mem,size=64M,share=on", "-M", "memory-backend=mem"];
    assert_clean_exit(&run(with_memory(&kernel, &memfd)), b"on memfd\n");
    let numa = ["-object", "memory-backend-memfd,id=m,size=32M,prealloc=on", "-numa", "node,memdev=m"];
    assert_clean_exit(&run(with_memory(&kernel, &numa)), b"on memfd\n");
}

/// share=on: the guest's store lands in the file; share=off: copy-on-write.
#[test]
fn file_memory_is_shared_only_with_share_on() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("memfile");
    let kernel = marker_guest(&dir, "on a file\n");
    for (share, want) in [("on", MARKER), ("off", 0)] {
        let file = dir.path().join(format!("ram-{share}"));
        let object = format!("memory-backend-file,id=mem,size=32M,mem-path={},share={share}", file.display());
        let out = run(with_memory(&kernel, &["-m", "32M", "-object", &object, "-numa", "node,memdev=mem"]));
        assert_clean_exit(&out, b"on a file\n");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 32 << 20);
        assert_eq!(marker_in(&file), want, "share={share}");
    }
}

/// A directory gets an unnamed file (as /dev/shm or a hugetlbfs mount with QEMU).
#[test]
fn mem_path_directory_and_prealloc() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("mempath");
    let kernel = marker_guest(&dir, "mem-path\n");
    let path = dir.path().to_str().unwrap().to_owned();
    let out = run(with_memory(&kernel, &["-m", "32M", "-mem-path", &path, "-mem-prealloc"]));
    assert_clean_exit(&out, b"mem-path\n");
    let shm = [
        "-m",
        "32M",
        "-object",
        "memory-backend-file,id=m,size=32M,mem-path=/dev/shm,share=on",
        "-M",
        "memory-backend=m",
    ];
    if Path::new("/dev/shm").is_dir() {
        assert_clean_exit(&run(with_memory(&kernel, &shm)), b"mem-path\n");
    }
}

#[test]
fn bad_memory_backends_are_one_line_errors() {
    let dir = TempDir::new("membad");
    let kernel = dir.file("reset.elf", &tiny_guest::reset_at_once());
    let cases: [(&[&str], &[&str]); 4] = [
        (&["-m", "64M", "-object", "memory-backend-memfd,id=m,size=32M", "-M", "memory-backend=m"], &["-m (64 MiB)"]),
        (&["-object", "memory-backend-file,id=m,size=32M", "-M", "memory-backend=m"], &["mem-path"]),
        (
            &["-object", "memory-backend-ram,id=a,size=32M", "-numa", "node,memdev=a", "-numa", "node,memdev=a"],
            &["one NUMA node"],
        ),
        (
            &[
                "-object",
                "memory-backend-file,id=m,size=32M,mem-path=/nonexistent/microvm/ram",
                "-M",
                "memory-backend=m",
            ],
            &["/nonexistent/microvm/ram"],
        ),
    ];
    for (args, culprits) in cases {
        if args.iter().any(|a| a.contains("nonexistent")) && !kvm_tests_enabled() {
            continue;
        }
        assert_one_line_error(&run(with_memory(&kernel, args)), culprits);
    }
}
