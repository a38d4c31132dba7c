//! QEMU's x86 CPUID feature names and where each bit lives: the one table
//! `-cpu MODEL|host,+FLAG,-FLAG` and the named CPU models (`cpu_models.rs`)
//! look names up in. Bit positions are the architectural ones (Intel SDM
//! vol. 2A "CPUID", AMD APM vol. 3 appendix E); names are QEMU's spelling.
//!
//! Left out on purpose: bits the CPU computes at run time (OSXSAVE, OSPKE),
//! and, in 0x8000_0001 EDX, the copies of leaf 1 EDX bits AMD keeps there
//! (QEMU's "AMD aliases", applied from leaf 1 by `cpu_model_cpuid.rs`).

use kvm_bindings::kvm_cpuid_entry2;

/// A CPUID register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    Eax,
    Ebx,
    Ecx,
    Edx,
}

/// One feature flag: QEMU's name and where its bit lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuFlag {
    pub name: &'static str,
    pub leaf: u32,
    pub subleaf: u32,
    pub reg: Reg,
    pub bit: u32,
}

/// The register `reg` of a CPUID entry.
pub(crate) fn reg_mut(entry: &mut kvm_cpuid_entry2, reg: Reg) -> &mut u32 {
    match reg {
        Reg::Eax => &mut entry.eax,
        Reg::Ebx => &mut entry.ebx,
        Reg::Ecx => &mut entry.ecx,
        Reg::Edx => &mut entry.edx,
    }
}

const fn flag(name: &'static str, leaf: u32, subleaf: u32, reg: Reg, bit: u32) -> CpuFlag {
    CpuFlag { name, leaf, subleaf, reg, bit }
}

use Reg::{Eax, Ebx, Ecx, Edx};

/// Every feature flag microvm knows by name, grouped by CPUID word.
pub const CPU_FLAGS: &[CpuFlag] = &[
    // Leaf 1 EDX.
    flag("fpu", 1, 0, Edx, 0),
    flag("vme", 1, 0, Edx, 1),
    flag("de", 1, 0, Edx, 2),
    flag("pse", 1, 0, Edx, 3),
    flag("tsc", 1, 0, Edx, 4),
    flag("msr", 1, 0, Edx, 5),
    flag("pae", 1, 0, Edx, 6),
    flag("mce", 1, 0, Edx, 7),
    flag("cx8", 1, 0, Edx, 8),
    flag("apic", 1, 0, Edx, 9),
    flag("sep", 1, 0, Edx, 11),
    flag("mtrr", 1, 0, Edx, 12),
    flag("pge", 1, 0, Edx, 13),
    flag("mca", 1, 0, Edx, 14),
    flag("cmov", 1, 0, Edx, 15),
    flag("pat", 1, 0, Edx, 16),
    flag("pse36", 1, 0, Edx, 17),
    flag("pn", 1, 0, Edx, 18),
    flag("clflush", 1, 0, Edx, 19),
    flag("ds", 1, 0, Edx, 21),
    flag("acpi", 1, 0, Edx, 22),
    flag("mmx", 1, 0, Edx, 23),
    flag("fxsr", 1, 0, Edx, 24),
    flag("sse", 1, 0, Edx, 25),
    flag("sse2", 1, 0, Edx, 26),
    flag("ss", 1, 0, Edx, 27),
    flag("ht", 1, 0, Edx, 28),
    flag("tm", 1, 0, Edx, 29),
    flag("ia64", 1, 0, Edx, 30),
    flag("pbe", 1, 0, Edx, 31),
    // Leaf 1 ECX.
    flag("pni", 1, 0, Ecx, 0),
    flag("pclmulqdq", 1, 0, Ecx, 1),
    flag("dtes64", 1, 0, Ecx, 2),
    flag("monitor", 1, 0, Ecx, 3),
    flag("ds-cpl", 1, 0, Ecx, 4),
    flag("vmx", 1, 0, Ecx, 5),
    flag("smx", 1, 0, Ecx, 6),
    flag("est", 1, 0, Ecx, 7),
    flag("tm2", 1, 0, Ecx, 8),
    flag("ssse3", 1, 0, Ecx, 9),
    flag("cid", 1, 0, Ecx, 10),
    flag("fma", 1, 0, Ecx, 12),
    flag("cx16", 1, 0, Ecx, 13),
    flag("xtpr", 1, 0, Ecx, 14),
    flag("pdcm", 1, 0, Ecx, 15),
    flag("pcid", 1, 0, Ecx, 17),
    flag("dca", 1, 0, Ecx, 18),
    flag("sse4.1", 1, 0, Ecx, 19),
    flag("sse4.2", 1, 0, Ecx, 20),
    flag("x2apic", 1, 0, Ecx, 21),
    flag("movbe", 1, 0, Ecx, 22),
    flag("popcnt", 1, 0, Ecx, 23),
    flag("tsc-deadline", 1, 0, Ecx, 24),
    flag("aes", 1, 0, Ecx, 25),
    flag("xsave", 1, 0, Ecx, 26),
    flag("avx", 1, 0, Ecx, 28),
    flag("f16c", 1, 0, Ecx, 29),
    flag("rdrand", 1, 0, Ecx, 30),
    flag("hypervisor", 1, 0, Ecx, 31),
    // Leaf 6 EAX.
    flag("arat", 6, 0, Eax, 2),
    // Leaf 7 subleaf 0 EBX.
    flag("fsgsbase", 7, 0, Ebx, 0),
    flag("tsc-adjust", 7, 0, Ebx, 1),
    flag("sgx", 7, 0, Ebx, 2),
    flag("bmi1", 7, 0, Ebx, 3),
    flag("hle", 7, 0, Ebx, 4),
    flag("avx2", 7, 0, Ebx, 5),
    flag("smep", 7, 0, Ebx, 7),
    flag("bmi2", 7, 0, Ebx, 8),
    flag("erms", 7, 0, Ebx, 9),
    flag("invpcid", 7, 0, Ebx, 10),
    flag("rtm", 7, 0, Ebx, 11),
    flag("mpx", 7, 0, Ebx, 14),
    flag("avx512f", 7, 0, Ebx, 16),
    flag("avx512dq", 7, 0, Ebx, 17),
    flag("rdseed", 7, 0, Ebx, 18),
    flag("adx", 7, 0, Ebx, 19),
    flag("smap", 7, 0, Ebx, 20),
    flag("avx512ifma", 7, 0, Ebx, 21),
    flag("clflushopt", 7, 0, Ebx, 23),
    flag("clwb", 7, 0, Ebx, 24),
    flag("intel-pt", 7, 0, Ebx, 25),
    flag("avx512pf", 7, 0, Ebx, 26),
    flag("avx512er", 7, 0, Ebx, 27),
    flag("avx512cd", 7, 0, Ebx, 28),
    flag("sha-ni", 7, 0, Ebx, 29),
    flag("avx512bw", 7, 0, Ebx, 30),
    flag("avx512vl", 7, 0, Ebx, 31),
    // Leaf 7 subleaf 0 ECX.
    flag("avx512vbmi", 7, 0, Ecx, 1),
    flag("umip", 7, 0, Ecx, 2),
    flag("pku", 7, 0, Ecx, 3),
    flag("waitpkg", 7, 0, Ecx, 5),
    flag("avx512vbmi2", 7, 0, Ecx, 6),
    flag("gfni", 7, 0, Ecx, 8),
    flag("vaes", 7, 0, Ecx, 9),
    flag("vpclmulqdq", 7, 0, Ecx, 10),
    flag("avx512vnni", 7, 0, Ecx, 11),
    flag("avx512bitalg", 7, 0, Ecx, 12),
    flag("avx512-vpopcntdq", 7, 0, Ecx, 14),
    flag("la57", 7, 0, Ecx, 16),
    flag("rdpid", 7, 0, Ecx, 22),
    flag("bus-lock-detect", 7, 0, Ecx, 24),
    flag("cldemote", 7, 0, Ecx, 25),
    flag("movdiri", 7, 0, Ecx, 27),
    flag("movdir64b", 7, 0, Ecx, 28),
    flag("sgxlc", 7, 0, Ecx, 30),
    flag("pks", 7, 0, Ecx, 31),
    // Leaf 7 subleaf 0 EDX.
    flag("avx512-4vnniw", 7, 0, Edx, 2),
    flag("avx512-4fmaps", 7, 0, Edx, 3),
    flag("fsrm", 7, 0, Edx, 4),
    flag("avx512-vp2intersect", 7, 0, Edx, 8),
    flag("md-clear", 7, 0, Edx, 10),
    flag("serialize", 7, 0, Edx, 14),
    flag("tsx-ldtrk", 7, 0, Edx, 16),
    flag("arch-lbr", 7, 0, Edx, 19),
    flag("amx-bf16", 7, 0, Edx, 22),
    flag("avx512-fp16", 7, 0, Edx, 23),
    flag("amx-tile", 7, 0, Edx, 24),
    flag("amx-int8", 7, 0, Edx, 25),
    flag("spec-ctrl", 7, 0, Edx, 26),
    flag("stibp", 7, 0, Edx, 27),
    flag("flush-l1d", 7, 0, Edx, 28),
    flag("arch-capabilities", 7, 0, Edx, 29),
    flag("core-capability", 7, 0, Edx, 30),
    flag("ssbd", 7, 0, Edx, 31),
    // Leaf 7 subleaf 1 EAX.
    flag("avx-vnni", 7, 1, Eax, 4),
    flag("avx512-bf16", 7, 1, Eax, 5),
    flag("fzrm", 7, 1, Eax, 10),
    flag("fsrs", 7, 1, Eax, 11),
    flag("fsrc", 7, 1, Eax, 12),
    // Leaf 0xd subleaf 1 EAX (XSAVE extensions).
    flag("xsaveopt", 0xd, 1, Eax, 0),
    flag("xsavec", 0xd, 1, Eax, 1),
    flag("xgetbv1", 0xd, 1, Eax, 2),
    flag("xsaves", 0xd, 1, Eax, 3),
    flag("xfd", 0xd, 1, Eax, 4),
    // Leaf 0x8000_0001 EDX (AMD's copies of leaf 1 EDX bits are not named).
    flag("syscall", 0x8000_0001, 0, Edx, 11),
    flag("nx", 0x8000_0001, 0, Edx, 20),
    flag("mmxext", 0x8000_0001, 0, Edx, 22),
    flag("fxsr-opt", 0x8000_0001, 0, Edx, 25),
    flag("pdpe1gb", 0x8000_0001, 0, Edx, 26),
    flag("rdtscp", 0x8000_0001, 0, Edx, 27),
    flag("lm", 0x8000_0001, 0, Edx, 29),
    flag("3dnowext", 0x8000_0001, 0, Edx, 30),
    flag("3dnow", 0x8000_0001, 0, Edx, 31),
    // Leaf 0x8000_0001 ECX.
    flag("lahf-lm", 0x8000_0001, 0, Ecx, 0),
    flag("cmp-legacy", 0x8000_0001, 0, Ecx, 1),
    flag("svm", 0x8000_0001, 0, Ecx, 2),
    flag("extapic", 0x8000_0001, 0, Ecx, 3),
    flag("cr8legacy", 0x8000_0001, 0, Ecx, 4),
    flag("abm", 0x8000_0001, 0, Ecx, 5),
    flag("sse4a", 0x8000_0001, 0, Ecx, 6),
    flag("misalignsse", 0x8000_0001, 0, Ecx, 7),
    flag("3dnowprefetch", 0x8000_0001, 0, Ecx, 8),
    flag("osvw", 0x8000_0001, 0, Ecx, 9),
    flag("ibs", 0x8000_0001, 0, Ecx, 10),
    flag("xop", 0x8000_0001, 0, Ecx, 11),
    flag("skinit", 0x8000_0001, 0, Ecx, 12),
    flag("wdt", 0x8000_0001, 0, Ecx, 13),
    flag("lwp", 0x8000_0001, 0, Ecx, 15),
    flag("fma4", 0x8000_0001, 0, Ecx, 16),
    flag("tce", 0x8000_0001, 0, Ecx, 17),
    flag("nodeid-msr", 0x8000_0001, 0, Ecx, 19),
    flag("tbm", 0x8000_0001, 0, Ecx, 21),
    flag("topoext", 0x8000_0001, 0, Ecx, 22),
    flag("perfctr-core", 0x8000_0001, 0, Ecx, 23),
    flag("perfctr-nb", 0x8000_0001, 0, Ecx, 24),
    // Leaf 0x8000_0007 EDX.
    flag("invtsc", 0x8000_0007, 0, Edx, 8),
    // Leaf 0x8000_0008 EBX.
    flag("clzero", 0x8000_0008, 0, Ebx, 0),
    flag("xsaveerptr", 0x8000_0008, 0, Ebx, 2),
    flag("wbnoinvd", 0x8000_0008, 0, Ebx, 9),
    flag("ibpb", 0x8000_0008, 0, Ebx, 12),
    flag("ibrs", 0x8000_0008, 0, Ebx, 14),
    flag("amd-stibp", 0x8000_0008, 0, Ebx, 15),
    flag("stibp-always-on", 0x8000_0008, 0, Ebx, 17),
    flag("amd-ssbd", 0x8000_0008, 0, Ebx, 24),
    flag("virt-ssbd", 0x8000_0008, 0, Ebx, 25),
    flag("amd-no-ssb", 0x8000_0008, 0, Ebx, 26),
    flag("amd-psfd", 0x8000_0008, 0, Ebx, 28),
    // Leaf 0x8000_0021 EAX.
    flag("no-nested-data-bp", 0x8000_0021, 0, Eax, 0),
    flag("lfence-always-serializing", 0x8000_0021, 0, Eax, 2),
    flag("null-sel-clr-base", 0x8000_0021, 0, Eax, 6),
    flag("auto-ibrs", 0x8000_0021, 0, Eax, 8),
];

/// Other spellings QEMU accepts for a flag (`_` and `-` are already the same).
pub const FLAG_ALIASES: &[(&str, &str)] = &[
    ("sse3", "pni"),
    ("sse4-1", "sse4.1"),
    ("sse4-2", "sse4.2"),
    ("ffxsr", "fxsr-opt"),
    ("i64", "lm"),
    ("xd", "nx"),
    ("lahf", "lahf-lm"),
];

/// The CPUID words (leaf, subleaf, register) a named model sets whole: the
/// ones the table above names bits in.
pub fn feature_words() -> Vec<(u32, u32, Reg)> {
    let mut words: Vec<(u32, u32, Reg)> = Vec::new();
    for f in CPU_FLAGS {
        if !words.contains(&(f.leaf, f.subleaf, f.reg)) {
            words.push((f.leaf, f.subleaf, f.reg));
        }
    }
    words
}
