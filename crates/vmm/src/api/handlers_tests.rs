use super::*;
use crate::control::Machine;
use crate::exit::ExitNotifier;
use crate::monitor::Facts;
use fc_api::model::{Balloon, BalloonUpdate, BootSource, MachineConfig, SnapshotCreateParams, SnapshotType};
use serde_json::json;
use std::sync::Arc;

/// A VM without vCPUs or devices: enough for the state machine and the answers.
fn vm() -> VmControl {
    VmControl {
        machine: Machine::new(RunState::Running, Vec::new(), None, Arc::new(ExitNotifier::new().unwrap())),
        facts: Facts {
            name: None,
            uuid: None,
            mtree: String::new(),
            chardevs: Vec::new(),
            blocks: Vec::new(),
            mem_size: 64 << 20,
            vmgenid: None,
        },
        devices: Default::default(),
        power: Default::default(),
        migration: Default::default(),
    }
}

fn facts() -> ApiFacts {
    ApiFacts {
        id: "vm1".into(),
        machine_config: MachineConfig { mem_size_mib: 64, ..Default::default() },
        vm_config: json!({"machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}),
        balloon: None,
        mmds: fc_api::mmds::Mmds::new(1024),
        metrics: None,
    }
}

fn state(vm: &mut VmControl, facts: &mut ApiFacts) -> serde_json::Value {
    let answer = handle(ApiRequest::GetInstanceInfo, vm, facts);
    serde_json::from_str::<serde_json::Value>(answer.body.as_deref().unwrap()).unwrap()["state"].clone()
}

#[test]
fn pause_resume_and_instance_state() {
    let (mut vm, mut facts) = (vm(), facts());
    assert_eq!(state(&mut vm, &mut facts), "Running");
    assert_eq!(handle(ApiRequest::PatchVm(VmState::Paused), &mut vm, &mut facts), Response::no_content());
    assert_eq!(state(&mut vm, &mut facts), "Paused");
    assert_eq!(handle(ApiRequest::PatchVm(VmState::Paused), &mut vm, &mut facts).status, 204, "twice is fine");
    assert_eq!(handle(ApiRequest::PatchVm(VmState::Resumed), &mut vm, &mut facts).status, 204);
    assert_eq!(state(&mut vm, &mut facts), "Running");
}

#[test]
fn snapshots_answer_from_their_one_place() {
    let (mut vm, mut facts) = (vm(), facts());
    let params = SnapshotCreateParams {
        snapshot_type: SnapshotType::Full,
        snapshot_path: "s".into(),
        mem_file_path: "m".into(),
    };
    let running = handle(ApiRequest::CreateSnapshot(params.clone()), &mut vm, &mut facts);
    assert!(running.fault_message().unwrap().contains("not paused"));
    vm.machine.pause().unwrap();
    // A VM without KVM behind it (this test's) cannot be saved, full or diff: the error
    // says so (a diff's own refusals come from the snapshot code: tests/firecracker_diff.rs).
    let diff = SnapshotCreateParams { snapshot_type: SnapshotType::Diff, ..params.clone() };
    for params in [params, diff] {
        let paused = handle(ApiRequest::CreateSnapshot(params), &mut vm, &mut facts);
        assert_eq!(paused.fault_message().as_deref(), Some("Create snapshot error: this VM cannot be saved"));
    }
}

#[test]
fn pre_boot_requests_and_absent_devices_are_refused() {
    let (mut vm, mut facts) = (vm(), facts());
    let boot = ApiRequest::PutBootSource(BootSource { kernel_image_path: "k".into(), ..Default::default() });
    for request in [boot, ApiRequest::Action(ActionType::InstanceStart)] {
        assert_eq!(handle(request, &mut vm, &mut facts).fault_message().as_deref(), Some(NOT_SUPPORTED_POST_BOOT));
    }
    assert_eq!(handle(ApiRequest::GetBalloon, &mut vm, &mut facts).fault_message().as_deref(), Some(NO_BALLOON));
    facts.balloon = Some(Balloon::default());
    let patch = ApiRequest::PatchBalloon(BalloonUpdate { amount_mib: 1 });
    assert_eq!(
        handle(patch, &mut vm, &mut facts).fault_message().as_deref(),
        Some(NO_BALLOON),
        "configured but not built: no device to move"
    );
    let cad = handle(ApiRequest::Action(ActionType::SendCtrlAltDel), &mut vm, &mut facts);
    assert_eq!(cad.status, 204, "no keyboard: the keys go nowhere, as QEMU's send-key");
}

#[test]
fn machine_config_vm_config_and_mmds_after_boot() {
    let (mut vm, mut facts) = (vm(), facts());
    let machine = handle(ApiRequest::GetMachineConfig, &mut vm, &mut facts);
    assert!(machine.body.unwrap().contains(r#""mem_size_mib":64"#));
    let config = handle(ApiRequest::GetVmConfig, &mut vm, &mut facts);
    assert_eq!(config.body.as_deref(), Some(r#"{"machine-config":{"mem_size_mib":64,"vcpu_count":1}}"#));
    assert_eq!(handle(ApiRequest::PutMmds(json!({"a": 1})), &mut vm, &mut facts).status, 204);
    assert_eq!(handle(ApiRequest::PatchMmds(json!({"b": "x".repeat(2000)})), &mut vm, &mut facts).status, 413);
    assert_eq!(handle(ApiRequest::GetMmds, &mut vm, &mut facts).body.as_deref(), Some(r#"{"a":1}"#));
}

/// `PATCH /drives` after boot: the drive's limiter changes bucket by bucket, and the
/// configuration that `GET /vm/config` shows and snapshots store says so.
#[test]
fn patch_drive_updates_the_rate_limiter_and_the_stored_configuration() {
    use devices::virtio::block::{Block, BlockOptions, CacheMode};
    use fc_api::model::{PartialDrive, RateLimiter, TokenBucket};
    let image = std::env::temp_dir().join(format!("microvm-patch-drive-{}", std::process::id()));
    std::fs::write(&image, vec![0u8; 4096]).unwrap();
    let block = Block::new(BlockOptions {
        id: "data".into(),
        path: image.clone(),
        read_only: false,
        cache: CacheMode::Writeback,
        limits: Default::default(),
        engine: Default::default(),
        image: Default::default(),
        num_queues: 1,
    })
    .unwrap();
    let (mut vm, mut facts) = (vm(), facts());
    vm.devices
        .insert(
            Some("data".into()),
            None,
            crate::device_registry::DeviceHandle::new("virtio-blk-device", Arc::new(block.into())),
        )
        .unwrap();
    let ops = json!({"size": 10, "refill_time": 100});
    facts.vm_config["drives"] = json!([{"drive_id": "data", "is_root_device": false, "rate_limiter": {"ops": ops}}]);
    let bucket = Some(TokenBucket { size: 1_000_000, one_time_burst: None, refill_time: 100 });
    let patch = |id: &str, path: Option<&str>| PartialDrive {
        drive_id: id.into(),
        path_on_host: path.map(Into::into),
        rate_limiter: Some(RateLimiter { bandwidth: bucket, ops: None }),
    };
    assert_eq!(handle(ApiRequest::PatchDrive(patch("data", None)), &mut vm, &mut facts), Response::no_content());
    let config = handle(ApiRequest::GetVmConfig, &mut vm, &mut facts);
    let config: serde_json::Value = serde_json::from_str(config.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        config["drives"][0]["rate_limiter"],
        json!({"bandwidth": {"size": 1_000_000, "refill_time": 100}, "ops": ops}),
        "the bandwidth bucket is added, the ops bucket kept"
    );
    let unknown = handle(ApiRequest::PatchDrive(patch("nope", None)), &mut vm, &mut facts);
    assert_eq!(unknown.status, 400);
    let new_file = handle(ApiRequest::PatchDrive(patch("data", Some("/other.img"))), &mut vm, &mut facts);
    assert_eq!(new_file.status, 400);
    let _ = std::fs::remove_file(image);
}

/// `PATCH /network-interfaces` after boot: each direction's limiter, bucket by bucket.
#[test]
fn patch_network_interface_updates_rx_and_tx_limiters() {
    use devices::virtio::net::{Net, Tap};
    use fc_api::model::{PartialNetworkInterface, RateLimiter, TokenBucket};
    let (tap, _peer) = Tap::socketpair_for_tests(false);
    let net = Net::new(tap, None).unwrap();
    let (mut vm, mut facts) = (vm(), facts());
    vm.devices
        .insert(
            Some("eth0".into()),
            None,
            crate::device_registry::DeviceHandle::new("virtio-net-device", Arc::new(net.into())),
        )
        .unwrap();
    facts.vm_config["network-interfaces"] = json!([{"iface_id": "eth0", "host_dev_name": "tap0"}]);
    let ops = Some(RateLimiter {
        bandwidth: None,
        ops: Some(TokenBucket { size: 5, one_time_burst: None, refill_time: 10 }),
    });
    let patch = PartialNetworkInterface { iface_id: "eth0".into(), rx_rate_limiter: ops, tx_rate_limiter: None };
    assert_eq!(handle(ApiRequest::PatchNetworkInterface(patch), &mut vm, &mut facts), Response::no_content());
    let nic = &facts.vm_config["network-interfaces"][0];
    assert_eq!(nic["rx_rate_limiter"], json!({"ops": {"size": 5, "refill_time": 10}}));
    assert!(nic.get("tx_rate_limiter").is_none(), "an untouched direction stays unlimited");
    let unknown = PartialNetworkInterface { iface_id: "eth9".into(), ..Default::default() };
    assert_eq!(handle(ApiRequest::PatchNetworkInterface(unknown), &mut vm, &mut facts).status, 400);
}
