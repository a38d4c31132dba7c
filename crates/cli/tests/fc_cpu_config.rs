//! `PUT /cpu-config` (Firecracker's custom CPU template) with curl and a tiny guest that
//! runs CPUID or RDMSR and writes what it read to the serial port: the guest sees the
//! template's bits and nothing else changed; each bad input is a 400 naming it; a leaf,
//! an MSR or a KVM capability this host's KVM does not have fails `InstanceStart` with
//! Firecracker's message and leaves the VMM ready for a corrected start; `--config-file`'s
//! `cpu-config` does the same; `machine-config`'s static `cpu_template` is refused by name.

mod common;

use common::firecracker::*;
use common::*;
use serde_json::{json, Value};
use std::path::Path;

/// The leaves the CPUID guest reads: the vendor, the features.
const QUERIES: &[(u32, u32)] = &[(0, 0), (1, 0)];
/// IA32_KERNEL_GS_BASE: any canonical value is accepted from the host and read back by
/// the guest's RDMSR, and nothing in a 32-bit guest uses it.
const KERNEL_GS_BASE: u32 = 0xc000_0102;

/// A 32-bit bitmap setting the whole register to `value`.
fn whole32(value: u32) -> String {
    format!("0b{value:032b}")
}

/// Configures `kernel` (and `cpu_config` when given) over the API and asks for the start;
/// the answer to `InstanceStart`.
fn configure_and_start(socket: &Path, kernel: &Path, cpu_config: Option<&Value>) -> Answer {
    let boot = json!({ "kernel_image_path": kernel, "boot_args": "console=ttyS0" });
    assert_eq!(put(socket, "/boot-source", &boot.to_string()).status, 204);
    assert_eq!(put(socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32}"#).status, 204);
    if let Some(c) = cpu_config {
        let answer = put(socket, "/cpu-config", &c.to_string());
        assert_eq!(answer.status, 204, "{}", answer.body);
    }
    put(socket, "/actions", r#"{"action_type": "InstanceStart"}"#)
}

/// Boots `kernel` (a guest that writes then resets) with `cpu_config`; what it wrote.
fn guest_output(tag: &str, kernel: &[u8], cpu_config: Option<&Value>) -> Vec<u8> {
    let dir = TempDir::new(tag);
    let kernel = dir.file("vmlinux", kernel);
    let socket = dir.path().join("api.sock");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    let started = configure_and_start(&socket, &kernel, cpu_config);
    assert_eq!(started.status, 204, "{}", started.body);
    let since = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, since);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "the guest's reset ends the VM: {}", out.describe());
    out.stdout
}

/// [eax, ebx, ecx, edx] of each query.
fn cpuid(stdout: &[u8]) -> Vec<[u32; 4]> {
    assert_eq!(stdout.len(), QUERIES.len() * 16, "{stdout:?}");
    let word = |q: &[u8], i: usize| u32::from_le_bytes(q[4 * i..4 * i + 4].try_into().unwrap());
    stdout.chunks_exact(16).map(|q| [word(q, 0), word(q, 1), word(q, 2), word(q, 3)]).collect()
}

#[test]
fn the_guest_sees_the_templates_cpuid_bits_and_nothing_else_changes() {
    if !kvm_tests_enabled() {
        return;
    }
    let guest = tiny_guest::cpuid_on_serial_then_reset(QUERIES);
    let before = cpuid(&guest_output("fc-cpuid-plain", &guest, None));
    assert_ne!(before[1][2] & (1 << 31), 0, "microvm sets the hypervisor bit");
    let micr = u32::from_le_bytes(*b"Micr");
    let template = json!({"cpuid_modifiers": [
        {"leaf": "0x0", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "ebx", "bitmap": whole32(micr)}]},
        // The hypervisor bit (ECX 31) cleared, every other bit of the leaf kept.
        {"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "ecx", "bitmap": format!("0b0{}", "x".repeat(31))}]},
    ]});
    let after = cpuid(&guest_output("fc-cpuid-template", &guest, Some(&template)));
    assert_eq!(after[0][1], micr, "leaf 0 EBX");
    assert_eq!([after[0][0], after[0][2], after[0][3]], [before[0][0], before[0][2], before[0][3]]);
    assert_eq!(after[1][2], before[1][2] & !(1 << 31), "only the hypervisor bit of leaf 1 ECX");
    assert_eq!([after[1][0], after[1][1], after[1][3]], [before[1][0], before[1][1], before[1][3]]);
}

#[test]
fn the_guest_reads_the_templates_msr_value() {
    if !kvm_tests_enabled() {
        return;
    }
    let guest = tiny_guest::msrs_on_serial_then_reset(&[KERNEL_GS_BASE]);
    let read = |out: Vec<u8>| u64::from_le_bytes(out.try_into().expect("8 bytes"));
    assert_eq!(read(guest_output("fc-msr-plain", &guest, None)), 0, "boot value");
    let value: u64 = 0x0000_1234_5678_9abc;
    let template =
        json!({"msr_modifiers": [{"addr": format!("{KERNEL_GS_BASE:#x}"), "bitmap": format!("0b{value:064b}")}]});
    assert_eq!(read(guest_output("fc-msr-template", &guest, Some(&template))), value);
}

#[test]
fn bad_templates_are_refused_and_what_kvm_lacks_fails_the_start_by_name() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-cpu-config-errors");
    let kernel = dir.file("vmlinux", &tiny_guest::cpuid_on_serial_then_reset(QUERIES));
    let socket = dir.path().join("api.sock");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    let leaf = |leaf: &str, register: &str, bitmap: &str| {
        json!({"cpuid_modifiers": [{"leaf": leaf, "subleaf": "0", "flags": 0,
            "modifiers": [{"register": register, "bitmap": bitmap}]}]})
    };
    for (body, culprit) in [
        (leaf("0x1", "ecx", "0b12"), "[0b12] as a bitmap - unknown character"),
        (leaf("0x1", "ecx", &format!("0b{}", "0".repeat(33))), "as a bitmap - string is too long"),
        (leaf("leaf", "ecx", "0b1"), "[leaf] as a number"),
        (leaf("0x1", "xmm0", "0b1"), "Unknown CPUID register [xmm0]"),
        (json!({"msr_modifiers": [{"addr": "0x10", "bitmap": format!("0b{}", "1".repeat(65))}]}), "string is too long"),
        (json!({"kvm_capabilities": ["one"]}), "[one] as a kvm capability"),
        (json!({"reg_modifiers": [{"addr": "0x1", "bitmap": "0b1"}]}), "reg_modifiers (aarch64 registers"),
        (json!({"vcpu_features": [{"index": 0, "bitmap": "0b1"}]}), "vcpu_features (aarch64"),
        (json!({"cpuid_modifiers": [], "extra": 1}), "unknown field `extra`"),
        (json!({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "modifiers": []}]}), "missing field `flags`"),
    ] {
        let answer = put(&socket, "/cpu-config", &body.to_string());
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert!(answer.fault().contains(culprit), "{body}: {}", answer.fault());
    }
    let config = curl(&socket, "GET", "/vm/config", None);
    assert!(config.body.get("cpu-config").is_none(), "nothing refused was kept: {}", config.body);
    let t2 = put(&socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32, "cpu_template": "T2"}"#);
    assert_eq!(t2.status, 400);
    assert!(t2.fault().contains("cpu_template T2 (a static CPU template) is not supported"), "{}", t2.fault());

    // Well formed, but not this KVM's: InstanceStart fails with Firecracker's words, and
    // the VMM takes a corrected template and starts.
    for (template, message) in [
        (
            leaf("0x6fffffff", "eax", "0b1"),
            "Template changes a CPUID entry not supported by KVM: Leaf: 0x6fffffff, Subleaf: 0x0",
        ),
        (
            json!({"msr_modifiers": [{"addr": "0xdeadbeef", "bitmap": "0b1"}]}),
            "Template changes an MSR entry not supported by KVM: Register Address: 0xdeadbeef",
        ),
        (json!({"kvm_capabilities": ["4000000"]}), "Missing KVM capability 4000000"),
    ] {
        let start = configure_and_start(&socket, &kernel, Some(&template));
        assert_eq!(start.status, 400, "{template}: {}", start.body);
        assert!(start.fault().contains(message), "{}", start.fault());
        assert_eq!(curl(&socket, "GET", "/", None).body["state"], "Not started");
    }
    let good = json!({"kvm_capabilities": ["!36"], "cpuid_modifiers": []});
    let config = curl(&socket, "GET", "/vm/config", None);
    assert_eq!(config.body["cpu-config"]["kvm_capabilities"], json!(["4000000"]), "the last template: {}", config.body);
    assert_eq!(configure_and_start(&socket, &kernel, Some(&good)).status, 204);
    let since = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, since);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", out.describe());
    assert_eq!(out.stdout.len(), QUERIES.len() * 16, "{}", out.describe());
}

/// `--no-api --config-file` with a `cpu-config` section: the same template, no socket.
#[test]
fn the_config_files_cpu_config_reaches_the_guest() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-cpu-config-file");
    let kernel = dir.file("vmlinux", &tiny_guest::cpuid_on_serial_then_reset(QUERIES));
    let micr = u32::from_le_bytes(*b"Micr");
    let config = json!({
        "boot-source": { "kernel_image_path": kernel, "boot_args": "console=ttyS0" },
        "drives": [],
        "machine-config": { "vcpu_count": 1, "mem_size_mib": 32 },
        "cpu-config": {"cpuid_modifiers": [
            {"leaf": "0", "subleaf": "0", "flags": 0, "modifiers": [{"register": "ebx", "bitmap": whole32(micr)}]}]},
    });
    let file = dir.file("vm.json", config.to_string().as_bytes());
    let mut cmd = microvm();
    cmd.args(["--no-api", "--config-file"]).arg(&file);
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(cpuid(&out.stdout)[0][1], micr, "{}", out.describe());
}
