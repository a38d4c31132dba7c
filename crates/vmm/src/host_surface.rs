//! The host side of the attack surface for a command line (`-M microvm,dump-seccomp`): the
//! threads it runs and each one's seccomp allowlist, next to `dump-mtree`'s guest side.

use crate::config::VmConfig;
use sandbox::ThreadKind;

/// The thread kinds `config` runs and how many threads of each.
pub fn threads(config: &VmConfig) -> Vec<(ThreadKind, usize)> {
    if crate::solo::runs_solo(config) {
        return vec![(ThreadKind::Solo, 1)];
    }
    let mut threads = vec![(ThreadKind::Main, 1), (ThreadKind::Vcpu, usize::from(config.vcpu_count))];
    if !config.devices.is_empty() {
        threads.push((ThreadKind::Virtio, 1));
    }
    let shares = config.devices.iter().filter(|d| matches!(d, crate::config::DeviceConfig::NineP(_))).count();
    if shares > 0 {
        threads.push((ThreadKind::Ninep, shares));
    }
    threads
}

/// The report: each thread kind's allowed calls with their argument conditions.
pub fn format_seccomp(config: &VmConfig) -> String {
    if !config.sandbox {
        return "sandbox off: no thread runs under a seccomp filter\n".into();
    }
    sandbox::report::format(&threads(config))
}
