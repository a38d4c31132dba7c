//! Issue 9, acceptance 1: the QEMU microvm command lines public projects use,
//! with only the program name changed (paths replaced), each starting a tiny
//! guest on the host's /dev/kvm that ends it (or, with `-S`, waits for a QMP
//! client to `cont`). The tap of QEMU's documentation line is created inside a
//! network namespace made for the test (`unshare --net`); where namespaces
//! are not available that line runs without its NIC, saying so.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn split(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// `microvm` run in `dir` with `args`; `K` is replaced by `kernel`.
fn line(dir: &Path, kernel: &Path, args: &[String]) -> Command {
    let mut cmd = microvm();
    cmd.current_dir(dir);
    cmd.args(args.iter().map(|a| if a == "K" { kernel.display().to_string() } else { a.clone() }));
    cmd
}

/// Whether this machine lets the test make a network namespace.
fn netns_available() -> bool {
    Command::new("unshare").args(["--net", "--", "true"]).status().is_ok_and(|s| s.success())
}

#[test]
fn qemu_documentation_line() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("docs");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_reset("QEMU docs line\n"));
    dir.file("test.img", &vec![0u8; 1 << 20]);
    let mut args = split("-M microvm -enable-kvm -cpu host -m 512m -smp 2 -kernel K -append");
    args.push("earlyprintk=ttyS0 console=ttyS0 root=/dev/vda".into());
    args.extend(split(
        "-nodefaults -no-user-config -nographic -serial stdio -drive id=test,file=test.img,format=raw,if=none \
         -device virtio-blk-device,drive=test",
    ));
    let net = split("-netdev tap,id=tap0,script=no,downscript=no -device virtio-net-device,netdev=tap0");
    let out = if netns_available() {
        // microvm creates its tap (tapN) inside a network namespace of its own.
        let mut cmd = Command::new("unshare");
        cmd.current_dir(dir.path()).args(["--net", "--"]).arg(microvm_path());
        let full: Vec<String> = args.iter().chain(&net).cloned().collect();
        cmd.args(full.iter().map(|a| if a == "K" { kernel.display().to_string() } else { a.clone() }));
        cmd.env("RUST_BACKTRACE", "1").stdin(std::process::Stdio::null());
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        run(cmd)
    } else {
        eprintln!("no network namespaces here: running QEMU's documentation line without its -netdev tap NIC");
        run(line(dir.path(), &kernel, &args))
    };
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout, b"QEMU docs line\n");
}

#[test]
fn microvm_nix_line() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("nix");
    let kernel = dir.file("vmlinux", &tiny_guest::reset_at_once());
    dir.file("boot.img", &vec![0u8; 1 << 20]);
    let mut args = split(
        "-name my-microvm -M microvm,x-option-roms=off,isa-serial=off,pit=off,pic=off,rtc=off -m 512 \
         -cpu host,+x2apic -smp 1 -no-acpi -enable-kvm -nodefaults -no-user-config -nographic -no-reboot \
         -serial null -device virtio-serial-device -chardev stdio,mux=on,id=virtiocon0,signal=off \
         -device virtconsole,chardev=virtiocon0 -device virtio-rng-device \
         -drive id=root,format=raw,media=cdrom,file=boot.img,if=none,aio=io_uring \
         -device virtio-blk-device,drive=root -kernel K -append",
    );
    args.push("console=hvc0 acpi=off reboot=t panic=-1".into());
    args.extend(split("-sandbox on -qmp unix:control.socket,server,nowait"));
    let out = run(line(dir.path(), &kernel, &args));
    assert!(out.status.success(), "{}", out.describe());
    // -sandbox on is the default: the run is filtered, and nothing is said about it.
    assert!(!out.stderr.contains("sandbox"), "{}", out.stderr);
    assert!(!dir.path().join("control.socket").exists(), "the QMP socket is removed at exit");
}

/// Reads one JSON line from a QMP connection.
fn qmp_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line
}

#[test]
fn toro_line_waits_for_qmp_cont() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("toro");
    let kernel = dir.file("vmlinux", &tiny_guest::port_read_echo_then_reset(tiny_guest::UNHANDLED_PORT));
    let args = split(
        "-enable-kvm -M microvm,pic=off,pit=off,rtc=off -cpu host -m 128 -smp 1 -nographic -D qemu.log \
         -d guest_errors -no-reboot -global virtio-mmio.force-legacy=false -machine acpi=off -kernel K -S \
         -qmp unix:./qmp-sock,server,nowait",
    );
    let vm = Running::spawn(line(dir.path(), &kernel, &args));
    let start = Instant::now();
    let sock = dir.path().join("qmp-sock");
    let stream = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < RUN_TIMEOUT => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("no QMP socket: {e}"),
        }
    };
    stream.set_read_timeout(Some(RUN_TIMEOUT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    assert!(qmp_line(&mut reader).contains("\"QMP\""));
    writer.write_all(b"{\"execute\": \"qmp_capabilities\"}\n").unwrap();
    assert!(qmp_line(&mut reader).contains("\"return\""));
    writer.write_all(b"{\"execute\": \"query-status\"}\n").unwrap();
    assert!(qmp_line(&mut reader).contains("\"prelaunch\""), "-S waits before the first instruction");
    writer.write_all(b"{\"execute\": \"cont\"}\n").unwrap();
    let (status, out) = vm.wait(RUN_TIMEOUT, start);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
    let log = std::fs::read_to_string(dir.path().join("qemu.log")).unwrap();
    assert!(log.contains("invalid read of I/O port 0x2e0"), "{log}");
}

#[test]
fn unikraft_line_ends_through_isa_debug_exit() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("unikraft");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_debug_exit("unikraft\n", tiny_guest::DEBUG_EXIT_PORT, 0));
    let args = split(
        "-L pc-bios/ -enable-kvm -nographic -device isa-debug-exit -kernel K -m 2M -nodefaults -no-user-config \
         -serial stdio -M microvm,x-option-roms=off,pit=off,pic=off,rtc=on -cpu host,migratable=no,+invtsc \
         -overcommit mem-lock=on",
    );
    let out = run(line(dir.path(), &kernel, &args));
    assert_eq!(out.status.code(), Some(1), "isa-debug-exit with 0: status (0 << 1) | 1\n{}", out.describe());
    assert_eq!(out.stdout, b"unikraft\n");
    assert!(out.stderr.contains("-L: no firmware runs"), "{}", out.stderr);
}

#[test]
fn wrapper_line_daemonizes_with_a_pidfile() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("wrapper");
    let kernel = dir.file("vmlinux", &tiny_guest::spin_forever());
    dir.file("initrd", b"not really an initramfs");
    let mut args = split(
        "-pidfile vm.pid -daemonize -compat deprecated-input=crash -nodefaults -no-user-config -nographic \
         -machine microvm,x-option-roms=off,pit=off,pic=off,isa-serial=off,rtc=off,accel=kvm \
         -cpu host,migratable=off -smp cpus=2 -m size=1G -kernel K -initrd initrd -append",
    );
    args.push("reboot=triple panic=-1 console=hvc0 root=/dev/vda".into());
    args.extend(split(
        "-device virtio-serial-device -device virtconsole,chardev=con0 -chardev stdio,id=con0 \
         -device virtio-rng-device -qmp unix:qmp.sock,server,nowait",
    ));
    let out = run(line(dir.path(), &kernel, &args));
    assert!(out.status.success(), "the parent exits once the VM is set up\n{}", out.describe());
    let pid: i32 = std::fs::read_to_string(dir.path().join("vm.pid")).unwrap().trim().parse().unwrap();
    // SAFETY: kill with signal 0 only checks that the process exists.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the daemon runs");
    // End it over QMP, as the wrapper does.
    let stream = UnixStream::connect(dir.path().join("qmp.sock")).unwrap();
    stream.set_read_timeout(Some(RUN_TIMEOUT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    assert!(qmp_line(&mut reader).contains("\"QMP\""));
    writer.write_all(b"{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"quit\"}\n").unwrap();
    let deadline = Instant::now() + RUN_TIMEOUT;
    // SAFETY: as above.
    while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: as above.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "the daemon ended on quit");
}

#[test]
fn ubuntu_line_refuses_qcow2_in_one_line_and_boots_raw() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("ubuntu");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_reset("ubuntu\n"));
    dir.file("x.img", &vec![0u8; 1 << 20]);
    let with = |drive: &str| {
        let mut args = split("-machine accel=kvm,rtc=on -bios qboot.rom -m 512 -smp 2 -kernel K -append");
        args.push("console=ttyS0 root=/dev/vda rw".into());
        args.extend(split("-nodefaults -no-user-config -nographic -serial mon:stdio -drive"));
        args.push(drive.into());
        args.extend(split("-device virtio-blk-device,drive=virtio1"));
        line(dir.path(), &kernel, &args)
    };
    let out = run(with("file=x.qcow2,index=0,format=qcow2,media=disk,if=none,id=virtio1"));
    let error = assert_one_line_error(&out, &["-drive", "format=qcow2"]);
    assert!(error.contains("only format=raw is supported, not qcow2"), "{error}");
    assert!(!out.stderr.contains("-bios"), "the qcow2 error is the only line: {}", out.stderr);
    let out = run(with("file=x.img,index=0,format=raw,media=disk,if=none,id=virtio1"));
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout, b"ubuntu\n");
}
