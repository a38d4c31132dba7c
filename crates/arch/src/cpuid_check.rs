//! Whether this host's KVM can give a restored guest the CPU it was given: every feature
//! bit the guest's CPUID has set must be in KVM's supported CPUID here. A guest that
//! used an instruction the new host lacks would fault at a random later point; a restore
//! refuses instead, naming the features (QEMU's CPUID notation where microvm has no name).

use crate::cpu_flags::{Reg, CPU_FLAGS};
use kvm_bindings::kvm_cpuid_entry2;

/// (leaf, subleaf, register) words that hold feature bits.
const FEATURE_WORDS: [(u32, u32, Reg); 7] = [
    (1, 0, Reg::Ecx),
    (1, 0, Reg::Edx),
    (7, 0, Reg::Ebx),
    (7, 0, Reg::Ecx),
    (7, 0, Reg::Edx),
    (0x8000_0001, 0, Reg::Ecx),
    (0x8000_0001, 0, Reg::Edx),
];

/// Bits that are not host features: KVM emulates them whatever the CPU (hypervisor,
/// TSC-deadline timer, which microvm sets itself), or they mirror the guest's own
/// control registers at run time (OSXSAVE, the APIC enable bit, OSPKE).
const NOT_HOST_FEATURES: [(u32, Reg, u32); 5] =
    [(1, Reg::Ecx, 31), (1, Reg::Ecx, 24), (1, Reg::Ecx, 27), (1, Reg::Edx, 9), (7, Reg::Ecx, 4)];

fn word(entries: &[kvm_cpuid_entry2], leaf: u32, subleaf: u32, reg: Reg) -> u32 {
    let Some(e) = entries.iter().find(|e| e.function == leaf && (leaf != 7 || e.index == subleaf)) else {
        return 0;
    };
    match reg {
        Reg::Eax => e.eax,
        Reg::Ebx => e.ebx,
        Reg::Ecx => e.ecx,
        Reg::Edx => e.edx,
    }
}

/// The name of a feature bit: QEMU's flag name, or `CPUID.07H:EBX[bit 5]`.
fn name(leaf: u32, reg: Reg, bit: u32) -> String {
    if let Some(flag) = CPU_FLAGS.iter().find(|f| f.leaf == leaf && f.reg == reg && f.bit == bit) {
        return flag.name.to_string();
    }
    let leaf = if leaf >= 0x8000_0000 { format!("{leaf:08X}H") } else { format!("{leaf:02X}H") };
    format!("CPUID.{leaf}:{reg:?}[bit {bit}]")
        .replace("Eax", "EAX")
        .replace("Ebx", "EBX")
        .replace("Ecx", "ECX")
        .replace("Edx", "EDX")
}

/// Every feature bit `entries` has set, by name, in CPUID order (for `snapshot-info`).
pub fn feature_names(entries: &[kvm_cpuid_entry2]) -> Vec<String> {
    FEATURE_WORDS
        .iter()
        .flat_map(|&(leaf, subleaf, reg)| {
            let word = word(entries, leaf, subleaf, reg);
            (0..32).filter(move |b| word & (1 << b) != 0).map(move |bit| name(leaf, reg, bit))
        })
        .collect()
}

/// The features `guest` has that `host` (KVM's supported CPUID) lacks.
pub fn missing_features(guest: &[kvm_cpuid_entry2], host: &[kvm_cpuid_entry2]) -> Vec<String> {
    let mut missing = Vec::new();
    for (leaf, subleaf, reg) in FEATURE_WORDS {
        let lacking = word(guest, leaf, subleaf, reg) & !word(host, leaf, subleaf, reg);
        for bit in (0..32).filter(|b| lacking & (1 << b) != 0) {
            if !NOT_HOST_FEATURES.contains(&(leaf, reg, bit)) {
                missing.push(name(leaf, reg, bit));
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 { function, ebx, ecx, edx, ..Default::default() }
    }

    #[test]
    fn names_what_the_host_lacks_and_nothing_else() {
        let host = [entry(1, 0, 1 << 25, 0), entry(7, 1 << 7, 0, 0)];
        // aes (present), the reserved bit 16 and avx (absent), hypervisor (KVM's own), bmi1
        // and avx2 (absent).
        let guest = [
            entry(1, 0, (1 << 25) | (1 << 16) | (1 << 28) | (1 << 31), 0),
            entry(7, (1 << 7) | (1 << 5) | (1 << 3), 0, 0),
        ];
        assert_eq!(missing_features(&guest, &host), ["CPUID.01H:ECX[bit 16]", "avx", "bmi1", "avx2"]);
        assert!(missing_features(&host, &host).is_empty());
        let amd = [entry(0x8000_0001, 0, 1 << 2, 0)];
        assert_eq!(missing_features(&amd, &[]), ["svm"]);
    }
}
