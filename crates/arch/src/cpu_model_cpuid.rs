//! A named CPU model's CPUID (`-cpu Haswell`): the model's vendor, family,
//! model, stepping, model-id string, highest leaves and feature words, each
//! feature kept only where KVM supports it, as QEMU does with KVM. The
//! features the host lacks are returned, for QEMU's warning (or, with
//! `enforce`, its error).
//!
//! What is not the model's, as in QEMU under KVM: the hypervisor bit, x2apic
//! (QEMU turns it on for every model with KVM's irqchip), the bits the CPU
//! sets at run time (OSXSAVE, OSPKE), microvm's topology (HTT, leaves 4,
//! 0xb, 0x8000_0008 ECX, 0x8000_001e) and the leaves a model does not
//! describe (caches, the KVM leaves), which stay as KVM reports them, but for the
//! optional SVM features (leaf 0x8000_000a EDX), which no model has. Where
//! the model's highest leaf is above KVM's, KVM's is kept: microvm does not
//! make up leaves KVM has no data for.

use kvm_bindings::kvm_cpuid_entry2;

use crate::cpu_flags::{feature_words, CPU_FLAGS};
use crate::cpu_flags::{reg_mut, CpuFlag, Reg};
use crate::cpu_models::{CpuModel, Vendor};

/// The leaf 1 EDX bits AMD repeats in 0x8000_0001 EDX (QEMU's CPUID_EXT2_AMD_ALIASES).
const AMD_ALIASES: u32 = 0x0183_f3ff;
const EXT_BASE: u32 = 0x8000_0000;
const BRAND_LEAVES: [u32; 3] = [0x8000_0002, 0x8000_0003, 0x8000_0004];
/// AMD's SVM leaf: revision, ASIDs, and in EDX the optional SVM features.
const SVM_LEAF: u32 = 0x8000_000a;
/// XSAVE state components (leaf 0xd subleaf 0 EAX) and the flag each needs.
const XSAVE_COMPONENTS: &[(u32, &str)] = &[
    (2, "avx"),
    (3, "mpx"),
    (4, "mpx"),
    (5, "avx512f"),
    (6, "avx512f"),
    (7, "avx512f"),
    (9, "pku"),
    (17, "amx-tile"),
    (18, "amx-tile"),
];

/// Bits of a feature word that are not the model's to decide (see the module comment).
fn kept_from_kvm(leaf: u32, subleaf: u32, reg: Reg) -> u32 {
    match (leaf, subleaf, reg) {
        (1, 0, Reg::Ecx) => (1 << 27) | (1 << 31), // OSXSAVE, hypervisor
        (1, 0, Reg::Edx) => 1 << 28,               // HTT, from the vCPU count
        (7, 0, Reg::Ecx) => 1 << 4,                // OSPKE
        _ => 0,
    }
}

/// What QEMU turns on for every model under KVM before the command line's
/// flags apply (its `kvm_default_props`), so `-x2apic` still turns it off.
const KVM_DEFAULTS: &[&str] = &["x2apic"];

/// Leaf 1 EAX: QEMU's encoding of family, model and stepping.
pub fn version_word(family: u32, model: u32, stepping: u32) -> u32 {
    let family_bits = if family > 0xf { (0xf << 8) | ((family - 0xf) << 20) } else { family << 8 };
    family_bits | ((model & 0xf) << 4) | ((model >> 4) << 16) | (stepping & 0xf)
}

/// The model-id string as the three brand-string leaves' registers
/// (EAX, EBX, ECX, EDX of 0x8000_0002..=4), NUL-padded to 48 bytes.
pub fn brand_words(model_id: &str) -> [[u32; 4]; 3] {
    let mut bytes = [0u8; 48];
    // The last byte stays NUL: the string is at most 47 characters.
    let len = model_id.len().min(47);
    bytes[..len].copy_from_slice(&model_id.as_bytes()[..len]);
    let mut out = [[0u32; 4]; 3];
    for (i, chunk) in bytes.chunks_exact(4).enumerate() {
        out[i / 4][i % 4] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    out
}

fn vendor_words(v: Vendor) -> (u32, u32, u32) {
    let id = v.id();
    let word = |i: usize| u32::from_le_bytes([id[i], id[i + 1], id[i + 2], id[i + 3]]);
    (word(0), word(4), word(8))
}

fn entry(entries: &mut Vec<kvm_cpuid_entry2>, function: u32, index: u32) -> &mut kvm_cpuid_entry2 {
    match entries.iter().position(|e| e.function == function && e.index == index) {
        Some(i) => &mut entries[i],
        None => {
            entries.push(kvm_cpuid_entry2 { function, index, ..Default::default() });
            entries.last_mut().expect("just pushed")
        }
    }
}

/// Whether `name`'s bit is set in `entries`.
fn has(entries: &[kvm_cpuid_entry2], name: &str) -> bool {
    let Some(f) = CPU_FLAGS.iter().find(|f| f.name == name) else { return false };
    entries.iter().find(|e| e.function == f.leaf && e.index == f.subleaf).is_some_and(|e| {
        let mut e = *e;
        *reg_mut(&mut e, f.reg) & (1 << f.bit) != 0
    })
}

/// Rewrites `entries` (KVM's supported CPUID, patched for the vCPU) into
/// `model`'s, with `flags` (`+FLAG`/`-FLAG`, in order) applied to the
/// model's features first. Returns the requested flags KVM does not offer,
/// which are left off.
pub fn apply_model(
    entries: &mut Vec<kvm_cpuid_entry2>,
    model: &CpuModel,
    flags: &[(&'static CpuFlag, bool)],
) -> Vec<&'static CpuFlag> {
    let mut requested = model.features.clone();
    let defaults = CPU_FLAGS.iter().filter(|f| KVM_DEFAULTS.contains(&f.name));
    requested.extend(defaults.filter(|f| !model.has(f.name)));
    for &(f, on) in flags {
        requested.retain(|g| g.name != f.name);
        if on {
            requested.push(f);
        }
    }
    let bits = |leaf, subleaf, reg| {
        requested
            .iter()
            .filter(|f| (f.leaf, f.subleaf, f.reg) == (leaf, subleaf, reg))
            .fold(0u32, |a, f| a | (1 << f.bit))
    };
    let mut missing = Vec::new();
    for (leaf, subleaf, reg) in feature_words() {
        let mut want = bits(leaf, subleaf, reg);
        if model.vendor == Vendor::Amd && (leaf, reg) == (EXT_BASE + 1, Reg::Edx) {
            want |= bits(1, 0, Reg::Edx) & AMD_ALIASES;
        }
        // On Intel hosts KVM leaves AMD's copies of leaf 1 out of 0x8000_0001 EDX; they are
        // only copies, so QEMU counts them supported where leaf 1 has them.
        let copies = if (leaf, reg) == (EXT_BASE + 1, Reg::Edx) {
            entries.iter().find(|e| e.function == 1 && e.index == 0).map_or(0, |e| e.edx & AMD_ALIASES)
        } else {
            0
        };
        let found = entries.iter_mut().find(|e| e.function == leaf && e.index == subleaf);
        let have = copies
            | found.as_ref().map_or(0, |e| {
                let mut e = **e;
                *reg_mut(&mut e, reg)
            });
        let lacking = want & !have;
        missing.extend(
            CPU_FLAGS
                .iter()
                .filter(|f| (f.leaf, f.subleaf, f.reg) == (leaf, subleaf, reg) && lacking & (1 << f.bit) != 0),
        );
        if let Some(e) = found {
            let r = reg_mut(e, reg);
            *r = (want & have) | (*r & kept_from_kvm(leaf, subleaf, reg));
        }
    }

    // SVM's own leaf: QEMU's models define none of its optional features (npt, nrip-save,
    // ...: its FEAT_SVM word is empty), so a model's guest sees none of the host's; without
    // the svm flag the leaf is all zero, as QEMU leaves it.
    let svm = requested.iter().any(|f| f.name == "svm");
    if let Some(e) = entries.iter_mut().find(|e| e.function == SVM_LEAF) {
        e.edx = 0;
        if !svm {
            (e.eax, e.ebx, e.ecx) = (0, 0, 0);
        }
    }

    // The identity: vendor, highest leaves, family/model/stepping, model-id.
    let kvm_level = entries.iter().find(|e| e.function == 0).map_or(0, |e| e.eax);
    let kvm_xlevel = entries.iter().find(|e| e.function == EXT_BASE).map_or(0, |e| e.eax);
    let level = model.level.min(kvm_level);
    // QEMU raises the highest extended leaf to cover the features asked for (EPYC-Milan-v2's 0x8000_0021).
    let needed = requested.iter().filter(|f| f.leaf >= EXT_BASE).map(|f| f.leaf).max().unwrap_or(0);
    let xlevel = model.xlevel.max(needed).min(kvm_xlevel).max(BRAND_LEAVES[2]);
    let (ebx, edx, ecx) = vendor_words(model.vendor);
    let version = version_word(model.family, model.model, model.stepping);
    for (function, max) in [(0, level), (EXT_BASE, xlevel)] {
        let e = entry(entries, function, 0);
        (e.eax, e.ebx, e.ecx, e.edx) = (max, ebx, ecx, edx);
    }
    entry(entries, 1, 0).eax = version;
    entry(entries, EXT_BASE + 1, 0).eax = version;
    for (leaf, words) in BRAND_LEAVES.into_iter().zip(brand_words(model.model_id)) {
        let e = entry(entries, leaf, 0);
        (e.eax, e.ebx, e.ecx, e.edx) = (words[0], words[1], words[2], words[3]);
    }
    entries.retain(|e| match e.function {
        f if f < 0x4000_0000 => f <= level,
        f if f >= EXT_BASE => f <= xlevel,
        _ => true,
    });

    // XSAVE state components of features the guest does not have are not offered.
    let dropped = XSAVE_COMPONENTS.iter().filter(|(_, name)| !has(entries, name)).fold(0u32, |a, (c, _)| a | (1 << c));
    if let Some(e) = entries.iter_mut().find(|e| e.function == 0xd && e.index == 0) {
        e.eax &= !dropped;
    }
    entries.retain(|e| !(e.function == 0xd && (2..32).contains(&e.index) && dropped & (1 << e.index) != 0));
    missing
}

/// QEMU's warning for a requested feature the host lacks:
/// `host doesn't support requested feature: CPUID.01H:ECX.pcid [bit 17]`.
pub fn unsupported_message(f: &CpuFlag) -> String {
    format!("host doesn't support requested feature: {}", feature_description(f))
}

/// Where a feature lives, as QEMU writes it: `CPUID.01H:ECX.pcid [bit 17]`.
pub fn feature_description(f: &CpuFlag) -> String {
    let reg = match f.reg {
        Reg::Eax => "EAX",
        Reg::Ebx => "EBX",
        Reg::Ecx => "ECX",
        Reg::Edx => "EDX",
    };
    // QEMU names the subleaf for the words that have one.
    let word = if matches!(f.leaf, 7 | 0xd) {
        format!("CPUID[eax={:02X}h,ecx={:02X}h].{reg}", f.leaf, f.subleaf)
    } else {
        format!("CPUID.{:02X}H:{reg}", f.leaf)
    };
    format!("{word}.{} [bit {}]", f.name, f.bit)
}

#[cfg(test)]
mod tests;
