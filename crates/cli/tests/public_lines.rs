//! Issue 9, acceptance 1: the QEMU microvm command lines public projects use,
//! with only the program name changed (paths replaced), each starting a tiny
//! guest on the host's /dev/kvm that ends it (or, with `-S`, waits for a QMP
//! client to `cont`). The tap of QEMU's documentation line is created inside a
//! network namespace made for the test (`unshare --net`); where namespaces
//! are not available that line runs without its NIC, saying so.
//!
//! Issue 18, acceptance 2, adds the lines (virtme-ng, hermit-os, asterinas, melange,
//! Proxmox, qemus/qemu, ms-jpq/lab, Kata, smolBSD) that use what its items 1, 2, 3
//! (`-netdev user`, `-nic`), 6 (9p), 7 and 8 built; each test names its line's source.

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
fn ubuntu_line_boots_qcow2_and_raw() {
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
    // The line's own image format (qemu-img from qemu-utils makes one).
    let made = std::process::Command::new("qemu-img")
        .current_dir(dir.path())
        .args(["create", "-q", "-f", "qcow2", "x.qcow2", "1M"])
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let out = run(with("file=x.qcow2,index=0,format=qcow2,media=disk,if=none,id=virtio1"));
        assert!(out.status.success(), "{}", out.describe());
        assert_eq!(out.stdout, b"ubuntu\n");
    } else {
        eprintln!("qcow2 part skipped: no qemu-img (apt package qemu-utils)");
    }
    let out = run(with("file=x.img,index=0,format=raw,media=disk,if=none,id=virtio1"));
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout, b"ubuntu\n");
}

// ---- Issue 18, acceptance 2: lines that use -machine pcie=, -cpu MODEL, -global
// kvm-pit/virtio-mmio, -id, -display vnc and PCI devices, and (item 3) -netdev user,
// which needs passt installed (`apt install passt`; xtask's package list has it).

/// Only the warnings a named CPU model gives on this host (features its KVM
/// lacks, in QEMU's words), and the ones each test expects besides.
fn assert_only_warnings(stderr: &str, expected: &[&str]) {
    for line in stderr.lines() {
        let known = line.starts_with("microvm: host doesn't support requested feature: ")
            || expected.iter().any(|e| line.contains(e));
        assert!(known, "unexpected stderr line: {line}\n{stderr}");
    }
    for e in expected {
        assert_eq!(stderr.lines().filter(|l| l.contains(e)).count(), 1, "{e}: {stderr}");
    }
}

/// virtme-ng: the machine and global of arighi/virtme-ng's virtme/architectures.py
/// (`-M microvm,accel=kvm,pcie=on,rtc=on`, `-global virtio-mmio.force-legacy=false`)
/// in the command line vng prints (quoted on the netdev list; its virtio-fs root, a
/// vhost-user-fs-device on virtiofsd's socket, is left out: there is no virtiofsd here).
#[test]
fn virtme_ng_line_warns_once_about_pcie() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("virtme");
    let kernel = dir.file("bzImage", &tiny_guest::serial_then_reset("virtme-ng\n"));
    let args = virtme_ng_args(&[]);
    let out = run(line(dir.path(), &kernel, &args));
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout_lossy().contains("virtme-ng"), "{}", out.describe());
    assert_only_warnings(&out.stderr, &["-machine pcie=on: microvm has no PCIe host bridge yet"]);
}

/// virtme-ng with a 9p share (issue 18 item 6): the `-fsdev`/`-device` pair that
/// arighi/virtme-ng's `export_virtfs` (virtme/commands/run.py, commit 4d9dc4de) writes for
/// a host directory when virtiofsd cannot serve it, with `Arch_microvm.virtio_dev_type`
/// (virtme/architectures.py) naming the device `virtio-9p-device`:
/// `-fsdev local,id=virtfsN,path=P,security_model=none,readonly=on,multidevs=remap
/// -device virtio-9p-device,fsdev=virtfsN,mount_tag=virtme.guesttools`, on the machine
/// line of the test above. The share's server thread starts under its filter and the
/// guest runs to its end.
#[test]
fn virtme_ng_9p_export_line() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("virtme-9p");
    let kernel = dir.file("bzImage", &tiny_guest::serial_then_reset("virtme-ng 9p\n"));
    std::fs::create_dir(dir.path().join("guest")).unwrap();
    let share = split(
        "-fsdev local,id=virtfs34,path=guest,security_model=none,readonly=on,multidevs=remap \
         -device virtio-9p-device,fsdev=virtfs34,mount_tag=virtme.guesttools",
    );
    let args = virtme_ng_args(&share);
    let out = run(line(dir.path(), &kernel, &args));
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout_lossy().contains("virtme-ng 9p"), "{}", out.describe());
    assert_only_warnings(&out.stderr, &["-machine pcie=on: microvm has no PCIe host bridge yet"]);
}

/// The line vng prints for arighi/virtme-ng's microvm architecture (see the tests using
/// it), with `extra` (its 9p export) before `-kernel`.
fn virtme_ng_args(extra: &[String]) -> Vec<String> {
    let mut args = split(
        "-name virtme-ng -m 1G -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \
         -machine accel=kvm:tcg -M microvm,accel=kvm,pcie=on,rtc=on -cpu host -parallel none -net none -echr 1 \
         -chardev file,path=/proc/self/fd/2,id=dmesg -device virtio-serial-device -device virtconsole,chardev=dmesg \
         -chardev stdio,id=console,signal=off,mux=on -serial chardev:console -mon chardev=console -vga none \
         -display none -smp 4 -global virtio-mmio.force-legacy=false",
    );
    args.extend_from_slice(extra);
    args.extend(split("-kernel K -append"));
    args.push("virtme_hostname=virtme-ng nr_open=1073741816 console=ttyS0".into());
    args
}

/// hermit-os: the microvm line of hermit-os/kernel's xtask/src/ci/qemu.rs (without
/// --accel: `-cpu Skylake-Client`), ending through isa-debug-exit at 0xf4 with
/// QEMU's status 3, which that CI expects.
#[test]
fn hermit_os_line_runs_the_skylake_client_model() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("hermit");
    let kernel = dir.file("hermit-loader-x86_64", &tiny_guest::serial_then_debug_exit("hermit\n", 0xf4, 1));
    dir.file("hello_world", b"not really an application");
    let mut args = split(
        "-display none -serial stdio -kernel K -initrd hello_world \
         -M microvm,x-option-roms=off,pit=off,pic=off,rtc=on,auto-kernel-cmdline=off,acpi=off \
         -global virtio-mmio.force-legacy=off -nodefaults -no-user-config -append",
    );
    args.push("-freq 2000".into());
    args.extend(split(
        "-cpu Skylake-Client -device isa-debug-exit,iobase=0xf4,iosize=0x04 -smp 1 -m 32M \
         -global virtio-mmio.force-legacy=off",
    ));
    let out = run(line(dir.path(), &kernel, &args));
    assert_eq!(out.status.code(), Some(3), "{}", out.describe());
    assert_eq!(out.stdout, b"hermit\n");
    assert_only_warnings(&out.stderr, &[]);
}

/// asterinas: the microvm scheme of asterinas/asterinas's tools/qemu_args.sh. As
/// published it stops at `-display vnc=...` in one line; with `-display none` it runs
/// the Icelake-Server model with its virtio keyboard and its `-netdev user` NIC
/// (passt, with the ssh forward on host port 2222).
#[test]
fn asterinas_line_refuses_vnc_in_one_line_and_runs_icelake_server() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("asterinas");
    let kernel = dir.file("aster-nix", &tiny_guest::serial_then_debug_exit("asterinas\n", 0xf4, 0x10));
    for img in ["ext2.img", "exfat.img", "ltp_dev.img"] {
        dir.file(img, &vec![0u8; 1 << 20]);
    }
    let with = |display: &str, user_net: bool| {
        let mut args = split("-cpu Icelake-Server,+x2apic -smp 1 -m 8G --no-reboot -nographic -display");
        args.push(display.into());
        args.extend(split(
            "-monitor chardev:mux -chardev stdio,id=mux,mux=on,signal=off,logfile=qemu.log \
             -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
             -drive if=none,format=raw,id=x0,file=ext2.img -drive if=none,format=raw,id=x1,file=exfat.img \
             -drive if=none,format=raw,id=x2,file=ltp_dev.img -machine microvm,rtc=on -nodefaults -no-user-config \
             -device virtio-blk-device,drive=x0,serial=vext2 -device virtio-blk-device,drive=x1,serial=vexfat \
             -device virtio-blk-device,drive=x2,serial=vltpdev",
        ));
        if user_net {
            args.extend(split("-netdev user,id=net01,hostfwd=tcp::2222-:22"));
        }
        args.extend(split("-device virtio-keyboard-device"));
        if user_net {
            args.extend(split("-device virtio-net-device,netdev=net01"));
        }
        args.extend(split(
            "-device virtio-serial-device -device virtconsole,chardev=mux -serial file:qemu-serial.log -kernel K",
        ));
        line(dir.path(), &kernel, &args)
    };
    let error = assert_one_line_error(&run(with("vnc=0.0.0.0:42", true)), &["-display"]);
    assert!(error.contains("'vnc=0.0.0.0:42'") && error.contains("use -display none"), "{error}");
    let out = run(with("none", true));
    assert_eq!(out.status.code(), Some(0x10 << 1 | 1), "{}", out.describe());
    assert_eq!(std::fs::read(dir.path().join("qemu-serial.log")).unwrap(), b"asterinas\n");
    assert_only_warnings(&without_passt_notes(&out.stderr), &[]);
}

/// stderr without what passt itself says about the host (a host without a usable
/// resolver, or without syslog): its own lines, none of them microvm's.
fn without_passt_notes(stderr: &str) -> String {
    let passt = ["to syslog", "nameserver address"];
    stderr.lines().filter(|l| !passt.iter().any(|p| l.contains(p))).map(|l| format!("{l}\n")).collect()
}

/// microvm.nix (astro/microvm.nix, lib/runners/qemu.nix): its QEMU runner on x86_64
/// without shares uses `-M microvm,...`, a `-netdev user` whose hostfwd list it writes
/// with a trailing comma, and `virtio-net-device` with the interface's MAC. The line's
/// network part as the runner builds it for `forwardPorts = [{ from = "host"; host.port
/// = P; guest.port = 22; }]`, around a tiny guest; P is a free port (the asterinas line
/// has 2222, and the tests run at the same time).
#[test]
fn microvm_nix_user_network_line_runs_with_passt() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("microvm-nix");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_reset("microvm.nix\n"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let args = split(&format!(
        "-name nixos -M microvm,accel=kvm:tcg,x-option-roms=off,isa-serial=off,pit=off,pic=off,rtc=off,mem-merge=on \
         -m 256 -smp 1 -nodefaults -no-user-config -no-reboot -kernel K -chardev stdio,id=stdio,signal=off \
         -device virtio-serial-device -device virtconsole,chardev=stdio -device virtio-rng-device \
         -netdev user,id=qemu,hostfwd=tcp:127.0.0.1:{port}-:22, -device virtio-net-device,netdev=qemu,mac=02:00:00:01:01:01"
    ));
    let out = run(line(dir.path(), &kernel, &args));
    assert!(out.status.success(), "{}", out.describe());
    assert_only_warnings(&without_passt_notes(&out.stderr), &[]);
}

/// melange (chainguard-dev/melange, pkg/container/qemu_runner.go): microvm with
/// `pcie=on` "only for network" and a virtio-net-pci NIC. The PCI NIC is refused in
/// one line naming virtio-net-device; without the NIC (its `-netdev user` is a later
/// part of issue 18) the line runs with one warning about pcie=on.
#[test]
fn melange_line_names_virtio_net_device_for_its_pci_nic() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("melange");
    let kernel = dir.file("vmlinuz", &tiny_guest::serial_then_reset("melange\n"));
    dir.file("initramfs.cpio", b"not really an initramfs");
    dir.file("bios-microvm.bin", b"not firmware");
    let with = |nic: &[&str]| {
        let mut args = split(
            "-machine microvm,rtc=on,pcie=on,pit=off,pic=off,isa-serial=off -bios bios-microvm.bin -m 16000000k \
             -cpu host -enable-kvm -smp 2 -display none -no-reboot -no-user-config -nodefaults -parallel none \
             -serial none -vga none",
        );
        args.extend(nic.iter().map(|a| a.to_string()));
        args.extend(split("-kernel K -initrd initramfs.cpio -append"));
        args.push("quiet nomodeset panic=-1".into());
        line(dir.path(), &kernel, &args)
    };
    let error = assert_one_line_error(&run(with(&["-device", "virtio-net-pci,netdev=id1"])), &["-device"]);
    assert!(error.contains("microvm has no PCI bus yet; use virtio-net-device"), "{error}");
    let out = run(with(&[]));
    assert!(out.status.success(), "{}", out.describe());
    assert_only_warnings(&out.stderr, &["pcie=on: microvm has no PCIe host bridge yet", "-bios: no firmware runs"]);
}

/// Proxmox VE: the start of the line its QEMU build gets (`qm showcmd`, quoted in
/// abbbi/qmpbackup's README and kernel.org bugzilla 205801): `-id VMID`, the QMP
/// socket, -no-shutdown, -pidfile; here on microvm with a tiny guest.
#[test]
fn proxmox_line_takes_its_vm_id() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("proxmox");
    let kernel = dir.file("vmlinuz", &tiny_guest::serial_then_reset("proxmox\n"));
    let args = split(
        "-id 110 -name vm110,debug-threads=on -no-shutdown \
         -chardev socket,id=qmp,path=110.qmp,server=on,wait=off -mon chardev=qmp,mode=control -pidfile 110.pid \
         -M microvm,legacy -nodefaults -serial stdio -kernel K",
    );
    let out = run(line(dir.path(), &kernel, &args));
    assert_clean_exit(&out, b"proxmox\n");
}

/// qemus/qemu (src/proc.sh): the KVM options it adds to its machine, `-global
/// kvm-pit.lost_tick_policy=discard` and `-cpu host,kvm=on,l3-cache=on,+hypervisor,
/// migratable=no,+invtsc`, and the CPU it names for Intel hosts without KVM,
/// `Skylake-Client-v4,vmx=off,-pcid,...,check`, on microvm.
#[test]
fn qemus_qemu_kvm_options_and_cpu_model() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("qemus");
    let kernel = dir.file("vmlinuz", &tiny_guest::serial_then_reset("qemus\n"));
    for (cpu, warning) in [
        ("host,kvm=on,l3-cache=on,+hypervisor,migratable=no,+invtsc", Some("-cpu: ignored kvm=on, l3-cache=on")),
        ("Skylake-Client-v4,vmx=off,-pcid,-tsc-deadline,-invpcid,-spec-ctrl,-xsavec,-xsaves,check", None),
    ] {
        let mut args = split("-machine microvm,accel=kvm -enable-kvm -global kvm-pit.lost_tick_policy=discard -cpu");
        args.push(cpu.into());
        args.extend(split("-M microvm,legacy -nodefaults -serial stdio -kernel K"));
        let out = run(line(dir.path(), &kernel, &args));
        assert!(out.status.success(), "{cpu}: {}", out.describe());
        assert_eq!(out.stdout, b"qemus\n");
        assert_only_warnings(&out.stderr, warning.as_slice());
    }
}

/// ms-jpq/lab (layers/qemu/usr/local/opt/qemu/bin/microvm.sh, commit 991a2987): its
/// microvm runner's line, whose NICs are `-nic tap,script=no,downscript=no,
/// model=virtio-net-device,br=$BRIDGE` (br= without helper=, which QEMU ignores) and a
/// second `-nic tap,...,ifname=$MACVTAP`; the console a virtconsole on stdio, the disk
/// `aio=threads,discard=unmap`. Run in a network namespace of its own, where microvm
/// creates both taps; the tiny guest prints on COM1 (the line has no serial port, so
/// the guest's line is not seen: the run ends by its reset, status 0).
#[test]
fn ms_jpq_lab_line_with_two_tap_nics() {
    if !kvm_tests_enabled() {
        return;
    }
    if !netns_available() {
        eprintln!("no network namespaces here: skipping ms-jpq/lab's -nic tap line");
        return;
    }
    let dir = TempDir::new("msjpq");
    let kernel = dir.file("vmlinuz", &tiny_guest::serial_then_reset("lab\n"));
    dir.file("initrd", b"not really an initrd");
    dir.file("cloudimg.raw", &vec![0u8; 1 << 20]);
    let mut args = split(
        "-nodefaults -no-user-config -nographic \
         -machine microvm,x-option-roms=off,pit=off,pic=off,isa-serial=off,rtc=off,accel=kvm -no-acpi -cpu host \
         -smp cpus=1 -m size=1G -kernel K -initrd initrd -append",
    );
    args.push("reboot=triple console=hvc0 root=/dev/vda".into());
    args.extend(split(
        "-device virtio-serial-device -device virtconsole,chardev=con0 -chardev stdio,id=con0 \
         -device virtio-rng-device \
         -nic tap,script=no,downscript=no,model=virtio-net-device,br=br0 \
         -nic tap,script=no,downscript=no,model=virtio-net-device,ifname=macvtap0 \
         -drive if=none,discard=unmap,format=raw,aio=threads,id=dri0,file=cloudimg.raw \
         -device virtio-blk-device,drive=dri0",
    ));
    let mut cmd = Command::new("unshare");
    cmd.current_dir(dir.path()).args(["--net", "--"]).arg(microvm_path());
    cmd.args(args.iter().map(|a| if a == "K" { kernel.display().to_string() } else { a.clone() }));
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.describe());
    // The first tap has no ifname=: the kernel named it, and microvm says which.
    assert_eq!(out.stderr.trim(), "microvm: netdev __org.qemu.nic0 uses tap device tap0", "{}", out.describe());
}

/// Kata Containers: the QEMU line Kata's runtime starts for a sandbox (as recorded in
/// zhaojizhuang/kata-note, qemu/run-vm-with-qemu.md) with `q35` replaced by microvm, its
/// sizes made small, and its PCI devices (bridges, root ports, virtio-*-pci) left out: the
/// `kernel_irqchip` spelling, `-uuid`, `-rtc driftfix=slew`, the PIT's `discard` policy and
/// RAM in a memfd. Its memory-hotplug `slots=,maxmem=` is refused in one line (no hotplug).
#[test]
fn kata_sandbox_line_on_microvm() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("kata");
    let kernel = dir.file("vmlinux.container", &tiny_guest::serial_then_reset("kata\n"));
    let line_with = |memory: &str| {
        let mut args = split(&format!(
            "-name sandbox-41cb9247,debug-threads=on -uuid e62392aa-df4d-4482-b269-622a8d89fc51 \
             -machine microvm,accel=kvm,kernel_irqchip=on -cpu host,pmu=off -m {memory} -serial mon:stdio \
             -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-device,rng=rng0 \
             -rtc base=utc,driftfix=slew,clock=host -global kvm-pit.lost_tick_policy=discard -vga none \
             -no-user-config -nodefaults -nographic --no-reboot \
             -object memory-backend-memfd,id=dimm0,size=256M -numa node,memdev=dimm0 -kernel K -append"
        ));
        args.push("root=/dev/vda1 ro console=ttyS0".into());
        args.extend(split("-smp 2 -qmp unix:kata-qmp.sock,server=on,wait=off"));
        run(line(dir.path(), &kernel, &args))
    };
    assert_clean_exit(&line_with("256M"), b"kata\n");
    let hotplug = line_with("256M,slots=10,maxmem=386044M");
    assert!(!hotplug.status.success());
    assert_eq!(hotplug.stderr.lines().count(), 1, "{}", hotplug.describe());
    assert!(hotplug.stderr.contains("no memory hotplug"), "{}", hotplug.describe());
}

/// smolBSD (NetBSDfr/smolBSD, startnb.sh): its x86_64 line with a 9p share (`-w`), a
/// port forward (`-p`) over `-netdev user,ipv6=off`, a second drive, the virtio console
/// multiplexed on stdio plus one socket port (`-n 1`), `pic=off`, `+invtsc` and
/// `-rtc base=localtime`; P is a free port. The NetBSD kernel is a tiny guest here.
#[test]
fn smolbsd_line_with_share_port_forward_and_console_ports() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("smolbsd");
    let kernel = dir.file("netbsd-SMOL", &tiny_guest::serial_then_reset("smolBSD\n"));
    dir.file("rescue-amd64.img", &[0u8; 4096]);
    dir.file("data.img", &[0u8; 4096]);
    std::fs::create_dir(dir.path().join("share")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut args = split(
        "-smp 1 -accel kvm -M microvm,rtc=on,acpi=off,pic=off -m 256 -cpu host,+invtsc -kernel K \
         -drive if=none,file=rescue-amd64.img,format=raw,id=hd-u0 -device virtio-blk-device,drive=hd-u0 -append",
    );
    args.push("console=viocon root=NAME=rescueroot -z".into());
    args.extend(split(&format!(
        "-global virtio-mmio.force-legacy=false \
         -fsdev local,path=share,security_model=none,id=shar-u0 -device virtio-9p-device,fsdev=shar-u0,mount_tag=shar-u0 \
         -drive if=none,file=data.img,format=raw,id=hd-u1 -device virtio-blk-device,drive=hd-u1 \
         -device virtio-net-device,netdev=net-u0 -netdev user,id=net-u0,ipv6=off,hostfwd=tcp::{port}-:22 \
         -display none -pidfile qemu-rescue.pid -chardev stdio,signal=off,mux=on,id=char0 \
         -device virtio-serial-device,max_ports=2 -device virtconsole,chardev=char0,name=char0 \
         -chardev socket,path=s-u-p1.sock,server=on,wait=off,id=sock-u-p1 \
         -device virtconsole,chardev=sock-u-p1,name=sock-u-p1 -rtc base=localtime"
    )));
    let out = run(line(dir.path(), &kernel, &args));
    assert!(out.status.success(), "{}", out.describe());
    assert_only_warnings(&without_passt_notes(&out.stderr), &[]);
}
