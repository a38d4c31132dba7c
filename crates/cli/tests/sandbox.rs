//! The sandbox seen from outside a running microvm: with the defaults every thread (main,
//! vCPUs, virtio, or the one solo thread) runs under a seccomp filter with no_new_privs;
//! with `-sandbox off` none does. And the report of `-M microvm,dump-seccomp` for the proposal's two command lines.

mod common;

use common::*;
use std::time::Duration;

/// `Seccomp:` and `NoNewPrivs:` of every thread of `pid`, with the thread's name.
fn thread_confinement(pid: u32) -> Vec<(String, String, String)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir") {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).expect("status");
        let field = |name: &str| {
            status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default()
        };
        threads.push((field("Name:"), field("Seccomp:"), field("NoNewPrivs:")));
    }
    threads.sort();
    threads
}

/// The names of microvm's own threads: KVM adds a kernel worker to the process
/// (`kvm-nx-lpage-recovery`, never in user space; it inherits the creating thread's
/// filter all the same, and is checked with the others).
fn our_threads(threads: &[(String, String, String)]) -> Vec<&str> {
    threads.iter().map(|(n, _, _)| n.as_str()).filter(|n| !n.starts_with("kvm-nx-lpage")).collect()
}

/// Runs a two-vCPU guest with a virtio device (so every thread kind exists) and returns
/// its threads' confinement once it runs.
fn confinement_of_running_vm(tag: &str, extra: &[&str]) -> Vec<(String, String, String)> {
    let dir = TempDir::new(tag);
    let ready = "spinning\n";
    let kernel = dir.file("guest.elf", &tiny_guest::serial_then_spin(ready));
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-smp", "2", "-device", "virtio-rng-device"]).args(extra);
    let mut vm = Running::spawn(cmd);
    let booted = vm.wait_for_stdout(ready.as_bytes(), RUN_TIMEOUT);
    let threads = thread_confinement(vm.child.id());
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(Duration::from_secs(5), started);
    assert!(booted, "the guest never ran\n{}", out.describe());
    assert!(status.is_some(), "microvm did not end on SIGTERM\n{}", out.describe());
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM), "\n{}", out.describe());
    threads
}

#[test]
fn every_thread_is_filtered_by_default() {
    if !kvm_tests_enabled() {
        return;
    }
    let threads = confinement_of_running_vm("seccomp-on", &[]);
    assert_eq!(our_threads(&threads), ["microvm", "vcpu0", "vcpu1", "virtio"], "{threads:?}");
    for (name, seccomp, nnp) in &threads {
        assert_eq!((seccomp.as_str(), nnp.as_str()), ("2", "1"), "thread {name}: {threads:?}");
    }
}

/// A 9p share's server thread is filtered like the others (it also enters Landlock).
#[test]
fn the_9p_thread_is_filtered() {
    if !kvm_tests_enabled() {
        return;
    }
    let share = TempDir::new("seccomp-9p-share");
    let virtfs = format!("local,path={},mount_tag=t,security_model=none", share.path().display());
    let threads = confinement_of_running_vm("seccomp-9p", &["-virtfs", &virtfs]);
    let mut names = our_threads(&threads);
    names.sort_unstable();
    assert_eq!(names, ["9p-t", "microvm", "vcpu0", "vcpu1", "virtio"], "{threads:?}");
    for (name, seccomp, nnp) in &threads {
        assert_eq!((seccomp.as_str(), nnp.as_str()), ("2", "1"), "thread {name}: {threads:?}");
    }
}

/// An iothread and the workers of an `aio=threads` pool are filtered like the others,
/// and exist only with the options that ask for them.
#[test]
fn iothreads_and_pool_workers_are_filtered() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("seccomp-iothread-disk");
    let disk = dir.file("disk.img", &[0u8; 65536]);
    let drive = format!("id=d,file={},format=raw,if=none,aio=threads", disk.display());
    let device = "virtio-blk-device,drive=d,iothread=io0,num-queues=2";
    let extra = ["-object", "iothread,id=io0", "-object", "iothread,id=unused", "-drive", &drive, "-device", device];
    let threads = confinement_of_running_vm("seccomp-iothread", &extra);
    let mut names = our_threads(&threads);
    names.sort_unstable();
    let want = ["aio-d-0", "aio-d-1", "aio-d-2", "aio-d-3", "io0", "microvm", "vcpu0", "vcpu1", "virtio"];
    assert_eq!(names, want, "{threads:?}");
    for (name, seccomp, nnp) in &threads {
        assert_eq!((seccomp.as_str(), nnp.as_str()), ("2", "1"), "thread {name}: {threads:?}");
    }
}

/// One vCPU and nothing for an event loop to serve: the main thread runs the vCPU itself
/// (solo mode), under the `solo` filter, and a stop signal still ends the VM in order.
#[test]
fn a_solo_vm_is_one_filtered_thread_and_ends_on_a_signal() {
    if !kvm_tests_enabled() {
        return;
    }
    for (guest, signal) in [(tiny_guest::spin_forever(), libc::SIGTERM), (tiny_guest::halt_forever(), libc::SIGINT)] {
        let dir = TempDir::new("seccomp-solo");
        let kernel = dir.file("guest.elf", &guest);
        let mut cmd = microvm();
        cmd.args(["-M", "microvm", "-m", "32m", "-nodefaults", "-kernel"]).arg(&kernel);
        let vm = Running::spawn(cmd);
        // No serial port to say it runs: wait until its thread is filtered (a start takes
        // a few ms; a loaded machine may take far longer), at most RUN_TIMEOUT.
        let deadline = std::time::Instant::now() + RUN_TIMEOUT;
        let mut threads = thread_confinement(vm.child.id());
        while threads.iter().any(|(_, seccomp, _)| seccomp != "2") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            threads = thread_confinement(vm.child.id());
        }
        vm.signal(signal);
        let started = vm.started;
        let (status, out) = vm.wait(Duration::from_secs(5), started);
        assert!(status.is_some(), "microvm did not end on signal {signal}\n{}", out.describe());
        assert_eq!(out.status.code(), Some(128 + signal), "\n{}", out.describe());
        assert_eq!(our_threads(&threads), ["microvm"], "{threads:?}");
        for (name, seccomp, nnp) in &threads {
            assert_eq!((seccomp.as_str(), nnp.as_str()), ("2", "1"), "thread {name}: {threads:?}");
        }
    }
}

#[test]
fn sandbox_off_filters_no_thread_and_warns() {
    if !kvm_tests_enabled() {
        return;
    }
    let threads = confinement_of_running_vm("seccomp-off", &["-sandbox", "off"]);
    assert_eq!(our_threads(&threads), ["microvm", "vcpu0", "vcpu1", "virtio"], "{threads:?}");
    for (name, seccomp, nnp) in &threads {
        assert_eq!((seccomp.as_str(), nnp.as_str()), ("0", "0"), "thread {name}: {threads:?}");
    }
}

#[test]
fn sandbox_off_warns_once() {
    let out = run({
        let mut cmd = microvm();
        cmd.args(["-sandbox", "off,obsolete=deny", "-kernel", "/nonexistent/vmlinux"]);
        cmd
    });
    assert_eq!(out.stderr.matches("-sandbox off").count(), 1, "{}", out.describe());
}

/// The proposal's command line (as in mtree.rs: normal mode with a virtio console, or
/// legacy mode with the serial port), asking for the seccomp report. The report opens no
/// backend, so the files need not exist.
fn proposal_line(legacy: bool) -> Vec<&'static str> {
    let mut args = vec!["-M", "microvm,dump-seccomp", "-m", "512m", "-smp", "2", "-kernel", "/nonexistent/vmlinux"];
    args.extend(["-append", if legacy { "console=ttyS0 root=/dev/vda" } else { "console=hvc0 root=/dev/vda" }]);
    args.extend(["-nodefaults", "-no-user-config"]);
    if !legacy {
        args.extend(["-chardev", "file,id=virtiocon0,path=/nonexistent/console.log"]);
        args.extend(["-device", "virtio-serial-device", "-device", "virtconsole,chardev=virtiocon0"]);
    }
    args.extend(["-drive", "id=test,file=/nonexistent/test.img,format=raw,if=none"]);
    args.extend(["-device", "virtio-blk-device,drive=test", "-netdev", "tap,id=tap0,script=no,downscript=no"]);
    args.extend(["-device", "virtio-net-device,netdev=tap0"]);
    if legacy {
        args.extend(["-serial", "stdio"]);
    }
    args
}

/// The summary lines (thread kind, threads, distinct calls) of the report for `args`.
fn report_counts(args: &[&str]) -> Vec<String> {
    let mut cmd = microvm();
    cmd.args(args);
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.describe());
    out.stdout_lossy().lines().filter(|l| !l.starts_with(' ')).map(String::from).collect()
}

/// Any change in what a thread may ask of the host shows up here as a reviewed change.
const PROPOSAL_COUNTS: [&str; 3] = [
    "main thread (1): 44 system calls, 8 of them with argument conditions",
    "vcpu threads (2): 24 system calls, 6 of them with argument conditions",
    "virtio thread (1): 44 system calls, 8 of them with argument conditions",
];

/// aio=io_uring submits on the virtio thread: io_uring_enter is in its filter and in no
/// other thread's (but an iothread's, which serves drives the same way), and the ring's
/// set-up calls are in none (the ring is made with the drive, before any filter).
#[test]
fn only_the_virtio_thread_may_enter_io_uring() {
    let out = run({
        let mut cmd = microvm();
        cmd.args(proposal_line(false));
        cmd
    });
    assert!(out.status.success(), "{}", out.describe());
    let report = out.stdout_lossy();
    let mut kind = String::new();
    let mut seen = Vec::new();
    for line in report.lines() {
        if !line.starts_with(' ') {
            kind = line.split(" (").next().unwrap_or_default().to_owned();
        } else if line.trim().starts_with("io_uring") {
            seen.push(format!("{kind}: {}", line.trim()));
        }
    }
    assert_eq!(seen, ["virtio thread: io_uring_enter"], "{report}");
}

#[test]
fn dump_seccomp_counts_for_the_normal_mode_line() {
    assert_eq!(report_counts(&proposal_line(false)), PROPOSAL_COUNTS);
}

#[test]
fn dump_seccomp_counts_for_the_legacy_mode_line() {
    assert_eq!(report_counts(&proposal_line(true)), PROPOSAL_COUNTS);
}

#[test]
fn dump_seccomp_without_devices_has_no_virtio_thread() {
    assert_eq!(report_counts(&["-kernel", "/k", "-smp", "2", "-M", "microvm,dump-seccomp"]), PROPOSAL_COUNTS[..2]);
}

/// Each 9p share adds a server thread with its own list of file calls (and no access to
/// guest memory, the devices or KVM).
#[test]
fn dump_seccomp_of_9p_shares() {
    let shares = ["-virtfs", "local,path=/a,mount_tag=a,security_model=none"];
    let second = ["-virtfs", "local,path=/b,mount_tag=b,security_model=none"];
    let line = [&["-kernel", "/k", "-smp", "2", "-M", "microvm,dump-seccomp"][..], &shares, &second].concat();
    let mut want = PROPOSAL_COUNTS.to_vec();
    want.push("ninep threads (2): 52 system calls, 7 of them with argument conditions");
    assert_eq!(report_counts(&line), want);
}

/// An iothread runs the virtio thread's block part (no sockets, vhost, rng or chardevs);
/// two drives share it; an `aio=threads` drive adds four workers with three calls of their
/// own. With every device on an iothread there is no virtio thread.
#[test]
fn dump_seccomp_of_an_iothread_and_a_pool() {
    let head = ["-kernel", "/k", "-smp", "2", "-M", "microvm,dump-seccomp", "-object", "iothread,id=io0"];
    let pooled =
        ["-drive", "id=d,file=/d.img,if=none,aio=threads", "-device", "virtio-blk-device,drive=d,iothread=io0"];
    let second =
        ["-drive", "id=e,file=/e.img,if=none", "-device", "virtio-blk-device,drive=e,iothread=io0,num-queues=4"];
    let want = [
        PROPOSAL_COUNTS[0],
        PROPOSAL_COUNTS[1],
        "iothread thread (1): 31 system calls, 6 of them with argument conditions",
        "aio-worker threads (4): 22 system calls, 5 of them with argument conditions",
    ];
    assert_eq!(report_counts(&[&head[..], &pooled, &second].concat()), want);
    // A device on the virtio thread brings it back.
    let rng = ["-device", "virtio-rng-device"];
    let mut with_virtio = want.to_vec();
    with_virtio.insert(2, PROPOSAL_COUNTS[2]);
    assert_eq!(report_counts(&[&head[..], &pooled, &rng].concat()), with_virtio);
}

/// One vCPU and nothing else: the main thread runs it (solo mode), under its own list.
#[test]
fn dump_seccomp_of_a_solo_line() {
    assert_eq!(
        report_counts(&["-kernel", "/k", "-M", "microvm,dump-seccomp"]),
        ["solo thread (1): 23 system calls, 6 of them with argument conditions"]
    );
}

#[test]
fn sandbox_off_reports_no_filter() {
    let out = run({
        let mut cmd = microvm();
        cmd.args(["-kernel", "/k", "-sandbox", "off", "-M", "microvm,dump-seccomp"]);
        cmd
    });
    assert!(out.stdout_lossy().starts_with("sandbox off: no thread runs under a seccomp filter"), "{}", out.describe());
}
