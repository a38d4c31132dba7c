use super::super::test_util::*;
use super::super::{parse, ArgsError, Command};
use devices::virtio::ninep::SecurityModel::{self, MappedXattr, None as Mine, Passthrough};
use vmm::config::{DeviceConfig, NinePConfig};

fn share(id: &str, path: &str, tag: &str, read_only: bool, security_model: SecurityModel) -> DeviceConfig {
    DeviceConfig::NineP(NinePConfig { path: path.into(), tag: tag.into(), read_only, id: id.into(), security_model })
}

#[test]
fn fsdev_and_its_device() {
    let line = [
        "-fsdev",
        "local,id=fs0,path=/srv/share,security_model=none",
        "-device",
        "virtio-9p-device,fsdev=fs0,mount_tag=hostshare",
    ];
    assert_eq!(devs(&line), [share("fs0", "/srv/share", "hostshare", false, Mine)]);
    // The device may come first, as with every backend; readonly and passthrough.
    let line = [
        "-device",
        "virtio-9p-device,fsdev=ro,mount_tag=t",
        "-fsdev",
        "local,id=ro,path=/x,security_model=passthrough,readonly=on",
    ];
    assert_eq!(devs(&line), [share("ro", "/x", "t", true, Passthrough)]);
}

#[test]
fn mapped_xattr_and_its_old_name() {
    for model in ["mapped-xattr", "mapped"] {
        let line = ["-virtfs", &format!("local,path=/srv,mount_tag=t,security_model={model}")];
        assert_eq!(devs(&line), [share("t", "/srv", "t", false, MappedXattr)], "{model}");
    }
}

#[test]
fn virtfs_is_both_in_one_option_with_the_tag_as_default_id() {
    let line = ["-virtfs", "local,path=/srv,mount_tag=host0,security_model=none"];
    assert_eq!(devs(&line), [share("host0", "/srv", "host0", false, Mine)]);
    let line =
        ["-virtfs", "local,path=/srv,mount_tag=t,security_model=passthrough,id=fs1,readonly=on,writeout=immediate"];
    assert_eq!(devs(&line), [share("fs1", "/srv", "t", true, Passthrough)]);
}

#[test]
fn one_line_errors() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&["-fsdev", "local,id=fs0,security_model=none"], "-fsdev", "path=DIR is required"),
        (&["-fsdev", "local,path=/x,security_model=none"], "-fsdev", "id=ID is required"),
        (&["-fsdev", "local,id=f,path=/x"], "-fsdev", "security_model=none, passthrough or mapped-xattr is required"),
        (&["-fsdev", "local,id=f,path=/x,security_model=bogus"], "-fsdev", "expected security_model=none"),
        (
            &["-virtfs", "local,path=/x,mount_tag=t,security_model=mapped-file"],
            "-virtfs",
            "use security_model=mapped-xattr",
        ),
        (&["-fsdev", "proxy,id=f,sock_fd=3"], "-fsdev", "only the local driver"),
        (&["-virtfs", "local,path=/x,security_model=none"], "-virtfs", "mount_tag=TAG is required"),
        (&["-device", "virtio-9p-device,fsdev=nope,mount_tag=t"], "-device", "fsdev 'nope' is not defined"),
        (&["-device", "virtio-9p-device,mount_tag=t"], "-device", "fsdev=ID and mount_tag=TAG are required"),
        (&["-device", "virtio-9p-pci,fsdev=f,mount_tag=t"], "-device", "use virtio-9p-device"),
        (&["-fsdev", "local,id=f,path=/x,security_model=none,bogus=1"], "-fsdev", "unknown property"),
    ];
    for (line, option, reason) in cases {
        let e = err(line);
        assert_invalid(e.clone(), option, reason);
        assert!(!e.to_string().contains('\n'), "{e}");
    }
    let long = "t".repeat(256);
    let dev = format!("virtio-9p-device,fsdev=f,mount_tag={long}");
    assert_invalid(
        err(&["-fsdev", "local,id=f,path=/x,security_model=none", "-device", &dev]),
        "-device",
        "1 to 255 bytes",
    );
}

#[test]
fn an_fsdev_serves_one_device_and_ids_are_unique() {
    let fsdev = "local,id=f,path=/x,security_model=none";
    let e = err(&["-fsdev", fsdev, "-fsdev", fsdev]);
    assert_invalid(e, "-fsdev", "duplicate fsdev id 'f'");
    let dev = "virtio-9p-device,fsdev=f,mount_tag=t";
    assert_invalid(err(&["-fsdev", fsdev, "-device", dev, "-device", dev]), "-device", "already used");
}

#[test]
fn the_jail_and_9p_do_not_mix() {
    let line =
        ["-kernel", "k", "-virtfs", "local,path=/x,mount_tag=t,security_model=none", "-run-with", "chroot=/var/empty"];
    match parse(args(&line)) {
        Err(e @ ArgsError::InvalidValue { .. }) => assert!(e.to_string().contains("-run-with chroot"), "{e}"),
        Err(e) => panic!("{e}"),
        Ok(Command::Run(_)) | Ok(_) => panic!("accepted"),
    }
}
