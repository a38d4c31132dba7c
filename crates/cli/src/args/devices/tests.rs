use super::super::test_util::*;
use super::super::{parse, DEFAULT_MEM_SIZE};
use super::*;
use vmm::config::{
    ChardevBackend, ChardevConfig, KernelConfig, SerialConfig, SerialPortConfig, VirtioSerialConfig, VmConfig,
};

// ---- the proposal's command lines ----

#[test]
fn proposal_normal_mode() {
    let line = "-M microvm -m 512m -smp 2 -kernel vmlinux -append CMDLINE -nodefaults \
        -no-user-config -chardev pty,id=virtiocon0,server -device virtio-serial-device \
        -device virtconsole,chardev=virtiocon0 -drive id=test,file=test.img,format=raw,if=none \
        -device virtio-blk-device,drive=test -netdev tap,id=tap0,script=no,downscript=no \
        -device virtio-net-device,netdev=tap0";
    let argv = line.split_whitespace().map(|a| a.replace("CMDLINE", "console=hvc0 root=/dev/vda"));
    let want = VmConfig {
        mem_size: 512 * MIB,
        vcpu_count: 2,
        devices: vec![console("virtiocon0", ChardevBackend::Pty), block("test", "test.img"), net("tap0", None, None)],
        ..VmConfig::new(KernelConfig {
            path: "vmlinux".into(),
            cmdline: "console=hvc0 root=/dev/vda".into(),
            initrd: None,
        })
    };
    assert_eq!(parse(argv.collect::<Vec<_>>()), Ok(plain_run(want)));
}

#[test]
fn proposal_legacy_mode() {
    let line = "-M microvm,legacy -m 512m -smp 2 -kernel vmlinux -append CMDLINE -nodefaults \
        -no-user-config -drive id=test,file=test.img,format=raw,if=none \
        -device virtio-blk-device,drive=test -netdev tap,id=tap0,script=no,downscript=no \
        -device virtio-net-device,netdev=tap0 -serial stdio";
    let argv = line.split_whitespace().map(|a| a.replace("CMDLINE", "console=ttyS0 root=/dev/vda"));
    let want = VmConfig {
        mem_size: 512 * MIB,
        vcpu_count: 2,
        serial: Some(SerialConfig::Stdio),
        devices: vec![block("test", "test.img"), net("tap0", None, None)],
        ..VmConfig::new(KernelConfig {
            path: "vmlinux".into(),
            cmdline: "console=ttyS0 root=/dev/vda".into(),
            initrd: None,
        })
    };
    assert_eq!(parse(argv.collect::<Vec<_>>()), Ok(plain_run(want)));
}

#[test]
fn no_device_options_no_devices() {
    let c = run(&["-nodefaults"]).unwrap();
    assert_eq!(c.devices, []);
    assert_eq!(c.mem_size, DEFAULT_MEM_SIZE);
}

// ---- ordering ----

#[test]
fn device_order_is_command_line_order_and_backends_may_follow() {
    let d = devs(&[
        "-device",
        "virtio-rng-device",
        "-device",
        "virtio-net-device,netdev=n1,mac=52:54:00:00:00:01",
        "-device",
        "virtio-serial-device",
        "-device",
        "virtio-blk-device,drive=b",
        "-device",
        "virtconsole,chardev=c",
        "-device",
        "virtio-blk-device,drive=a",
        "-device",
        "virtio-net-device,netdev=n0",
        "-drive",
        "id=a,file=a.img,if=none",
        "-drive",
        "id=b,file=b.img,if=none",
        "-netdev",
        "tap,id=n0",
        "-netdev",
        "tap,id=n1,ifname=vm1",
        "-chardev",
        "stdio,id=c",
    ]);
    assert_eq!(
        d,
        [
            DeviceConfig::Rng(Default::default()),
            net("n1", Some("vm1"), Some([0x52, 0x54, 0, 0, 0, 1])),
            // The console takes its virtio-serial-device's place.
            console("c", ChardevBackend::Stdio),
            block("b", "b.img"),
            block("a", "a.img"),
            net("n0", None, None),
        ]
    );
}

#[test]
fn consoles_sit_in_their_serial_devices_slots() {
    let base = ["-chardev", "pty,id=c0", "-chardev", "file,id=c1,path=/log", "-drive", "id=d,file=f,if=none"];
    let with = |extra: &[&str]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        devs(&v)
    };
    let c0 = console("c0", ChardevBackend::Pty);
    let c1 = console("c1", ChardevBackend::File { path: "/log".into(), append: false });
    // Each virtconsole goes to the first earlier free virtio-serial-device.
    assert_eq!(
        with(&[
            "-device",
            "virtio-serial-device",
            "-device",
            "virtio-blk-device,drive=d",
            "-device",
            "virtio-serial-device",
            "-device",
            "virtconsole,chardev=c1",
            "-device",
            "virtconsole,chardev=c0",
        ]),
        [c1.clone(), block("d", "f"), c0.clone()]
    );
    // bus= picks one.
    assert_eq!(
        with(&[
            "-device",
            "virtio-serial-device,id=s0",
            "-device",
            "virtio-serial-device,id=s1",
            "-device",
            "virtconsole,chardev=c1,bus=s1.0,name=org.qemu.console.0,id=con1",
            "-device",
            "virtconsole,chardev=c0",
        ]),
        [c0.clone(), c1.clone()]
    );
    // Errors.
    let e = err(&["-chardev", "pty,id=c", "-device", "virtconsole,chardev=c"]);
    assert_eq!(
        e.to_string(),
        "-device: invalid value 'virtconsole,chardev=c': virtconsole needs -device virtio-serial-device (given before it)"
    );
    assert_invalid(
        err(&["-chardev", "pty,id=c", "-device", "virtconsole,chardev=c", "-device", "virtio-serial-device"]),
        "-device",
        "virtconsole needs -device virtio-serial-device",
    );
    // Two ports on one device: QEMU's multiport virtio-serial (see multiport_virtio_serial).
    assert!(matches!(
        with(&[
            "-device",
            "virtio-serial-device",
            "-device",
            "virtconsole,chardev=c0",
            "-device",
            "virtconsole,chardev=c1"
        ])
        .as_slice(),
        [DeviceConfig::SerialPorts(_)]
    ));
    for bus in ["t.0", "s", "s.1", "virtio-serial-bus.0", ""] {
        let v = format!("virtconsole,chardev=c0,bus={bus}");
        let e = err(&["-device", "virtio-serial-device,id=s", "-device", &v]);
        assert!(matches!(e, ArgsError::InvalidValue { option: "-device", .. }), "{bus}: {e}");
    }
    assert_invalid(err(&["-device", "virtconsole"]), "-device", "chardev=ID is required");
    assert_invalid(err(&["-device", "virtio-serial-device,ports=2"]), "-device", "unknown property");
    assert_invalid(
        err(&["-device", "virtio-serial-device", "-device", "virtconsole,chardev=c,nr=1"]),
        "-device",
        "unknown property",
    );
}

// ---- rng ----

#[test]
fn rng() {
    assert_eq!(devs(&["-device", "virtio-rng-device"]), [DeviceConfig::Rng(Default::default())]);
    assert_eq!(
        devs(&[
            "-object",
            "rng-random,filename=/dev/urandom,id=rng0",
            "-device",
            "virtio-rng-device,rng=rng0",
            "-device",
            "virtio-rng-device,rng=rng0,id=second",
        ]),
        [DeviceConfig::Rng(Default::default()), DeviceConfig::Rng(Default::default())]
    );
    for o in
        ["rng-random,id=r", "rng-random,id=r,filename=/dev/random", "rng-builtin,id=r", "qom-type=rng-builtin,id=r"]
    {
        assert_eq!(
            devs(&["-device", "virtio-rng-device,rng=r", "-object", o]),
            [DeviceConfig::Rng(Default::default())],
            "{o}"
        );
    }
    // An unused object is fine.
    assert_eq!(devs(&["-object", "rng-builtin,id=r"]), []);

    let e = err(&["-device", "virtio-rng-device,rng=rng0"]);
    assert_eq!(
        e.to_string(),
        "-device: invalid value 'virtio-rng-device,rng=rng0': object 'rng0' is not defined (no -object with id=rng0)"
    );
    assert_invalid(err(&["-object", "rng-random,id=r,filename=/dev/hwrng"]), "-object", "getrandom");
    for o in ["rng-egd,id=r,chardev=c", "throttle-group,id=t", "", "id=r"] {
        assert_invalid(err(&["-object", o]), "-object", "supported objects: rng-random");
    }
    assert_invalid(err(&["-object", "rng-builtin"]), "-object", "id= is required");
    assert_invalid(err(&["-object", "rng-builtin,id=r,filename=/dev/urandom"]), "-object", "unknown property");
    assert_invalid(err(&["-object", "rng-builtin,id=r", "-object", "rng-random,id=r"]), "-object", "duplicate id 'r'");
    assert_invalid(err(&["-device", "virtio-rng-device,max-bytes=1024,period=1000"]), "-device", "unknown property");
}

// Issue 18 item 8: the virtio-input keyboard.
#[test]
fn virtio_keyboard_device() {
    assert_eq!(devs(&["-device", "virtio-keyboard-device"]), [DeviceConfig::Keyboard]);
    assert_eq!(devs(&["-device", "virtio-keyboard-device,id=kbd0"]), [DeviceConfig::Keyboard]);
    assert_invalid(
        err(&["-device", "virtio-keyboard-device,id=k", "-device", "virtio-rng-device,id=k"]),
        "-device",
        "k",
    );
    assert_invalid(err(&["-device", "virtio-keyboard-device,serial=x"]), "-device", "unknown property");
}

// ---- -device in general ----

#[test]
fn device_errors() {
    for (alias, ours) in [
        ("virtio-blk", "virtio-blk-device"),
        ("virtio-blk-pci", "virtio-blk-device"),
        ("virtio-blk-pci-non-transitional", "virtio-blk-device"),
        ("virtio-net", "virtio-net-device"),
        ("virtio-net-pci", "virtio-net-device"),
        ("virtio-serial", "virtio-serial-device"),
        ("virtio-serial-pci", "virtio-serial-device"),
        ("virtio-rng", "virtio-rng-device"),
        ("virtio-rng-pci", "virtio-rng-device"),
        ("virtio-balloon-pci", "virtio-balloon-device"),
        ("vhost-user-fs-pci", "vhost-user-fs-device"),
        ("vhost-vsock-pci-transitional", "vhost-vsock-device"),
        ("virtio-keyboard-pci", "virtio-keyboard-device"),
    ] {
        assert_invalid(
            err(&["-device", &format!("{alias},drive=d")]),
            "-device",
            &format!("microvm has no PCI bus yet; use {ours}"),
        );
    }
    // Issue 18 item 8: any -device *-pci* is refused in one line about the PCI bus.
    for d in ["virtio-tablet-pci", "virtio-scsi-pci,id=scsi0", "pcie-root-port,id=r", "virtio-gpu-pci"] {
        assert_invalid(err(&["-device", d]), "-device", "microvm has no PCI bus yet, and no virtio-mmio form");
    }
    for d in ["e1000", "isa-debug-port", "virtio-gpu-device", "virtio"] {
        assert_invalid(err(&["-device", d]), "-device", "unknown device");
    }
    assert_eq!(
        err(&["-device", "e1000"]).to_string(),
        "-device: invalid value 'e1000': unknown device; microvm has virtio-blk-device, virtio-net-device, \
         virtio-serial-device, virtconsole, virtserialport, isa-serial, isa-debug-exit, virtio-rng-device, \
         virtio-keyboard-device, virtio-balloon-device, vhost-user-fs-device, virtio-9p-device, vhost-vsock-device, \
         hybrid-vsock-device, vmgenid, i8042"
    );
    for d in ["", ",", "drive=d", "driver="] {
        assert_invalid(err(&["-device", d]), "-device", "expected a device name");
    }
    // The first element names the driver even with driver= later on.
    assert_eq!(devs(&["-device", "driver=virtio-rng-device"]), [DeviceConfig::Rng(Default::default())]);
    // Device ids share one namespace.
    assert_invalid(
        err(&["-device", "virtio-rng-device,id=x", "-device", "virtio-rng-device,id=x"]),
        "-device",
        "duplicate id 'x'",
    );
    assert_invalid(
        err(&["-chardev", "pty,id=c", "-device", "virtio-serial-device,id=x", "-device", "virtconsole,chardev=c,id=x"]),
        "-device",
        "duplicate id 'x'",
    );
    // Backend ids are per kind: one name may be a drive, a netdev, a
    // chardev, an object and a device at once.
    assert_eq!(
        devs(&[
            "-drive",
            "id=x,file=f,if=none",
            "-netdev",
            "tap,id=x",
            "-chardev",
            "pty,id=x",
            "-object",
            "rng-builtin,id=x",
            "-device",
            "virtio-blk-device,drive=x,id=x",
            "-device",
            "virtio-net-device,netdev=x",
            "-device",
            "virtio-serial-device",
            "-device",
            "virtconsole,chardev=x",
            "-device",
            "virtio-rng-device,rng=x",
        ]),
        [
            block("x", "f"),
            net("x", None, None),
            console("x", ChardevBackend::Pty),
            DeviceConfig::Rng(Default::default()),
        ]
    );
    assert_invalid(err(&["-device", "virtio-rng-device,id=9"]), "-device", "an id is a letter");
}

#[test]
fn first_error_wins_over_later_device_errors() {
    // A syntax error in an option is reported before a missing backend.
    let e = err(&["-device", "virtio-blk-device,drive=nope", "-drive", "id=d,file=f,format=vmdk"]);
    assert_invalid(e, "-drive", "format=raw");
    // And a missing kernel before any device resolution.
    assert_eq!(parse(args(&["-device", "virtio-blk-device,drive=nope"])), Err(ArgsError::MissingKernel));
}

#[test]
fn help_text_names_the_devices() {
    let h = super::super::help_text();
    for word in [
        "virtio-blk-device",
        "virtio-net-device",
        "virtio-serial-device",
        "virtconsole",
        "virtio-rng-device",
        "rng-random",
        "rng-builtin",
        "if=none",
        "format=raw",
        "script=no",
        "writethrough",
        "directsync",
        "unsafe",
        "stdio,id=",
        "pty,id=",
        "file,id=",
        "socket,id=",
        "-nic TYPE",
    ] {
        assert!(h.contains(word), "help text lacks {word}");
    }
}

#[test]
fn hybrid_vsock_device() {
    use vmm::config::HybridVsockConfig;
    assert_eq!(
        devs(&["-device", "hybrid-vsock-device,guest-cid=3,uds-path=/run/v.sock,id=v"]),
        [DeviceConfig::HybridVsock(HybridVsockConfig { cid: 3, uds_path: "/run/v.sock".into(), id: Some("v".into()) })]
    );
    assert_invalid(err(&["-device", "hybrid-vsock-device,guest-cid=2,uds-path=/v"]), "-device", "3 to 4294967294");
    for line in [
        "hybrid-vsock-device,guest-cid=3",
        "hybrid-vsock-device,uds-path=/v",
        "hybrid-vsock-device,guest-cid=3,uds-path=",
    ] {
        assert_invalid(err(&["-device", line]), "-device", "guest-cid=N and uds-path=PATH are required");
    }
}

#[test]
fn vhost_vsock_device() {
    use vmm::config::VsockConfig;
    assert_eq!(
        devs(&["-device", "vhost-vsock-device,guest-cid=3,id=vsock0"]),
        [DeviceConfig::Vsock(VsockConfig { cid: 3, id: Some("vsock0".into()) })]
    );
    assert_eq!(devs(&["-device", "vhost-vsock-device,guest-cid=4294967294"]).len(), 1);
    for cid in ["0", "2", "4294967295", "-1", "x", ""] {
        assert_invalid(err(&["-device", &format!("vhost-vsock-device,guest-cid={cid}")]), "-device", "3 to 4294967294");
    }
    assert_invalid(err(&["-device", "vhost-vsock-device"]), "-device", "guest-cid=N is required");
    assert_invalid(err(&["-device", "vhost-vsock-pci,guest-cid=3"]), "-device", "use vhost-vsock-device");
}

#[test]
fn vhost_user_fs_device() {
    use vmm::config::FsConfig;
    let shared = ["-object", "memory-backend-memfd,id=mem,size=128M", "-machine", "memory-backend=mem"];
    let fs =
        ["-chardev", "socket,id=char0,path=/tmp/vfsd.sock", "-device", "vhost-user-fs-device,chardev=char0,tag=share"];
    let want = FsConfig { socket: "/tmp/vfsd.sock".into(), tag: "share".into(), queue_size: 128, id: None };
    assert_eq!(devs(&[&shared[..], &fs[..]].concat()), [DeviceConfig::Fs(want)]);
    let e = err(&fs);
    assert!(matches!(e, ArgsError::FsNeedsSharedMemory { .. }), "{e:?}");
    assert!(e.to_string().contains("-object memory-backend-memfd,id=mem,size=128M,share=on"), "{e}");
    let private = ["-object", "memory-backend-memfd,id=mem,size=128M,share=off", "-machine", "memory-backend=mem"];
    assert!(matches!(err(&[&private[..], &fs[..]].concat()), ArgsError::FsNeedsSharedMemory { .. }));
    let dev = |d: &'static str| [&shared[..], &["-chardev", "socket,id=c,path=/s", "-device", d]].concat();
    let d = devs(&dev("vhost-user-fs-device,chardev=c,tag=t,queue-size=1024,id=fs0"));
    assert!(matches!(&d[..], [DeviceConfig::Fs(FsConfig { queue_size: 1024, .. })]), "{d:?}");
    for (bad, why) in [
        ("vhost-user-fs-device,chardev=c", "tag=TAG are required"),
        ("vhost-user-fs-device,tag=t", "chardev=ID"),
        ("vhost-user-fs-device,chardev=c,tag=0123456789012345678901234567890123456", "1 to 36 bytes"),
        ("vhost-user-fs-device,chardev=c,tag=t,queue-size=100", "power of two"),
        ("vhost-user-fs-device,chardev=c,tag=t,queue-size=2048", "power of two"),
        ("vhost-user-fs-device,chardev=nope,tag=t", "not defined"),
    ] {
        assert_invalid(err(&dev(bad)), "-device", why);
    }
    let server = [&shared[..], &["-chardev", "socket,id=c,path=/s,server=on,wait=off"]].concat();
    assert_invalid(
        err(&[&server[..], &["-device", "vhost-user-fs-device,chardev=c,tag=t"]].concat()),
        "-device",
        "client socket",
    );
}

#[test]
fn isa_debug_exit_is_a_port_not_a_slot() {
    let c = run(&["-device", "isa-debug-exit"]).unwrap();
    assert_eq!((c.debug_exit, c.devices.len()), (Some(DebugExitConfig { iobase: 0x501, iosize: 2 }), 0));
    let c = run(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]).unwrap();
    assert_eq!(c.debug_exit, Some(DebugExitConfig { iobase: 0xf4, iosize: 4 }));
    assert_eq!(run(&["-device", "isa-debug-exit,iobase=244,iosize=1"]).unwrap().debug_exit.unwrap().iobase, 0xf4);
    assert_eq!(run(&[]).unwrap().debug_exit, None, "the port exists only when asked for");
    assert_invalid(err(&["-device", "isa-debug-exit,iobase=0x10000"]), "-device", "up to 0xffff");
    assert_invalid(err(&["-device", "isa-debug-exit,iosize=0"]), "-device", "1 to 8");
    assert_invalid(err(&["-device", "isa-debug-exit,iosize=9"]), "-device", "up to 0x8");
    assert_invalid(err(&["-device", "isa-debug-exit", "-device", "isa-debug-exit"]), "-device", "only one");
}

#[test]
fn multiport_virtio_serial() {
    let chardevs = [
        "-chardev",
        "pty,id=c0",
        "-chardev",
        "null,id=c1",
        "-chardev",
        "socket,id=ga,path=/qga.sock,server=on,wait=off",
    ];
    let with = |extra: &[&str]| devs(&[&chardevs[..], extra].concat());
    let port = |id: &str, backend: ChardevBackend, name: Option<&str>, console: bool| SerialPortConfig {
        chardev: ChardevConfig { id: id.into(), backend, logfile: None },
        id: None,
        name: name.map(Into::into),
        console,
    };
    let qga = ChardevBackend::Socket { path: "/qga.sock".into(), server: true, wait: false };
    assert_eq!(
        with(&[
            "-device",
            "virtio-serial-device,max_ports=4",
            "-device",
            "virtconsole,chardev=c0",
            "-device",
            "virtconsole,chardev=c1",
            "-device",
            "virtserialport,chardev=ga,name=org.qemu.guest_agent.0",
        ]),
        [DeviceConfig::SerialPorts(VirtioSerialConfig {
            max_ports: 4,
            ports: vec![
                port("c0", ChardevBackend::Pty, None, true),
                port("c1", ChardevBackend::Null, None, true),
                port("ga", qga.clone(), Some("org.qemu.guest_agent.0"), false),
            ],
        })]
    );
    // A lone virtserialport, or max_ports=, is multiport too; max_ports defaults to QEMU's 31.
    assert_eq!(
        with(&["-device", "virtio-serial-device", "-device", "virtserialport,chardev=ga,name=n"]),
        [DeviceConfig::SerialPorts(VirtioSerialConfig {
            max_ports: 31,
            ports: vec![port("ga", qga, Some("n"), false)]
        })]
    );
    assert!(matches!(
        with(&["-device", "virtio-serial-device,max_ports=2", "-device", "virtconsole,chardev=c0"]).as_slice(),
        [DeviceConfig::SerialPorts(_)]
    ));
    // A port-less device is allowed, as in QEMU.
    assert!(
        matches!(with(&["-device", "virtio-serial-device"]).as_slice(), [DeviceConfig::SerialPorts(p)] if p.ports.is_empty())
    );
    let e = |extra: &[&str]| err(&[&chardevs[..], extra].concat());
    assert_invalid(e(&["-device", "virtio-serial-device,max_ports=0"]), "-device", "max_ports is 1 to 31");
    assert_invalid(e(&["-device", "virtio-serial-device,max_ports=32"]), "-device", "max_ports is 1 to 31");
    assert_invalid(
        e(&[
            "-device",
            "virtio-serial-device,max_ports=1",
            "-device",
            "virtconsole,chardev=c0",
            "-device",
            "virtconsole,chardev=c1",
        ]),
        "-device",
        "max_ports=1 already",
    );
    assert_invalid(
        e(&[
            "-device",
            "virtio-serial-device",
            "-device",
            "virtserialport,chardev=c0,name=a",
            "-device",
            "virtserialport,chardev=c1,name=a",
        ]),
        "-device",
        "named 'a' exists already",
    );
    assert_invalid(
        e(&["-device", "virtserialport,chardev=c0"]),
        "-device",
        "virtserialport needs -device virtio-serial-device",
    );
    assert_invalid(
        e(&["-device", "virtio-serial-device", "-device", "virtserialport,name=x"]),
        "-device",
        "chardev=ID is required",
    );
}

#[test]
fn vmgenid_is_acpi_only_and_takes_auto_or_a_uuid() {
    use vmm::vmgenid::{Guid, VmGenIdConfig};
    let acpi = ["-M", "microvm,acpi=on"];
    let with = |extra: &[&str]| run(&[&acpi[..], extra].concat());
    let c = with(&["-device", "vmgenid"]).unwrap();
    assert_eq!((c.vmgenid, c.devices.len()), (Some(VmGenIdConfig { guid: None }), 0), "not a virtio slot");
    assert_eq!(with(&["-device", "vmgenid,guid=auto,id=vmgenid0"]).unwrap().vmgenid, Some(VmGenIdConfig::default()));
    let fixed = with(&["-device", "vmgenid,guid=324E6EAF-D1D1-4BF6-BF41-B9BB6C91FB87"]).unwrap().vmgenid.unwrap();
    assert_eq!(fixed.guid, Guid::parse("324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87"));
    assert_eq!(run(&[]).unwrap().vmgenid, None);
    assert_invalid(with(&["-device", "vmgenid,guid=nope"]).unwrap_err(), "-device", "guid must be auto or a UUID");
    assert_invalid(with(&["-device", "vmgenid", "-device", "vmgenid"]).unwrap_err(), "-device", "only one vmgenid");
    assert_invalid(with(&["-device", "vmgenid,size=1"]).unwrap_err(), "-device", "it takes guid, id");
    assert_eq!(
        err(&["-device", "vmgenid"]).to_string(),
        "-device: invalid value 'vmgenid': vmgenid needs -M microvm,acpi=on (the guest finds it in the DSDT)"
    );
}

// ---- the device kinds' table (vmm::device_kinds) ----

/// Every kind in the table is one `-device help` lists, with its own properties in
/// `-device NAME,help`, and one the parser knows (a missing property is its error, never
/// "unknown device" or an unhandled property).
#[test]
fn every_device_kind_is_listed_with_its_properties_and_parsed() {
    let Ok(super::super::Command::Help(all)) = parse(args(&["-device", "help"])) else { panic!("-device help") };
    for kind in vmm::device_kinds::DEVICE_KINDS {
        assert!(all.contains(kind.name), "-device help lacks {}", kind.name);
        let Ok(super::super::Command::Help(own)) = parse(args(&["-device", &format!("{},help", kind.name)])) else {
            panic!("{},help", kind.name)
        };
        for p in kind.props {
            assert!(own.contains(&format!("{}=", p.name)), "{} help lacks {}", kind.name, p.name);
        }
        let err = parse(args(&["-kernel", "k", "-device", kind.name])).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!err.contains("unknown device") && !err.contains("microvm bug"), "{}: {err}", kind.name);
    }
}
