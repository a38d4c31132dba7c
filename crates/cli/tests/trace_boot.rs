//! `-trace-boot` on the host's /dev/kvm, with tiny guests that write the
//! qemu-boot-time checkpoint codes to port 0xf4 like a patched kernel would.

mod common;

use common::{kvm_tests_enabled, microvm_legacy, run, TempDir};

/// The value of `point` in the table, in ms, or None if it is marked missing.
fn point(table: &str, name: &str) -> Option<f64> {
    let line = table.lines().find(|l| l.trim_start().starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn all_four_points_are_reported_in_increasing_order() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("trace-all");
    let kernel = dir.file("guest.elf", &tiny_guest::boot_trace_then_reset(&[6, 7]));
    let json = dir.path().join("trace.json");
    let mut cmd = microvm_legacy(&kernel);
    cmd.arg("-trace-boot-json").arg(&json);
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.describe());
    let names = ["vmm_init_end", "linux_start_kernel", "linux_start_user", "guest_exit"];
    let times: Vec<f64> =
        names.iter().map(|n| point(&out.stderr, n).unwrap_or_else(|| panic!("{n} missing:\n{}", out.stderr))).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not increasing: {times:?}\n{}", out.stderr);
    assert!(times[0] > 0.0);
    let text = std::fs::read_to_string(&json).expect("JSON written");
    for n in names {
        assert!(text.contains(&format!("\"{n}_ms\": ")), "{n} not in {text}");
    }
    assert!(!text.contains("null"), "{text}");
}

#[test]
fn an_unpatched_kernel_gets_the_points_it_can_and_is_told_which_are_missing() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("trace-user");
    // Only user space reports (the test initramfs does this on stock kernels).
    let kernel = dir.file("guest.elf", &tiny_guest::boot_trace_then_reset(&[7]));
    let mut cmd = microvm_legacy(&kernel);
    cmd.arg("-trace-boot");
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.describe());
    assert!(point(&out.stderr, "vmm_init_end").is_some(), "{}", out.stderr);
    assert!(point(&out.stderr, "linux_start_user").is_some(), "{}", out.stderr);
    assert!(point(&out.stderr, "guest_exit").is_some(), "{}", out.stderr);
    assert!(point(&out.stderr, "linux_start_kernel").is_none(), "{}", out.stderr);
    let missing = out.stderr.lines().find(|l| l.contains("linux_start_kernel")).unwrap();
    assert!(missing.contains("missing"), "{missing}");
}

#[test]
fn without_the_option_the_port_does_not_exist_and_nothing_is_printed() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("trace-off");
    let kernel = dir.file("guest.elf", &tiny_guest::boot_trace_then_reset(&[6, 7]));
    let out = run(microvm_legacy(&kernel));
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}
