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
        mmds: fc_api::mmds::MmdsStore::new(1024),
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
