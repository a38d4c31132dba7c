//! The table is consistent: every name described once and owned by one kind (virtio or
//! platform), and every kind's properties give back its config (through its backend), with
//! a shape tag for the virtio ones.

use super::*;

/// `props` as the front end hands them over (names checked against `name`'s description).
fn args(name: &str, props: &[(&'static str, &'static str)]) -> DeviceArgs {
    let desc = desc(name).unwrap_or_else(|| panic!("{name} is not described"));
    let props = props
        .iter()
        .map(|(key, value)| {
            let known = desc.props.iter().find(|p| p.name == *key);
            let known = known.unwrap_or_else(|| panic!("{name} has no property {key}"));
            Prop { name: known.name, value: value.to_string(), on: *value == "on", text: format!("{key}={value}") }
        })
        .collect();
    DeviceArgs::new(name, props)
}

fn backend_kind(backend: &Backend) -> BackendKind {
    match backend {
        Backend::Drive(_) => BackendKind::Drive,
        Backend::Netdev(_) => BackendKind::Netdev,
        Backend::Chardev { .. } => BackendKind::VhostUserChardev,
        Backend::Fsdev(_) => BackendKind::Fsdev,
        Backend::RngObject => BackendKind::RngObject,
    }
}

#[test]
fn every_name_is_described_once_and_owned_by_one_kind() {
    for (i, d) in DEVICE_KINDS.iter().enumerate() {
        assert!(DEVICE_KINDS[..i].iter().all(|e| e.name != d.name), "{} described twice", d.name);
        assert!(!d.help.is_empty(), "{} has no help", d.name);
        let owners = KINDS.iter().filter(|k| k.names().contains(&d.name)).count();
        let platform = PLATFORM_KINDS.iter().filter(|k| k.desc().name == d.name).count();
        assert_eq!(owners + platform, 1, "{} must have exactly one owner", d.name);
        assert!(d.props.iter().any(|p| p.name == "id"), "{} takes no id=", d.name);
    }
    for kind in KINDS {
        for name in kind.names() {
            assert!(desc(name).is_some(), "{name} is not in DEVICE_KINDS");
            assert!(std::ptr::eq(lookup(name).unwrap().names(), kind.names()));
        }
    }
    for kind in PLATFORM_KINDS {
        let name = kind.desc().name;
        // The description `-device help` shows is the one the kind parses with.
        let shown = desc(name).unwrap_or_else(|| panic!("{name} is not in DEVICE_KINDS"));
        let props = |d: &KindDesc| d.props.iter().map(|p| p.name).collect::<Vec<_>>();
        assert_eq!((shown.help, props(shown)), (kind.desc().help, props(kind.desc())), "{name}");
        assert_eq!(platform_kind(name).map(|k| k.desc().name), Some(name));
        assert!(lookup(name).is_none(), "{name} is not a virtio slot");
        assert!(!kind.at_most_one().is_empty());
    }
}

#[test]
fn every_platform_kind_round_trips_its_config_through_its_properties() {
    let mut configs = Vec::new();
    for kind in PLATFORM_KINDS {
        let name = kind.desc().name;
        let examples = kind.examples();
        assert!(!examples.is_empty(), "{name} has no example");
        for ex in examples {
            let given = args(name, ex.props);
            let device = kind.parse(&given).unwrap_or_else(|e| panic!("{name} {:?}: {e}", ex.props));
            assert_eq!(given.unread(), None, "{name}: a property its parse ignores");
            assert_eq!(device, ex.device, "{name} {:?}", ex.props);
            configs.push(std::mem::discriminant(&device.config));
        }
    }
    configs.dedup();
    assert_eq!(configs.len(), PLATFORM_KINDS.len(), "each kind gives its own config");
}

/// What a platform kind refuses, with the text (the property, or the whole value) and
/// the reason the command line reports.
#[test]
fn platform_kinds_refuse_what_the_machine_lacks() {
    let refused = |name: &str, props: &[(&'static str, &'static str)]| {
        let e = platform_kind(name).unwrap().parse(&args(name, props)).expect_err("refused");
        (e.text, e.reason)
    };
    let com1 = "microvm's one serial port is COM1: index=0,iobase=0x3f8,irq=4";
    assert_eq!(refused("isa-serial", &[("irq", "3")]), ("irq=3".into(), com1.into()));
    assert_eq!(refused("isa-serial", &[("index", "1")]), ("index=1".into(), com1.into()));
    assert_eq!(refused("isa-serial", &[("iobase", "x")]), ("iobase=x".into(), "expected a number up to 0xffff".into()));
    assert_eq!(refused("isa-serial", &[("chardev", "")]), ("chardev=".into(), "needs an id".into()));
    assert_eq!(
        refused("isa-debug-exit", &[("iosize", "0")]),
        ("isa-debug-exit".into(), "iosize must be 1 to 8".into())
    );
    assert_eq!(
        refused("isa-debug-exit", &[("iosize", "9")]),
        ("iosize=9".into(), "expected a number up to 0x8".into())
    );
    assert_eq!(
        refused("isa-debug-exit", &[("iobase", "0x10000")]),
        ("iobase=0x10000".into(), "expected a number up to 0xffff".into())
    );
    let guid = "guid must be auto or a UUID such as 324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87";
    assert_eq!(refused("vmgenid", &[("guid", "324e6eaf")]), ("guid=324e6eaf".into(), guid.into()));
    assert_eq!(refused("i8042", &[("id", "1kbc")]).0, "id=1kbc");
}

#[test]
fn every_kind_round_trips_its_config_through_its_properties() {
    let mut shapes = Vec::new();
    for kind in KINDS.iter().filter(|k| !k.names().contains(&"virtio-serial-device")) {
        let examples = kind.examples();
        assert!(!examples.is_empty(), "{} has no example", kind.names()[0]);
        for ex in examples {
            let given = args(ex.name, ex.props);
            let parsed = kind.parse(ex.name, &given).unwrap_or_else(|e| panic!("{}: {e}", ex.name));
            assert_eq!(given.unread(), None, "{}: a property its parse ignores", ex.name);
            let Parsed::Slot { mut config, backend, .. } = parsed else { panic!("{} is a slot", ex.name) };
            match (backend, ex.backend) {
                (Some(wanted), Some(given)) => {
                    assert_eq!(wanted.kind, backend_kind(&given), "{}", ex.name);
                    kind.bind(&mut config, given, "").unwrap();
                }
                (None, None) => {}
                (wanted, given) => panic!("{}: asked for {wanted:?}, example gives {given:?}", ex.name),
            }
            assert_eq!(config, ex.config, "{}", ex.name);
            assert!(std::ptr::eq(kind_of(&config).names(), kind.names()), "{}: kind_of", ex.name);
            let shape = kind.shape(&config);
            assert!(shape.starts_with(ex.name), "{}: shape tag {shape}", ex.name);
            shapes.push(shape);
        }
    }
    // vhost-net is its own shape: its saved state does not load into a virtio-net.
    assert!(shapes.contains(&"virtio-net-device (vhost)"));
}

#[test]
fn a_property_no_parse_asks_for_is_reported() {
    let given = args("virtio-rng-device", &[("id", "r"), ("rng", "o")]);
    assert_eq!(given.unread(), Some("id"));
    let _ = given.get("id");
    assert_eq!(given.unread(), Some("rng"));
}

#[test]
fn required_properties_are_required() {
    for name in [
        "virtio-blk-device",
        "virtio-net-device",
        "vhost-user-fs-device",
        "virtio-9p-device",
        "vhost-vsock-device",
        "hybrid-vsock-device",
        "virtconsole",
        "virtserialport",
    ] {
        let err = lookup(name).unwrap().parse(name, &args(name, &[])).err();
        assert!(err.is_some_and(|e| e.reason.contains("required")), "{name} without properties");
    }
    let mq = lookup("virtio-net-device")
        .unwrap()
        .parse("virtio-net-device", &args("virtio-net-device", &[("netdev", "n"), ("mq", "on")]));
    assert!(matches!(mq, Ok(Parsed::Slot { config: DeviceConfig::Net(NetConfig { mq: true, .. }), .. })));
}

#[test]
fn serial_ports_go_to_their_bus() {
    let serial = lookup("virtconsole").unwrap();
    let Ok(Parsed::SerialBus { id, max_ports }) =
        serial.parse("virtio-serial-device", &args("virtio-serial-device", &[("id", "vs"), ("max_ports", "4")]))
    else {
        panic!()
    };
    assert_eq!((id.as_deref(), max_ports), (Some("vs"), Some(4)));
    assert!(serial.parse("virtio-serial-device", &args("virtio-serial-device", &[("max_ports", "32")])).is_err());
    let Ok(Parsed::SerialPort(port)) =
        serial.parse("virtconsole", &args("virtconsole", &[("chardev", "c"), ("bus", "vs.0")]))
    else {
        panic!()
    };
    assert!(port.console && port.chardev == "c" && port.bus.as_deref() == Some("vs.0"));
    let Ok(Parsed::SerialPort(port)) =
        serial.parse("virtserialport", &args("virtserialport", &[("chardev", "c"), ("name", "org.x")]))
    else {
        panic!()
    };
    assert!(!port.console && port.name.as_deref() == Some("org.x"));
    let chardev = crate::chardev_config::ChardevConfig { id: "c".into(), backend: ChardevBackend::Null, logfile: None };
    assert_eq!(serial.shape(&DeviceConfig::Console(ConsoleConfig { chardev })), "virtconsole");
}

#[test]
fn a_kind_names_the_thread_it_needs() {
    let threads: Vec<_> = KINDS.iter().filter_map(|k| k.thread().map(|t| (k.names()[0], t))).collect();
    assert_eq!(threads, [("virtio-9p-device", ThreadKind::Ninep)]);
}

/// What a kind says its data path calls, the `virtio` thread's filter allows.
#[test]
fn the_virtio_filter_allows_what_each_kind_calls() {
    let allowed = sandbox::report::allowed(ThreadKind::Virtio);
    for kind in KINDS {
        for call in kind.syscalls() {
            assert!(allowed.contains_key(call), "{}: the virtio thread may not call {call}", kind.names()[0]);
        }
    }
    assert!(!allowed.contains_key("execve"), "the check can fail");
}
