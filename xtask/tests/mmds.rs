//! The MMDS from a real Linux guest (issue 17, "MMDS V2: token then GET from the guest";
//! xtask/scenarios/fc-mmds.sh, guest/rootfs/tests/mmds): microvm as `firecracker`,
//! `PUT /mmds/config` V2 on eth0 and `PUT /mmds` through the API; in the guest, busybox
//! nc to 169.254.169.254 over the kernel's virtio-net driver: refused without a token,
//! a token from `PUT /latest/api/token`, the stored value with it, and a key the host
//! patched in after boot; Firecracker's `mmds` metrics count what the guest did; every API
//! call's exchange matches Firecracker's OpenAPI file (issue 17 acceptance 3). One rig boot.

use xtask::scenario::run_test_case as run;

fn line<'a>(output: &'a str, prefix: &str) -> &'a str {
    output.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or("").trim()
}

/// `section.field` summed over the metrics file's JSON lines (counters are deltas), read
/// without a JSON parser: Firecracker's lines are flat objects of flat objects.
fn metric(lines: &str, section: &str, field: &str) -> u64 {
    let value = |line: &str| -> Option<u64> {
        let body = &line[line.find(&format!("\"{section}\":{{"))?..];
        let body = &body[..body.find('}')?];
        let rest = &body[body.find(&format!("\"{field}\":"))? + field.len() + 3..];
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    // The section runs to the end of the rig's output, whose own last lines follow.
    let lines = lines.lines().filter(|l| l.starts_with("{\""));
    lines.map(|l| value(l).unwrap_or_else(|| panic!("no {section}.{field} in {l}"))).sum()
}

#[test]
fn a_guest_gets_a_v2_token_then_reads_what_the_host_stored() {
    let Some(case) = run("fc-mmds") else { return };
    let report = case.report();
    assert_eq!(case.status, Some(0), "{report}");
    // Every API call, checked against Firecracker's OpenAPI file, none missed.
    let checked = fc_openapi::record::check_all(&case.output)
        .unwrap_or_else(|e| panic!("{}\n{report}", fc_openapi::describe(&e)));
    let calls = case.output.lines().filter(|l| l.starts_with("FC-CALL ")).count();
    assert!(checked.len() == calls && calls >= 10, "{} of {calls} calls recorded\n{report}", checked.len());
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

    // The start's line and the end's (a minute's line too on a slow rig).
    let lines = case.section("metrics");
    assert!(lines.lines().filter(|l| l.starts_with("{\"")).count() >= 2, "{report}");
    // One connection per request: the tokenless GET, the token, the value, the bad token,
    // the JSON, then one or more tries for the late key.
    let created = metric(lines, "mmds", "connections_created");
    assert!(created >= 6, "connections_created {created}\n{report}");
    assert!(metric(lines, "mmds", "connections_destroyed") >= 5, "{report}");
    assert_eq!(metric(lines, "mmds", "rx_no_token"), 1, "the tokenless GET\n{report}");
    assert_eq!(metric(lines, "mmds", "rx_invalid_token"), 1, "the bad token\n{report}");
    // Each connection is at least SYN, ACK, request and FIN from the guest; the MMDS
    // answers each with at least a SYN-ACK and an answer.
    assert!(metric(lines, "mmds", "rx_accepted") >= 4 * created, "{report}");
    assert!(metric(lines, "mmds", "rx_count") >= 4 * created, "{report}");
    let frames = metric(lines, "mmds", "tx_frames");
    assert!(frames >= 2 * created && metric(lines, "mmds", "tx_count") >= frames, "{report}");
    assert!(metric(lines, "mmds", "tx_bytes") >= 54 * frames, "Ethernet, IPv4 and TCP headers at least\n{report}");
    assert_eq!(metric(lines, "mmds", "tx_errors"), 0, "{report}");
}
