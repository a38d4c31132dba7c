//! Issue 18 item 3's acceptance with a real Linux guest: `-netdev user` (passt) gives
//! the guest its address by DHCP (busybox udhcpc), resolves a name the rig serves, lets
//! it reach a rig server through the gateway address, and brings a rig client to the
//! guest's server through hostfwd (xtask/scenarios/dev-netuser.sh, guest side in
//! guest/rootfs/tests/netuser).

use xtask::scenario::{run_test_case as run, Case};

/// The value after `KEY ` on the first line that has it.
fn value<'a>(case: &'a Case, key: &str) -> Option<&'a str> {
    let prefix = format!("{key} ");
    case.output.lines().find_map(|l| l.split(&prefix).nth(1)).map(str::trim)
}

#[test]
fn dhcp_dns_gateway_and_hostfwd_work_over_netdev_user() {
    let Some(case) = run("dev-netuser") else { return };
    let r = case.report();
    // The rig's resolver is on its loopback: passt names the gateway as the DNS server.
    assert_eq!(value(&case, "GUEST-DHCP"), Some("ip=10.0.2.15 router=10.0.2.2 dns=10.0.2.2"), "{r}");
    assert_eq!(value(&case, "GUEST-DNS"), Some("rig.test=192.0.2.77"), "{r}");
    assert!(case.output.contains("DNSONE-QUERY rig.test"), "the query did not reach the rig's server\n{r}");
    assert_eq!(value(&case, "GUEST-HOST-TCP"), Some("HOST-SAYS-HELLO"), "{r}");
    assert_eq!(value(&case, "HOSTFWD-CLIENT-GOT"), Some("GUEST-SAYS-HELLO"), "{r}");
    assert_eq!(value(&case, "MICROVM-GUEST-RUN-EXIT"), Some("status=0"), "{r}");
    assert_eq!(value(&case, "VMM-EXIT"), Some("status=0"), "{r}");
    assert_eq!(case.status, Some(0), "{r}");
}
