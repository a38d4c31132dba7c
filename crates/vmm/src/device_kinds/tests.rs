//! The table is consistent: every name described once and owned by one kind, and every
//! kind's properties give back its config (through its backend), with a shape tag.

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
        let platform =
            [platform::ISA_SERIAL.name, platform::DEBUG_EXIT.name, platform::VMGENID.name, platform::I8042.name];
        assert_eq!(owners + usize::from(platform.contains(&d.name)), 1, "{} must have exactly one owner", d.name);
        assert!(d.props.iter().any(|p| p.name == "id"), "{} takes no id=", d.name);
    }
    for kind in KINDS {
        for name in kind.names() {
            assert!(desc(name).is_some(), "{name} is not in DEVICE_KINDS");
            assert!(std::ptr::eq(lookup(name).unwrap().names(), kind.names()));
        }
    }
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
