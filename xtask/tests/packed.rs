//! `packed=on` with a real Linux guest (scenario dev-packed): the kernel's own virtio
//! drivers negotiate the virtio 1.1 packed ring on blk, net, console and rng (feature bit
//! 34 in sysfs), and data moves through each: a file written to the root disk reads back
//! the same from outside and the file system checks clean, pings cross the NIC, bytes
//! come from /dev/hwrng, and the guest's lines arrive through the hvc0 console.

use xtask::scenario::run_test_case as run;

#[test]
fn blk_net_console_and_rng_run_packed_rings_in_a_linux_guest() {
    let Some(case) = run("dev-packed") else { return };
    let r = case.report();
    assert_eq!(case.status, Some(0), "{r}");
    let value = |key: &str| case.output.lines().find_map(|l| l.split(key).nth(1)).map(|v| v.trim().to_owned());
    // virtio ids: 1 net, 2 block, 3 console, 4 rng; sysfs prints them as 0x0001...
    let mut packed: Vec<(String, String)> = case
        .output
        .lines()
        .filter_map(|l| l.split("VIRTIO-DEVICE ").nth(1))
        .filter_map(|v| {
            let mut kv = v.split_whitespace().map(|f| f.split_once('=').map(|(_, x)| x.to_owned()));
            Some((kv.next()??, kv.next()??))
        })
        .collect();
    packed.sort();
    let want: Vec<(String, String)> =
        ["0x0001", "0x0002", "0x0003", "0x0004"].iter().map(|id| (id.to_string(), "1".to_string())).collect();
    assert_eq!(packed, want, "every device negotiated VIRTIO_F_RING_PACKED\n{r}");
    assert_eq!(value("MICROVM-GUEST-RUN-EXIT ").as_deref(), Some("status=0"), "{r}");
    let guest = value("GUEST-SHA256 ").unwrap_or_else(|| panic!("no guest checksum\n{r}"));
    assert_eq!(guest.len(), 64, "{r}");
    assert_eq!(value("HOST-SHA256 "), Some(guest), "debugfs found other data\n{r}");
    assert_eq!(value("E2FSCK-STATUS ").as_deref(), Some("0"), "e2fsck\n{r}");
    assert_eq!(value("NET-PING ").as_deref(), Some("ok"), "{r}");
    assert_eq!(value("RNG-BYTES ").as_deref(), Some("262144"), "{r}");
}
