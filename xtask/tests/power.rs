//! Issue 10 with real Linux guests (xtask/scenarios/acpi-cloud.sh, i8042-cloud.sh): Debian's
//! cloud kernel finds its devices through microvm's ACPI tables and powers off through them,
//! also when asked with system_powerdown; and Ctrl-Alt-Delete typed on -device i8042 reboots
//! it, with acpi=off and with acpi=on (the controller then in the DSDT). Runs directly where /dev/kvm can boot Linux, else in the nested rig.

use xtask::scenario::{run_test_case, Case};

fn section<'a>(case: &'a Case, title: &str) -> &'a str {
    let start = case.output.find(title).map_or(case.output.len(), |i| i + title.len());
    let rest = &case.output[start..];
    rest.find("\n== ").map_or(rest, |end| &rest[..end])
}

fn line<'a>(case: &'a Case, prefix: &str) -> Option<&'a str> {
    case.output.lines().find_map(|l| l.split(prefix).nth(1)).map(str::trim)
}

#[test]
fn cloud_kernel_with_acpi_finds_its_devices_and_powers_off() {
    let Some(case) = run_test_case("acpi-cloud") else {
        return;
    };
    let report = case.report();
    // Boot 1: the devices came from the DSDT, not from the command line.
    let cmdline = line(&case, "ACPI-CHECK cmdline=").unwrap_or_else(|| panic!("no cmdline line\n{report}"));
    assert!(!cmdline.contains("virtio_mmio.device="), "the command line lists devices: {cmdline}\n{report}");
    assert!(!case.output.contains("ACPI-CHECK insmod-failed"), "a module did not load\n{report}");
    assert_eq!(line(&case, "ACPI-CHECK virtio-mmio-devices="), Some("2"), "{report}");
    assert!(case.output.contains("ACPI-CHECK disk=written"), "the ext4 disk was not written\n{report}");
    assert!(
        case.output.contains("HOST-READ written by the guest through the DSDT's virtio-blk"),
        "the host did not read the guest's file back\n{report}"
    );
    assert!(case.output.contains("ACPI-CHECK eth0=present"), "no eth0\n{report}");
    assert_eq!(line(&case, "VMM-EXIT-1 status="), Some("0"), "poweroff -f did not end microvm 0\n{report}");
    // Boot 2: system_powerdown → POWERDOWN → acpid's action → S5 → SHUTDOWN guest-shutdown.
    assert!(case.output.contains("ACPI-CHECK acpid-action"), "acpid never saw the power button\n{report}");
    assert_eq!(line(&case, "VMM-EXIT-2 status="), Some("0"), "system_powerdown did not end microvm 0\n{report}");
    let qmp = section(&case, "== qmp");
    let powerdown = qmp.find("\"event\": \"POWERDOWN\"").unwrap_or_else(|| panic!("no POWERDOWN\n{report}"));
    let shutdown = qmp.find("\"reason\": \"guest-shutdown\"").unwrap_or_else(|| panic!("no guest-shutdown\n{report}"));
    assert!(powerdown < shutdown, "POWERDOWN after SHUTDOWN\n{report}");
    assert_eq!(case.status, Some(0), "{report}");
}

#[test]
fn ctrl_alt_delete_on_the_i8042_reboots_the_cloud_kernel_with_and_without_acpi() {
    let Some(case) = run_test_case("i8042-cloud") else {
        return;
    };
    let report = case.report();
    for acpi in ["off", "on"] {
        let title = format!("== boot acpi={acpi}");
        let boot = case.output.split(&title).nth(1).unwrap_or_else(|| panic!("no {title}\n{report}"));
        let boot = boot.split("== boot acpi=").next().unwrap_or(boot);
        assert!(boot.contains("KBD-READY"), "acpi={acpi}: the guest never got ready\n{report}");
        assert!(
            boot.lines().any(|l| l.starts_with("KBD-CHECK inputs=")
                && (l.contains("AT Translated Set 2 keyboard") || l.contains("AT Raw Set 2 keyboard"))),
            "acpi={acpi}: the guest found no AT keyboard\n{report}"
        );
        // With ACPI, Linux takes the controller from the DSDT instead of probing for it.
        let through_pnp = boot.lines().any(|l| l.starts_with("KBD-CHECK dmesg") && l.contains("PNP0303"));
        assert_eq!(through_pnp, acpi == "on", "acpi={acpi}: PNP0303 in dmesg?\n{report}");
        assert!(boot.contains("VMM-EXIT status=0"), "acpi={acpi}\n{report}");
        assert!(boot.contains("\"reason\": \"guest-reset\""), "acpi={acpi}: no SHUTDOWN guest-reset\n{report}");
    }
    assert_eq!(case.status, Some(0), "{report}");
}
