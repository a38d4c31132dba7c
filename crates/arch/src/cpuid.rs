//! The CPUID a vCPU sees: KVM's supported set, plus the topology, hypervisor
//! and timer bits Linux needs to boot fast without calibrating anything.

use kvm_bindings::kvm_cpuid_entry2;

// Leaf 0x1.
const LEAF_FEATURES: u32 = 0x1;
const ECX_TSC_DEADLINE_BIT: u32 = 24;
const ECX_HYPERVISOR_BIT: u32 = 31;
const EDX_HTT_BIT: u32 = 28;
// Leaf 0x4: deterministic cache parameters (Intel), cores per package in EAX[31:26].
const LEAF_CACHE_PARAMS: u32 = 0x4;
// Leaf 0xb: extended topology (Intel; AMD Zen reports it too).
const LEAF_EXT_TOPOLOGY: u32 = 0xb;
const TOPOLOGY_LEVEL_SMT: u32 = 1;
const TOPOLOGY_LEVEL_CORE: u32 = 2;
// Hypervisor leaves.
const LEAF_HYPERVISOR_BASE: u32 = 0x4000_0000;
/// The de-facto "timing information" leaf (VMware's, also read by Linux and
/// used by QEMU): EAX = TSC kHz, EBX = local APIC bus kHz.
pub const LEAF_HYPERVISOR_TIMING: u32 = 0x4000_0010;
/// KVM's local APIC timer runs at 1 GHz.
const KVM_APIC_BUS_KHZ: u32 = 1_000_000;
// AMD: core count and APIC id size, extended APIC id.
const LEAF_AMD_ADDR_SIZES: u32 = 0x8000_0008;
const LEAF_AMD_EXT_APIC_ID: u32 = 0x8000_001e;

/// What the CPUID of one vCPU depends on.
#[derive(Clone, Copy, Debug)]
pub struct CpuidParams {
    pub vcpu_id: u8,
    pub vcpu_count: u8,
    /// Guest TSC frequency, advertised so Linux skips TSC calibration.
    pub tsc_khz: Option<u32>,
    /// KVM_CAP_TSC_DEADLINE_TIMER: KVM emulates the TSC-deadline LAPIC timer
    /// but leaves the bit out of KVM_GET_SUPPORTED_CPUID. Exposing it saves
    /// Linux the APIC timer calibration (~120 ms in the proposal's numbers).
    pub tsc_deadline: bool,
}

fn set_bit(reg: &mut u32, bit: u32, on: bool) {
    if on {
        *reg |= 1 << bit;
    } else {
        *reg &= !(1 << bit);
    }
}

/// Bits needed to hold APIC ids 0..count-1.
fn apic_id_bits(count: u8) -> u32 {
    u32::from(count.max(1)).next_power_of_two().trailing_zeros()
}

/// Rewrites `entries` (from KVM_GET_SUPPORTED_CPUID) for one vCPU.
pub fn patch_cpuid(entries: &mut Vec<kvm_cpuid_entry2>, p: &CpuidParams) {
    let apic_id = u32::from(p.vcpu_id);
    let count = u32::from(p.vcpu_count);
    for entry in entries.iter_mut() {
        match entry.function {
            LEAF_FEATURES => {
                set_bit(&mut entry.ecx, ECX_HYPERVISOR_BIT, true);
                if p.tsc_deadline {
                    set_bit(&mut entry.ecx, ECX_TSC_DEADLINE_BIT, true);
                }
                // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
                entry.ebx = (entry.ebx & 0x0000_ffff) | (apic_id << 24) | ((count & 0xff) << 16);
                set_bit(&mut entry.edx, EDX_HTT_BIT, count > 1);
            }
            LEAF_CACHE_PARAMS if entry.eax & 0x1f != 0 => {
                // Every vCPU is a core of one package; no SMT siblings.
                entry.eax = (entry.eax & 0x03ff_ffff) | ((count - 1) << 26);
                entry.eax &= !(0xfff << 14);
            }
            LEAF_EXT_TOPOLOGY => {
                entry.edx = apic_id;
                match entry.index {
                    0 => {
                        entry.eax = 0;
                        entry.ebx = 1;
                        entry.ecx = (TOPOLOGY_LEVEL_SMT << 8) | entry.index;
                    }
                    1 => {
                        entry.eax = apic_id_bits(p.vcpu_count);
                        entry.ebx = count;
                        entry.ecx = (TOPOLOGY_LEVEL_CORE << 8) | entry.index;
                    }
                    _ => {
                        entry.eax = 0;
                        entry.ebx = 0;
                        entry.ecx = entry.index;
                    }
                }
            }
            LEAF_HYPERVISOR_BASE if p.tsc_khz.is_some() => {
                entry.eax = entry.eax.max(LEAF_HYPERVISOR_TIMING);
            }
            LEAF_AMD_ADDR_SIZES => {
                // ECX[15:12] APIC id size, ECX[7:0] cores per package - 1.
                entry.ecx = (entry.ecx & !0xf0ff) | (apic_id_bits(p.vcpu_count) << 12) | (count - 1);
            }
            LEAF_AMD_EXT_APIC_ID => {
                entry.eax = apic_id;
                entry.ebx = apic_id & 0xff; // compute unit id; one thread per core
                entry.ecx = 0; // one node
            }
            _ => {}
        }
    }
    if let Some(khz) = p.tsc_khz {
        entries.retain(|e| e.function != LEAF_HYPERVISOR_TIMING);
        entries.push(kvm_cpuid_entry2 {
            function: LEAF_HYPERVISOR_TIMING,
            eax: khz,
            ebx: KVM_APIC_BUS_KHZ,
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 { function, index, ..Default::default() }
    }

    fn find(entries: &[kvm_cpuid_entry2], function: u32, index: u32) -> kvm_cpuid_entry2 {
        *entries.iter().find(|e| e.function == function && e.index == index).expect("leaf")
    }

    fn params(vcpu_id: u8, vcpu_count: u8) -> CpuidParams {
        CpuidParams { vcpu_id, vcpu_count, tsc_khz: Some(2_500_000), tsc_deadline: true }
    }

    fn supported() -> Vec<kvm_cpuid_entry2> {
        let mut features = leaf(1, 0);
        features.ebx = 0x0000_0800; // CLFLUSH line size 8*8, must survive
        vec![
            features,
            kvm_cpuid_entry2 { eax: 0x121, ..leaf(4, 0) },
            leaf(0xb, 0),
            leaf(0xb, 1),
            kvm_cpuid_entry2 { eax: 0x4000_0001, ..leaf(LEAF_HYPERVISOR_BASE, 0) },
            leaf(LEAF_AMD_ADDR_SIZES, 0),
            leaf(LEAF_AMD_EXT_APIC_ID, 0),
        ]
    }

    #[test]
    fn leaf1_carries_apic_id_count_hypervisor_and_deadline() {
        let mut e = supported();
        patch_cpuid(&mut e, &params(3, 4));
        let l1 = find(&e, 1, 0);
        assert_eq!(l1.ebx >> 24, 3);
        assert_eq!((l1.ebx >> 16) & 0xff, 4);
        assert_eq!(l1.ebx & 0xffff, 0x0800);
        assert_ne!(l1.ecx & (1 << 31), 0, "hypervisor bit");
        assert_ne!(l1.ecx & (1 << 24), 0, "tsc deadline bit");
        assert_ne!(l1.edx & (1 << 28), 0, "HTT with 4 logical cpus");
    }

    #[test]
    fn no_deadline_bit_without_the_capability_and_no_htt_for_one_cpu() {
        let mut e = supported();
        patch_cpuid(&mut e, &CpuidParams { tsc_deadline: false, ..params(0, 1) });
        let l1 = find(&e, 1, 0);
        assert_eq!(l1.ecx & (1 << 24), 0);
        assert_eq!(l1.edx & (1 << 28), 0);
    }

    #[test]
    fn extended_topology_describes_one_package_of_n_cores() {
        let mut e = supported();
        patch_cpuid(&mut e, &params(5, 6));
        let smt = find(&e, 0xb, 0);
        let core = find(&e, 0xb, 1);
        assert_eq!((smt.eax, smt.ebx, smt.ecx >> 8, smt.edx), (0, 1, 1, 5));
        assert_eq!((core.eax, core.ebx, core.ecx >> 8, core.edx), (3, 6, 2, 5));
        assert_eq!(find(&e, 4, 0).eax >> 26, 5);
        let amd = find(&e, LEAF_AMD_ADDR_SIZES, 0);
        assert_eq!((amd.ecx & 0xff, (amd.ecx >> 12) & 0xf), (5, 3));
        assert_eq!(find(&e, LEAF_AMD_EXT_APIC_ID, 0).eax, 5);
    }

    #[test]
    fn tsc_frequency_is_advertised_in_the_timing_leaf() {
        let mut e = supported();
        patch_cpuid(&mut e, &params(0, 1));
        assert_eq!(find(&e, LEAF_HYPERVISOR_BASE, 0).eax, LEAF_HYPERVISOR_TIMING);
        let timing = find(&e, LEAF_HYPERVISOR_TIMING, 0);
        assert_eq!((timing.eax, timing.ebx), (2_500_000, 1_000_000));
        // Patching twice (or a host that already reports the leaf) leaves one copy.
        patch_cpuid(&mut e, &params(0, 1));
        assert_eq!(e.iter().filter(|x| x.function == LEAF_HYPERVISOR_TIMING).count(), 1);
    }

    #[test]
    fn unknown_tsc_frequency_adds_no_timing_leaf() {
        let mut e = supported();
        patch_cpuid(&mut e, &CpuidParams { tsc_khz: None, ..params(0, 1) });
        assert!(e.iter().all(|x| x.function != LEAF_HYPERVISOR_TIMING));
        assert_eq!(find(&e, LEAF_HYPERVISOR_BASE, 0).eax, 0x4000_0001);
    }

    #[test]
    fn apic_id_bits_rounds_up() {
        assert_eq!([1, 2, 3, 4, 5, 32].map(apic_id_bits), [0, 1, 2, 2, 3, 5]);
    }
}
