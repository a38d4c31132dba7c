use super::super::help_text;
use super::super::test_util::*;
use std::path::PathBuf;
use vmm::config::{DeviceConfig, NetBackend, SocketAddress};

/// The backend of `-netdev VALUE` used by one virtio-net device.
fn backend(netdev: &str) -> NetBackend {
    let c = run(&["-netdev", netdev, "-device", "virtio-net-device,netdev=n"]).unwrap();
    match c.devices.as_slice() {
        [DeviceConfig::Net(n)] => {
            assert!(!n.vhost);
            n.backend.clone()
        }
        other => panic!("{other:?}"),
    }
}

fn passt_args(netdev: &str) -> Vec<String> {
    match backend(netdev) {
        NetBackend::User { passt_args } => passt_args,
        other => panic!("{other:?}"),
    }
}

fn unix(path: &str) -> SocketAddress {
    SocketAddress::Unix(PathBuf::from(path))
}

#[test]
fn stream_client_and_server_on_unix_and_inet() {
    assert_eq!(
        backend("stream,id=n,server=off,addr.type=unix,addr.path=/run/passt.sock"),
        NetBackend::Stream { server: false, addr: unix("/run/passt.sock") }
    );
    assert_eq!(
        backend("stream,id=n,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=5555,reconnect=0"),
        NetBackend::Stream { server: true, addr: SocketAddress::Inet { host: "127.0.0.1".into(), port: 5555 } }
    );
    for (v, why) in [
        ("stream,id=n", "addr.type=unix|inet is required"),
        ("stream,id=n,addr.type=unix", "needs addr.path="),
        ("stream,id=n,addr.type=inet,addr.host=h", "needs addr.host= and addr.port="),
        ("stream,id=n,addr.type=inet,addr.host=h,addr.port=x", "port number"),
        ("stream,id=n,addr.type=unix,addr.path=/p,addr.port=1", "takes addr.path only"),
        ("stream,id=n,addr.type=fd,addr.str=3", "unknown property"),
        ("stream,id=n,addr.type=unix,addr.path=/p,reconnect=5", "connects once"),
        ("stream,id=n,addr.type=unix,addr.path=/p,vhost=on", "vhost=on needs -netdev tap"),
    ] {
        assert_invalid(err(&["-netdev", v]), "-netdev", why);
    }
}

#[test]
fn dgram_needs_a_remote_and_takes_a_local() {
    assert_eq!(
        backend("dgram,id=n,local.type=unix,local.path=/tmp/a,remote.type=unix,remote.path=/tmp/b"),
        NetBackend::Dgram { local: Some(unix("/tmp/a")), remote: unix("/tmp/b") }
    );
    assert_eq!(
        backend("dgram,id=n,remote.type=inet,remote.host=10.0.0.1,remote.port=1234"),
        NetBackend::Dgram { local: None, remote: SocketAddress::Inet { host: "10.0.0.1".into(), port: 1234 } }
    );
    assert_invalid(err(&["-netdev", "dgram,id=n,local.type=unix,local.path=/a"]), "-netdev", "remote.type=");
    assert_invalid(err(&["-netdev", "dgram,id=n,remote.type=unix"]), "-netdev", "needs remote.path=");
}

#[test]
fn user_defaults_are_qemus_addresses_as_passt_options() {
    // No DNS option: passt gives the host's resolvers (see the dns= description).
    assert_eq!(passt_args("user,id=n"), ["--address", "10.0.2.15", "--netmask", "24", "--gateway", "10.0.2.2"]);
}

#[test]
fn user_options_translate_to_passt() {
    let a = passt_args(
        "user,id=n,net=192.168.76.0/255.255.255.0,host=192.168.76.1,dhcpstart=192.168.76.9,dns=192.168.76.53,\
         ipv6=off,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:5353-192.168.76.9:53,domainname=example.org,\
         dnssearch=lab.example,restrict=off",
    );
    let want: Vec<String> = [
        "--address",
        "192.168.76.9",
        "--netmask",
        "24",
        "--gateway",
        "192.168.76.1",
        "--dns",
        "192.168.76.53",
        "--dns-forward",
        "192.168.76.53",
        "--search",
        "example.org lab.example",
        "--tcp-ports",
        "2222:22",
        "--udp-ports",
        "127.0.0.1/5353:53",
        "--ipv4-only",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(a, want);
    // net= with a bare address is a /24; a host address in it is masked.
    assert_eq!(passt_args("user,id=n,net=10.1.2.3")[1], "10.1.2.15");
    assert_eq!(passt_args("user,id=n,net=10.1.0.0/16")[..4], ["--address", "10.1.0.15", "--netmask", "16"]);
    assert_eq!(passt_args("user,id=n,ipv4=off"), ["--ipv6-only"]);
    assert_eq!(passt_args("user,id=n,hostfwd=::8080-:80")[6..], ["--tcp-ports", "8080:80"]);
    assert_eq!(passt_args("user,id=n,dns=10.0.2.3")[6..], ["--dns", "10.0.2.3", "--dns-forward", "10.0.2.3"]);
}

#[test]
fn user_options_passt_cannot_honour_are_one_clear_line() {
    for (v, why) in [
        ("user,id=n,restrict=on", "passt cannot confine the guest"),
        ("user,id=n,hostfwd=tcp::22-10.0.2.99:22", "the guest's one address (10.0.2.15)"),
        ("user,id=n,hostfwd=sctp::1-:1", "expected hostfwd=tcp|udp"),
        ("user,id=n,hostfwd=tcp::0-:22", "ports are 1 to 65535"),
        ("user,id=n,hostfwd=tcp:myhost:22-:22", "HOSTADDR must be an IPv4 address"),
        ("user,id=n,ipv4=off,ipv6=off", "no network"),
        ("user,id=n,host=10.0.3.2", "host=10.0.3.2 is outside net=10.0.2.0/24"),
        ("user,id=n,net=10.0.2.0/4", "8 to 30 bits"),
        ("user,id=n,net=10.0.2.0/255.0.255.0", "not a netmask"),
        ("user,id=n,dns=nameserver", "IPv4 address"),
        ("user,id=n,tftp=/srv", "unknown property for -netdev user"),
        ("user,id=n,hostname=vm1", "unknown property for -netdev user"),
        ("user,id=n,vhost=on", "vhost=on needs -netdev tap"),
        ("user", "id= is required"),
    ] {
        let e = err(&["-netdev", v]);
        assert_invalid(e.clone(), "-netdev", why);
        assert!(!e.to_string().contains('\n'), "{e}");
    }
    let e = err(&["-netdev", "user,id=n", "-netdev", "stream,id=n,addr.type=unix,addr.path=/p"]);
    assert_invalid(e, "-netdev", "duplicate id 'n'");
}

#[test]
fn help_describes_the_new_netdev_types() {
    let help = help_text().split_whitespace().collect::<Vec<_>>().join(" ");
    for w in
        ["starts passt", "hostfwd=", "length-prefixed", "Ethernet frame per datagram", "addr.type=", "remote.type="]
    {
        assert!(help.contains(w), "-help does not say {w:?}");
    }
}
