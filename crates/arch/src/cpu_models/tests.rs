use super::*;
use crate::cpu_features::{find_flag, Reg};
use crate::cpu_flags::CPU_FLAGS;

/// One CPUID word of a model: the OR of its flags' bits there.
fn word(m: &CpuModel, leaf: u32, subleaf: u32, reg: Reg) -> u32 {
    m.features.iter().filter(|f| (f.leaf, f.subleaf, f.reg) == (leaf, subleaf, reg)).fold(0, |a, f| a | (1 << f.bit))
}

fn model(name: &str) -> CpuModel {
    find_model(name).unwrap_or_else(|| panic!("no model {name}"))
}

const EDX1: (u32, u32, Reg) = (1, 0, Reg::Edx);
const ECX1: (u32, u32, Reg) = (1, 0, Reg::Ecx);
const EBX7: (u32, u32, Reg) = (7, 0, Reg::Ebx);
const ECX7: (u32, u32, Reg) = (7, 0, Reg::Ecx);
const EDX7: (u32, u32, Reg) = (7, 0, Reg::Edx);
const XSAVE: (u32, u32, Reg) = (0xd, 1, Reg::Eax);
const EXT_EDX: (u32, u32, Reg) = (0x8000_0001, 0, Reg::Edx);
const EXT_ECX: (u32, u32, Reg) = (0x8000_0001, 0, Reg::Ecx);
const EXT8_EBX: (u32, u32, Reg) = (0x8000_0008, 0, Reg::Ebx);

/// Each model's feature words, worked out by hand from QEMU's definitions
/// (where a real CPU's value is well known it agrees: EPYC 7601's leaf 1
/// EDX 0x078bfbff, leaf 7 EBX 0x209c01a9).
#[test]
fn each_models_cpuid_words() {
    let pentium_pro_plus = 0x078b_fbff; // PPRO + vme mtrr clflush mca pse36
    let haswell_ecx = 0x77fa_3203;
    let haswell_7ebx = 0x0000_0fb9;
    let skylake_7ebx = haswell_7ebx | 0x001c_0000; // + rdseed adx smap
    let server_7ebx = skylake_7ebx | 0xd183_0000; // + avx512f/dq/cd/bw/vl clflushopt clwb
    let intel_ext_edx = 0x2810_0800; // syscall nx rdtscp lm
    let epyc_ecx = 0x76d8_320b;
    let epyc_7ebx = 0x209c_01a9;
    let cases: &[(&str, (u32, u32, Reg), u32)] = &[
        ("qemu64", EDX1, pentium_pro_plus & !(1 << 1)),
        ("qemu64", ECX1, 0x0000_2001), // pni cx16
        ("qemu64", EXT_EDX, 0x2010_0800),
        ("qemu64", EXT_ECX, 0x0000_0005), // lahf-lm svm
        ("qemu64", EBX7, 0),
        ("kvm64", EDX1, pentium_pro_plus),
        ("kvm64", ECX1, 0x0000_2001),
        ("kvm64", EXT_ECX, 0),
        ("Haswell", EDX1, pentium_pro_plus),
        ("Haswell", ECX1, haswell_ecx),
        ("Haswell", EBX7, haswell_7ebx),
        ("Haswell", EXT_EDX, intel_ext_edx),
        ("Haswell", EXT_ECX, 0x0000_0021),
        ("Haswell", XSAVE, 0x1),
        ("Haswell", (6, 0, Reg::Eax), 0x4),
        ("Haswell-noTSX", EBX7, haswell_7ebx & !0x810),
        ("Haswell-IBRS", EBX7, haswell_7ebx),
        ("Haswell-IBRS", EDX7, 1 << 26),
        ("Haswell-noTSX-IBRS", EBX7, haswell_7ebx & !0x810),
        ("Haswell-noTSX-IBRS", EDX7, 1 << 26),
        ("Skylake-Client", ECX1, haswell_ecx),
        ("Skylake-Client", EBX7, skylake_7ebx),
        ("Skylake-Client", EXT_ECX, 0x0000_0121),
        ("Skylake-Client", XSAVE, 0x7),
        ("Skylake-Client-v4", XSAVE, 0xf),
        ("Skylake-Client-noTSX-IBRS", EBX7, skylake_7ebx & !0x810),
        ("Skylake-Server", EBX7, server_7ebx),
        ("Skylake-Server", ECX7, 1 << 3),
        ("Skylake-Server", EXT_EDX, intel_ext_edx | (1 << 26)),
        ("Skylake-Server-IBRS", EBX7, server_7ebx & !(1 << 23)),
        ("Skylake-Server-v5", XSAVE, 0xf),
        ("Cascadelake-Server", EBX7, server_7ebx),
        ("Cascadelake-Server", ECX7, (1 << 3) | (1 << 11)),
        ("Cascadelake-Server", EDX7, (1 << 26) | (1 << 31)),
        ("Cascadelake-Server-v2", EDX7, (1 << 26) | (1 << 29) | (1 << 31)),
        ("Cascadelake-Server-noTSX", EBX7, server_7ebx & !0x810),
        ("Icelake-Server", EBX7, server_7ebx),
        ("Icelake-Server", ECX7, 0x0001_5f4e),
        ("Icelake-Server", EXT8_EBX, 1 << 9),
        ("Icelake-Server-v4", EBX7, (server_7ebx & !0x810) | (1 << 21) | (1 << 29)),
        ("Icelake-Server-v4", ECX7, 0x0041_5f4e),
        ("Icelake-Server-v4", EDX7, (1 << 4) | (1 << 26) | (1 << 29) | (1 << 31)),
        ("Icelake-Server-v7", EBX7, server_7ebx | (1 << 21) | (1 << 29)),
        ("EPYC", EDX1, pentium_pro_plus),
        ("EPYC", ECX1, epyc_ecx),
        ("EPYC", EBX7, epyc_7ebx),
        ("EPYC", EXT_EDX, 0x2e50_0800), // syscall nx mmxext fxsr-opt pdpe1gb rdtscp lm (aliases added at apply)
        ("EPYC", EXT_ECX, 0x0040_03f5),
        ("EPYC", EXT8_EBX, 0),
        ("EPYC", XSAVE, 0x7),
        ("EPYC-IBPB", EXT8_EBX, 1 << 12),
        ("EPYC-v3", EXT8_EBX, 0x1005),
        ("EPYC-v3", EXT_ECX, 0x00c0_03f5),
        ("EPYC-Rome", EBX7, epyc_7ebx | (1 << 24)),
        ("EPYC-Rome", ECX7, (1 << 2) | (1 << 22)),
        ("EPYC-Rome", EXT_ECX, 0x00c0_03f5),
        ("EPYC-Rome", EXT8_EBX, 0x9205),
        ("EPYC-Rome", XSAVE, 0xf),
        ("EPYC-Rome-v2", EXT8_EBX, 0x0100_d205),
        ("EPYC-Rome-v4", XSAVE, 0x7),
        ("EPYC-Milan", ECX1, epyc_ecx | (1 << 17)),
        ("EPYC-Milan", EBX7, epyc_7ebx | (1 << 24) | (1 << 9) | (1 << 10)),
        ("EPYC-Milan", ECX7, (1 << 2) | (1 << 3) | (1 << 22)),
        ("EPYC-Milan", EDX7, 1 << 4),
        ("EPYC-Milan", EXT8_EBX, 0x0100_d205),
        ("EPYC-Milan-v2", ECX7, (1 << 2) | (1 << 3) | (1 << 9) | (1 << 10) | (1 << 22)),
        ("EPYC-Milan-v2", EXT8_EBX, 0x1102_d205),
        ("EPYC-Milan-v2", (0x8000_0021, 0, Reg::Eax), 0x45),
    ];
    for &(name, (leaf, subleaf, reg), want) in cases {
        let got = word(&model(name), leaf, subleaf, reg);
        assert_eq!(got, want, "{name} CPUID {leaf:#x}.{subleaf} {reg:?}: {got:#010x} != {want:#010x}");
    }
}

#[test]
fn identity_of_each_model_and_version() {
    let cases = [
        ("qemu64", Vendor::Amd, 15, 107, 1, "QEMU Virtual CPU version 2.5+"),
        ("kvm64", Vendor::Intel, 15, 6, 1, "Common KVM processor"),
        ("Haswell", Vendor::Intel, 6, 60, 4, "Intel Core Processor (Haswell)"),
        ("Haswell-noTSX", Vendor::Intel, 6, 60, 1, "Intel Core Processor (Haswell, no TSX)"),
        ("Haswell-v3", Vendor::Intel, 6, 60, 4, "Intel Core Processor (Haswell, IBRS)"),
        ("Haswell-noTSX-IBRS", Vendor::Intel, 6, 60, 1, "Intel Core Processor (Haswell, no TSX, IBRS)"),
        ("Skylake-Client-v4", Vendor::Intel, 6, 94, 3, "Intel Core Processor (Skylake, IBRS, no TSX)"),
        ("Skylake-Server", Vendor::Intel, 6, 85, 4, "Intel Xeon Processor (Skylake)"),
        ("Cascadelake-Server-noTSX", Vendor::Intel, 6, 85, 6, "Intel Xeon Processor (Cascadelake)"),
        ("Icelake-Server", Vendor::Intel, 6, 134, 0, "Intel Xeon Processor (Icelake)"),
        ("Icelake-Server-v4", Vendor::Intel, 6, 106, 0, "Intel Xeon Processor (Icelake)"),
        ("EPYC", Vendor::Amd, 23, 1, 2, "AMD EPYC Processor"),
        ("EPYC-IBPB", Vendor::Amd, 23, 1, 2, "AMD EPYC Processor (with IBPB)"),
        ("EPYC-v4", Vendor::Amd, 23, 1, 2, "AMD EPYC-v4 Processor"),
        ("EPYC-Rome-v4", Vendor::Amd, 23, 49, 0, "AMD EPYC-Rome-v4 Processor (no XSAVES)"),
        ("EPYC-Milan", Vendor::Amd, 25, 1, 1, "AMD EPYC-Milan Processor"),
        ("EPYC-Milan-v2", Vendor::Amd, 25, 1, 1, "AMD EPYC-Milan-v2 Processor"),
    ];
    for (name, vendor, family, model_no, stepping, id) in cases {
        let m = model(name);
        assert_eq!(
            (m.vendor, m.family, m.model, m.stepping, m.model_id),
            (vendor, family, model_no, stepping, id),
            "{name}"
        );
    }
    assert_eq!(model("Haswell-noTSX"), model("Haswell-v2"));
    assert_eq!(model("Haswell").versioned_name(), "Haswell-v1");
    assert_eq!(
        (model("EPYC").xlevel, model("Haswell").xlevel, model("qemu64").xlevel),
        (0x8000_001e, 0x8000_0008, 0x8000_000a)
    );
}

#[test]
fn unknown_names_and_versions_are_not_models() {
    for name in
        ["haswell", "Haswell-v0", "Haswell-v5", "Haswell-v01", "Haswell-", "Haswell-IBRS-v1", "host", "EPYC-Genoa", ""]
    {
        assert!(find_model(name).is_none(), "{name}");
    }
}

/// Every name in the table is a flag microvm knows, or one of the changes
/// it deliberately does not apply; no flag shares another's bit.
#[test]
fn every_name_in_the_table_is_known() {
    for def in MODELS {
        for name in def.features.iter().flat_map(|g| g.iter()) {
            assert!(find_flag(name).is_some_and(|f| f.name == *name), "{}: {name}", def.name);
        }
        for ver in def.versions {
            for (name, _) in ver.changes {
                assert!(find_flag(name).is_some() || is_not_cpuid(name), "{}: {name}", def.name);
            }
        }
    }
    for (i, f) in CPU_FLAGS.iter().enumerate() {
        for g in &CPU_FLAGS[i + 1..] {
            assert!((f.leaf, f.subleaf, f.reg, f.bit) != (g.leaf, g.subleaf, g.reg, g.bit), "{} {}", f.name, g.name);
        }
    }
}

/// `-cpu help` lists every model the issue names, with QEMU's aliases.
#[test]
fn model_names_list_versions_and_aliases() {
    let names = model_names();
    let has = |n: &str| names.iter().any(|(name, _)| name == n);
    for n in [
        "qemu64",
        "kvm64",
        "Haswell",
        "Haswell-noTSX",
        "Haswell-v4",
        "Skylake-Client",
        "Skylake-Client-noTSX-IBRS",
        "Skylake-Server",
        "Skylake-Server-noTSX-IBRS",
        "Cascadelake-Server",
        "Cascadelake-Server-noTSX",
        "Icelake-Server",
        "Icelake-Server-noTSX",
        "Icelake-Server-v7",
        "EPYC",
        "EPYC-IBPB",
        "EPYC-Rome",
        "EPYC-Rome-v4",
        "EPYC-Milan",
        "EPYC-Milan-v2",
    ] {
        assert!(has(n), "{n}");
        assert!(find_model(n).is_some(), "{n}");
    }
    let alias = names.iter().find(|(n, _)| n == "Haswell-noTSX").unwrap();
    assert_eq!(alias.1, "alias of Haswell-v2");
    for (name, _) in &names {
        assert!(find_model(name).is_some(), "listed but not found: {name}");
    }
}
