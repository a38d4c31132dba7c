//! User-mode networking benchmark (`cargo xtask bench --only netuser`): TCP MB/s both
//! ways over `-netdev user`, microvm (passt) against QEMU's `-M microvm` (libslirp) in
//! ONE rig run (scenario bench-netuser). Prints numbers, no threshold.

use crate::bench_vhost::{figures_of, medians_table};
use crate::host::Result;

const FIGURES: [(&str, &str); 2] = [
    ("tcp-guest-to-host", "TCP guest → rig over -netdev user, 64 MiB (MB/s)"),
    ("tcp-host-to-guest", "TCP rig → guest over -netdev user, 64 MiB (MB/s)"),
];
const SETUPS: [&str; 3] = ["microvm-user", "qemu-passt", "qemu-user"];

/// Runs the scenario (`runs` rounds) and returns a Markdown table of medians.
pub fn run(runs: usize) -> Result<String> {
    let runs = runs.max(1).to_string();
    let samples = figures_of("bench-netuser", &runs)?;
    let header = format!("| -netdev user, median of {runs} (rig clock) | microvm (passt) | QEMU -netdev stream to passt | QEMU (libslirp) |");
    let mut t = medians_table(&samples, &header, &SETUPS, &FIGURES);
    t += "\nThe same guest under all three (xtask/scenarios/bench-netuser.sh): the minimal kernel, 1 vCPU, \
          256 MiB, virtio-net; it takes its address by DHCP and talks to busybox `nc` on the rig through its \
          gateway, which each maps to the rig's loopback (passt run by QEMU keeps passt's own addressing, \
          copied from the rig). 64 MiB each way, host to guest first; a transfer not done in 240 s gives \
          no figure (the guest says how far it got). \
          Times by the guest's /proc/uptime. \"–\": no figure (the transfer did not finish).\n";
    Ok(t)
}
