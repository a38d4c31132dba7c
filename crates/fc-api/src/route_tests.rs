use super::*;

fn request(method: Method, path: &str, body: Option<&str>) -> Request {
    Request { method, path: path.into(), body: body.map(|b| b.as_bytes().to_vec()), close: false }
}

fn fault(method: Method, path: &str, body: Option<&str>) -> String {
    parse(&request(method, path, body)).expect_err("should be refused").to_string()
}

#[test]
fn getting_started_sequence() {
    let put = |path, body| parse(&request(Method::Put, path, Some(body))).unwrap();
    assert_eq!(
        put("/boot-source", r#"{"kernel_image_path": "vmlinux", "boot_args": "console=ttyS0"}"#),
        ApiRequest::PutBootSource(BootSource {
            kernel_image_path: "vmlinux".into(),
            initrd_path: None,
            boot_args: Some("console=ttyS0".into())
        })
    );
    let ApiRequest::PutDrive(drive) = put(
        "/drives/rootfs",
        r#"{"drive_id": "rootfs", "path_on_host": "rootfs.ext4", "is_root_device": true, "is_read_only": false}"#,
    ) else {
        panic!("not a drive")
    };
    assert_eq!((drive.cache_type, drive.is_root_device), (CacheType::Unsafe, true));
    let ApiRequest::PutMachineConfig(m) = put("/machine-config", r#"{"vcpu_count": 2, "mem_size_mib": 1024}"#) else {
        panic!("not machine-config")
    };
    assert_eq!((m.vcpu_count, m.mem_size_mib, m.smt), (2, 1024, false));
    assert_eq!(put("/actions", r#"{"action_type": "InstanceStart"}"#), ApiRequest::Action(ActionType::InstanceStart));
    assert_eq!(
        parse(&request(Method::Patch, "/vm", Some(r#"{"state": "Paused"}"#))).unwrap(),
        ApiRequest::PatchVm(VmState::Paused)
    );
    assert_eq!(parse(&request(Method::Get, "/", None)).unwrap(), ApiRequest::GetInstanceInfo);
    assert_eq!(parse(&request(Method::Get, "/vm/config", None)).unwrap(), ApiRequest::GetVmConfig);
    assert_eq!(parse(&request(Method::Get, "/balloon/statistics", None)).unwrap(), ApiRequest::GetBalloonStats);
}

#[test]
fn firecracker_messages_for_bad_requests() {
    assert_eq!(fault(Method::Get, "/", Some("{}")), "GET request cannot have a body.");
    assert_eq!(fault(Method::Put, "/boot-source", None), "Empty PUT request.");
    assert_eq!(fault(Method::Patch, "/vm", None), "Empty PATCH request.");
    assert_eq!(fault(Method::Put, "/nowhere", None), "Invalid request method and/or path: PUT /nowhere.");
    assert_eq!(fault(Method::Get, "/boot-source", None), "Invalid request method and/or path: GET /boot-source.");
    assert_eq!(
        fault(Method::Put, "/drives/a", Some(r#"{"drive_id": "b", "is_root_device": false}"#)),
        "The id from the path does not match the id from the body!"
    );
    assert_eq!(
        fault(Method::Put, "/network-interfaces/eth0", Some(r#"{"iface_id": "eth1", "host_dev_name": "tap0"}"#)),
        "The id from the path [eth0] does not match the id from the body [eth1]!"
    );
    assert_eq!(fault(Method::Put, "/drives/a-b", Some("{}")), RequestError::InvalidId.to_string());
    assert_eq!(fault(Method::Put, "/drives", Some("{}")), RequestError::EmptyId.to_string());
    assert_eq!(fault(Method::Put, "/snapshot", Some("{}")), "Missing snapshot operation type.");
    assert_eq!(fault(Method::Patch, "/machine-config", Some("{}")), "Empty PATCH request.");
    assert_eq!(fault(Method::Put, "/pmem/p", Some("{}")), "The pmem device is not supported by microvm.");
}

#[test]
fn serde_errors_name_the_field() {
    let unknown = fault(Method::Put, "/boot-source", Some(r#"{"kernel_image_path": "k", "kernel": 1}"#));
    assert!(
        unknown.starts_with("An error occurred when deserializing the json body of a request: unknown field `kernel`")
    );
    let wrong_type = fault(Method::Put, "/machine-config", Some(r#"{"vcpu_count": "2", "mem_size_mib": 128}"#));
    assert!(wrong_type.contains("invalid type: string \"2\", expected u8"), "{wrong_type}");
    let too_big = fault(Method::Put, "/machine-config", Some(r#"{"vcpu_count": 300, "mem_size_mib": 128}"#));
    assert!(too_big.contains("invalid value: integer `300`"), "{too_big}");
    let missing = fault(Method::Put, "/actions", Some("{}"));
    assert!(missing.contains("missing field `action_type`"), "{missing}");
    let variant = fault(Method::Put, "/actions", Some(r#"{"action_type": "Reboot"}"#));
    assert!(variant.contains("unknown variant `Reboot`"), "{variant}");
    assert!(fault(Method::Put, "/boot-source", Some("{")).contains("EOF while parsing"));
    // Metrics is the one body Firecracker does not check for unknown fields.
    assert!(parse(&request(Method::Put, "/metrics", Some(r#"{"metrics_path": "m", "x": 1}"#))).is_ok());
}

#[test]
fn snapshot_load_needs_exactly_one_memory_source() {
    let both =
        r#"{"snapshot_path": "s", "mem_file_path": "m", "mem_backend": {"backend_type": "File", "backend_path": "m"}}"#;
    assert!(fault(Method::Put, "/snapshot/load", Some(both)).contains("too many fields"));
    assert!(fault(Method::Put, "/snapshot/load", Some(r#"{"snapshot_path": "s"}"#)).contains("missing field: either"));
    let ok =
        r#"{"snapshot_path": "s", "mem_backend": {"backend_type": "Uffd", "backend_path": "u"}, "resume_vm": true}"#;
    let ApiRequest::LoadSnapshot(p) = parse(&request(Method::Put, "/snapshot/load", Some(ok))).unwrap() else {
        panic!("not a load")
    };
    assert!(p.resume_vm);
    assert_eq!(
        fault(Method::Put, "/snapshot/take", Some("{}")),
        "Invalid request method and/or path: PUT /snapshot/take."
    );
}

#[test]
fn logger_levels_as_firecracker_reads_them() {
    for (text, level) in [("Warning", LogLevel::Warning), ("warn", LogLevel::Warning), ("DEBUG", LogLevel::Debug)] {
        let body = format!(r#"{{"level": "{text}"}}"#);
        let ApiRequest::PutLogger(l) = parse(&request(Method::Put, "/logger", Some(&body))).unwrap() else {
            panic!("not a logger")
        };
        assert_eq!(l.level, Some(level));
    }
    assert!(fault(Method::Put, "/logger", Some(r#"{"level": "loud"}"#)).contains("Invalid LevelFilter"));
}

#[test]
fn routes_firecracker_answers_on_its_own() {
    // Paths routed on their second segment, and those that only answer.
    assert_eq!(fault(Method::Get, "/balloon/x", None), "Unrecognized GET request path `x`.");
    assert_eq!(fault(Method::Put, "/mmds/x", Some("{}")), "Unrecognized PUT request path `x`.");
    assert_eq!(fault(Method::Get, "/vm", None), "Invalid request method and/or path: GET /vm.");
    assert_eq!(
        fault(Method::Patch, "/balloon/hinting", None),
        "Balloon free page hinting is not supported by microvm."
    );
    assert_eq!(fault(Method::Get, "/hotplug/memory", None), "Memory hot-plug is not supported by microvm.");
    // Only PUT and PATCH paths are told their body is missing.
    assert_eq!(fault(Method::Put, "/version", None), "Invalid request method and/or path: PUT /version.");
    assert_eq!(fault(Method::Put, "/pmem", None), "Empty PUT request.");
    assert_eq!(
        fault(Method::Put, "/balloon/hinting", None),
        "Invalid request method and/or path: PUT /balloon/hinting."
    );
    let stats = parse(&request(Method::Patch, "/balloon/statistics", Some(r#"{"stats_polling_interval_s": 5}"#)));
    assert_eq!(stats.unwrap(), ApiRequest::PatchBalloonStats(BalloonStatsUpdate { stats_polling_interval_s: 5 }));
}

#[test]
fn each_verb_says_when_firecracker_takes_it() {
    let drive = ApiRequest::PutDrive(Drive::default());
    assert_eq!(drive.verb().allowed, Allowed::PreBoot);
    assert_eq!(drive.verb().refusal(true), Some(NOT_SUPPORTED_POST_BOOT));
    assert_eq!(drive.verb().refusal(false), None);
    let pause = ApiRequest::PatchVm(VmState::Paused);
    assert_eq!(pause.verb().refusal(false), Some(NOT_SUPPORTED_PRE_BOOT));
    assert_eq!(pause.verb().refusal(true), None);
    let mmds = ApiRequest::PatchMmds(Value::Null);
    assert_eq!((mmds.verb().refusal(false), mmds.verb().refusal(true)), (None, None));
    // Actions by their type: InstanceStart before boot, the others after.
    assert_eq!(ApiRequest::Action(ActionType::InstanceStart).verb().allowed, Allowed::PreBoot);
    assert_eq!(ApiRequest::Action(ActionType::SendCtrlAltDel).verb().allowed, Allowed::PostBoot);
    // The metrics count a PUT's failures, a GET's requests only, and no snapshot.
    let put = drive.verb();
    assert!(std::ptr::eq(put.count.unwrap(), &metrics::PUT_API.drive_count));
    assert!(std::ptr::eq(put.fails.unwrap(), &metrics::PUT_API.drive_fails));
    let get = ApiRequest::GetMmds.verb();
    assert!(std::ptr::eq(get.count.unwrap(), &metrics::GET_API.mmds_count) && get.fails.is_none());
    assert!(ApiRequest::PatchVm(VmState::Resumed).verb().count.is_none());
}
