use super::test_util::*;
use super::*;
use vmm::config::{KernelConfig, MachineConfig, SerialConfig, VmConfig};

// ---- whole command lines ----

#[test]
fn proposal_legacy_mode_without_devices() {
    let c = parse(args(&[
        "-M",
        "microvm,legacy",
        "-m",
        "512m",
        "-smp",
        "2",
        "-kernel",
        "vmlinux",
        "-append",
        "console=ttyS0 root=/dev/vda",
        "-nodefaults",
        "-no-user-config",
        "-serial",
        "stdio",
    ]))
    .unwrap();
    let want = VmConfig {
        mem_size: 512 * MIB,
        vcpu_count: 2,
        serial: Some(SerialConfig::Stdio),
        ..VmConfig::new(KernelConfig {
            path: PathBuf::from("vmlinux"),
            cmdline: "console=ttyS0 root=/dev/vda".into(),
            initrd: None,
        })
    };
    assert_eq!(
        c,
        Command::Run(Launch {
            vm: want,
            daemonize: false,
            pidfile: None,
            jail: None,
            log_file: None,
            warnings: Vec::new()
        })
    );
}

#[test]
fn proposal_normal_mode_without_devices() {
    let c = run(&[
        "-M",
        "microvm",
        "-m",
        "512m",
        "-smp",
        "2",
        "-append",
        "console=hvc0 root=/dev/vda",
        "-nodefaults",
        "-no-user-config",
    ])
    .unwrap();
    assert_eq!(c.serial, None);
    assert_eq!(c.mem_size, 512 * MIB);
    assert_eq!(c.vcpu_count, 2);
    assert_eq!(c.kernel.cmdline, "console=hvc0 root=/dev/vda");
}

#[test]
fn qemu_72_spelling_of_legacy_mode() {
    let c = run(&[
        "-M",
        "microvm,isa-serial=on,pit=on,pic=off,rtc=off,acpi=off,x-option-roms=off,ioapic2=off,auto-kernel-cmdline=on",
        "-nodefaults",
        "-serial",
        "stdio",
        "-enable-kvm",
        "-cpu",
        "host,-arch-capabilities",
        "-nographic",
        "-no-reboot",
    ])
    .unwrap();
    assert_eq!(c.serial, Some(SerialConfig::Stdio));
    assert_eq!(c.machine, MachineConfig::default());
}

#[test]
fn defaults() {
    let c = run(&[]).unwrap();
    assert_eq!(c.machine, MachineConfig::default());
    assert_eq!(c.mem_size, DEFAULT_MEM_SIZE);
    assert_eq!(c.vcpu_count, 1);
    assert_eq!(c.kernel.path, PathBuf::from("vmlinux"));
    assert_eq!(c.kernel.cmdline, "");
    assert_eq!(c.kernel.initrd, None);
    assert_eq!(c.serial, None);
    assert!(!c.report_start_time);
}

#[test]
fn empty_command_line_needs_a_kernel() {
    assert_eq!(parse(Vec::new()), Err(ArgsError::MissingKernel));
    assert_eq!(err_full(&["-m", "1G", "-append", "x"]), ArgsError::MissingKernel);
}

// ---- option spelling and generic errors ----

#[test]
fn double_dash_spellings() {
    let c = parse(args(&[
        "--kernel",
        "k",
        "--m",
        "1G",
        "--smp",
        "4",
        "--machine",
        "microvm,legacy",
        "--append",
        "a",
        "--initrd",
        "i",
        "--nodefaults",
        "--report-start-time",
    ]))
    .unwrap();
    let Command::Run(Launch { vm: c, .. }) = c else { panic!() };
    assert_eq!(c.mem_size, GIB);
    assert_eq!(c.vcpu_count, 4);
    assert_eq!(c.serial, Some(SerialConfig::Null));
    assert!(c.report_start_time);
    assert_eq!(c.kernel.initrd, Some(PathBuf::from("i")));
}

#[test]
fn help_and_version() {
    for h in ["-h", "-help", "--help", "--h"] {
        assert_eq!(parse(args(&[h])), Ok(Command::Help(help_text())), "{h}");
    }
    for v in ["-version", "--version"] {
        assert_eq!(parse(args(&[v])), Ok(Command::Version), "{v}");
    }
    // Wins over a missing -kernel, and ends parsing like in QEMU.
    assert_eq!(parse(args(&["-m", "1G", "-help", "-bogus"])), Ok(Command::Help(help_text())));
    // An error before it is reported first.
    assert_eq!(err_full(&["-bogus", "-help"]), ArgsError::UnknownOption("-bogus".into()));
    // As an option's value it is just a value.
    assert_eq!(run(&["-append", "-help"]).unwrap().kernel.cmdline, "-help");
}

#[test]
fn unknown_options() {
    for o in ["-foo", "--foo", "-hdz", "-", "--", "---m", "-M=microvm", "-m512"] {
        assert_eq!(err(&[o]), ArgsError::UnknownOption(o.into()), "{o}");
    }
    assert_eq!(err(&["-foo"]).to_string(), "unknown option '-foo' (see -help)");
}

#[test]
fn positional_arguments() {
    for a in ["disk.img", "", "microvm", "m"] {
        assert_eq!(err(&[a]), ArgsError::UnexpectedArgument(a.into()), "{a:?}");
    }
}

#[test]
fn missing_values() {
    for (o, name) in [
        ("-M", "-M"),
        ("-machine", "-machine"),
        ("-m", "-m"),
        ("--m", "-m"),
        ("-smp", "-smp"),
        ("-kernel", "-kernel"),
        ("-append", "-append"),
        ("-initrd", "-initrd"),
        ("-serial", "-serial"),
        ("-accel", "-accel"),
        ("-cpu", "-cpu"),
        ("-display", "-display"),
        ("-name", "-name"),
        ("-device", "-device"),
        ("--device", "-device"),
        ("-drive", "-drive"),
        ("-netdev", "-netdev"),
        ("-chardev", "-chardev"),
        ("-object", "-object"),
        ("-nic", "-nic"),
    ] {
        let e = err(&[o]);
        assert_eq!(e, ArgsError::MissingValue(name), "{o}");
        assert_eq!(e.to_string(), format!("option '{name}' requires an argument"));
    }
    // -kernel at the very end, before anything else is known.
    assert_eq!(err_full(&["-kernel"]), ArgsError::MissingValue("-kernel"));
}

// ---- kernel, append, initrd ----

#[test]
fn kernel_append_initrd() {
    let c = parse(args(&[
        "-kernel",
        "/boot/a",
        "-append",
        "console=ttyS0, quiet",
        "-initrd",
        "/boot/i",
        "-kernel",
        "/boot/b",
        "-append",
        "",
    ]))
    .unwrap();
    let Command::Run(Launch { vm: c, .. }) = c else { panic!() };
    assert_eq!(c.kernel.path, PathBuf::from("/boot/b"));
    assert_eq!(c.kernel.cmdline, "");
    assert_eq!(c.kernel.initrd, Some(PathBuf::from("/boot/i")));
    // Commas are not special in paths or the command line.
    let c = run(&["-append", "a,,b,c=d", "-initrd", "x,y"]).unwrap();
    assert_eq!(c.kernel.cmdline, "a,,b,c=d");
    assert_eq!(c.kernel.initrd, Some(PathBuf::from("x,y")));
    // A value may start with a dash.
    assert_eq!(parse(args(&["-kernel", "-m"])).map(|c| matches!(c, Command::Run(_))), Ok(true));
    assert_invalid(err_full(&["-kernel", ""]), "-kernel", "empty path");
    assert_invalid(err(&["-initrd", ""]), "-initrd", "empty path");
}

// ---- serial ----

#[test]
fn serial_implies_legacy() {
    assert_eq!(run(&["-serial", "stdio"]).unwrap().serial, Some(SerialConfig::Stdio));
    assert_eq!(run(&["-serial", "none"]).unwrap().serial, Some(SerialConfig::Null));
    assert_eq!(run(&["-nodefaults", "-serial", "stdio"]).unwrap().serial, Some(SerialConfig::Stdio));
    assert_eq!(run(&["-serial", "none", "-serial", "stdio"]).unwrap().serial, Some(SerialConfig::Stdio));
    assert_eq!(run(&["-serial", "stdio", "-serial", "none"]).unwrap().serial, Some(SerialConfig::Stdio));
    assert_eq!(run(&["-M", "microvm,legacy", "-serial", "none"]).unwrap().serial, Some(SerialConfig::Null));
}

#[test]
fn serial_and_isa_serial_off() {
    assert_eq!(run(&["-M", "microvm,isa-serial=off", "-serial", "none"]).unwrap().serial, None);
    assert_eq!(
        err(&["-M", "microvm,isa-serial=off", "-serial", "stdio"]),
        ArgsError::SerialWithoutPort("stdio".into())
    );
    assert_eq!(err(&["-serial", "stdio", "-M", "microvm,legacy=off"]), ArgsError::SerialWithoutPort("stdio".into()));
}

#[test]
fn serial_errors() {
    for s in ["vc", "", "STDIO", "telnet::1,server"] {
        assert_invalid(err(&["-serial", s]), "-serial", "not supported");
    }
    assert_invalid(err(&["-serial", "stdio", "-serial", "stdio"]), "-serial", "more than once");
    assert_invalid(err(&["-serial", "pty", "-serial", "null"]), "-serial", "one serial port (COM1)");
}

#[test]
fn nodefaults_alone_changes_nothing_without_legacy() {
    assert_eq!(run(&["-nodefaults"]).unwrap(), run(&[]).unwrap());
}

// ---- accepted no-op options ----

#[test]
fn accepted_options_without_effect() {
    let base = run(&[]).unwrap();
    for extra in [
        &["-nographic"][..],
        &["-nodefaults"],
        &["-no-user-config"],
        &["-enable-kvm"],
        &["-no-reboot"],
        &["-accel", "kvm"],
        &["-accel", "accel=kvm"],
        &["-cpu", "host"],
        &["-cpu", "max"],
        &["-display", "none"],
        &["-name", ""],
        &["-vga", "none"],
        &["-no-hpet"],
        &["-parallel", "none"],
        &["-net", "none"],
        &["-M", "microvm,usb=off"],
        &["-M", "microvm,x-option-roms=off"],
        &["-msg", "timestamp=on"],
        &["-msg", "timestamp=off,guest-name=on"],
        &["-compat", "deprecated-input=reject,deprecated-output=hide"],
        &["-compat", "unstable-input=crash,unstable-output=accept"],
        &["-global", "virtio-mmio.force-legacy=false"],
        &["-global", "virtio-mmio.force-legacy=off"],
        &["-global", "driver=virtio-mmio,property=force-legacy,value=false"],
    ] {
        assert_eq!(run(extra).unwrap(), base, "{extra:?}");
    }
}

#[test]
fn accepted_options_check_their_values() {
    for (line, option, reason) in [
        (&["-vga", "std"][..], "-vga", "only none"),
        (&["-parallel", "/dev/parport0"], "-parallel", "only none"),
        (&["-net", "nic"], "-net", "-netdev tap"),
        (&["-M", "microvm,usb=on"], "-M", "no USB"),
        (&["-msg", "timestamp=maybe"], "-msg", "on|off"),
        (&["-msg", "colour=on"], "-msg", "unknown property"),
        (&["-compat", "deprecated-input=ignore"], "-compat", "deprecated-input=accept"),
        (&["-global", "virtio-mmio.force-legacy=true"], "-global", "modern only"),
        (&["-global", "virtio-mmio.force-legacy=on"], "-global", "modern only"),
        (&["-global", "driver=virtio-mmio,property=force-legacy,value=on"], "-global", "modern only"),
        (&["-global", "virtio-mmio.force-legacy=maybe"], "-global", "on|off"),
        (&["-global", "kvm-pit.bogus=1"], "-global", "unknown global property 'kvm-pit.bogus'"),
        (&["-global", "nonsense"], "-global", "DRIVER.PROP=VALUE"),
    ] {
        assert_invalid(err(line), option, reason);
    }
    assert_eq!(err(&["-vga"]), ArgsError::MissingValue("-vga"));
}

#[test]
fn refused_options_name_the_alternative() {
    let e = err(&["-hda", "disk.img"]);
    assert_eq!(
        e.to_string(),
        "option '-hda' is not supported: use -drive id=ID,file=PATH,format=raw,if=none -device \
         virtio-blk-device,drive=ID"
    );
    for o in ["-boot", "--boot", "-cdrom", "-snapshot", "-loadvm"] {
        let e = err(&[o, "x"]);
        assert!(matches!(e, ArgsError::RefusedOption { .. }), "{o}: {e:?}");
    }
}

#[test]
fn accel_cpu_display_errors() {
    for a in ["tcg", "hvf", "kvm:tcg", "", "kvm,kernel-irqchip=on", "accel=tcg", "KVM"] {
        let e = err(&["-accel", a]);
        assert!(matches!(e, ArgsError::InvalidValue { option: "-accel", .. }), "{a:?}: {e:?}");
    }
    for c in ["Pentium9", "haswell", "Haswell-v9", "", ",host", "HOST"] {
        assert_invalid(err(&["-cpu", c]), "-cpu", "unknown CPU model");
    }
    for d in ["gtk", "sdl", "vnc=:0", "curses", "", "none,gl=on"] {
        assert_invalid(err(&["-display", d]), "-display", "none");
    }
}

#[test]
fn report_start_time() {
    assert!(run(&["--report-start-time"]).unwrap().report_start_time);
    assert!(run(&["-report-start-time"]).unwrap().report_start_time);
    assert!(!run(&[]).unwrap().report_start_time);
}

#[test]
fn daemonize_connects_stdio_chardevs_to_nothing() {
    use vmm::config::{ChardevBackend, DeviceConfig};
    let l = launch(&[
        "-daemonize",
        "-device",
        "virtio-serial-device",
        "-device",
        "virtconsole,chardev=con0",
        "-chardev",
        "stdio,id=con0",
    ])
    .unwrap();
    let [DeviceConfig::Console(c)] = l.vm.devices.as_slice() else { panic!("{:?}", l.vm.devices) };
    assert_eq!(c.chardev.backend, ChardevBackend::Null);
    assert!(l.warnings.iter().any(|w| w.starts_with("-daemonize: the daemon has no terminal")), "{:?}", l.warnings);
    let l = launch(&["-daemonize", "-M", "microvm,legacy", "-serial", "mon:stdio"]).unwrap();
    assert_eq!(l.vm.muxes[0].chardev.backend, ChardevBackend::Null);
    let l = launch(&["-daemonize", "-M", "microvm,legacy", "-serial", "stdio"]).unwrap();
    assert_eq!(l.vm.serial, Some(SerialConfig::Null));
    // Without -daemonize nothing changes, and no warning.
    let l = launch(&["-M", "microvm,legacy", "-serial", "stdio"]).unwrap();
    assert_eq!((l.vm.serial, l.warnings.len()), (Some(SerialConfig::Stdio), 0));
}

// ---- a command line read in parts (the clone server) ----

/// The machine's options read once and a request's added later make the command the whole
/// line makes; a later part is checked against the earlier ones (COM1 given twice), and
/// `-version` in a later part ends parsing as it would on one line.
#[test]
fn a_command_line_read_in_two_parts_is_the_same_command() {
    let machine = args(&["-M", "microvm,legacy", "-m", "256m", "-nodefaults", "-kernel", "vmlinux"]);
    let machine: Vec<String> = machine.into_iter().chain(args(&["-incoming", "file:/x.snap"])).collect();
    let request = args(&["-serial", "file:/run/c1.log", "-qmp", "unix:/run/c1.qmp,server=on,wait=off", "-S"]);
    let whole = parse(machine.iter().chain(&request).cloned()).unwrap();
    let mut parts = Partial::default();
    assert_eq!(parts.add(machine.clone()).unwrap(), None);
    assert_eq!(parts.add(request).unwrap(), None);
    assert_eq!(parts.finish().unwrap(), whole);
    let Command::Run(launch) = whole else { panic!("not a run") };
    assert!(launch.vm.start_paused && launch.vm.incoming.is_some() && launch.vm.serial.is_some());

    let mut parts = Partial::default();
    assert_eq!(parts.add(args(&["-kernel", "vmlinux", "-serial", "stdio"])).unwrap(), None);
    let twice = parts.add(args(&["-serial", "file:/x"])).unwrap_err();
    assert!(twice.to_string().contains("more than once"), "{twice}");

    let mut parts = Partial::default();
    assert_eq!(parts.add(machine).unwrap(), None);
    assert_eq!(parts.add(args(&["-version"])).unwrap(), Some(Command::Version));
}
