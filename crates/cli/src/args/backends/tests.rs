use super::super::test_util::*;
use super::*;
use std::path::PathBuf;
use vmm::config::{BlockConfig, ChardevBackend, DeviceConfig, Engine, LogFile, NetBackend, NetConfig, SerialConfig};

/// A tap netdev's ifname (panics on other backends).
fn ifname(n: &NetConfig) -> Option<&str> {
    match &n.backend {
        NetBackend::Tap { ifname, .. } => ifname.as_deref(),
        other => panic!("{other:?}"),
    }
}

// ---- -drive ----

#[test]
fn drive_properties() {
    let drive = |spec: &str| -> BlockConfig {
        let d = devs(&["-drive", spec, "-device", "virtio-blk-device,drive=d"]);
        match d.as_slice() {
            [DeviceConfig::Block(b)] => b.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        drive("id=d,file=/images/root.img,format=raw,if=none"),
        BlockConfig {
            id: "d".into(),
            path: "/images/root.img".into(),
            read_only: false,
            cache: CacheMode::Writeback,
            serial: None,
            limits: Default::default(),
            engine: Engine::Sync,
            image: Default::default(),
            num_queues: None,
            iothread: None,
        }
    );
    for ro in ["readonly", "readonly=on", "read-only=on", "readonly=yes", "readonly=off,read-only=on"] {
        assert!(drive(&format!("id=d,file=f,if=none,{ro}")).read_only, "{ro}");
    }
    for rw in ["readonly=off", "noreadonly", "read-only=off", "readonly,readonly=off"] {
        assert!(!drive(&format!("id=d,file=f,if=none,{rw}")).read_only, "{rw}");
    }
    for (c, want) in [
        ("writeback", CacheMode::Writeback),
        ("writethrough", CacheMode::Writethrough),
        ("none", CacheMode::None),
        ("off", CacheMode::None),
        ("directsync", CacheMode::Directsync),
        ("unsafe", CacheMode::Unsafe),
    ] {
        assert_eq!(drive(&format!("id=d,file=f,if=none,cache={c}")).cache, want);
    }
    // aio= chooses the engine: the sync one without it, threads a pool, native is
    // io_uring and needs O_DIRECT, as QEMU's Linux AIO does.
    for (aio, want) in [
        ("", Engine::Sync),
        (",aio=threads", Engine::Threads),
        (",aio=io_uring", Engine::IoUring),
        (",aio=native,cache=none", Engine::IoUring),
        (",cache=directsync,aio=native", Engine::IoUring),
        (",aio=io_uring,cache=unsafe", Engine::IoUring),
    ] {
        assert_eq!(drive(&format!("id=d,file=f,if=none{aio}")).engine, want, "{aio}");
    }
    // format=, snapshot= and discard= go to the block device as they are.
    let image = |props: &str| drive(&format!("id=d,file=f,if=none{props}")).image;
    assert_eq!(image(""), ImageOptions { format: ImageFormat::Raw, snapshot: false, discard: None });
    assert_eq!(image(",format=qcow2").format, ImageFormat::Qcow2);
    assert_eq!(image(",format=raw").format, ImageFormat::Raw);
    assert!(image(",snapshot=on").snapshot && image(",snapshot").snapshot && !image(",snapshot=off").snapshot);
    for (discard, want) in [("unmap", true), ("on", true), ("ignore", false), ("off", false)] {
        assert_eq!(image(&format!(",discard={discard}")).discard, Some(want), "{discard}");
    }
    // Accepted without effect; format= and if= may be left out.
    for extra in
        ["media=disk", "discard=unmap", "discard=ignore", "discard=on", "discard=off", "snapshot=off", "format=raw"]
    {
        assert_eq!(drive(&format!("id=d,file=f,{extra}")).id, "d", "{extra}");
    }
    // QEMU's ",," escape, a trailing comma, the last value winning.
    assert_eq!(drive("id=d,file=a,,b.img,if=none,").path, PathBuf::from("a,b.img"));
    assert_eq!(drive("file=x,id=d,file=y").path, PathBuf::from("y"));
    // An unused if=none drive is fine (QEMU allows it).
    assert_eq!(devs(&["-drive", "id=spare,file=f,if=none"]), []);
}

#[test]
fn drive_errors() {
    let e = err(&["-drive", "id=d,file=f,format=vmdk,if=none"]);
    assert_eq!(
        e.to_string(),
        "-drive: invalid value 'format=vmdk': only format=raw and format=qcow2 are supported, not vmdk; convert the \
         image with qemu-img convert -O qcow2"
    );
    // Throttling values are plain numbers, as QEMU's (no size suffixes); the rest of
    // throttling.* is in backends/throttling.rs.
    let e = err(&["-drive", "id=d,file=f,if=none,throttling.bps-read=1M"]);
    assert_invalid(e.clone(), "-drive", "expected a number");
    assert!(e.to_string().contains("'throttling.bps-read=1M'"), "{e}");
    for f in ["qcow", "vmdk", "", "RAW", "QCOW2"] {
        assert_invalid(
            err(&["-drive", &format!("id=d,file=f,format={f}")]),
            "-drive",
            "only format=raw and format=qcow2",
        );
    }
    for i in ["virtio", "ide", "scsi", "sd", "pflash", "mtd", ""] {
        assert_invalid(
            err(&["-drive", &format!("id=d,file=f,if={i}")]),
            "-drive",
            "use if=none with -device virtio-blk-device",
        );
    }
    assert_invalid(err(&["-drive", "file=f,if=none"]), "-drive", "id= is required");
    assert_invalid(err(&["-drive", "id=d,if=none"]), "-drive", "file= is required");
    assert_invalid(err(&["-drive", "id=d,file=,if=none"]), "-drive", "empty path");
    assert_invalid(err(&["-drive", ""]), "-drive", "id= is required");
    for id in ["", "1d", "d d", "d/e", "é", "_d", "-d"] {
        assert_invalid(err(&["-drive", &format!("id={id},file=f")]), "-drive", "an id is a letter");
    }
    let e = err(&["-drive", "id=d,file=a,if=none", "-drive", "id=d,file=b,if=none"]);
    assert_eq!(e.to_string(), "-drive: invalid value 'id=d,file=b,if=none': duplicate id 'd'");
    assert_invalid(err(&["-drive", "id=d,file=f,cache=sometimes"]), "-drive", "writeback");
    assert_invalid(err(&["-drive", "id=d,file=f,aio=posix"]), "-drive", "threads");
    for cache in ["", ",cache=writeback", ",cache=writethrough", ",cache=unsafe"] {
        let e = err(&["-drive", &format!("id=d,file=f,aio=native{cache}")]);
        assert_invalid(
            e,
            "-drive",
            "aio=native was specified, but it requires cache.direct=on, which was not specified.",
        );
    }
    assert_invalid(err(&["-drive", "id=d,file=f,discard=maybe"]), "-drive", "unmap");
    assert_invalid(err(&["-drive", "id=d,file=f,snapshot=maybe"]), "-drive", "on|off");
    assert_invalid(err(&["-drive", "id=d,file=f,readonly=maybe"]), "-drive", "on|off");
    assert_invalid(err(&["-drive", "id=d,file=f,=x"]), "-drive", "empty property name");
    // A bare first element is a short-form flag, not a file name.
    assert_invalid(err(&["-drive", "disk.img,id=d"]), "-drive", "unknown property");
    // Without if=none QEMU would put it on IDE: it must be used.
    let e = err(&["-drive", "id=d,file=f,format=raw"]);
    assert_invalid(e.clone(), "-drive", "no device uses this drive");
    assert!(e.to_string().starts_with("-drive: invalid value 'id=d,file=f,format=raw'"));
}

#[test]
fn virtio_blk_device_errors() {
    let e = err(&["-device", "virtio-blk-device,drive=test"]);
    assert_eq!(
        e.to_string(),
        "-device: invalid value 'virtio-blk-device,drive=test': drive 'test' is not defined (no -drive with id=test)"
    );
    let e = err(&[
        "-drive",
        "id=d,file=f,if=none",
        "-device",
        "virtio-blk-device,drive=d",
        "-device",
        "virtio-blk-device,drive=d,id=second",
    ]);
    assert_eq!(
        e.to_string(),
        "-device: invalid value 'virtio-blk-device,drive=d,id=second': drive 'd' is already used by another device"
    );
    assert_invalid(err(&["-device", "virtio-blk-device"]), "-device", "drive=ID is required");
    assert_invalid(err(&["-device", "virtio-blk-device,drive="]), "-device", "needs an id");
    assert_invalid(err(&["-device", "virtio-blk-device,drive=d,queue-size=2"]), "-device", "unknown property");
    // A drive id names -drive ids only.
    assert_invalid(
        err(&["-netdev", "tap,id=d", "-device", "virtio-blk-device,drive=d"]),
        "-device",
        "drive 'd' is not defined",
    );
}

// ---- -netdev and virtio-net-device ----

#[test]
fn netdev_properties() {
    let nic = |netdev: &str, device: &str| -> NetConfig {
        match devs(&["-netdev", netdev, "-device", device]).as_slice() {
            [DeviceConfig::Net(n)] => n.clone(),
            other => panic!("{other:?}"),
        }
    };
    let dev = "virtio-net-device,netdev=n";
    assert_eq!(
        nic("tap,id=n,ifname=vmtap0,script=no,downscript=no,vhost=off", dev),
        NetConfig {
            id: "n".into(),
            backend: NetBackend::Tap { ifname: Some("vmtap0".into()), fd: None },
            mac: None,
            vhost: false,
            queues: 1,
            mq: false,
            limits: Default::default(),
            mmds: None,
        }
    );
    for extra in ["", ",script=,downscript=", ",queues=1", ",vnet_hdr=on", ",vhost=off", ",novhost"] {
        assert_eq!(ifname(&nic(&format!("tap,id=n{extra}"), dev)), None, "{extra}");
    }
    assert_eq!(nic("type=tap,id=n", dev).id, "n");
    // Multiqueue: the netdev's queues and the device's mq=on, each its own (as QEMU).
    let mq = nic("tap,id=n,ifname=t0,queues=4,vhost=on", "virtio-net-device,netdev=n,mq=on");
    assert_eq!((mq.queues, mq.mq, mq.vhost), (4, true, true));
    let mq = nic("tap,id=n,queues=4", dev);
    assert_eq!((mq.queues, mq.mq), (4, false));
    let mq = nic("tap,id=n", "virtio-net-device,netdev=n,mq=on");
    assert_eq!((mq.queues, mq.mq), (1, true));
    assert_eq!(nic("id=n,type=tap", dev).id, "n");
    assert_eq!(ifname(&nic("tap,id=n,ifname=tap%d", dev)), Some("tap%d"));
    assert_eq!(ifname(&nic("tap,id=n,ifname=abcdefghijklmno", dev)), Some("abcdefghijklmno"));
    for (mac, want) in [
        ("52:54:00:12:34:56", [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
        ("52-54-00-12-34-56", [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
        ("02:AB:cd:EF:00:ff", [0x02, 0xab, 0xcd, 0xef, 0x00, 0xff]),
        ("fe:ff:ff:ff:ff:ff", [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ] {
        assert_eq!(nic("tap,id=n", &format!("{dev},mac={mac},id=nic0")).mac, Some(want), "{mac}");
    }
}

#[test]
fn netdev_errors() {
    for t in ["bridge", "vde", "l2tpv3", "vhost-user", "TAP"] {
        let e = err(&["-netdev", &format!("{t},id=n")]);
        assert_invalid(e.clone(), "-netdev", "only -netdev tap, user, stream and dgram are supported");
        assert!(e.to_string().starts_with(&format!("-netdev: invalid value '{t},id=n'")));
    }
    assert_invalid(err(&["-netdev", "socket,id=n,listen=:1234"]), "-netdev", "use its successors -netdev stream");
    assert_invalid(err(&["-netdev", "id=n"]), "-netdev", "expected tap|user|stream|dgram");
    assert_invalid(err(&["-netdev", ""]), "-netdev", "expected tap|user|stream|dgram");
    for s in ["script=/etc/qemu-ifup", "downscript=/etc/qemu-ifdown", "script=yes", "downscript=on"] {
        assert_invalid(err(&["-netdev", &format!("tap,id=n,{s}")]), "-netdev", "never runs network scripts");
    }
    for vhost in ["vhost=on", "vhost"] {
        let d = devs(&["-netdev", &format!("tap,id=n,ifname=t0,{vhost}"), "-device", "virtio-net-device,netdev=n"]);
        assert_eq!(
            d,
            [DeviceConfig::Net(NetConfig {
                id: "n".into(),
                backend: NetBackend::Tap { ifname: Some("t0".into()), fd: None },
                mac: None,
                vhost: true,
                queues: 1,
                mq: false,
                limits: Default::default(),
                mmds: None,
            })]
        );
    }
    assert_invalid(err(&["-netdev", "tap,id=n,vhost=2"]), "-netdev", "on|off");
    for q in ["0", "257", "-1", "x", ""] {
        assert_invalid(err(&["-netdev", &format!("tap,id=n,queues={q}")]), "-netdev", "from 1 to 256");
    }
    assert_invalid(err(&["-netdev", "tap,id=n,fd=3,queues=2"]), "-netdev", "queues=N needs ifname=");
    for fds in ["fds=3:4", "vhostfds=5:6"] {
        assert_invalid(err(&["-netdev", &format!("tap,id=n,{fds}")]), "-netdev", "give ifname= and queues=N");
    }
    assert_invalid(err(&["-netdev", "tap,id=n,vnet_hdr=off"]), "-netdev", "vnet_hdr=on");
    assert_invalid(err(&["-netdev", "tap,id=n,fd=3,ifname=t"]), "-netdev", "not both");
    assert_invalid(err(&["-netdev", "tap,id=n,fd=x"]), "-netdev", "file descriptor number");
    assert_invalid(err(&["-netdev", "tap,ifname=t"]), "-netdev", "id= is required");
    assert_invalid(err(&["-netdev", "tap,id=0"]), "-netdev", "an id is a letter");
    for name in ["", "abcdefghijklmnop", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\u{1b}b"] {
        assert!(
            matches!(
                err(&["-netdev", &format!("tap,id=n,ifname={name}")]),
                ArgsError::InvalidValue { option: "-netdev", .. }
            ),
            "{name:?}"
        );
    }
    assert_invalid(err(&["-netdev", "tap,id=n", "-netdev", "tap,id=n,ifname=x"]), "-netdev", "duplicate id 'n'");
    // The device side.
    let e = err(&["-device", "virtio-net-device,netdev=tap0"]);
    assert_eq!(
        e.to_string(),
        "-device: invalid value 'virtio-net-device,netdev=tap0': netdev 'tap0' is not defined (no -netdev with id=tap0)"
    );
    assert_invalid(
        err(&["-netdev", "tap,id=n", "-device", "virtio-net-device,netdev=n", "-device", "virtio-net-device,netdev=n"]),
        "-device",
        "netdev 'n' is already used by another device",
    );
    assert_invalid(err(&["-device", "virtio-net-device"]), "-device", "netdev=ID is required");
    assert_invalid(err(&["-device", "virtio-net-device,netdev=n,romfile="]), "-device", "unknown property");
    for mac in [
        "52:54:00:12:34",
        "52:54:00:12:34:56:78",
        "52:54:00:12:34:5g",
        "52:54:00:12:34:5",
        "5:254:00:12:34:56",
        "52.54.00.12.34.56",
        "525400123456",
        "52:54:00:12:34:56 ",
        "+2:54:00:12:34:56",
        "",
        "é2:54:00:12:34:5",
    ] {
        assert_invalid(
            err(&["-device", &format!("virtio-net-device,netdev=n,mac={mac}")]),
            "-device",
            "six hex octets",
        );
    }
    for mac in ["01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01"] {
        assert_invalid(err(&["-device", &format!("virtio-net-device,netdev=n,mac={mac}")]), "-device", "multicast");
    }
    assert_invalid(err(&["-device", "virtio-net-device,netdev=n,mac=00:00:00:00:00:00"]), "-device", "all-zero");
}

// ---- -chardev and the console ----

/// The chardev of `-chardev spec` on a console.
fn chardev(spec: &str) -> ChardevBackend {
    let d = devs(&["-chardev", spec, "-device", "virtio-serial-device", "-device", "virtconsole,chardev=c"]);
    match d.as_slice() {
        [DeviceConfig::Console(c)] => {
            assert_eq!(c.chardev.id, "c");
            c.chardev.backend.clone()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn chardev_backends() {
    assert_eq!(chardev("stdio,id=c"), ChardevBackend::Stdio);
    assert_eq!(chardev("stdio,id=c,signal=off"), ChardevBackend::Stdio);
    assert_eq!(chardev("stdio,id=c,signal=on,mux=off"), ChardevBackend::Stdio);
    assert_eq!(chardev("pty,id=c"), ChardevBackend::Pty);
    assert_eq!(chardev("pty,id=c,server"), ChardevBackend::Pty);
    assert_eq!(chardev("pty,id=c,server=on,wait=off"), ChardevBackend::Pty);
    assert_eq!(chardev("backend=pty,id=c"), ChardevBackend::Pty);
    assert_eq!(
        chardev("file,id=c,path=/tmp/console.log"),
        ChardevBackend::File { path: "/tmp/console.log".into(), append: false }
    );
    assert_eq!(
        chardev("file,id=c,path=/tmp/a,,b,append=on"),
        ChardevBackend::File { path: "/tmp/a,b".into(), append: true }
    );
    for (spec, want) in [
        ("socket,id=c,path=/s", socket("/s", false, false)),
        ("socket,id=c,path=/s,server=off", socket("/s", false, false)),
        ("socket,id=c,path=/s,noserver", socket("/s", false, false)),
        ("socket,id=c,path=/s,server", socket("/s", true, true)),
        ("socket,id=c,path=/s,server=on", socket("/s", true, true)),
        ("socket,id=c,path=/s,server,wait", socket("/s", true, true)),
        ("socket,id=c,path=/s,server,nowait", socket("/s", true, false)),
        ("socket,id=c,path=/s,server=on,wait=off", socket("/s", true, false)),
        ("socket,id=c,path=/s,nowait,server", socket("/s", true, false)),
    ] {
        assert_eq!(chardev(spec), want, "{spec}");
    }
}

#[test]
fn chardev_errors() {
    for b in ["vc", "tcp", "udp", "ringbuf", "serial", "pipe", "spicevmc", "STDIO"] {
        assert_invalid(
            err(&["-chardev", &format!("{b},id=c")]),
            "-chardev",
            "only the null, stdio, pty, file and socket backends are supported",
        );
    }
    assert_invalid(err(&["-chardev", "id=c"]), "-chardev", "expected BACKEND");
    assert_invalid(err(&["-chardev", "stdio"]), "-chardev", "id= is required");
    assert_invalid(err(&["-chardev", "pty,id=c d"]), "-chardev", "an id is a letter");
    assert_invalid(err(&["-chardev", "file,id=c"]), "-chardev", "path= is required");
    assert_invalid(err(&["-chardev", "socket,id=c,server"]), "-chardev", "path= is required");
    assert_invalid(err(&["-chardev", "file,id=c,path="]), "-chardev", "empty path");
    assert_invalid(
        err(&["-chardev", "socket,id=c,fd=3", "-device", "virtio-serial-device", "-device", "virtconsole,chardev=c"]),
        "-device",
        "only a QMP monitor can use",
    );
    assert_invalid(
        err(&["-chardev", "socket,id=c,fd=3", "-device", "virtio-serial-device", "-device", "virtconsole,chardev=c"]),
        "-device",
        "only a QMP monitor can use",
    );
    assert_invalid(
        err(&["-chardev", "socket,id=c,path=/s,wait=off"]),
        "-chardev",
        "wait= only applies to a listening socket",
    );
    assert_invalid(err(&["-chardev", "socket,id=c,path=/s,nowait"]), "-chardev", "wait= only applies");
    assert!(run(&["-chardev", "stdio,id=c,mux=on"]).is_ok(), "an unused mux is fine");
    assert_invalid(err(&["-chardev", "stdio,id=c,signal=maybe"]), "-chardev", "on|off");
    assert_invalid(err(&["-chardev", "pty,id=c,server=maybe"]), "-chardev", "on|off");
    assert_invalid(err(&["-chardev", "pty,id=c,signal=off"]), "-chardev", "unknown property");
    assert_invalid(err(&["-chardev", "stdio,id=c,path=/x"]), "-chardev", "unknown property");
    assert_invalid(err(&["-chardev", "socket,id=c,path=/s,reconnect=1"]), "-chardev", "unknown property");
    assert_invalid(err(&["-chardev", "file,id=c,path=/a,logfile=/b,logappend=maybe"]), "-chardev", "on|off");
    assert_invalid(err(&["-chardev", "pty,id=c", "-chardev", "file,id=c,path=/x"]), "-chardev", "duplicate id 'c'");
    // The device side.
    let e = err(&["-device", "virtio-serial-device", "-device", "virtconsole,chardev=virtiocon0"]);
    assert_eq!(
        e.to_string(),
        "-device: invalid value 'virtconsole,chardev=virtiocon0': chardev 'virtiocon0' is not defined (no -chardev with id=virtiocon0)"
    );
    assert_invalid(
        err(&[
            "-chardev",
            "pty,id=c",
            "-device",
            "virtio-serial-device",
            "-device",
            "virtconsole,chardev=c",
            "-device",
            "virtio-serial-device",
            "-device",
            "virtconsole,chardev=c",
        ]),
        "-device",
        "chardev 'c' is already used by another device",
    );
}

#[test]
fn stdio_has_one_owner() {
    let e = err(&["-chardev", "stdio,id=a", "-chardev", "stdio,id=b"]);
    assert_eq!(
        e.to_string(),
        "-chardev: invalid value 'stdio,id=b': stdio is used twice (also by -chardev id=a); only one can own stdin"
    );
    for line in [
        &["-serial", "stdio", "-chardev", "stdio,id=c"][..],
        &["-chardev", "stdio,id=c", "-serial", "stdio"],
        &["-M", "microvm,legacy", "-chardev", "stdio,id=c", "-serial", "stdio"],
    ] {
        let e = err(line);
        assert_eq!(
            e.to_string(),
            "-chardev: invalid value 'stdio,id=c': stdio is used twice (also by -serial stdio); only one can own stdin",
            "{line:?}"
        );
    }
    // A pty console and the serial port on stdio are fine.
    let c = run(&[
        "-serial",
        "stdio",
        "-chardev",
        "pty,id=c",
        "-device",
        "virtio-serial-device",
        "-device",
        "virtconsole,chardev=c",
    ])
    .unwrap();
    assert_eq!(c.serial, Some(SerialConfig::Stdio));
    assert_eq!(c.devices, [console("c", ChardevBackend::Pty)]);
    // The implicit legacy-mode serial yields stdin to -chardev stdio.
    let c = run(&["-M", "microvm,legacy", "-chardev", "stdio,id=c"]).unwrap();
    assert_eq!(c.serial, Some(SerialConfig::Null));
    assert_eq!(c.devices, []);
    // -serial none and -chardev stdio are fine too.
    let c = run(&["-serial", "none", "-chardev", "stdio,id=c"]).unwrap();
    assert_eq!(c.serial, Some(SerialConfig::Null));
    // Without legacy mode, nothing changes.
    assert_eq!(run(&["-chardev", "stdio,id=c"]).unwrap().serial, None);
}

#[test]
fn drive_media_index_detect_zeroes_and_serial() {
    let one = |drive: &str, device: &str| match devs(&["-drive", drive, "-device", device]).as_slice() {
        [DeviceConfig::Block(b)] => b.clone(),
        other => panic!("{other:?}"),
    };
    let dev = "virtio-blk-device,drive=d";
    // The Ubuntu documentation's drive, with a raw image.
    let b = one("file=x.img,index=0,format=raw,media=disk,if=none,id=d", dev);
    assert_eq!((b.id.as_str(), b.read_only, b.serial), ("d", false, None));
    // microvm.nix's boot disk: a CD-ROM is a read-only disk.
    let b = one("id=d,format=raw,media=cdrom,file=boot.img,if=none,aio=io_uring", dev);
    assert!(b.read_only);
    for dz in ["on", "off", "unmap"] {
        assert!(!one(&format!("id=d,file=f,if=none,detect-zeroes={dz}"), dev).read_only);
    }
    assert_invalid(err(&["-drive", "id=d,file=f,if=none,media=floppy"]), "-drive", "media=disk or media=cdrom");
    assert_invalid(err(&["-drive", "id=d,file=f,if=none,detect-zeroes=maybe"]), "-drive", "detect-zeroes=on");
    let b = one("id=d,file=f,if=none", "virtio-blk-device,drive=d,serial=SN-0001");
    assert_eq!(b.serial.as_deref(), Some("SN-0001"));
}

#[test]
fn tap_fd_and_net_queue_properties() {
    let fd = devs(&["-netdev", "tap,id=n,fd=3", "-device", "virtio-net-device,netdev=n,packed=off,mq=off"]);
    let [DeviceConfig::Net(n)] = fd.as_slice() else { panic!("{fd:?}") };
    assert_eq!(n.backend, NetBackend::Tap { ifname: None, fd: Some(3) });
    let mq = devs(&["-netdev", "tap,id=n,queues=2", "-device", "virtio-net-device,netdev=n,mq=on"]);
    let [DeviceConfig::Net(n)] = mq.as_slice() else { panic!("{mq:?}") };
    assert_eq!((n.queues, n.mq), (2, true));
}

#[test]
fn chardev_null_logfile_and_tcp_console() {
    let console = |chardev: &str| match devs(&[
        "-chardev",
        chardev,
        "-device",
        "virtio-serial-device",
        "-device",
        "virtconsole,chardev=c",
    ])
    .as_slice()
    {
        [DeviceConfig::Console(c)] => c.chardev.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(console("null,id=c").backend, ChardevBackend::Null);
    let c = console("stdio,id=c,logfile=/tmp/con.log,logappend=on");
    assert_eq!(c.logfile, Some(LogFile { path: "/tmp/con.log".into(), append: true }));
    assert_eq!(console("stdio,id=c,logfile=/tmp/con.log").logfile.map(|l| l.append), Some(false));
    assert_eq!(
        console("socket,id=c,host=127.0.0.1,port=4321,server=on,wait=off").backend,
        ChardevBackend::Tcp { host: "127.0.0.1".into(), port: 4321, server: true, wait: false }
    );
    assert_invalid(err(&["-chardev", "null,id=c,logfile="]), "-chardev", "empty path");
}
