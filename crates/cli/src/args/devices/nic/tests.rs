use super::super::super::test_util::*;
use vmm::config::{DeviceConfig, NetBackend, NetConfig};

fn nics(extra: &[&str]) -> Vec<NetConfig> {
    devs(extra)
        .into_iter()
        .map(|d| match d {
            DeviceConfig::Net(n) => n,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// The same config as `-netdev` + `-device` would give, with QEMU's generated id.
#[test]
fn nic_is_a_netdev_and_its_virtio_net_device() {
    let short = nics(&["-nic", "tap,ifname=vmtap0,script=no,downscript=no"]);
    let long =
        nics(&["-netdev", "tap,id=n,ifname=vmtap0,script=no,downscript=no", "-device", "virtio-net-device,netdev=n"]);
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].id, "__org.qemu.nic0");
    assert_eq!(NetConfig { id: "n".into(), ..short[0].clone() }, long[0]);

    // user: the same passt arguments as -netdev user with the same properties.
    let user = |opts: &[&str]| -> Vec<String> {
        match &nics(opts)[0].backend {
            NetBackend::User { passt_args } => passt_args.clone(),
            other => panic!("{other:?}"),
        }
    };
    let fwd = "hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:5353-:53,ipv6=off";
    assert_eq!(
        user(&["-nic", &format!("user,{fwd}")]),
        user(&["-netdev", &format!("user,id=u,{fwd}"), "-device", "virtio-net-device,netdev=u"])
    );
    assert!(user(&["-nic", "user,net=192.168.76.0/24"]).iter().any(|a| a.contains("192.168.76.")));
}

#[test]
fn nic_model_mac_and_id() {
    for model in ["", ",model=virtio-net-device", ",model=virtio"] {
        let n = nics(&["-nic", &format!("user,mac=52:54:00:aa:bb:cc{model}")]);
        assert_eq!(n[0].mac, Some([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]), "{model}");
    }
    // id= names the netdev; each -nic without one gets the next generated id; in order.
    let n = nics(&[
        "-nic",
        "user,id=u0",
        "-nic",
        "user",
        "-netdev",
        "user,id=x",
        "-nic",
        "tap",
        "-device",
        "virtio-net-device,netdev=x",
    ]);
    let ids: Vec<_> = n.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["u0", "__org.qemu.nic0", "__org.qemu.nic1", "x"]);
    // A ,, in a value stays one comma for the netdev.
    let n = nics(&["-nic", "user,dnssearch=a,,b"]);
    match &n[0].backend {
        NetBackend::User { passt_args } => assert!(passt_args.iter().any(|a| a == "a,b"), "{passt_args:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nic_none_and_errors() {
    assert_eq!(devs(&["-nic", "none"]), []);
    assert_invalid(err(&["-nic", "none,model=virtio"]), "-nic", "no properties");
    assert_invalid(err(&["-nic", "user,model=e1000"]), "-nic", "only NIC is virtio-net-device");
    assert_invalid(err(&["-nic", "user,model=virtio-net-pci"]), "-nic", "no PCI bus");
    assert_invalid(err(&["-nic", "user,mac=01:00:00:00:00:01"]), "-nic", "multicast");
    assert_invalid(err(&["-nic", "model=virtio"]), "-nic", "expected TYPE");
    // The netdev's own errors name -nic and the value as written.
    let e = err(&["-nic", "bridge,br=br0"]);
    assert_invalid(e.clone(), "-nic", "only -netdev tap, user, stream and dgram");
    assert!(e.to_string().starts_with("-nic: invalid value 'bridge,br=br0'"), "{e}");
    assert_invalid(err(&["-nic", "tap,script=/etc/qemu-ifup"]), "-nic", "never runs network scripts");
    assert_invalid(err(&["-nic", "user,restrict=on"]), "-nic", "");
    assert_invalid(err(&["-nic", "user,id=1x"]), "-nic", "an id is a letter");
    assert_invalid(err(&["-nic", "user,id=n", "-netdev", "user,id=n"]), "-netdev", "duplicate id");
    assert_invalid(err(&["-nic", "user,id=n", "-nic", "tap,id=n"]), "-nic", "duplicate id");
    // The generated netdev is a netdev like any: a second user is told it is taken.
    assert_invalid(err(&["-nic", "tap", "-device", "virtio-net-device,netdev=__org.qemu.nic0"]), "-device", "");
}

/// ms-jpq/lab's microvm script gives its tap -nic a br= without helper=, which QEMU
/// ignores; so does microvm (the tap is attached to the bridge beforehand).
#[test]
fn tap_br_without_helper_is_ignored() {
    let with_br = nics(&["-nic", "tap,script=no,downscript=no,model=virtio-net-device,br=br0"]);
    assert_eq!(with_br, nics(&["-nic", "tap,script=no,downscript=no,model=virtio-net-device"]));
    assert_invalid(err(&["-nic", "tap,helper=/usr/lib/qemu/qemu-bridge-helper"]), "-nic", "");
}
