//! `-cpu` feature flags: the CPUID bits microvm lets a command line turn on
//! or off, with QEMU's names (`cpu_flags.rs`), on top of what KVM supports
//! (`host`) or of a named model's features (`cpu_models.rs`, applied by
//! `cpu_model_cpuid.rs`).
//!
//! With host, the guest starts from KVM_GET_SUPPORTED_CPUID (QEMU's `-cpu host`). A
//! `-FLAG` clears the bit; a `+FLAG` keeps it, or reports the flag as not
//! applied when KVM does not offer it (setting a bit KVM does not emulate
//! would lie to the guest). `pmu=off` hides the performance counters;
//! `migratable=on` drops the features that pin a guest to its host (QEMU's
//! "unmigratable" flags: invtsc).

use kvm_bindings::kvm_cpuid_entry2;

use crate::cpu_models::CpuModel;

use crate::cpu_flags::reg_mut;
pub use crate::cpu_flags::{CpuFlag, Reg, CPU_FLAGS};

/// The SGX enumeration leaf, dropped with `-sgx`.
const LEAF_SGX: u32 = 0x12;
/// Architectural performance monitoring (Intel).
const LEAF_PMU: u32 = 0xa;
/// AMD's performance monitoring v2 leaf.
const LEAF_AMD_PMU_V2: u32 = 0x8000_0022;
/// PDCM (perf capabilities MSR), leaf 1 ECX.
const ECX_PDCM_BIT: u32 = 15;
/// AMD's core performance counter extensions, leaf 0x8000_0001 ECX.
const ECX_PERFCTR_CORE_BIT: u32 = 23;

/// Looks a flag up by its QEMU name (`_` and `-` are the same, as in QEMU,
/// and QEMU's other spellings such as `sse3` for `pni` work too).
pub fn find_flag(name: &str) -> Option<&'static CpuFlag> {
    let name = name.replace('_', "-");
    let name =
        crate::cpu_flags::FLAG_ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name.as_str(), |(_, n)| n);
    CPU_FLAGS.iter().find(|f| f.name == name)
}

/// What `-cpu MODEL,...` asks for: a named model (default: host, KVM's
/// supported set) and flags on top of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// A named model (`Haswell`); `None`: host.
    pub model: Option<CpuModel>,
    /// `enforce`: a requested feature the host lacks is an error, not a warning.
    pub enforce: bool,
    /// Flags turned on (`true`) or off, in command-line order (the last wins).
    pub flags: Vec<(&'static CpuFlag, bool)>,
    /// `pmu=off`: no performance counters.
    pub pmu_off: bool,
    /// `migratable=on` given: drop the unmigratable features unless asked for.
    pub migratable: bool,
    /// Firecracker's custom CPU template (`PUT /cpu-config`), applied after all the above.
    pub template: crate::cpu_template::CpuTemplate,
}

fn set_flag(entries: &mut [kvm_cpuid_entry2], f: &CpuFlag, on: bool) -> bool {
    let Some(entry) = entries.iter_mut().find(|e| e.function == f.leaf && e.index == f.subleaf) else {
        return !on;
    };
    let reg = reg_mut(entry, f.reg);
    if on {
        *reg & (1 << f.bit) != 0
    } else {
        *reg &= !(1 << f.bit);
        true
    }
}

/// Applies `features` to `entries` (KVM's supported CPUID, already patched
/// for the vCPU): a named model's CPUID (`cpu_model_cpuid`), or with host
/// the flags on KVM's set. Returns the requested flags KVM does not offer
/// on this host, which are left off.
pub fn apply_features(entries: &mut Vec<kvm_cpuid_entry2>, features: &CpuFeatures) -> Vec<&'static CpuFlag> {
    let mut not_applied = Vec::new();
    if let Some(model) = &features.model {
        not_applied = crate::cpu_model_cpuid::apply_model(entries, model, &features.flags);
    } else {
        apply_host_flags(entries, features, &mut not_applied);
    }
    // The SGX leaf goes with the flag (-sgx, or a model without it).
    let sgx = find_flag("sgx").expect("in the table");
    if !entries.iter().any(|e| e.function == sgx.leaf && e.index == sgx.subleaf && e.ebx & (1 << sgx.bit) != 0) {
        entries.retain(|e| e.function != LEAF_SGX);
    }
    if features.pmu_off {
        for e in entries.iter_mut() {
            match e.function {
                LEAF_PMU | LEAF_AMD_PMU_V2 => (e.eax, e.ebx, e.ecx, e.edx) = (0, 0, 0, 0),
                1 => e.ecx &= !(1 << ECX_PDCM_BIT),
                0x8000_0001 => e.ecx &= !(1 << ECX_PERFCTR_CORE_BIT),
                _ => {}
            }
        }
    }
    not_applied
}

/// `-cpu host,...`: the flags on KVM's supported set.
fn apply_host_flags(entries: &mut [kvm_cpuid_entry2], features: &CpuFeatures, not_applied: &mut Vec<&'static CpuFlag>) {
    if features.migratable {
        let explicit = |name| features.flags.iter().any(|(f, _)| f.name == name);
        for name in ["invtsc"] {
            if let (Some(f), false) = (find_flag(name), explicit(name)) {
                set_flag(entries, f, false);
            }
        }
    }
    for &(f, on) in &features.flags {
        if !set_flag(entries, f, on) {
            not_applied.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(function: u32, index: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 { function, index, ebx, ecx, edx, eax: 0x1234, ..Default::default() }
    }

    fn host() -> Vec<kvm_cpuid_entry2> {
        vec![
            leaf(1, 0, 0, (1 << 21) | (1 << 15), 0),
            leaf(7, 0, 1 << 2, 0, 0),
            leaf(LEAF_SGX, 0, 0, 0, 0),
            leaf(LEAF_PMU, 0, 7, 7, 7),
            leaf(0x8000_0001, 0, 0, 1 << 23, 0),
            leaf(0x8000_0007, 0, 0, 0, 1 << 8),
        ]
    }

    fn get(e: &[kvm_cpuid_entry2], function: u32) -> kvm_cpuid_entry2 {
        *e.iter().find(|x| x.function == function).unwrap()
    }

    fn with(flags: &[(&str, bool)]) -> CpuFeatures {
        CpuFeatures { flags: flags.iter().map(|(n, on)| (find_flag(n).unwrap(), *on)).collect(), ..Default::default() }
    }

    #[test]
    fn minus_clears_and_plus_keeps_what_kvm_offers() {
        let mut e = host();
        assert!(apply_features(&mut e, &with(&[("x2apic", false), ("sgx", false)])).is_empty());
        assert_eq!(get(&e, 1).ecx & (1 << 21), 0);
        assert_eq!(get(&e, 7).ebx & (1 << 2), 0);
        assert!(e.iter().all(|x| x.function != LEAF_SGX), "the SGX leaf goes with -sgx");
        let mut e = host();
        assert!(apply_features(&mut e, &with(&[("x2apic", true), ("invtsc", true)])).is_empty());
        assert_ne!(get(&e, 1).ecx & (1 << 21), 0);
        assert_eq!(e, host());
    }

    #[test]
    fn plus_a_flag_kvm_lacks_is_reported_and_left_off() {
        let mut e = host();
        let names: Vec<_> =
            apply_features(&mut e, &with(&[("avx2", true), ("la57", true)])).iter().map(|f| f.name).collect();
        assert_eq!(names, ["avx2", "la57"]);
        assert_eq!(get(&e, 7).ebx & (1 << 5), 0);
        // The last setting of a flag wins.
        let mut e = host();
        assert!(apply_features(&mut e, &with(&[("x2apic", true), ("x2apic", false)])).is_empty());
        assert_eq!(get(&e, 1).ecx & (1 << 21), 0);
    }

    #[test]
    fn pmu_off_hides_the_counters() {
        let mut e = host();
        apply_features(&mut e, &CpuFeatures { pmu_off: true, ..Default::default() });
        let pmu = get(&e, LEAF_PMU);
        assert_eq!((pmu.eax, pmu.ebx, pmu.ecx, pmu.edx), (0, 0, 0, 0));
        assert_eq!(get(&e, 1).ecx & (1 << ECX_PDCM_BIT), 0);
        assert_eq!(get(&e, 0x8000_0001).ecx & (1 << ECX_PERFCTR_CORE_BIT), 0);
        assert_ne!(get(&e, 1).ecx & (1 << 21), 0, "other bits stay");
    }

    #[test]
    fn migratable_drops_invtsc_unless_asked_for() {
        let mut e = host();
        apply_features(&mut e, &CpuFeatures { migratable: true, ..Default::default() });
        assert_eq!(get(&e, 0x8000_0007).edx & (1 << 8), 0);
        let mut e = host();
        apply_features(&mut e, &CpuFeatures { migratable: true, ..with(&[("invtsc", true)]) });
        assert_ne!(get(&e, 0x8000_0007).edx & (1 << 8), 0);
    }

    #[test]
    fn names_are_unique_and_underscores_match() {
        for (i, f) in CPU_FLAGS.iter().enumerate() {
            assert!(CPU_FLAGS[i + 1..].iter().all(|g| g.name != f.name), "{}", f.name);
        }
        assert_eq!(find_flag("tsc_deadline").map(|f| f.name), Some("tsc-deadline"));
        assert_eq!(find_flag("sse3").map(|f| f.name), Some("pni"));
        assert_eq!(find_flag("sse4_2").map(|f| f.name), Some("sse4.2"));
        assert!(find_flag("nope").is_none());
    }
}
