//! The MMDS from a real Linux guest (issue 17, "MMDS V2: token then GET from the guest";
//! xtask/scenarios/fc-mmds.sh, guest/rootfs/tests/mmds): microvm as `firecracker`,
//! `PUT /mmds/config` V2 on eth0 and `PUT /mmds` through the API; in the guest, busybox
//! nc to 169.254.169.254 over the kernel's virtio-net driver: refused without a token,
//! a token from `PUT /latest/api/token`, the stored value with it, and a key the host
//! patched in after boot. One rig boot.

use xtask::scenario::run_test_case as run;

fn line<'a>(output: &'a str, prefix: &str) -> &'a str {
    output.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or("").trim()
}

#[test]
fn a_guest_gets_a_v2_token_then_reads_what_the_host_stored() {
    let Some(case) = run("fc-mmds") else { return };
    let report = case.report();
    assert_eq!(case.status, Some(0), "{report}");
    for call in
        ["boot-source", "drives/rootfs", "machine-config", "network-interfaces/eth0", "mmds/config", "mmds", "actions"]
    {
        let ok = format!("FC-CALL {call} 204");
        assert!(case.output.lines().any(|l| l.starts_with(&ok)), "{call} did not answer 204\n{report}");
    }
    let stored = line(&case.output, "FC-STORED ");
    assert!(stored.starts_with("s3cr3t-"), "{report}");
    let console = case.section("console");
    assert_eq!(line(console, "MMDS-NOTOKEN "), "HTTP/1.1 401 Unauthorized", "V1's GET under V2\n{report}");
    assert_eq!(line(console, "MMDS-TOKEN-LEN "), "64", "a token from PUT /latest/api/token\n{report}");
    assert_eq!(line(console, "MMDS-VALUE "), stored, "the value the host stored, read with the token\n{report}");
    assert_eq!(line(console, "MMDS-BADTOKEN "), "HTTP/1.1 401 Unauthorized", "{report}");
    let json = line(console, "MMDS-JSON ");
    assert!(json.contains(&format!("\"secret\":\"{stored}\"")) && json.contains("\"zone\":\"rig-a\""), "{report}");
    assert_eq!(line(console, "MMDS-LATE "), "patched-after-boot", "PATCH /mmds after boot reaches the guest\n{report}");
    assert!(console.contains("MICROVM-GUEST-RUN-EXIT status=0"), "{report}");
    assert!(case.output.contains("FC-EXIT status=0"), "the guest's reboot ends microvm\n{report}");
}
