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
    // Each device whose kind runs a thread of its own (a 9p share's server).
    for device in &config.devices {
        let Some(kind) = crate::device_kinds::kind_of(device).thread() else { continue };
        match threads.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => threads.push((kind, 1)),
        }
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
