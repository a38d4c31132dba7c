//! Firecracker's getting-started guide with a real Linux guest (issue 17, acceptance 1;
//! xtask/scenarios/fc-getting-started.sh): microvm started as `firecracker`, configured by
//! the guide's `curl --unix-socket` calls (boot source, root drive, machine config, network
//! interface, InstanceStart), shows the minimal kernel's guest on its console, and
//! `SendCtrlAltDel` ends it; `--no-api --config-file` boots the same; every call's exchange
//! matches Firecracker's OpenAPI file (issue 17 acceptance 3). One rig boot.

use xtask::scenario::run_test_case as run;

#[test]
fn the_getting_started_sequence_boots_linux_and_ctrl_alt_del_ends_it() {
    let Some(case) = run("fc-getting-started") else { return };
    let report = case.report();
    assert_eq!(case.status, Some(0), "{report}");
    // Every call, checked against Firecracker's OpenAPI file, none missed.
    let checked = fc_openapi::record::check_all(&case.output)
        .unwrap_or_else(|e| panic!("{}\n{report}", fc_openapi::describe(&e)));
    let calls = case.output.lines().filter(|l| l.starts_with("FC-CALL ")).count();
    assert!(checked.len() == calls && calls >= 7, "{} of {calls} calls recorded\n{report}", checked.len());
    for call in ["boot-source", "drives", "machine-config", "network-interfaces", "InstanceStart", "SendCtrlAltDel"] {
        let line = format!("FC-CALL {call} 204");
        assert!(case.output.lines().any(|l| l.starts_with(&line)), "{call} did not answer 204\n{report}");
    }
    let config = case.output.lines().find(|l| l.starts_with("FC-CALL vm-config 200 ")).unwrap_or("");
    assert!(config.contains("\"mem_size_mib\":256") && config.contains("rootfs.ext4"), "GET /vm/config: {config}");
    let ready = case.output.lines().find_map(|l| l.strip_prefix("FC-READY ")).unwrap_or("");
    assert!(ready.contains("MICROVM-GUEST-READY cpus=1"), "the guest's marker on the console: {ready:?}\n{report}");
    assert!(case.output.contains("FC-EXIT api status=0"), "SendCtrlAltDel must end microvm with 0\n{report}");
    assert!(case.output.contains("FC-EXIT config-file status=0"), "--no-api --config-file\n{report}");
    let file_console = case.section("console config-file");
    assert!(file_console.contains("MICROVM-GUEST-READY cpus=1"), "--config-file's guest\n{report}");
}
