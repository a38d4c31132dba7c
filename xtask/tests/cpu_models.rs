//! Issue 18, acceptance 1: `-cpu EPYC` (and qemu64, and a `-FLAG`) with real Linux in the
//! rig (xtask/scenarios/cpu-models.sh): the guest's /proc/cpuinfo has the model's
//! identity and flags, and none of the host's flags the model lacks. The rig's own CPU
//! is QEMU's EPYC (+svm,+npt), so "host" is the model plus what the rig's KVM adds
//! (tsc_deadline_timer, npt, ...): those must be gone under `-cpu EPYC`. The host's
//! cpuinfo is the yardstick, so a flag the rig's KVM cannot give is not required.

use std::collections::BTreeSet;
use xtask::scenario::{run_test_case as run, Case};

/// One boot's /proc/cpuinfo fields.
struct CpuInfo {
    fields: Vec<(String, String)>,
    flags: BTreeSet<String>,
}

impl CpuInfo {
    fn get(&self, key: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }
}

/// The cpuinfo printed after `== CPU name` (up to the next marker).
fn cpuinfo(case: &Case, name: &str) -> CpuInfo {
    let marker = format!("== CPU {name}\n");
    let start = case.output.find(&marker).unwrap_or_else(|| panic!("no {marker}\n{}", case.report()));
    let rest = &case.output[start + marker.len()..];
    let section = &rest[..rest.find("== CPU ").unwrap_or(rest.len())];
    let fields: Vec<(String, String)> = section
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let flags = fields.iter().find(|(k, _)| k == "flags").map(|(_, v)| v.clone()).unwrap_or_default();
    let info = CpuInfo { flags: flags.split_whitespace().map(str::to_owned).collect(), fields };
    assert!(!info.flags.is_empty(), "no flags line for {name}\n{}", case.report());
    info
}

/// QEMU's flag names as Linux prints them.
fn linux_names(qemu: &[&str]) -> BTreeSet<String> {
    qemu.iter().map(|f| linux_name(f)).collect()
}

/// QEMU's EPYC-v1 (builtin_x86_defs), without the leaf-1 EDX bits AMD repeats.
const EPYC: &[&str] = &[
    "fpu",
    "de",
    "pse",
    "tsc",
    "msr",
    "mce",
    "cx8",
    "pge",
    "cmov",
    "pat",
    "fxsr",
    "mmx",
    "sse",
    "sse2",
    "pae",
    "sep",
    "apic",
    "vme",
    "mtrr",
    "clflush",
    "mca",
    "pse36",
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
    "lm",
    "rdtscp",
    "pdpe1gb",
    "fxsr-opt",
    "mmxext",
    "nx",
    "syscall",
    "osvw",
    "3dnowprefetch",
    "misalignsse",
    "sse4a",
    "abm",
    "cr8legacy",
    "svm",
    "lahf-lm",
    "topoext",
    "fsgsbase",
    "bmi1",
    "avx2",
    "smep",
    "bmi2",
    "rdseed",
    "adx",
    "smap",
    "clflushopt",
    "sha-ni",
    "xsaveopt",
    "xsavec",
    "xgetbv1",
    "arat",
];
/// QEMU's qemu64.
const QEMU64: &[&str] = &[
    "fpu", "de", "pse", "tsc", "msr", "mce", "cx8", "pge", "cmov", "pat", "fxsr", "mmx", "sse", "sse2", "pae", "sep",
    "apic", "mtrr", "clflush", "mca", "pse36", "pni", "cx16", "lm", "syscall", "nx", "lahf-lm", "svm",
];
/// Flags Linux sets itself, whatever CPUID says, that a model may add over the host's:
/// `k8` for family 15 (qemu64's).
const LINUX_SYNTHETIC: &[&str] = &["k8"];
/// Names Linux derives from several CPUID bits (or MSRs), so the QEMU flag of the same
/// name does not tell whether the model run should have them: 3dnowprefetch is set on
/// every AMD CPU with long mode (arch/x86/kernel/cpu/amd.c), as seen under qemu64 here.
const LINUX_DERIVED: &[&str] = &["ssbd", "ibpb", "ibrs", "stibp", "3dnowprefetch"];
/// The host's optional SVM features as Linux names them (leaf 0x8000_000a EDX), which no
/// QEMU model has.
const SVM_FEATURES: &[&str] = &[
    "npt",
    "lbrv",
    "svm_lock",
    "nrip_save",
    "tsc_scale",
    "vmcb_clean",
    "flushbyasid",
    "decodeassists",
    "pausefilter",
    "pfthreshold",
    "avic",
    "v_vmsave_vmload",
    "vgif",
    "vnmi",
];

/// A QEMU flag name as Linux prints it, where the two differ beyond `-` and `_`.
fn linux_name(qemu: &str) -> String {
    match qemu {
        "sse4.1" => "sse4_1".to_owned(),
        "sse4.2" => "sse4_2".to_owned(),
        "cr8legacy" => "cr8_legacy".to_owned(),
        "tsc-deadline" => "tsc_deadline_timer".to_owned(),
        other => other.replace('-', "_"),
    }
}

/// Every CPUID feature flag microvm knows (crates/arch/src/cpu_flags.rs), as Linux names it.
fn cpuid_flags() -> BTreeSet<String> {
    arch::cpu_flags::CPU_FLAGS
        .iter()
        .map(|f| linux_name(f.name))
        .filter(|n| !LINUX_DERIVED.contains(&n.as_str()))
        .collect()
}

/// `got` (a model's run) against `host`: each of the model's flags that the host has is
/// there; no flag the host lacks appears (but Linux's own); and no CPUID flag of the
/// host's that the model does not define (nor microvm adds: `also`) is left.
fn assert_model_flags(case: &Case, host: &CpuInfo, got: &CpuInfo, model: &BTreeSet<String>, also: &[&str]) {
    let r = case.report();
    let missing: Vec<_> = model.intersection(&host.flags).filter(|f| !got.flags.contains(*f)).collect();
    assert!(missing.is_empty(), "model flags the host has but the guest lacks: {missing:?}\n{r}");
    let new: Vec<_> = got.flags.difference(&host.flags).filter(|f| !LINUX_SYNTHETIC.contains(&f.as_str())).collect();
    assert!(new.is_empty(), "flags the host does not have: {new:?}\n{r}");
    let cpuid = cpuid_flags();
    let leaked: Vec<_> =
        got.flags.iter().filter(|f| cpuid.contains(*f) && !model.contains(*f) && !also.contains(&f.as_str())).collect();
    assert!(leaked.is_empty(), "host CPUID flags the model does not have: {leaked:?}\n{r}");
    let svm: Vec<_> = got.flags.iter().filter(|f| SVM_FEATURES.contains(&f.as_str())).collect();
    assert!(svm.is_empty(), "the host's SVM features: {svm:?}\n{r}");
}

#[test]
fn named_models_give_linux_their_cpuid() {
    let Some(case) = run("cpu-models") else { return };
    let r = case.report();
    let host = cpuinfo(&case, "host");
    let epyc = cpuinfo(&case, "EPYC");
    // Identity: QEMU's EPYC (family 23, model 1, stepping 2, its model-id).
    assert_eq!(epyc.get("vendor_id"), "AuthenticAMD", "{r}");
    assert_eq!((epyc.get("cpu family"), epyc.get("model"), epyc.get("stepping")), ("23", "1", "2"), "{r}");
    assert_eq!(epyc.get("model name"), "AMD EPYC Processor", "{r}");
    assert_model_flags(&case, &host, &epyc, &linux_names(EPYC), &["x2apic", "hypervisor"]);
    // The host's extras under -cpu host that EPYC lacks are gone: the TSC-deadline timer
    // (microvm's host default, not in QEMU's EPYC) and every other one the host has.
    let host_only: BTreeSet<_> = host.flags.difference(&epyc.flags).cloned().collect();
    assert!(host_only.contains("tsc_deadline_timer"), "host-only flags {host_only:?}\n{r}");
    assert!(host.flags.contains("npt") && host_only.contains("npt"), "host-only flags {host_only:?}\n{r}");
    eprintln!("flags -cpu host has and -cpu EPYC does not: {host_only:?}");

    // -FLAG takes a model flag away.
    let no_sse4a = cpuinfo(&case, "EPYC,-sse4a");
    assert!(epyc.flags.contains("sse4a") && !no_sse4a.flags.contains("sse4a"), "{r}");
    let mut rest = no_sse4a.flags.clone();
    rest.insert("sse4a".into());
    assert_eq!(rest, epyc.flags, "-sse4a changed more than sse4a\n{r}");

    // qemu64: far fewer flags than the host.
    let q = cpuinfo(&case, "qemu64");
    assert_eq!((q.get("cpu family"), q.get("model")), ("15", "107"), "{r}");
    assert_eq!(q.get("model name"), "QEMU Virtual CPU version 2.5+", "{r}");
    assert_model_flags(&case, &host, &q, &linux_names(QEMU64), &["x2apic", "hypervisor"]);
    for gone in ["sse4_2", "ssse3", "avx", "avx2", "aes", "xsave", "popcnt", "sha_ni", "sse4a", "fsgsbase"] {
        if host.flags.contains(gone) {
            assert!(!q.flags.contains(gone), "qemu64 has the host's {gone}\n{r}");
        }
    }

    // EPYC-Rome on this EPYC host: a warning per missing feature (QEMU's words), and with
    // enforce one line and exit status 1.
    let rome_warnings: Vec<&str> =
        case.output.lines().filter(|l| l.contains("host doesn't support requested feature")).collect();
    assert!(!rome_warnings.is_empty(), "no warning for EPYC-Rome's missing features\n{r}");
    let rome = cpuinfo(&case, "EPYC-Rome");
    assert_eq!(rome.get("model name"), "AMD EPYC-Rome Processor", "{r}");
    assert!(case.output.contains("-cpu EPYC-Rome-v1,enforce: the host doesn't support requested features"), "{r}");
    assert!(case.output.contains("ENFORCE-EXIT 1"), "{r}");
    assert_eq!(case.status, Some(0), "{r}");
}
