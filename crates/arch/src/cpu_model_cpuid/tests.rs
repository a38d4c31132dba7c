use super::*;
use crate::cpu_features::{apply_features, find_flag, CpuFeatures};
use crate::cpu_models::find_model;

fn leaf(function: u32, index: u32, all: u32) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 { function, index, eax: all, ebx: all, ecx: all, edx: all, ..Default::default() }
}

/// A host whose KVM offers every feature bit, with the usual leaves.
fn generous_host() -> Vec<kvm_cpuid_entry2> {
    let mut e = vec![kvm_cpuid_entry2 { eax: 0x1f, ..leaf(0, 0, 0x6874_7541) }];
    for (f, i) in
        [(1, 0), (4, 0), (6, 0), (7, 0), (7, 1), (0xb, 0), (0xd, 0), (0xd, 1), (0x12, 0), (0x14, 0), (0x1f, 0)]
    {
        e.push(leaf(f, i, u32::MAX));
    }
    for c in [2, 5, 6, 7, 9, 17] {
        e.push(leaf(0xd, c, 0x100));
    }
    e.push(kvm_cpuid_entry2 { eax: 0x4000_0001, ..leaf(0x4000_0000, 0, 0) });
    e.push(kvm_cpuid_entry2 { eax: 0x8000_0021, ..leaf(0x8000_0000, 0, 0) });
    for f in [
        0x8000_0001,
        0x8000_0002,
        0x8000_0003,
        0x8000_0004,
        0x8000_0007,
        0x8000_0008,
        0x8000_000a,
        0x8000_001e,
        0x8000_0021,
    ] {
        e.push(leaf(f, 0, u32::MAX));
    }
    e
}

fn get(e: &[kvm_cpuid_entry2], function: u32, index: u32) -> kvm_cpuid_entry2 {
    *e.iter()
        .find(|x| x.function == function && x.index == index)
        .unwrap_or_else(|| panic!("no leaf {function:#x}.{index}"))
}

fn apply(name: &str, flags: &[(&str, bool)], host: &mut Vec<kvm_cpuid_entry2>) -> Vec<&'static str> {
    let model = find_model(name).unwrap();
    let flags: Vec<_> = flags.iter().map(|(n, on)| (find_flag(n).unwrap(), *on)).collect();
    apply_model(host, &model, &flags).iter().map(|f| f.name).collect()
}

#[test]
fn family_model_stepping_and_brand_string_as_real_cpus_report_them() {
    assert_eq!(version_word(6, 60, 4), 0x0003_06c4);
    assert_eq!(version_word(23, 1, 2), 0x0080_0f12); // EPYC 7601
    assert_eq!(version_word(25, 1, 1), 0x00a0_0f11); // EPYC 7xx3 (Milan)
    assert_eq!(version_word(6, 106, 0), 0x0006_06a0);
    assert_eq!(version_word(15, 107, 1), 0x0006_0fb1);
    let b = brand_words("AMD EPYC Processor");
    assert_eq!(b[0], [0x2044_4d41, 0x4359_5045, 0x6f72_5020, 0x7373_6563]); // "AMD EPYC Process"
    assert_eq!(b[1], [0x0000_726f, 0, 0, 0]);
    assert_eq!(b[2], [0; 4]);
}

#[test]
fn the_guest_sees_the_model_identity_and_its_leaves() {
    let mut e = generous_host();
    assert!(apply("EPYC", &[], &mut e).is_empty());
    let l0 = get(&e, 0, 0);
    assert_eq!((l0.eax, l0.ebx, l0.edx, l0.ecx), (0xd, 0x6874_7541, 0x6974_6e65, 0x444d_4163)); // AuthenticAMD
    assert_eq!(get(&e, 0x8000_0000, 0).eax, 0x8000_001e);
    assert_eq!(get(&e, 1, 0).eax, 0x0080_0f12);
    assert_eq!(get(&e, 0x8000_0001, 0).eax, 0x0080_0f12);
    assert_eq!(get(&e, 0x8000_0002, 0).eax, 0x2044_4d41);
    // Leaves above the model's levels are gone; the KVM leaves stay.
    assert!(e.iter().all(|x| !matches!(x.function, 0x12 | 0x14 | 0x1f | 0x8000_0021)));
    assert_eq!(get(&e, 0x4000_0000, 0).eax, 0x4000_0001);
    // Feature words: the model's, x2apic (QEMU's KVM default), and what KVM decides.
    let l1 = get(&e, 1, 0);
    assert_eq!(l1.ecx, 0x76d8_320b | (1 << 21) | (1 << 27) | (1 << 31));
    assert_eq!(l1.edx, 0x078b_fbff | (1 << 28));
    assert_eq!(get(&e, 7, 0).ebx, 0x209c_01a9);
    assert_eq!(get(&e, 7, 0).ecx, 1 << 4, "only OSPKE, which the CPU sets at run time");
    assert_eq!(get(&e, 7, 1).eax, 0);
    // AMD repeats leaf 1 EDX bits in 0x8000_0001 EDX: EPYC 7601's value.
    assert_eq!(get(&e, 0x8000_0001, 0).edx, 0x2fd3_fbff);
    assert_eq!(get(&e, 0x8000_0007, 0).edx, 0, "no invtsc in a model");
}

/// On an Intel host KVM's 0x8000_0001 EDX has no copies of leaf 1: an AMD model still
/// gets them (QEMU adds them too), and nothing is warned about.
#[test]
fn amd_models_on_an_intel_host_get_the_leaf_1_copies() {
    let mut e = generous_host();
    for x in e.iter_mut().filter(|x| x.function == 0x8000_0001) {
        x.edx = 0x2c10_0800; // syscall nx pdpe1gb rdtscp lm, as Intel reports
    }
    let missing = apply("EPYC", &[], &mut e);
    assert_eq!(missing, ["mmxext", "fxsr-opt"], "AMD-only bits, named; the copies are not");
    assert_eq!(get(&e, 0x8000_0001, 0).edx, 0x2fd3_fbff & !((1 << 22) | (1 << 25)));
}

#[test]
fn intel_models_on_the_same_host() {
    let mut e = generous_host();
    assert!(apply("Haswell-noTSX", &[], &mut e).is_empty());
    let l0 = get(&e, 0, 0);
    assert_eq!((l0.ebx, l0.edx, l0.ecx), (0x756e_6547, 0x4965_6e69, 0x6c65_746e)); // GenuineIntel
    assert_eq!(get(&e, 0x8000_0000, 0).eax, 0x8000_0008);
    assert_eq!(get(&e, 1, 0).eax, 0x0003_06c1);
    assert_eq!(get(&e, 7, 0).ebx, 0x0fb9 & !0x810);
    assert_eq!(get(&e, 0x8000_0001, 0).edx, 0x2810_0800, "no AMD copies for an Intel vendor");
    // AVX-512 and PKU state are not offered to a guest without those features; AVX's is.
    assert_eq!(get(&e, 0xd, 0).eax & 0x2e4, 0x4);
    assert!(e.iter().any(|x| x.function == 0xd && x.index == 2));
    assert!(e.iter().all(|x| !(x.function == 0xd && matches!(x.index, 5..=7 | 9 | 17))));
    assert!(e.iter().all(|x| x.function != 0x12), "no SGX leaf without sgx");
}

#[test]
fn features_the_host_lacks_are_reported_in_qemus_words_and_left_off() {
    let mut e = generous_host();
    for x in e.iter_mut() {
        match (x.function, x.index) {
            (1, 0) => x.ecx &= !(1 << 17), // no pcid
            (7, 0) => x.ebx &= !(1 << 4),  // no hle
            _ => {}
        }
    }
    e.retain(|x| x.function != 0x8000_0008);
    let missing = apply("Skylake-Server", &[], &mut e);
    assert_eq!(missing, ["pcid", "hle"]);
    assert_eq!(get(&e, 1, 0).ecx & (1 << 17), 0);
    let pcid = find_flag("pcid").unwrap();
    assert_eq!(unsupported_message(pcid), "host doesn't support requested feature: CPUID.01H:ECX.pcid [bit 17]");
    assert_eq!(
        unsupported_message(find_flag("hle").unwrap()),
        "host doesn't support requested feature: CPUID[eax=07h,ecx=00h].EBX.hle [bit 4]"
    );
    assert_eq!(
        unsupported_message(find_flag("ibpb").unwrap()),
        "host doesn't support requested feature: CPUID.80000008H:EBX.ibpb [bit 12]"
    );
    // A leaf KVM lacks entirely: every bit the model wants there is missing.
    let mut e = generous_host();
    e.retain(|x| x.function != 0x8000_0008);
    assert_eq!(apply("EPYC-Rome", &[], &mut e), ["clzero", "xsaveerptr", "wbnoinvd", "ibpb", "amd-stibp"]);
}

#[test]
fn plus_and_minus_flags_change_the_model_first() {
    let mut e = generous_host();
    assert!(apply("Haswell", &[("hle", false), ("avx512f", true), ("x2apic", false)], &mut e).is_empty());
    let l7 = get(&e, 7, 0);
    assert_eq!(l7.ebx & (1 << 4), 0);
    assert_ne!(l7.ebx & (1 << 16), 0);
    // x2apic is QEMU's KVM default for every model, applied before the flags: -x2apic drops it.
    assert_eq!(get(&e, 1, 0).ecx & (1 << 21), 0);
    let mut e = generous_host();
    assert!(apply("kvm64", &[], &mut e).is_empty());
    assert_ne!(get(&e, 1, 0).ecx & (1 << 21), 0, "kvm64 has no x2apic of its own; KVM's default adds it");
    // A +flag the host lacks is reported like the model's own.
    let mut e = generous_host();
    for x in e.iter_mut().filter(|x| x.function == 7 && x.index == 0) {
        x.ecx &= !(1 << 16);
    }
    assert_eq!(apply("kvm64", &[("la57", true)], &mut e), ["la57"]);
}

#[test]
fn epyc_milan_v2_raises_the_extended_level_for_leaf_0x8000_0021() {
    let mut e = generous_host();
    assert!(apply("EPYC-Milan-v2", &[], &mut e).is_empty());
    assert_eq!(get(&e, 0x8000_0000, 0).eax, 0x8000_0021);
    assert_eq!(get(&e, 0x8000_0021, 0).eax, 0x45);
}

/// Through `apply_features` (what the vCPU set-up calls): a model with
/// QEMU's default pmu=off hides the counters; sgx goes with its leaf.
#[test]
fn apply_features_with_a_model() {
    let mut e = generous_host();
    let model = find_model("EPYC-Rome").unwrap();
    let f = CpuFeatures { model: Some(model), pmu_off: true, ..Default::default() };
    assert!(apply_features(&mut e, &f).is_empty());
    assert_eq!(get(&e, 0x8000_0001, 0).ecx & (1 << 23), 0, "perfctr-core goes with pmu=off");
    assert_eq!(get(&e, 1, 0).ecx & (1 << 15), 0);
    assert!(e.iter().all(|x| x.function != 0x12));
}

/// The host's optional SVM features (npt, ...) are no model's: Linux showed npt,
/// vmcb_clean and flushbyasid under -cpu qemu64 in the rig until they were cleared.
#[test]
fn no_model_gets_the_hosts_svm_features() {
    for (model, flags, svm) in
        [("EPYC", &[][..], true), ("qemu64", &[][..], true), ("EPYC", &[("svm", false)][..], false)]
    {
        let mut e = generous_host();
        apply(model, flags, &mut e);
        let l = get(&e, 0x8000_000a, 0);
        assert_eq!(l.edx, 0, "{model} {flags:?}");
        assert_eq!(l.eax != 0, svm, "{model} {flags:?}: the revision stays KVM's only with svm");
    }
}
