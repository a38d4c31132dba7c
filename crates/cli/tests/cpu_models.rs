//! Issue 18 item 7: `-cpu MODEL` on the host's /dev/kvm. A tiny guest runs
//! CPUID and writes the registers to the serial port, so the test sees the
//! CPU the guest sees: the model's vendor, family/model/stepping and
//! model-id, its feature words cut to what this host's KVM offers (and
//! nothing of the host's beyond them), one QEMU-worded warning per feature
//! the host lacks, and `enforce` turning those into a one-line error.

mod common;

use common::*;
use vmm::cpu_features::{find_flag, Reg};
use vmm::cpu_models::{find_model, CpuModel};

/// The leaves the guest reads: vendor, signature and features, leaf 7,
/// extended features, the brand string.
const QUERIES: &[(u32, u32)] =
    &[(0, 0), (1, 0), (7, 0), (0x8000_0000, 0), (0x8000_0001, 0), (0x8000_0002, 0), (0x8000_0003, 0), (0x8000_0004, 0)];

/// What CPUID returned for each query, [eax, ebx, ecx, edx].
struct Seen(Vec<[u32; 4]>);

impl Seen {
    fn leaf(&self, leaf: u32) -> [u32; 4] {
        self.0[QUERIES.iter().position(|q| q.0 == leaf).expect("queried")]
    }

    fn reg(&self, leaf: u32, reg: Reg) -> u32 {
        self.leaf(leaf)[reg as usize]
    }

    fn vendor(&self) -> String {
        let [_, b, c, d] = self.leaf(0);
        [b, d, c].iter().flat_map(|r| r.to_le_bytes()).map(char::from).collect()
    }

    fn brand(&self) -> String {
        let bytes: Vec<u8> =
            (0x8000_0002..=0x8000_0004).flat_map(|l| self.leaf(l)).flat_map(|r| r.to_le_bytes()).collect();
        String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_owned()
    }
}

/// Boots the CPUID guest with `-cpu cpu`; the parsed registers and stderr.
fn boot(dir: &TempDir, cpu: &str) -> (Seen, String) {
    let kernel = dir.file("cpuid.elf", &tiny_guest::cpuid_on_serial_then_reset(QUERIES));
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-cpu", cpu]);
    let out = run(cmd);
    assert_no_panic(&out);
    assert!(out.status.success(), "-cpu {cpu}: {}", out.describe());
    assert_eq!(out.stdout.len(), QUERIES.len() * 16, "-cpu {cpu}: {}", out.describe());
    let words = out.stdout.chunks_exact(16).map(|q| {
        let r = |i: usize| u32::from_le_bytes(q[4 * i..4 * i + 4].try_into().unwrap());
        [r(0), r(1), r(2), r(3)]
    });
    (Seen(words.collect()), out.stderr)
}

/// The bits `model` has in one word.
fn model_word(m: &CpuModel, leaf: u32, reg: Reg) -> u32 {
    m.features.iter().filter(|f| f.leaf == leaf && f.subleaf == 0 && f.reg == reg).fold(0, |a, f| a | (1 << f.bit))
}

/// Bits the guest may see in a word besides the model's own: QEMU's
/// x2apic default, the hypervisor bit, HTT; AMD's copies of leaf 1 EDX.
fn extra_allowed(m: &CpuModel, leaf: u32, reg: Reg) -> u32 {
    match (leaf, reg) {
        (1, Reg::Ecx) => (1 << 21) | (1 << 27) | (1 << 31),
        (1, Reg::Edx) => 1 << 28,
        (7, Reg::Ecx) => 1 << 4,
        (0x8000_0001, Reg::Edx) if m.base.starts_with("EPYC") || m.base == "qemu64" => {
            model_word(m, 1, Reg::Edx) & 0x0183_f3ff
        }
        _ => 0,
    }
}

/// The feature words checked, and whether a KVM may pass the real CPU's
/// bits through in them instead of what microvm set (see `honours_leaf_1_and_7`).
const WORDS: &[(u32, Reg, bool)] = &[
    (1, Reg::Ecx, true),
    (1, Reg::Edx, true),
    (7, Reg::Ebx, true),
    (7, Reg::Ecx, true),
    (7, Reg::Edx, true),
    (0x8000_0001, Reg::Ecx, false),
];

/// Whether this /dev/kvm shows the guest the leaf 1 and 7 feature words
/// microvm sets (KVM does; the project's emulated /dev/kvm passes the real
/// CPU's through, so there those words cannot be checked from the guest).
/// Probed with `-sse4.2`, which every x86-64 host of the last decade has.
fn honours_leaf_1_and_7(dir: &TempDir, host: &Seen) -> bool {
    let sse42 = 1 << find_flag("sse4.2").unwrap().bit;
    if host.reg(1, Reg::Ecx) & sse42 == 0 {
        return false;
    }
    let (probe, _) = boot(dir, "host,-sse4.2");
    let honoured = probe.reg(1, Reg::Ecx) & sse42 == 0;
    if !honoured {
        eprintln!("this /dev/kvm passes the real CPU's leaf 1 and 7 feature words through: those are not checked here");
    }
    honoured
}

/// The warning lines of a run: one per feature the host's KVM lacks.
fn warnings(stderr: &str) -> Vec<&str> {
    stderr.lines().filter_map(|l| l.strip_prefix("microvm: host doesn't support requested feature: ")).collect()
}

#[test]
fn each_model_is_what_the_guest_sees_within_what_kvm_offers() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("cpumodels");
    let (host, stderr) = boot(&dir, "host");
    assert!(stderr.is_empty(), "{stderr}");
    let honoured = honours_leaf_1_and_7(&dir, &host);
    for name in [
        "qemu64",
        "kvm64",
        "Haswell",
        "Haswell-noTSX",
        "Skylake-Client",
        "Skylake-Server",
        "Cascadelake-Server",
        "Icelake-Server",
        "EPYC",
        "EPYC-Rome",
        "EPYC-Milan",
    ] {
        let m = find_model(name).unwrap();
        let (seen, stderr) = boot(&dir, name);
        let vendor = if m.vendor == vmm::cpu_models::Vendor::Amd { "AuthenticAMD" } else { "GenuineIntel" };
        assert_eq!(seen.vendor(), vendor, "{name}");
        assert_eq!(seen.brand(), m.model_id, "{name}");
        assert_eq!(seen.reg(0, Reg::Eax), m.level.min(host.reg(0, Reg::Eax)), "{name}: highest basic leaf");
        assert_eq!(seen.reg(0x8000_0000, Reg::Eax), m.xlevel.min(host.reg(0x8000_0000, Reg::Eax)), "{name}");
        let sig = seen.reg(1, Reg::Eax);
        let family = ((sig >> 8) & 0xf) + ((sig >> 20) & 0xff);
        let model = ((sig >> 4) & 0xf) | ((sig >> 12) & 0xf0);
        assert_eq!((family, model, sig & 0xf), (m.family, m.model, m.stepping), "{name}: {sig:#x}");
        assert_eq!(seen.reg(0x8000_0001, Reg::Eax), sig, "{name}");
        let warned = warnings(&stderr);
        assert_eq!(warned.len(), stderr.lines().count(), "{name}: only the warnings: {stderr}");
        for &(leaf, reg, passed_through) in WORDS {
            if passed_through && !honoured {
                continue;
            }
            let want = model_word(&m, leaf, reg) | if (leaf, reg) == (1, Reg::Ecx) { 1 << 21 } else { 0 };
            let got = seen.reg(leaf, reg);
            let allowed = want | extra_allowed(&m, leaf, reg);
            assert_eq!(
                got & !allowed,
                0,
                "{name} {leaf:#x} {reg:?}: host bits beyond the model: {:#x}",
                got & !allowed
            );
            // Each bit of the model is in the guest, or named in a warning in QEMU's words.
            let word = if leaf == 7 {
                format!("CPUID[eax=07h,ecx=00h].{reg:?}").to_uppercase()
            } else {
                format!("CPUID.{leaf:02X}H:{reg:?}").to_uppercase()
            };
            let word = word.replace("EAX=07H,ECX=00H", "eax=07h,ecx=00h");
            for bit in (0..32).filter(|b| want & (1 << b) != 0) {
                let in_guest = got & (1 << bit) != 0;
                let warned = warned.iter().any(|w| w.starts_with(&word) && w.ends_with(&format!("[bit {bit}]")));
                assert!(
                    in_guest != warned,
                    "{name}: {word} bit {bit}: in the guest {in_guest}, warned {warned}\n{stderr}"
                );
            }
        }
    }
}

/// `enforce` turns the warnings into one error line naming each feature
/// (exit 1); where the host has everything, the guest runs with it.
#[test]
fn enforce_makes_a_missing_feature_an_error() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("cpuenforce");
    let kernel = dir.file("cpuid.elf", &tiny_guest::cpuid_on_serial_then_reset(QUERIES));
    for model in ["EPYC", "Haswell-noTSX", "kvm64,-x2apic"] {
        let (_, stderr) = boot(&dir, model);
        let missing = warnings(&stderr);
        let mut cmd = microvm_legacy(&kernel);
        cmd.args(["-cpu", &format!("{model},enforce")]);
        let out = run(cmd);
        if missing.is_empty() {
            assert!(out.status.success() && out.stderr.is_empty(), "{model}: {}", out.describe());
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{model}: {}", out.describe());
        let line = assert_one_line_error(&out, &["enforce"]);
        let versioned = find_model(model.split(',').next().unwrap()).unwrap().versioned_name();
        let head = format!("microvm: -cpu {versioned},enforce: the host doesn't support requested features: ");
        assert_eq!(line, format!("{head}{}", missing.join(", ")), "{model}");
    }
}
