//! Issue 9's item 5 (the options public microvm lines use), gone through
//! again option by option for issue 18 item 1: each is accepted with the
//! effect it should have (or with none where that is true), and `-help`
//! says what it does. One test per line of item 5.

use super::help_text;
use super::test_util::*;
use vmm::config::{ChardevBackend, DebugExitConfig, DeviceConfig, LogFile, SerialConfig};

/// `-help` mentions every one of `words` (an option and what it says about it).
fn help_says(words: &[&str]) {
    let help = help_text().split_whitespace().collect::<Vec<_>>().join(" ");
    for w in words {
        assert!(help.contains(w), "-help does not say {w:?}");
    }
}

#[test]
fn global_virtio_mmio_force_legacy() {
    for v in ["false", "off"] {
        assert_eq!(run(&["-global", &format!("virtio-mmio.force-legacy={v}")]).unwrap(), run(&[]).unwrap());
    }
    assert_invalid(err(&["-global", "virtio-mmio.force-legacy=true"]), "-global", "modern only");
    help_says(&["-global DRIVER.PROP=VALUE", "virtio-mmio.force-legacy=on|off", "on, QEMU's legacy version 1"]);
}

#[test]
fn vga_none_no_hpet_parallel_none_net_none() {
    let base = run(&[]).unwrap();
    for line in [&["-vga", "none"][..], &["-no-hpet"], &["-parallel", "none"], &["-net", "none"]] {
        assert_eq!(run(line).unwrap(), base, "{line:?}");
    }
    help_says(&["-vga none", "no display adapter", "-no-hpet", "no HPET", "-parallel none", "-net none"]);
}

#[test]
fn no_acpi_is_acpi_off() {
    assert!(!run(&["-M", "microvm,acpi=on", "-no-acpi"]).unwrap().machine.acpi);
    help_says(&["-no-acpi", "Same as -M microvm,acpi=off."]);
}

#[test]
fn machine_usb_pcie_mem_merge() {
    assert_eq!(run(&["-machine", "usb=off,pcie=off"]).unwrap(), run(&[]).unwrap());
    assert_invalid(err(&["-machine", "usb=on"]), "-machine", "no USB");
    let l = launch(&["-machine", "pcie=on"]).unwrap();
    assert!(l.warnings.iter().any(|w| w.contains("no PCIe host bridge")), "{:?}", l.warnings);
    assert!(!run(&["-machine", "mem-merge=off"]).unwrap().machine.mem_merge);
    assert!(run(&["-machine", "mem-merge=on"]).unwrap().machine.mem_merge);
    help_says(&["usb=on|off", "pcie=on|off", "mem-merge=on|off", "MADV_MERGEABLE", "Default: on."]);
}

#[test]
fn accel_lists_first_usable_wins() {
    run(&["-accel", "kvm", "-accel", "tcg"]).unwrap();
    run(&["-M", "accel=kvm:tcg"]).unwrap();
    assert_invalid(err(&["-accel", "tcg"]), "-accel", "tcg is never usable");
    help_says(&["-accel kvm", "the first usable one wins"]);
}

#[test]
fn cpu_host_with_flags() {
    let l = launch(&["-cpu", "host,+x2apic,-sgx,pmu=off,+invtsc,migratable=off"]).unwrap();
    let names: Vec<(&str, bool)> = l.vm.cpu.flags.iter().map(|(f, on)| (f.name, *on)).collect();
    assert_eq!(names, [("x2apic", true), ("sgx", false), ("invtsc", true)]);
    assert!(l.vm.cpu.pmu_off && !l.vm.cpu.migratable && l.warnings.is_empty());
    assert!(launch(&["-cpu", "host,kvm=off"]).unwrap().warnings[0].starts_with("-cpu: ignored kvm=off"));
    help_says(&["-cpu host|max|MODEL", "pmu=on|off", "migratable=on|off", "named in one warning"]);
}

#[test]
fn bios_and_l_with_and_without_kernel() {
    let l = launch(&["-bios", "qboot.rom", "-L", "pc-bios/"]).unwrap();
    assert_eq!(l.warnings, ["-bios: no firmware runs; the kernel is loaded directly"]);
    assert!(matches!(err_full(&["-L", "pc-bios/"]), super::ArgsError::FirmwareWithoutKernel("-L")));
    help_says(&["-bios FILE", "no firmware runs", "-L DIR"]);
}

#[test]
fn no_shutdown_rtc_overcommit() {
    assert!(run(&["-no-shutdown"]).unwrap().no_shutdown);
    assert!(run(&["-rtc", "base=localtime,clock=host,driftfix=slew"]).unwrap().rtc_localtime);
    assert!(!run(&["-rtc", "base=utc"]).unwrap().rtc_localtime);
    assert!(run(&["-overcommit", "mem-lock=on"]).unwrap().mem_lock);
    assert!(!run(&["-overcommit", "mem-lock=off"]).unwrap().mem_lock);
    help_says(&["-no-shutdown", "-rtc [base=utc|localtime][,clock=host][,driftfix=slew]", "-overcommit", "mlock"]);
}

#[test]
fn msg_compat_log_file_and_items() {
    let base = run(&[]).unwrap();
    assert_eq!(run(&["-msg", "timestamp=on"]).unwrap(), base);
    assert_eq!(run(&["-compat", "deprecated-input=crash"]).unwrap(), base);
    let l = launch(&["-D", "q.log", "-d", "guest_errors"]).unwrap();
    assert_eq!(l.log_file.as_deref(), Some(std::path::Path::new("q.log")));
    assert!(l.vm.guest_errors);
    help_says(&["-msg timestamp=on|off", "-compat", "-D FILE", "-d ITEM[,ITEM...]", "guest_errors"]);
}

#[test]
fn memory_below_16_mib() {
    assert_eq!(run(&["-m", "2M"]).unwrap().mem_size, 2 * MIB);
    assert_eq!(err(&["-m", "1M"]).to_string(), "-m: '1M' is too small; microvm needs at least 2 MiB");
    help_says(&["Range 2M..1T"]);
}

#[test]
fn isa_debug_exit_and_isa_serial() {
    assert_eq!(run(&["-device", "isa-debug-exit"]).unwrap().debug_exit, Some(DebugExitConfig::default()));
    let c = run(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]).unwrap();
    assert_eq!(c.debug_exit, Some(DebugExitConfig { iobase: 0xf4, iosize: 4 }));
    assert_eq!(run(&["-device", "isa-serial"]).unwrap().serial, Some(SerialConfig::Null));
    help_says(&["isa-debug-exit", "iobase=", "isa-serial"]);
}

#[test]
fn drive_index_detect_zeroes_media_cdrom_and_serial() {
    let c = run(&[
        "-drive",
        "id=d,file=disk.img,format=raw,if=none,index=0,detect-zeroes=unmap,media=cdrom",
        "-device",
        "virtio-blk-device,drive=d,serial=abc",
    ])
    .unwrap();
    let Some(DeviceConfig::Block(b)) = c.devices.first() else { panic!("{:?}", c.devices) };
    assert!(b.read_only, "media=cdrom is a read-only disk");
    assert_eq!(b.serial.as_deref(), Some("abc"));
    assert_invalid(
        err(&["-drive", "id=d,file=x.vmdk,format=vmdk,if=none"]),
        "-drive",
        "only format=raw and format=qcow2",
    );
    help_says(&["index=", "detect-zeroes=", "media=", "serial="]);
}

#[test]
fn netdev_tap_fd_and_virtio_net_packed_mq_off() {
    let c = run(&["-netdev", "tap,id=n,fd=3", "-device", "virtio-net-device,netdev=n,packed=off,mq=off"]).unwrap();
    let Some(DeviceConfig::Net(n)) = c.devices.first() else { panic!("{:?}", c.devices) };
    assert!(matches!(n.backend, vmm::config::NetBackend::Tap { fd: Some(3), .. }), "{n:?}");
    assert_invalid(
        err(&["-netdev", "tap,id=n,fd=3", "-device", "virtio-net-device,netdev=n,packed=on"]),
        "-device",
        "packed",
    );
    help_says(&["fd=", "packed=", "mq="]);
}

#[test]
fn chardev_null_stdio_logfile_and_tcp_socket() {
    let serial = |chardev: &str| {
        let c = run(&["-M", "microvm,legacy", "-chardev", chardev, "-serial", "chardev:c"]).unwrap();
        match c.serial {
            Some(SerialConfig::Chardev(c)) => c,
            other => panic!("{chardev}: {other:?}"),
        }
    };
    assert_eq!(serial("null,id=c").backend, ChardevBackend::Null);
    let c = serial("stdio,id=c,logfile=serial.log,logappend=on");
    assert_eq!(
        (c.backend, c.logfile),
        (ChardevBackend::Stdio, Some(LogFile { path: "serial.log".into(), append: true }))
    );
    let c = serial("socket,id=c,host=127.0.0.1,port=4444,server=on,wait=off");
    assert_eq!(c.backend, ChardevBackend::Tcp { host: "127.0.0.1".into(), port: 4444, server: true, wait: false });
    help_says(&["null", "logfile=", "logappend=", "host=", "port="]);
}

/// Issue 18's own items 1, 2 and 8 in `-help`, with what they do in microvm.
#[test]
fn help_covers_issue_18_options() {
    help_says(&[
        "kvm-pit.lost_tick_policy=delay|discard",
        "KVM_REINJECT_CONTROL",
        "-id N",
        "Proxmox",
        "-display none",
        "vnc=...",
        "no PCI bus",
        "enforce[=on|off]",
        "-cpu help lists",
        // Item 3's -nic (netdev + NIC in one option) and item 6's passthrough.
        "-nic TYPE[,prop=value...][,model=virtio-net-device][,mac=MAC]",
        "__org.qemu.nicN",
        "passthrough: to the guest user who creates them",
    ]);
}
