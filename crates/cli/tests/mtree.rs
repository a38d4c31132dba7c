//! Acceptance for the attack-surface report: `-M microvm,dump-mtree` on the
//! proposal's two command lines prints exactly these regions. Any growth of
//! what a guest can reach must show up here as a reviewed change.
//!
//! The net device needs a real tap, so microvm runs in a network namespace of
//! its own (`unshare --net`, as root): the tap it creates vanishes with it.

mod common;

use common::{kvm_tests_enabled, microvm_path, TempDir};
use std::process::Command;

const NORMAL_MODE: &str = "\
address-space: memory
  0000000000000000-000000001fffffff (prio 0, ram): microvm.ram [ram]
  00000000d0000000-00000000d00001ff (prio 0, i/o): virtio-mmio (virtio-console) [microvm]
  00000000d0000200-00000000d00003ff (prio 0, i/o): virtio-mmio (virtio-blk) [microvm]
  00000000d0000400-00000000d00005ff (prio 0, i/o): virtio-mmio (virtio-net) [microvm]
  00000000fec00000-00000000fec000ff (prio 0, i/o): kvm-ioapic [kvm]
  00000000fee00000-00000000fee00fff (prio 0, i/o): kvm-lapic [kvm]

address-space: I/O
  0000000000000020-0000000000000021 (prio 0, i/o): kvm-pic [kvm]
  0000000000000040-0000000000000043 (prio 0, i/o): kvm-pit [kvm]
  0000000000000064-0000000000000064 (prio 0, i/o): i8042 [microvm]
  00000000000000a0-00000000000000a1 (prio 0, i/o): kvm-pic [kvm]
  00000000000004d0-00000000000004d1 (prio 0, i/o): kvm-elcr [kvm]

";

const LEGACY_MODE: &str = "\
address-space: memory
  0000000000000000-000000001fffffff (prio 0, ram): microvm.ram [ram]
  00000000d0000000-00000000d00001ff (prio 0, i/o): virtio-mmio (virtio-blk) [microvm]
  00000000d0000200-00000000d00003ff (prio 0, i/o): virtio-mmio (virtio-net) [microvm]
  00000000fec00000-00000000fec000ff (prio 0, i/o): kvm-ioapic [kvm]
  00000000fee00000-00000000fee00fff (prio 0, i/o): kvm-lapic [kvm]

address-space: I/O
  0000000000000020-0000000000000021 (prio 0, i/o): kvm-pic [kvm]
  0000000000000040-0000000000000043 (prio 0, i/o): kvm-pit [kvm]
  0000000000000064-0000000000000064 (prio 0, i/o): i8042 [microvm]
  00000000000000a0-00000000000000a1 (prio 0, i/o): kvm-pic [kvm]
  00000000000003f8-00000000000003ff (prio 0, i/o): serial [microvm]
  00000000000004d0-00000000000004d1 (prio 0, i/o): kvm-elcr [kvm]

";

/// The proposal's line after the program name, with `machine` for `-M` and
/// the files of `dir`; the console uses a file chardev instead of a pty so
/// that nothing waits on a terminal.
fn proposal_line(dir: &TempDir, machine: &str, legacy: bool) -> Vec<String> {
    let kernel = dir.file("vmlinux", &tiny_guest::reset_at_once());
    let image = dir.file("test.img", &vec![0u8; 1 << 20]);
    let mut args: Vec<String> = ["-M", machine, "-m", "512m", "-smp", "2", "-kernel"].map(String::from).to_vec();
    args.push(kernel.display().to_string());
    args.extend(
        ["-append", if legacy { "console=ttyS0 root=/dev/vda" } else { "console=hvc0 root=/dev/vda" }]
            .map(String::from),
    );
    args.extend(["-nodefaults", "-no-user-config"].map(String::from));
    if !legacy {
        let console = dir.path().join("console.log");
        args.push("-chardev".into());
        args.push(format!("file,id=virtiocon0,path={}", console.display()));
        args.extend(["-device", "virtio-serial-device", "-device", "virtconsole,chardev=virtiocon0"].map(String::from));
    }
    args.push("-drive".into());
    args.push(format!("id=test,file={},format=raw,if=none", image.display()));
    args.extend(
        ["-device", "virtio-blk-device,drive=test", "-netdev", "tap,id=tap0,script=no,downscript=no"].map(String::from),
    );
    args.extend(["-device", "virtio-net-device,netdev=tap0"].map(String::from));
    if legacy {
        args.extend(["-serial", "stdio"].map(String::from));
    }
    args
}

fn dump(args: &[String]) -> String {
    let out = Command::new("unshare")
        .arg("--net")
        .arg(microvm_path())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run unshare (util-linux)");
    assert!(out.status.success(), "dump-mtree failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 report")
}

#[test]
fn normal_mode_exposes_three_virtio_slots_and_kvm_devices_only() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("mtree-normal");
    let report = dump(&proposal_line(&dir, "microvm,dump-mtree", false));
    assert_eq!(report, NORMAL_MODE);
}

#[test]
fn legacy_mode_adds_only_the_serial_port() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("mtree-legacy");
    let report = dump(&proposal_line(&dir, "microvm,legacy,dump-mtree", true));
    assert_eq!(report, LEGACY_MODE);
}

#[test]
fn pit_off_removes_the_pit_ports() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("mtree-pit");
    let report = dump(&proposal_line(&dir, "microvm,pit=off,dump-mtree", false));
    let expected: String = NORMAL_MODE.lines().filter(|l| !l.contains("kvm-pit")).map(|l| format!("{l}\n")).collect();
    assert_eq!(report, expected);
}

#[test]
fn rtc_on_adds_only_the_cmos_ports() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("mtree-rtc");
    let report = dump(&proposal_line(&dir, "microvm,rtc=on,dump-mtree", false));
    let rtc = "  0000000000000070-0000000000000071 (prio 0, i/o): rtc [microvm]\n";
    let i8042 = "  0000000000000064-0000000000000064 (prio 0, i/o): i8042 [microvm]\n";
    assert_eq!(report, NORMAL_MODE.replace(i8042, &format!("{i8042}{rtc}")));
}

#[test]
fn no_empty_slot_fw_cfg_or_rom_is_exposed() {
    for report in [NORMAL_MODE, LEGACY_MODE] {
        for absent in ["fw_cfg", "fwcfg", "rom", "vga", "bios"] {
            assert!(!report.contains(absent), "{absent} in\n{report}");
        }
    }
}

/// A memfd memory backend changes where RAM lives, not what the guest sees; a
/// balloon takes the next virtio slot and nothing else. (vhost-vsock and
/// vhost-user-fs need the host's vhost_vsock and a virtiofsd: the rig's
/// scenarios run them; their slots are named `virtio-mmio (vhost-vsock)` and
/// `virtio-mmio (vhost-user-fs)`, vhost-net's `virtio-mmio (vhost-net)`.)
#[test]
fn memory_backend_changes_nothing_and_a_balloon_takes_one_slot() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("mtree-balloon");
    let mut args = proposal_line(&dir, "microvm,dump-mtree,memory-backend=mem", false);
    args.extend(
        ["-object", "memory-backend-memfd,id=mem,size=512M,share=on", "-device", "virtio-balloon-device"]
            .map(String::from),
    );
    let net = "  00000000d0000400-00000000d00005ff (prio 0, i/o): virtio-mmio (virtio-net) [microvm]\n";
    let balloon = "  00000000d0000600-00000000d00007ff (prio 0, i/o): virtio-mmio (virtio-balloon) [microvm]\n";
    assert_eq!(dump(&args), NORMAL_MODE.replace(net, &format!("{net}{balloon}")));
}

/// `acpi=on` adds the GED's event selector and the sleep/reset registers (MMIO), and says
/// where the tables sit in the RAM the memory map reserves; nothing else changes.
#[test]
fn acpi_on_adds_the_ged_the_sleep_registers_and_the_tables() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("mtree-acpi");
    let report = dump(&proposal_line(&dir, "microvm,acpi=on,dump-mtree", false));
    let expected = NORMAL_MODE
        .replace(
            "  0000000000000000-000000001fffffff (prio 0, ram): microvm.ram [ram]\n",
            "  0000000000000000-000000001fffffff (prio 0, ram): microvm.ram [ram]\n  \
             00000000000e0000-00000000000e0373 (prio 0, ram): acpi-tables [ram]\n",
        )
        .replace(
            "  00000000fec00000",
            "  00000000fea00000-00000000fea00003 (prio 0, i/o): acpi-ged-event [microvm]\n  \
             00000000fea00200-00000000fea00202 (prio 0, i/o): acpi-ged-regs [microvm]\n  \
             00000000fec00000",
        );
    assert_eq!(report, expected);
}

/// `-device vmgenid` adds the GUID's 16 bytes, RAM the memory map reserves.
#[test]
fn vmgenid_adds_its_guid_in_ram() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("mtree-vmgenid");
    let mut line = proposal_line(&dir, "microvm,acpi=on,dump-mtree", false);
    line.extend(["-device", "vmgenid"].map(String::from));
    let report = dump(&line);
    assert!(report.contains("  00000000000fe000-00000000000fe00f (prio 0, ram): vmgenid [ram]\n"), "{report}");
}

/// `-device i8042` adds the data port to the command port, and nothing else.
#[test]
fn i8042_device_adds_only_the_data_port() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("mtree-i8042");
    let mut line = proposal_line(&dir, "microvm,dump-mtree", false);
    line.extend(["-device", "i8042"].map(String::from));
    let report = dump(&line);
    let i8042 = "  0000000000000064-0000000000000064 (prio 0, i/o): i8042 [microvm]\n";
    let data = "  0000000000000060-0000000000000060 (prio 0, i/o): i8042 [microvm]\n";
    assert_eq!(report, NORMAL_MODE.replace(i8042, &format!("{data}{i8042}")));
}
