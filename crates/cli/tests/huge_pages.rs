//! Guest RAM on huge pages (issue 19 item 2), tiny guests on the host's /dev/kvm:
//! `-object memory-backend-memfd,hugetlb=on[,hugetlbsize=2M]` and `-mem-path` on a
//! hugetlbfs mount put the guest's RAM on 2 MiB pages (the process's RAM mapping has a
//! 2048 kB kernel page size and the host's free huge pages drop by the guest's size), and a
//! host without enough free huge pages, or a RAM size that is no whole number of them, is
//! one line naming the numbers, before the guest runs.
//!
//! Reserving pages needs root (`/proc/sys/vm/nr_hugepages`): without it, or when the kernel
//! cannot find contiguous memory for them, the tests that need pages say so and check only
//! the errors.

mod common;

use common::*;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

const PAGE_KIB: u64 = 2048;
const SYSFS: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB";
/// Guest RAM of the tests that run a guest: 32 pages.
const RAM_MIB: u64 = 64;

/// Tests in this file change the host's pool one at a time.
static POOL: Mutex<()> = Mutex::new(());

fn read_sysfs(name: &str) -> u64 {
    std::fs::read_to_string(format!("{SYSFS}/{name}")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Pages nobody holds or has reserved.
fn available() -> u64 {
    read_sysfs("free_hugepages").saturating_sub(read_sysfs("resv_hugepages"))
}

/// `extra` more 2 MiB pages in the host's pool for as long as it lives; None when this
/// host cannot give them (not root, or no contiguous memory).
struct Reserved {
    before: u64,
}

impl Reserved {
    fn pages(extra: u64) -> Option<Reserved> {
        let before = read_sysfs("nr_hugepages");
        std::fs::write(format!("{SYSFS}/nr_hugepages"), (before + extra).to_string()).ok()?;
        let r = Reserved { before };
        (available() >= extra).then_some(r)
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let _ = std::fs::write(format!("{SYSFS}/nr_hugepages"), self.before.to_string());
    }
}

/// `KernelPageSize` of the process's mapping of `size_kib`: the guest RAM's page size.
fn ram_page_kib(pid: u32, size_kib: u64) -> Option<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut in_ram = false;
    for line in smaps.lines() {
        if let Some(size) = line.strip_prefix("Size:") {
            in_ram = size.trim().trim_end_matches("kB").trim().parse::<u64>().ok() == Some(size_kib);
        }
        if let (true, Some(kps)) = (in_ram, line.strip_prefix("KernelPageSize:")) {
            return kps.trim().trim_end_matches("kB").trim().parse().ok();
        }
    }
    None
}

/// Runs a guest that prints and halts on `memory`, checks it printed, that its RAM is on
/// 2 MiB pages and that it holds the guest's pages of the pool.
fn runs_on_huge_pages(memory: &[&str], what: &str) {
    let dir = TempDir::new("hugepages");
    let kernel = dir.file("halt.elf", &tiny_guest::serial_then_halt("on huge pages\n"));
    let before = available();
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-m", &format!("{RAM_MIB}M")]).args(memory);
    let mut vm = Running::spawn(cmd);
    assert!(vm.wait_for_stdout(b"on huge pages\n", RUN_TIMEOUT), "{what}: the guest did not print");
    let pid = vm.child.id();
    assert_eq!(ram_page_kib(pid, RAM_MIB * 1024), Some(PAGE_KIB), "{what}: the RAM mapping's page size");
    let held = before - available();
    assert_eq!(held, RAM_MIB * 1024 / PAGE_KIB, "{what}: huge pages the VM holds (reserved at mmap)");
    vm.signal(libc::SIGTERM);
    let (status, out) = vm.wait(Duration::from_secs(10), std::time::Instant::now());
    assert!(status.is_some(), "{what}: did not end on SIGTERM\n{}", out.describe());
    assert_eq!(available(), before, "{what}: the pages went back to the pool");
}

#[test]
fn guest_ram_on_hugetlb_memfd_and_hugetlbfs() {
    if !kvm_tests_enabled() || !Path::new(SYSFS).is_dir() {
        return;
    }
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(_reserved) = Reserved::pages(RAM_MIB * 1024 / PAGE_KIB) else {
        eprintln!("skipped: this host cannot reserve {RAM_MIB} MiB of 2 MiB pages (root, contiguous memory)");
        return;
    };
    let object = format!("memory-backend-memfd,id=m,size={RAM_MIB}M,hugetlb=on,hugetlbsize=2M");
    runs_on_huge_pages(&["-object", &object, "-M", "memory-backend=m"], "memfd hugetlb=on");
    let object = format!("memory-backend-memfd,id=m,size={RAM_MIB}M,hugetlb=on,share=on,prealloc=on");
    runs_on_huge_pages(&["-object", &object, "-M", "memory-backend=m"], "memfd default size, shared, preallocated");

    // QEMU's `-mem-path /dev/hugepages`, on a mount of our own.
    let dir = TempDir::new("hugetlbfs");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount").args(["-t", "hugetlbfs", "none"]).arg(&mnt).status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("skipped -mem-path: cannot mount hugetlbfs");
        return;
    }
    runs_on_huge_pages(&["-mem-path", mnt.to_str().unwrap()], "-mem-path on hugetlbfs");
    let _ = std::process::Command::new("umount").arg(&mnt).status();
}

#[test]
fn too_few_huge_pages_or_a_partial_page_is_one_line() {
    if !kvm_tests_enabled() || !Path::new(SYSFS).is_dir() {
        return;
    }
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("hugepages-short");
    let kernel = dir.file("reset.elf", &tiny_guest::reset_at_once());
    // More pages than the pool has free, whatever this host has reserved.
    let mib = (available() + 16) * PAGE_KIB / 1024;
    let object = format!("memory-backend-memfd,id=m,size={mib}M,hugetlb=on");
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-m", &format!("{mib}M"), "-object", &object, "-M", "memory-backend=m"]);
    let line = assert_one_line_error(&run(cmd), &["huge pages", "2048 kB", "nr_hugepages"]);
    let need = format!("{} pages", mib * 1024 / PAGE_KIB);
    assert!(line.contains(&need), "the line names the pages needed ({need}): {line}");

    if Path::new("/sys/kernel/mm/hugepages/hugepages-1048576kB").is_dir() {
        let object = "memory-backend-memfd,id=m,size=64M,hugetlb=on,hugetlbsize=1G";
        let mut cmd = microvm_legacy(&kernel);
        cmd.args(["-m", "64M", "-object", object, "-M", "memory-backend=m"]);
        assert_one_line_error(&run(cmd), &["1048576 kB huge pages", "multiple"]);
    }
}
