//! The host side of the attack surface for a command line (`-M microvm,dump-seccomp`): the
//! threads it runs and each one's seccomp allowlist, next to `dump-mtree`'s guest side.

use crate::config::VmConfig;
use sandbox::ThreadKind;

/// The thread kinds `config` runs and how many threads of each.
pub fn threads(config: &VmConfig) -> Vec<(ThreadKind, usize)> {
    if config.runs_solo() {
        return vec![(ThreadKind::Solo, 1)];
    }
    let mut threads = vec![(ThreadKind::Main, 1), (ThreadKind::Vcpu, usize::from(config.vcpu_count))];
    // Unless every device is a drive on an iothread.
    let on_iothread =
        |d: &crate::config::DeviceConfig| matches!(d, crate::config::DeviceConfig::Block(b) if b.iothread.is_some());
    if config.devices.iter().any(|d| !on_iothread(d)) {
        threads.push((ThreadKind::Virtio, 1));
    }
    // Each iothread a drive names, once however many drives share it.
    let mut iothreads: Vec<&str> = Vec::new();
    for device in &config.devices {
        if let crate::config::DeviceConfig::Block(b) = device {
            if let Some(name) = b.iothread.as_deref().filter(|n| !iothreads.contains(n)) {
                iothreads.push(name);
            }
        }
    }
    if !iothreads.is_empty() {
        threads.push((ThreadKind::Iothread, iothreads.len()));
    }
    // Each device whose kind runs threads of its own (a 9p share's server, a pool's workers).
    for device in &config.devices {
        let Some((kind, count)) = crate::device_kinds::kind_of(device).threads(device) else { continue };
        match threads.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += count,
            None => threads.push((kind, count)),
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
