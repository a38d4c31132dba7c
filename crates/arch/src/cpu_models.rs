//! QEMU's named x86 CPU models (`-cpu Haswell`, `-cpu EPYC-Rome-v2`,
//! `-cpu Skylake-Client-noTSX-IBRS`) as data: vendor, family/model/stepping,
//! the model-id string, the highest basic and extended leaves, and the
//! feature flags, written from QEMU's `builtin_x86_defs` (target/i386/cpu.c).
//!
//! QEMU's versions are cumulative: version N applies the changes of 2..=N
//! on top of the base model (v1). An unversioned name is v1, which is what
//! QEMU resolves it to for machine types without a CPU version table, such
//! as microvm. Version changes that are not CPUID bits (the `vmx-*` nested
//! VMX capabilities and the IA32_ARCH_CAPABILITIES MSR bits) are listed as
//! QEMU has them but not applied: microvm offers no nested VMX controls of
//! its own and leaves that MSR to KVM. `cpu_model_cpuid.rs` turns a model
//! into CPUID entries.

use crate::cpu_flags::CpuFlag;

/// The vendor string in CPUID leaf 0 (and 0x8000_0000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Intel,
    Amd,
}

impl Vendor {
    /// EBX, EDX, ECX of leaf 0, in that order: the 12-byte vendor id.
    pub fn id(self) -> &'static [u8; 12] {
        match self {
            Vendor::Intel => b"GenuineIntel",
            Vendor::Amd => b"AuthenticAMD",
        }
    }
}

/// One version after v1: what it changes in the version before it.
pub struct ModelVersion {
    /// QEMU's other name for it (`Haswell-noTSX` for Haswell-v2).
    pub alias: Option<&'static str>,
    /// Flags (or, for the ones not applied, QEMU properties) turned on or off.
    pub changes: &'static [(&'static str, bool)],
    pub model: Option<u32>,
    pub stepping: Option<u32>,
    pub model_id: Option<&'static str>,
}

/// A base model (v1) and its later versions.
pub struct ModelDef {
    pub name: &'static str,
    pub vendor: Vendor,
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    /// Highest basic leaf.
    pub level: u32,
    /// Highest extended leaf.
    pub xlevel: u32,
    pub model_id: &'static str,
    /// Groups of QEMU flag names (groups only save repeating them).
    pub features: &'static [&'static [&'static str]],
    /// v2, v3, ...
    pub versions: &'static [ModelVersion],
}

/// Version changes QEMU makes that are not CPUID bits (see the module comment).
const NOT_CPUID: &[&str] =
    &["rdctl-no", "ibrs-all", "skip-l1dfl-vmentry", "mds-no", "pschange-mc-no", "taa-no", "vmx-xsaves"];

/// Whether a version change is one microvm does not apply.
pub fn is_not_cpuid(name: &str) -> bool {
    name.starts_with("vmx-") || NOT_CPUID.contains(&name)
}

// Feature groups, each as QEMU's definitions spell it out.
/// QEMU's PPRO_FEATURES (leaf 1 EDX of a Pentium Pro class CPU).
const PPRO: &[&str] = &[
    "fpu", "de", "pse", "tsc", "msr", "mce", "cx8", "pge", "cmov", "pat", "fxsr", "mmx", "sse", "sse2", "pae", "sep",
    "apic",
];
/// What every model from kvm64 and Conroe on adds to PPRO in leaf 1 EDX.
const CORE_EDX: &[&str] = &["vme", "mtrr", "clflush", "mca", "pse36"];
const HASWELL_ECX: &[&str] = &[
    "pni",
    "pclmulqdq",
    "ssse3",
    "fma",
    "cx16",
    "pcid",
    "sse4.1",
    "sse4.2",
    "x2apic",
    "movbe",
    "popcnt",
    "tsc-deadline",
    "aes",
    "xsave",
    "avx",
    "f16c",
    "rdrand",
];
const INTEL_EXT_EDX: &[&str] = &["lm", "rdtscp", "nx", "syscall"];
const HASWELL_7EBX: &[&str] = &["fsgsbase", "bmi1", "hle", "avx2", "smep", "bmi2", "erms", "invpcid", "rtm"];
const SKYLAKE_7EBX: &[&str] = &["rdseed", "adx", "smap"];
const SKYLAKE_SERVER_7EBX: &[&str] = &["clwb", "avx512f", "avx512dq", "avx512bw", "avx512cd", "avx512vl", "clflushopt"];
const SKYLAKE_XSAVE: &[&str] = &["xsaveopt", "xsavec", "xgetbv1"];
const EPYC_ECX: &[&str] = &[
    "rdrand",
    "f16c",
    "avx",
    "xsave",
    "aes",
    "popcnt",
    "movbe",
    "sse4.2",
    "sse4.1",
    "cx16",
    "fma",
    "ssse3",
    "monitor",
    "pclmulqdq",
    "pni",
];
const EPYC_EXT_EDX: &[&str] = &["lm", "rdtscp", "pdpe1gb", "fxsr-opt", "mmxext", "nx", "syscall"];
const EPYC_EXT_ECX: &[&str] =
    &["osvw", "3dnowprefetch", "misalignsse", "sse4a", "abm", "cr8legacy", "svm", "lahf-lm", "topoext"];
const EPYC_7EBX: &[&str] =
    &["fsgsbase", "bmi1", "avx2", "smep", "bmi2", "rdseed", "adx", "smap", "clflushopt", "sha-ni"];
const ROME: &[&str] =
    &["perfctr-core", "clzero", "xsaveerptr", "wbnoinvd", "ibpb", "amd-stibp", "clwb", "umip", "rdpid", "xsaves"];

const NO_TSX: &[(&str, bool)] = &[("hle", false), ("rtm", false)];
const XSAVES: &[(&str, bool)] = &[("xsaves", true), ("vmx-xsaves", true)];
const ARCH_CAPABILITIES: &[(&str, bool)] = &[
    ("arch-capabilities", true),
    ("rdctl-no", true),
    ("ibrs-all", true),
    ("skip-l1dfl-vmentry", true),
    ("mds-no", true),
];

const fn v(changes: &'static [(&'static str, bool)]) -> ModelVersion {
    ModelVersion { alias: None, changes, model: None, stepping: None, model_id: None }
}

const fn named(alias: &'static str, changes: &'static [(&'static str, bool)], model_id: &'static str) -> ModelVersion {
    ModelVersion { alias: Some(alias), changes, model: None, stepping: None, model_id: Some(model_id) }
}

/// The models `-cpu` knows, in QEMU's order.
pub static MODELS: &[ModelDef] = &[
    ModelDef {
        name: "qemu64",
        vendor: Vendor::Amd,
        family: 15,
        model: 107,
        stepping: 1,
        level: 0xd,
        xlevel: 0x8000_000a,
        // QEMU_HW_VERSION, which QEMU has kept at 2.5+ since 2.5.
        model_id: "QEMU Virtual CPU version 2.5+",
        features: &[
            PPRO,
            &["mtrr", "clflush", "mca", "pse36"],
            &["pni", "cx16"],
            &["lm", "syscall", "nx"],
            &["lahf-lm", "svm"],
        ],
        versions: &[],
    },
    ModelDef {
        name: "kvm64",
        vendor: Vendor::Intel,
        family: 15,
        model: 6,
        stepping: 1,
        level: 0xd,
        xlevel: 0x8000_0008,
        model_id: "Common KVM processor",
        features: &[PPRO, CORE_EDX, &["pni", "cx16"], &["lm", "syscall", "nx"]],
        versions: &[],
    },
    ModelDef {
        name: "Haswell",
        vendor: Vendor::Intel,
        family: 6,
        model: 60,
        stepping: 4,
        level: 0xd,
        xlevel: 0x8000_0008,
        model_id: "Intel Core Processor (Haswell)",
        features: &[
            PPRO,
            CORE_EDX,
            HASWELL_ECX,
            INTEL_EXT_EDX,
            &["abm", "lahf-lm"],
            HASWELL_7EBX,
            &["xsaveopt", "arat"],
        ],
        versions: &[
            ModelVersion {
                stepping: Some(1),
                ..named("Haswell-noTSX", NO_TSX, "Intel Core Processor (Haswell, no TSX)")
            },
            ModelVersion {
                stepping: Some(4),
                ..named(
                    "Haswell-IBRS",
                    &[("hle", true), ("rtm", true), ("spec-ctrl", true)],
                    "Intel Core Processor (Haswell, IBRS)",
                )
            },
            ModelVersion {
                stepping: Some(1),
                ..named("Haswell-noTSX-IBRS", NO_TSX, "Intel Core Processor (Haswell, no TSX, IBRS)")
            },
        ],
    },
    ModelDef {
        name: "Skylake-Client",
        vendor: Vendor::Intel,
        family: 6,
        model: 94,
        stepping: 3,
        level: 0xd,
        xlevel: 0x8000_0008,
        model_id: "Intel Core Processor (Skylake)",
        features: &[
            PPRO,
            CORE_EDX,
            HASWELL_ECX,
            INTEL_EXT_EDX,
            &["abm", "lahf-lm", "3dnowprefetch"],
            HASWELL_7EBX,
            SKYLAKE_7EBX,
            SKYLAKE_XSAVE,
            &["arat"],
        ],
        versions: &[
            named("Skylake-Client-IBRS", &[("spec-ctrl", true)], "Intel Core Processor (Skylake, IBRS)"),
            named("Skylake-Client-noTSX-IBRS", NO_TSX, "Intel Core Processor (Skylake, IBRS, no TSX)"),
            v(XSAVES),
        ],
    },
    ModelDef {
        name: "Skylake-Server",
        vendor: Vendor::Intel,
        family: 6,
        model: 85,
        stepping: 4,
        level: 0xd,
        xlevel: 0x8000_0008,
        model_id: "Intel Xeon Processor (Skylake)",
        features: &[
            PPRO,
            CORE_EDX,
            HASWELL_ECX,
            INTEL_EXT_EDX,
            &["pdpe1gb", "abm", "lahf-lm", "3dnowprefetch"],
            HASWELL_7EBX,
            SKYLAKE_7EBX,
            SKYLAKE_SERVER_7EBX,
            &["pku"],
            SKYLAKE_XSAVE,
            &["arat"],
        ],
        versions: &[
            named(
                "Skylake-Server-IBRS",
                &[("clflushopt", false), ("spec-ctrl", true)],
                "Intel Xeon Processor (Skylake, IBRS)",
            ),
            named("Skylake-Server-noTSX-IBRS", NO_TSX, "Intel Xeon Processor (Skylake, IBRS, no TSX)"),
            v(&[("vmx-eptp-switching", true)]),
            v(XSAVES),
        ],
    },
    ModelDef {
        name: "Cascadelake-Server",
        vendor: Vendor::Intel,
        family: 6,
        model: 85,
        stepping: 6,
        level: 0xd,
        xlevel: 0x8000_0008,
        model_id: "Intel Xeon Processor (Cascadelake)",
        features: &[
            PPRO,
            CORE_EDX,
            HASWELL_ECX,
            INTEL_EXT_EDX,
            &["pdpe1gb", "abm", "lahf-lm", "3dnowprefetch"],
            HASWELL_7EBX,
            SKYLAKE_7EBX,
            SKYLAKE_SERVER_7EBX,
            &["pku", "avx512vnni", "spec-ctrl", "ssbd"],
            SKYLAKE_XSAVE,
            &["arat"],
        ],
        versions: &[
            v(ARCH_CAPABILITIES),
            ModelVersion { alias: Some("Cascadelake-Server-noTSX"), ..v(NO_TSX) },
            v(&[("vmx-eptp-switching", true)]),
            v(XSAVES),
        ],
    },
    ModelDef {
        name: "Icelake-Server",
        vendor: Vendor::Intel,
        family: 6,
        model: 134,
        stepping: 0,
        level: 0xd,
        xlevel: 0x8000_0008,
        model_id: "Intel Xeon Processor (Icelake)",
        features: &[
            PPRO,
            CORE_EDX,
            HASWELL_ECX,
            INTEL_EXT_EDX,
            &["pdpe1gb", "abm", "lahf-lm", "3dnowprefetch", "wbnoinvd"],
            HASWELL_7EBX,
            SKYLAKE_7EBX,
            SKYLAKE_SERVER_7EBX,
            &[
                "avx512vbmi",
                "umip",
                "pku",
                "avx512vbmi2",
                "gfni",
                "vaes",
                "vpclmulqdq",
                "avx512vnni",
                "avx512bitalg",
                "avx512-vpopcntdq",
                "la57",
            ],
            &["spec-ctrl", "ssbd"],
            SKYLAKE_XSAVE,
            &["arat"],
        ],
        versions: &[
            ModelVersion { alias: Some("Icelake-Server-noTSX"), ..v(NO_TSX) },
            v(&[
                ("arch-capabilities", true),
                ("rdctl-no", true),
                ("ibrs-all", true),
                ("skip-l1dfl-vmentry", true),
                ("mds-no", true),
                ("pschange-mc-no", true),
                ("taa-no", true),
            ]),
            ModelVersion {
                model: Some(106),
                ..v(&[
                    ("sha-ni", true),
                    ("avx512ifma", true),
                    ("rdpid", true),
                    ("fsrm", true),
                    ("vmx-rdseed-exit", true),
                    ("vmx-pml", true),
                    ("vmx-eptp-switching", true),
                ])
            },
            v(XSAVES),
            v(&[("vmx-page-walk-5", true)]),
            v(&[("hle", true), ("rtm", true)]),
        ],
    },
    ModelDef {
        name: "EPYC",
        vendor: Vendor::Amd,
        family: 23,
        model: 1,
        stepping: 2,
        level: 0xd,
        xlevel: 0x8000_001e,
        model_id: "AMD EPYC Processor",
        features: &[PPRO, CORE_EDX, EPYC_ECX, EPYC_EXT_EDX, EPYC_EXT_ECX, EPYC_7EBX, SKYLAKE_XSAVE, &["arat"]],
        versions: &[
            named("EPYC-IBPB", &[("ibpb", true)], "AMD EPYC Processor (with IBPB)"),
            ModelVersion {
                model_id: Some("AMD EPYC Processor"),
                ..v(&[("ibpb", true), ("perfctr-core", true), ("clzero", true), ("xsaveerptr", true), ("xsaves", true)])
            },
            ModelVersion { model_id: Some("AMD EPYC-v4 Processor"), ..v(&[]) },
        ],
    },
    ModelDef {
        name: "EPYC-Rome",
        vendor: Vendor::Amd,
        family: 23,
        model: 49,
        stepping: 0,
        level: 0xd,
        xlevel: 0x8000_001e,
        model_id: "AMD EPYC-Rome Processor",
        features: &[PPRO, CORE_EDX, EPYC_ECX, EPYC_EXT_EDX, EPYC_EXT_ECX, EPYC_7EBX, SKYLAKE_XSAVE, ROME, &["arat"]],
        versions: &[
            v(&[("ibrs", true), ("amd-ssbd", true)]),
            ModelVersion { model_id: Some("AMD EPYC-Rome-v3 Processor"), ..v(&[]) },
            ModelVersion { model_id: Some("AMD EPYC-Rome-v4 Processor (no XSAVES)"), ..v(&[("xsaves", false)]) },
        ],
    },
    ModelDef {
        name: "EPYC-Milan",
        vendor: Vendor::Amd,
        family: 25,
        model: 1,
        stepping: 1,
        level: 0xd,
        xlevel: 0x8000_001e,
        model_id: "AMD EPYC-Milan Processor",
        features: &[
            PPRO,
            CORE_EDX,
            EPYC_ECX,
            EPYC_EXT_EDX,
            EPYC_EXT_ECX,
            EPYC_7EBX,
            SKYLAKE_XSAVE,
            ROME,
            &["pcid", "ibrs", "amd-ssbd", "erms", "invpcid", "pku", "fsrm", "arat"],
        ],
        versions: &[ModelVersion {
            model_id: Some("AMD EPYC-Milan-v2 Processor"),
            ..v(&[
                ("vaes", true),
                ("vpclmulqdq", true),
                ("stibp-always-on", true),
                ("amd-psfd", true),
                ("no-nested-data-bp", true),
                ("lfence-always-serializing", true),
                ("null-sel-clr-base", true),
            ])
        }],
    },
];

/// A model as `-cpu` names it, resolved to one version: what the guest's
/// CPUID is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuModel {
    /// The base model's name (`Haswell`).
    pub base: &'static str,
    /// 1 for the base model.
    pub version: usize,
    pub vendor: Vendor,
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    pub level: u32,
    pub xlevel: u32,
    pub model_id: &'static str,
    /// The flags the model has, in table order.
    pub features: Vec<&'static CpuFlag>,
}

impl CpuModel {
    /// QEMU's versioned name (`Haswell-v2`).
    pub fn versioned_name(&self) -> String {
        format!("{}-v{}", self.base, self.version)
    }

    pub fn has(&self, name: &str) -> bool {
        self.features.iter().any(|f| f.name == name)
    }
}

/// The model a `-cpu` name means: `NAME` (v1), `NAME-vN`, or an alias
/// (`Haswell-noTSX`); exact spelling, as QEMU.
pub fn find_model(name: &str) -> Option<CpuModel> {
    for def in MODELS {
        let version = if name == def.name {
            Some(1)
        } else if let Some(n) = name.strip_prefix(def.name).and_then(|rest| rest.strip_prefix("-v")) {
            n.parse::<usize>().ok().filter(|v| !n.starts_with('0') && (1..=def.versions.len() + 1).contains(v))
        } else {
            def.versions.iter().position(|v| v.alias == Some(name)).map(|i| i + 2)
        };
        if let Some(version) = version {
            return Some(resolve(def, version));
        }
    }
    None
}

/// `def` at `version`, its versions' changes applied in order.
fn resolve(def: &ModelDef, version: usize) -> CpuModel {
    let mut names: Vec<&'static str> = def.features.iter().flat_map(|g| g.iter().copied()).collect();
    let mut m = CpuModel {
        base: def.name,
        version,
        vendor: def.vendor,
        family: def.family,
        model: def.model,
        stepping: def.stepping,
        level: def.level,
        xlevel: def.xlevel,
        model_id: def.model_id,
        features: Vec::new(),
    };
    for ver in def.versions.iter().take(version - 1) {
        for &(name, on) in ver.changes {
            names.retain(|n| *n != name);
            if on {
                names.push(name);
            }
        }
        m.model = ver.model.unwrap_or(m.model);
        m.stepping = ver.stepping.unwrap_or(m.stepping);
        m.model_id = ver.model_id.unwrap_or(m.model_id);
    }
    // Every name is a flag or one of the changes microvm does not apply (a test checks).
    m.features = crate::cpu_flags::CPU_FLAGS.iter().filter(|f| names.contains(&f.name)).collect();
    m
}

/// Every name `-cpu` takes for a model, with what it is, for `-cpu help`:
/// (name, description) in QEMU's order.
pub fn model_names() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for def in MODELS {
        out.push((def.name.to_owned(), format!("alias of {}-v1", def.name)));
        for (i, ver) in def.versions.iter().enumerate() {
            if let Some(alias) = ver.alias {
                out.push((alias.to_owned(), format!("alias of {}-v{}", def.name, i + 2)));
            }
        }
        for version in 1..=def.versions.len() + 1 {
            out.push((format!("{}-v{version}", def.name), resolve(def, version).model_id.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
