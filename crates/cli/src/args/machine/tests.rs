use super::super::test_util::*;
use super::super::{parse, ArgsError, Command};
use super::*;
use vmm::boot_trace::BootTraceConfig;
use vmm::config::{MachineConfig, SerialConfig};

// ---- -M ----

#[test]
fn machine_type() {
    for m in ["microvm", "type=microvm", "microvm,", "type=microvm,legacy", "accel=kvm", "pit=off"] {
        run(&["-M", m]).unwrap_or_else(|e| panic!("{m}: {e}"));
    }
    for m in ["pc", "q35", "Microvm", "type=pc", "microvm,,legacy"] {
        let e = err(&["-M", m]);
        assert!(matches!(e, ArgsError::UnsupportedMachine { option: "-M", .. }), "{m}: {e:?}");
    }
    assert_eq!(
        err(&["-machine", "pc"]).to_string(),
        "-machine: machine type 'pc' is not supported; only 'microvm' is available"
    );
    assert_invalid(err(&["-M", ""]), "-M", "microvm");
}

#[test]
fn machine_legacy_and_isa_serial() {
    for m in ["microvm,legacy", "microvm,legacy=on", "microvm,isa-serial=on", "microvm,isa-serial=yes"] {
        assert_eq!(run(&["-M", m]).unwrap().serial, Some(SerialConfig::Stdio), "{m}");
        assert_eq!(run(&["-M", m, "-nodefaults"]).unwrap().serial, Some(SerialConfig::Null), "{m}");
    }
    for m in ["microvm", "microvm,legacy=off", "microvm,isa-serial=off", "microvm,isa-serial=false"] {
        assert_eq!(run(&["-M", m]).unwrap().serial, None, "{m}");
    }
    // Last one wins, within one -M and across several.
    assert_eq!(run(&["-M", "microvm,legacy,isa-serial=off"]).unwrap().serial, None);
    assert_eq!(run(&["-M", "microvm,legacy", "-M", "isa-serial=off"]).unwrap().serial, None);
    assert_eq!(
        run(&["-M", "microvm,isa-serial=off", "-M", "microvm,legacy"]).unwrap().serial,
        Some(SerialConfig::Stdio)
    );
    assert_invalid(err(&["-M", "microvm,isa-serial"]), "-M", "needs a value");
    assert_invalid(err(&["-M", "microvm,isa-serial=maybe"]), "-M", "on|off");
    assert_invalid(err(&["-M", "microvm,legacy=2"]), "-M", "on|off");
}

#[test]
fn machine_pit_and_auto_kernel_cmdline() {
    let c = run(&["-M", "microvm,pit=off,auto-kernel-cmdline=off"]).unwrap();
    assert_eq!(c.machine, MachineConfig { pit: false, auto_kernel_cmdline: false, ..MachineConfig::default() });
    let c = run(&["-M", "microvm,pit=off", "-M", "microvm,pit=on"]).unwrap();
    assert!(c.machine.pit);
    for b in ["on", "yes", "true", "y"] {
        assert!(run(&["-M", &format!("microvm,pit={b}")]).unwrap().machine.pit);
    }
    for b in ["off", "no", "false", "n"] {
        assert!(!run(&["-M", &format!("microvm,auto-kernel-cmdline={b}")]).unwrap().machine.auto_kernel_cmdline);
    }
    assert_invalid(err(&["-M", "microvm,pit"]), "-M", "needs a value");
    assert_invalid(err(&["-M", "microvm,pit=ON"]), "-M", "on|off");
    assert_invalid(err(&["-M", "microvm,auto-kernel-cmdline=1"]), "-M", "on|off");
}

// Issue 18 item 1 (issue 9 item 5's -machine properties that were missing).
#[test]
fn machine_pcie_and_mem_merge() {
    let l = launch(&["-M", "microvm,pcie=off"]).unwrap();
    assert_eq!(l.vm, run(&[]).unwrap(), "pcie=off is what microvm is");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let l = launch(&["-M", "microvm,pcie=on"]).unwrap();
    assert_eq!(l.vm, run(&[]).unwrap());
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].starts_with("-machine pcie=on: microvm has no PCIe host bridge yet"), "{:?}", l.warnings);
    assert_invalid(err(&["-M", "microvm,pcie=maybe"]), "-M", "on|off");

    assert!(run(&[]).unwrap().machine.mem_merge, "QEMU's default: on");
    assert!(run(&["-M", "microvm,mem-merge=on"]).unwrap().machine.mem_merge);
    assert!(!run(&["-M", "microvm,mem-merge=off"]).unwrap().machine.mem_merge);
    assert!(!run(&["-machine", "mem-merge=no", "-M", "pit=off"]).unwrap().machine.mem_merge);
    assert_invalid(err(&["-M", "microvm,mem-merge"]), "-M", "needs a value");
}

// Issue 18 item 2.
#[test]
fn globals_kvm_pit_and_virtio_mmio() {
    assert!(run(&[]).unwrap().machine.pit_reinject, "KVM's default: delay (re-inject)");
    assert!(!run(&["-global", "kvm-pit.lost_tick_policy=discard"]).unwrap().machine.pit_reinject);
    assert!(run(&["-global", "kvm-pit.lost_tick_policy=delay"]).unwrap().machine.pit_reinject);
    let long = ["-global", "driver=kvm-pit,property=lost_tick_policy,value=discard"];
    assert!(!run(&long).unwrap().machine.pit_reinject);
    assert_invalid(err(&["-global", "kvm-pit.lost_tick_policy=slew"]), "-global", "delay or discard");
    for off in ["off", "false", "no"] {
        let g = format!("virtio-mmio.force-legacy={off}");
        assert_eq!(run(&["-global", &g]).unwrap(), run(&[]).unwrap(), "{g}");
    }
    assert_eq!(
        err(&["-global", "virtio-mmio.force-legacy=on"]).to_string(),
        "-global: invalid value 'virtio-mmio.force-legacy=on': microvm's virtio-mmio transport is modern only \
         (version 2, virtio 1.x), it has no legacy version 1; use force-legacy=off"
    );
    assert_eq!(
        err(&["-global", "isa-fdc.fdtypeA=none"]).to_string(),
        "-global: invalid value 'isa-fdc.fdtypeA=none': unknown global property 'isa-fdc.fdtypeA'; microvm knows \
         kvm-pit.lost_tick_policy, virtio-mmio.force-legacy"
    );
}

// Issue 18 items 2 and 8: -id (Proxmox) accepted; -display other than none refused in one line.
#[test]
fn id_and_display() {
    assert_eq!(run(&["-id", "100"]).unwrap(), run(&[]).unwrap());
    assert_eq!(err(&["-id"]), ArgsError::MissingValue("-id"));
    assert_eq!(run(&["-display", "none"]).unwrap(), run(&[]).unwrap());
    for d in ["vnc=:0", "vnc=127.0.0.1:1,password=on", "vnc"] {
        let e = err(&["-display", d]);
        assert_invalid(e.clone(), "-display", "a VNC server would have nothing to show; use -display none");
        assert!(!e.to_string().contains('\n'));
    }
    for d in ["gtk", "sdl", "curses", "none,gl=on"] {
        assert_invalid(err(&["-display", d]), "-display", "no display device; use -display none");
    }
}

#[test]
fn machine_acpi_rtc() {
    for m in ["microvm,acpi=off", "microvm,acpi=auto", "microvm,rtc=off", "microvm,rtc=auto", "microvm"] {
        assert!(!run(&["-M", m]).unwrap_or_else(|e| panic!("{m}: {e}")).machine.rtc, "{m}");
    }
    for m in ["microvm,rtc=on", "microvm,rtc=off,rtc=yes", "microvm,rtc=true"] {
        assert!(run(&["-M", m]).unwrap_or_else(|e| panic!("{m}: {e}")).machine.rtc, "{m}");
    }
    for m in ["microvm,acpi=off", "microvm,acpi=auto", "microvm", "microvm,acpi=on,acpi=no"] {
        let c = run(&["-M", m]).unwrap_or_else(|e| panic!("{m}: {e}"));
        assert!(!c.machine.acpi && c.machine.auto_kernel_cmdline, "{m}");
    }
    assert_invalid(err(&["-M", "microvm,acpi=sometimes"]), "-M", "on|off|auto");
    assert_invalid(err(&["-M", "microvm,rtc=bogus"]), "-M", "on|off|auto");
    assert_invalid(err(&["-M", "microvm,rtc"]), "-M", "needs a value");
    assert_invalid(err(&["-M", "microvm,acpi"]), "-M", "needs a value");
}

/// acpi=on: the DSDT describes the devices, so the command-line entries go only when
/// auto-kernel-cmdline=on asks for them (QEMU's rule); -no-acpi is acpi=off.
#[test]
fn machine_acpi_on_drops_the_cmdline_devices_unless_asked() {
    let c = run(&["-M", "microvm,acpi=on"]).unwrap();
    assert!(c.machine.acpi && !c.machine.auto_kernel_cmdline);
    let c = run(&["-M", "microvm,acpi=on,auto-kernel-cmdline=on"]).unwrap();
    assert!(c.machine.acpi && c.machine.auto_kernel_cmdline);
    let c = run(&["-M", "microvm,auto-kernel-cmdline=on", "-M", "acpi=yes"]).unwrap();
    assert!(c.machine.acpi && c.machine.auto_kernel_cmdline, "an explicit value survives a later -M");
    let c = run(&["-M", "microvm,acpi=on", "-no-acpi"]).unwrap();
    assert!(!c.machine.acpi && c.machine.auto_kernel_cmdline);
}

#[test]
fn no_shutdown_and_i8042() {
    let c = run(&[]).unwrap();
    assert!(!c.no_shutdown && !c.i8042);
    let c = run(&["-no-shutdown", "-device", "i8042,id=kbd"]).unwrap();
    assert!(c.no_shutdown && c.i8042);
    assert!(c.devices.is_empty(), "the i8042 takes no virtio slot");
    assert_invalid(err(&["-device", "i8042", "-device", "i8042"]), "-device", "one i8042");
    assert_invalid(err(&["-device", "i8042,irq=3"]), "-device", "");
}

#[test]
fn machine_accepted_without_effect() {
    let base = run(&[]).unwrap();
    for m in [
        "microvm,pic=on",
        "microvm,pic=off",
        "microvm,x-option-roms=on",
        "microvm,x-option-roms=off",
        "microvm,ioapic2=on",
        "microvm,ioapic2=off",
        "microvm,accel=kvm",
        "microvm,accel=kvm:tcg",
        "microvm,kernel-irqchip=on",
    ] {
        assert_eq!(run(&["-M", m]).unwrap(), base, "{m}");
    }
    assert_invalid(err(&["-M", "microvm,pic=maybe"]), "-M", "on|off");
    assert_invalid(err(&["-M", "microvm,accel=tcg"]), "-M", "kvm");
    assert_invalid(err(&["-M", "microvm,kernel-irqchip=split"]), "-M", "kernel-irqchip=on");
}

#[test]
fn trace_boot_options() {
    assert_eq!(run(&[]).unwrap().trace_boot, None);
    assert_eq!(run(&["-trace-boot"]).unwrap().trace_boot, Some(BootTraceConfig { json: None }));
    let with_json = run(&["-trace-boot-json", "/tmp/t.json"]).unwrap().trace_boot;
    assert_eq!(with_json, Some(BootTraceConfig { json: Some("/tmp/t.json".into()) }));
    assert!(matches!(err(&["-trace-boot-json"]), ArgsError::MissingValue { .. }));
}

#[test]
fn dump_mtree_builds_the_same_config_but_does_not_run() {
    let line = ["-kernel", "vmlinux", "-M", "microvm,legacy,dump-mtree"];
    let args = line.iter().map(|s| s.to_string());
    let Ok(Command::DumpMtree(dump)) = parse(args) else { panic!("not a dump") };
    assert_eq!(dump, run(&["-M", "microvm,legacy"]).unwrap());
    assert!(matches!(parse(["-M", "microvm,dump-mtree=off", "-kernel", "k"].map(String::from)), Ok(Command::Run(_))));
}

/// QEMU reads `_` as `-` in machine property names; an unknown one is named as written.
#[test]
fn machine_property_names_take_underscores_as_qemu_does() {
    let dashes = run(&["-M", "microvm,kernel-irqchip=on,mem-merge=off,isa-serial=off"]).unwrap();
    let underscores = run(&["-M", "microvm,kernel_irqchip=on,mem_merge=off,isa_serial=off"]).unwrap();
    assert_eq!(underscores, dashes);
    assert!(!underscores.machine.mem_merge);
    let e = err(&["-M", "microvm,kernel_irqchip=off"]);
    assert!(e.to_string().contains("only kernel-irqchip=on is supported"), "{e}");
    let e = err(&["-M", "microvm,dump_tree"]);
    assert_eq!(e, ArgsError::UnknownMachineProperty { option: "-M", property: "dump_tree".into() });
}

#[test]
fn machine_unknown_property() {
    let e = err(&["-M", "microvm,dump-tree"]);
    assert_eq!(e, ArgsError::UnknownMachineProperty { option: "-M", property: "dump-tree".into() });
    assert_eq!(e.to_string(), "-M: unknown machine property 'dump-tree' (see -help for the supported ones)");
    let e = err(&["-machine", "microvm,smm=off"]);
    assert_eq!(e, ArgsError::UnknownMachineProperty { option: "-machine", property: "smm".into() });
}

// ---- -m ----

#[test]
fn memory_sizes() {
    for (m, want) in [
        ("512m", 512 * MIB),
        ("512M", 512 * MIB),
        ("512", 512 * MIB),
        ("1G", GIB),
        ("1g", GIB),
        ("4G", 4 * GIB),
        ("size=512M", 512 * MIB),
        ("16", 16 * MIB),
        ("16384k", 16 * MIB),
        ("16384K", 16 * MIB),
        ("1T", 1 << 40),
        ("1t", 1 << 40),
        ("1024G", 1 << 40),
        ("1.5G", 3 * GIB / 2),
        ("0.5g", GIB / 2),
        ("16777216B", 16 * MIB),
        ("16777216b", 16 * MIB),
        ("512M,", 512 * MIB),
        ("0016", 16 * MIB),
        // Rounded up to whole pages.
        ("16385k", 16 * MIB + 4096),
        ("16777217B", 16 * MIB + 4096),
    ] {
        assert_eq!(run(&["-m", m]).unwrap().mem_size, want, "{m}");
    }
    // Last one wins.
    assert_eq!(run(&["-m", "1G", "--m", "2G"]).unwrap().mem_size, 2 * GIB);
}

#[test]
fn memory_errors() {
    for m in [
        "", "abc", "G", "1.5", "1.G", ".5G", "1,5G", "-1G", "+1G", "1GB", "1MiB", "1X", "0x100", " 512", "512 ", "１G",
        "1e3", "size=", "size=abc", "1G,foo=2", "1G,2G", "1.5B",
    ] {
        let e = err(&["-m", m]);
        assert!(matches!(e, ArgsError::InvalidValue { option: "-m", .. }), "{m:?}: {e:?}");
    }
    for m in ["0", "0M", "0G", "size=0"] {
        assert_invalid(err(&["-m", m]), "-m", "zero");
    }
    for m in ["1", "1M", "1K", "1B", "2047K", "0.001G"] {
        let e = err(&["-m", m]);
        assert!(matches!(e, ArgsError::MemoryTooSmall { min_mib: 2, .. }), "{m}: {e:?}");
    }
    // Unikraft's -m 2M fits the layout.
    assert_eq!(run(&["-m", "2M"]).unwrap().mem_size, 2 * MIB);
    for m in [
        "1025G",
        "2T",
        "1P",
        "1E",
        "15E",
        "16E",
        "99999999999999999999999999",
        "18446744073709551615B",
        "1048577",
        "99999999999999999999999999999999999999999999T",
    ] {
        let e = err(&["-m", m]);
        assert!(matches!(e, ArgsError::MemoryTooLarge { max_mib: 1048576, .. }), "{m}: {e:?}");
    }
    assert_eq!(err(&["-m", "1M"]).to_string(), "-m: '1M' is too small; microvm needs at least 2 MiB");
    assert_eq!(err(&["-m", "2T"]).to_string(), "-m: '2T' is too large; the maximum is 1048576 MiB");
    assert_invalid(err(&["-m", "1G,slots=2,maxmem=4G"]), "-m", "hotplug");
    assert_invalid(err(&["-m", "maxmem=4G"]), "-m", "hotplug");
    assert_invalid(err(&["-m", "slots=2"]), "-m", "hotplug");
    assert_eq!(
        err(&["-m", "lots"]).to_string(),
        "-m: invalid value 'lots': expected a size such as 512 (MiB), 512M, 1G; suffixes K, M, G, T"
    );
}

// ---- -smp ----

#[test]
fn smp_values() {
    for (s, want) in [
        ("1", 1),
        ("2", 2),
        ("32", 32),
        ("cpus=4", 4),
        ("02", 2),
        ("4,sockets=1,cores=2,threads=2", 4),
        ("4,sockets=2,cores=2,threads=1,maxcpus=4", 4),
        ("4,sockets=2", 4),
        ("4,cores=4", 4),
        ("8,sockets=2,dies=1,clusters=1,cores=2,threads=2", 8),
        ("sockets=2,cores=2", 4),
        ("maxcpus=3", 3),
        ("cpus=6,maxcpus=6", 6),
        ("2,", 2),
    ] {
        assert_eq!(run(&["-smp", s]).unwrap().vcpu_count, want, "{s}");
    }
    assert_eq!(run(&["-smp", "2", "-smp", "3"]).unwrap().vcpu_count, 3);
}

#[test]
fn smp_errors() {
    for s in ["0", "33", "cpus=0", "1000", "99999999999999999999999", "sockets=64", "maxcpus=33"] {
        let e = err(&["-smp", s]);
        assert!(matches!(e, ArgsError::VcpusOutOfRange { max: 32, .. }), "{s}: {e:?}");
    }
    assert_eq!(err(&["-smp", "33"]).to_string(), "-smp: vCPU count '33' is out of range; microvm supports 1 to 32");
    for s in [
        "",
        "two",
        "-1",
        "+2",
        "2.0",
        "0x2",
        " 2",
        "cpus=",
        "2,cores",
        "2,foo=1",
        "2,foo=x",
        "2,cores=x",
        "2,3",
        ",",
        ",,",
    ] {
        let e = err(&["-smp", s]);
        assert!(matches!(e, ArgsError::InvalidValue { option: "-smp", .. }), "{s:?}: {e:?}");
    }
    assert_invalid(err(&["-smp", "2,maxcpus=4"]), "-smp", "hotplug");
    assert_invalid(err(&["-smp", "4,sockets=1,cores=2,threads=1"]), "-smp", "does not add up");
    assert_invalid(err(&["-smp", "4,sockets=3"]), "-smp", "does not add up");
    assert_invalid(err(&["-smp", "2,cores=0"]), "-smp", "at least 1");
    assert_invalid(err(&["-smp", "2,foo=x"]), "-smp", "unknown key 'foo'");
    assert_invalid(err(&["-smp", ","]), "-smp", "expected a vCPU count");
}

#[test]
fn parse_size_edges() {
    assert_eq!(parse_size("1"), Some(MIB));
    assert_eq!(parse_size("1B"), Some(1));
    assert_eq!(parse_size("1E"), Some(1 << 60));
    assert_eq!(parse_size("16E"), Some(u64::MAX));
    assert_eq!(parse_size("0.000000000000000000001E"), Some(0));
    assert_eq!(parse_size("1.0000000000000000000000000001K"), Some(1024));
    assert_eq!(parse_size("1.B"), None);
    assert_eq!(parse_size(""), None);
    assert_eq!(parse_size("é"), None);
    assert_eq!(parse_size("1é"), None);
}
