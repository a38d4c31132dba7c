//! The options about how the VM runs on the host rather than what it has:
//! `-accel`, `-cpu`, `-rtc`, `-overcommit`, `-d`. Their properties are
//! described here, once (the option entries are in `options.rs`).
//!
//! QEMU behaviours kept:
//! - accelerators: `-accel A -accel B` and `accel=A:B` are tried in order and
//!   the first usable one wins. Only kvm is ever usable in microvm, so a list
//!   with kvm in it runs on KVM and a list without it is an error;
//! - `-cpu MODEL,+FLAG,-FLAG,FLAG=on|off,pmu=off,migratable=on|off,enforce`:
//!   host (the default) or one of QEMU's named models (`arch::cpu_models`);
//!   what KVM can honour is applied (see `arch::cpu_features`), a feature the
//!   host lacks is one warning in QEMU's words when the VM is built (an error
//!   with `enforce`), other properties are accepted and listed in one warning;
//! - `-d ITEM,...`: unknown items are errors, `help` lists them.

use vmm::cpu_features::{find_flag, CpuFeatures, CPU_FLAGS};
use vmm::cpu_models::{find_model, model_names};

use super::keyval::{elements, parse_bool, settings, ShortForms};
use super::schema::Value::{Bool, Flag, OneOf, Text};
use super::schema::{ignored, prop, PropDesc};
use super::{invalid, unhandled, ArgsError};

/// Accelerators QEMU knows; only kvm exists in microvm.
const ACCELERATORS: &[&str] = &["kvm", "tcg", "xen", "hvf", "whpx", "nvmm", "qtest"];

/// `-cpu` properties (besides the feature flags, listed from `CPU_FLAGS`).
pub(super) const CPU_PROPS: &[PropDesc] = &[
    prop(
        "model",
        Text("MODEL"),
        Some("host"),
        "host (max is the same): the host CPU as KVM exposes it. Or one of QEMU's named models (-cpu help lists \
         them): the guest sees the model's vendor, family/model/stepping, model-id and features, each kept only \
         where KVM supports it (a missing one is a warning in QEMU's words).",
    ),
    prop(
        "enforce",
        Flag,
        Some("off"),
        "A feature the model (or a +FLAG) asks for that the host lacks ends microvm with an error instead of a \
         warning, as in QEMU.",
    ),
    ignored("check", Flag, "QEMU's default: features the host lacks are warned about."),
    prop(
        "pmu",
        Bool,
        Some("on with host, off with a model (QEMU's defaults)"),
        "off hides the performance counters (CPUID leaf 0xa, PDCM, perfctr-core).",
    ),
    prop(
        "migratable",
        Bool,
        Some("KVM's set as is"),
        "With host: on drops the features that pin a guest to its host (invtsc) unless +invtsc asks for them; off \
         keeps them. A model never has invtsc unless asked for.",
    ),
];

/// `-rtc` properties.
pub(super) const RTC_PROPS: &[PropDesc] = &[
    prop(
        "base",
        OneOf(&["utc", "localtime"]),
        Some("utc"),
        "What the CMOS clock (-M rtc=on) shows: UTC, or the host's local time.",
    ),
    prop("clock", OneOf(&["host"]), Some("host"), "Only host: the clock follows the host's wall clock."),
    ignored(
        "driftfix",
        OneOf(&["slew", "none"]),
        "the clock is read from the host's, never counted in ticks, so it cannot drift.",
    ),
];

/// `-overcommit` properties.
pub(super) const OVERCOMMIT_PROPS: &[PropDesc] = &[
    prop("mem-lock", Bool, Some("off"), "Lock guest RAM into host memory (mlock), faulting it all in at start."),
    prop("cpu-pm", OneOf(&["off"]), Some("off"), "Only off: idle vCPUs exit to KVM."),
];

/// `-d` log items: the one with an effect, then QEMU's others (accepted, warned about).
pub(super) const LOG_ITEM_GUEST_ERRORS: &str = "guest_errors";
pub(super) const LOG_ITEMS_IGNORED: &[&str] = &[
    "out_asm",
    "in_asm",
    "op",
    "op_opt",
    "op_ind",
    "op_plugin",
    "int",
    "exec",
    "cpu",
    "fpu",
    "mmu",
    "pcall",
    "cpu_reset",
    "unimp",
    "page",
    "nochain",
    "plugin",
    "strace",
    "tid",
];

/// What `-cpu` asked for: the flags applied, and the rest (for one warning).
#[derive(Default)]
pub(super) struct CpuOptions {
    pub(super) features: CpuFeatures,
    pub(super) ignored: Vec<String>,
}

/// `-cpu MODEL[,+FLAG|-FLAG|FLAG=on|off|pmu=|migratable=|enforce|...]`; a
/// later `-cpu` replaces an earlier one, as in QEMU.
pub(super) fn parse_cpu(value: &str) -> Result<CpuOptions, ArgsError> {
    const CPU: &str = "-cpu";
    let mut parts = super::keyval::split_list(value).into_iter();
    let name = parts.next().unwrap_or_default();
    let name = name.strip_prefix("model=").unwrap_or(&name);
    let mut out = CpuOptions::default();
    if name != "host" && name != "max" {
        let Some(model) = find_model(name) else {
            return Err(invalid(CPU, name, "unknown CPU model; -cpu help lists host and QEMU's models microvm has"));
        };
        out.features.model = Some(model);
        // QEMU's default for named models: no PMU (pmu= below overrides it).
        out.features.pmu_off = true;
    }
    for part in parts.filter(|p| !p.is_empty()) {
        let (name, on) = match (part.strip_prefix('+'), part.strip_prefix('-'), part.split_once('=')) {
            (Some(name), _, _) => (name.to_owned(), Some(true)),
            (_, Some(name), _) => (name.to_owned(), Some(false)),
            (_, _, Some((k, v))) => (k.to_owned(), parse_bool(v)),
            _ => (part.clone(), None),
        };
        match (name.as_str(), on) {
            ("pmu", Some(on)) => out.features.pmu_off = !on,
            ("migratable", Some(on)) => out.features.migratable = on,
            ("enforce", None) if !part.contains('=') => out.features.enforce = true,
            ("enforce", Some(on)) => out.features.enforce = on,
            ("check", None) if !part.contains('=') => {}
            ("check", Some(_)) => {}
            ("pmu" | "migratable" | "enforce" | "check", None) => {
                return Err(invalid(CPU, &part, super::keyval::BOOL_EXPECTED))
            }
            (flag, Some(on)) if find_flag(flag).is_some() => {
                out.features.flags.push((find_flag(flag).expect("just found"), on));
            }
            _ => out.ignored.push(part),
        }
    }
    Ok(out)
}

/// `-cpu help`: the models, as QEMU lists them, and the flags.
pub(super) fn cpu_models_help() -> String {
    let mut out = String::from("Available CPUs:\n");
    out.push_str(&format!("  {:<28} {}\n", "host", "the host CPU as KVM exposes it (the default)"));
    out.push_str(&format!("  {:<28} {}\n", "max", "as host"));
    for (name, what) in model_names() {
        out.push_str(&format!("  {name:<28} {what}\n"));
    }
    out.push_str("\nRecognized CPUID flags:\n");
    let names: Vec<&str> = CPU_FLAGS.iter().map(|f| f.name).collect();
    let mut line = String::from(" ");
    for name in names {
        if line.len() + name.len() + 1 > 78 {
            out.push_str(&line);
            out.push('\n');
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(name);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The warning for `-cpu` settings that have no effect, if any.
pub(super) fn cpu_warning(ignored: &[String]) -> Option<String> {
    (!ignored.is_empty()).then(|| {
        format!(
            "-cpu: ignored {} (microvm applies pmu=, migratable=, enforce and QEMU's feature flags: -cpu help \
             lists them)",
            ignored.join(", ")
        )
    })
}

/// One `-accel` (`-accel kvm`, `-accel accel=tcg`): the accelerator's name.
pub(super) fn parse_accel(value: &str) -> Result<String, ArgsError> {
    let elems = elements("-accel", value, Some("accel"), ShortForms::FlagsOnly)?;
    let mut name = None;
    for e in elems {
        match (e.key.as_str(), e.value) {
            ("accel", Some(v)) => name = Some(v),
            _ => return Err(invalid("-accel", value, "accelerator properties are not supported; use -accel kvm")),
        }
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(invalid("-accel", value, "expected an accelerator, e.g. kvm"));
    };
    Ok(name)
}

/// QEMU's choice among accelerators tried in order (`-accel` repeated or
/// `accel=kvm:tcg`): the first usable wins, and kvm is the only usable one.
pub(super) fn choose_accel(option: &'static str, list: &[String]) -> Result<(), ArgsError> {
    for name in list {
        if !ACCELERATORS.contains(&name.as_str()) {
            return Err(invalid(option, name, format!("unknown accelerator (QEMU's are {})", ACCELERATORS.join(", "))));
        }
    }
    if list.iter().any(|a| a == "kvm") {
        return Ok(());
    }
    let reason = if list.iter().any(|a| a == "tcg") {
        "tcg is never usable: microvm has no emulator and runs guests on KVM only; use kvm"
    } else {
        "not usable: microvm runs guests on KVM only; use kvm"
    };
    Err(invalid(option, &list.join(":"), reason))
}

/// `-rtc base=utc|localtime,clock=host,driftfix=slew`: true for localtime.
pub(super) fn parse_rtc(value: &str) -> Result<bool, ArgsError> {
    const RTC: &str = "-rtc";
    let mut localtime = false;
    for s in settings(RTC, value, None, RTC_PROPS, RTC)? {
        match s.name() {
            "base" => match s.value.as_str() {
                "utc" => localtime = false,
                "localtime" => localtime = true,
                _ => return Err(invalid(RTC, &s.text, "only base=utc and base=localtime (no fixed start date)")),
            },
            "clock" if s.value == "host" => {}
            "clock" => return Err(invalid(RTC, &s.text, "only clock=host: the clock follows the host's")),
            name => return Err(unhandled(RTC, name)),
        }
    }
    Ok(localtime)
}

/// `-overcommit mem-lock=on|off,cpu-pm=off`: true for mem-lock=on.
pub(super) fn parse_overcommit(value: &str) -> Result<bool, ArgsError> {
    const OVERCOMMIT: &str = "-overcommit";
    let mut lock = false;
    for s in settings(OVERCOMMIT, value, None, OVERCOMMIT_PROPS, OVERCOMMIT)? {
        match s.name() {
            "mem-lock" => lock = s.on,
            "cpu-pm" if parse_bool(&s.value) == Some(false) => {}
            "cpu-pm" => return Err(invalid(OVERCOMMIT, &s.text, "cpu-pm=on is not supported; use cpu-pm=off")),
            name => return Err(unhandled(OVERCOMMIT, name)),
        }
    }
    Ok(lock)
}

/// What `-d` asked for.
#[derive(Default)]
pub(super) struct LogItems {
    pub(super) guest_errors: bool,
    pub(super) ignored: Vec<String>,
}

/// `-d ITEM[,ITEM...]` (items accumulate over repeated `-d`, as in QEMU).
pub(super) fn parse_log_items(value: &str, items: &mut LogItems) -> Result<(), ArgsError> {
    for item in value.split(',').filter(|i| !i.is_empty()) {
        if item == LOG_ITEM_GUEST_ERRORS {
            items.guest_errors = true;
        } else if LOG_ITEMS_IGNORED.contains(&item) || item.starts_with("trace:") {
            items.ignored.push(item.to_owned());
        } else {
            return Err(invalid(
                "-d",
                item,
                format!("unknown log item; known: {LOG_ITEM_GUEST_ERRORS}, {}", LOG_ITEMS_IGNORED.join(", ")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use std::ops::Not;

    #[test]
    fn accelerators_first_usable_wins() {
        for line in [
            &["-accel", "kvm"][..],
            &["-accel", "kvm", "-accel", "tcg"],
            &["-accel", "tcg", "-accel", "kvm"],
            &["-accel", "accel=kvm"],
            &["-M", "microvm,accel=kvm:tcg"],
            &["-M", "accel=tcg:kvm"],
            &["-enable-kvm", "-accel", "kvm"],
        ] {
            run(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        }
        assert_invalid(err(&["-accel", "tcg"]), "-accel", "tcg is never usable");
        assert_invalid(err(&["-M", "accel=tcg"]), "-M", "tcg is never usable");
        assert_invalid(err(&["-accel", "xen"]), "-accel", "KVM only");
        assert_invalid(err(&["-accel", "bogus", "-accel", "kvm"]), "-accel", "unknown accelerator");
        assert_invalid(err(&["-accel", "kvm,thread=multi"]), "-accel", "properties");
        assert_invalid(err(&["-accel", ""]), "-accel", "expected an accelerator");
        assert_eq!(
            err(&["-accel", "tcg"]).to_string(),
            "-accel: invalid value 'tcg': tcg is never usable: microvm has no emulator and runs guests on KVM \
             only; use kvm"
        );
    }

    #[test]
    fn cpu_flags_applied_and_the_rest_warned_about() {
        let l = launch(&["-cpu", "host,+x2apic,-sgx,pmu=off,+invtsc,migratable=no,kvm=off,l3-cache=off"]).unwrap();
        let f = &l.vm.cpu;
        let names: Vec<(&str, bool)> = f.flags.iter().map(|(f, on)| (f.name, *on)).collect();
        assert_eq!(names, [("x2apic", true), ("sgx", false), ("invtsc", true)]);
        assert!(f.pmu_off && !f.migratable);
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(l.warnings[0].starts_with("-cpu: ignored kvm=off, l3-cache=off"), "{:?}", l.warnings);
        assert!(l.warnings[0].contains("-cpu help lists them"), "{:?}", l.warnings);
        // Only what is given; a later -cpu replaces an earlier one.
        let l = launch(&["-cpu", "host,x2apic=on", "-cpu", "host,migratable=on"]).unwrap();
        assert_eq!(l.vm.cpu, CpuFeatures { migratable: true, ..Default::default() });
        assert!(l.warnings.is_empty());
        assert_eq!(run(&["-cpu", "max"]).unwrap().cpu, CpuFeatures::default());
        assert_invalid(err(&["-cpu", "Pentium9"]), "-cpu", "unknown CPU model");
        assert_invalid(err(&["-cpu", "host,pmu=maybe"]), "-cpu", "on|off");
    }

    // Issue 18 item 7: named models, their flags, enforce, QEMU's pmu default.
    #[test]
    fn named_cpu_models() {
        for name in [
            "qemu64",
            "kvm64",
            "Haswell",
            "Haswell-noTSX",
            "Haswell-v4",
            "Skylake-Client",
            "Skylake-Client-noTSX-IBRS",
            "Skylake-Server",
            "Skylake-Server-v5",
            "Cascadelake-Server",
            "Cascadelake-Server-noTSX",
            "Icelake-Server",
            "Icelake-Server-noTSX",
            "EPYC",
            "EPYC-IBPB",
            "EPYC-Rome",
            "EPYC-Milan",
            "EPYC-Milan-v2",
            "model=EPYC",
        ] {
            let c = run(&["-cpu", name]).unwrap_or_else(|e| panic!("{name}: {e}"));
            let model = c.cpu.model.unwrap_or_else(|| panic!("{name}: no model"));
            assert!(name.ends_with(model.base) || name.contains(model.base), "{name}: {}", model.base);
            assert!(c.cpu.pmu_off, "{name}: QEMU's models have no PMU by default");
            assert!(!c.cpu.enforce);
        }
        let l = launch(&["-cpu", "Haswell-noTSX,+pcid,-avx2,pmu=on,enforce,check,vendor=AuthenticAMD"]).unwrap();
        let f = &l.vm.cpu;
        assert_eq!(f.model.as_ref().map(|m| m.versioned_name()), Some("Haswell-v2".into()));
        let names: Vec<(&str, bool)> = f.flags.iter().map(|(f, on)| (f.name, *on)).collect();
        assert_eq!(names, [("pcid", true), ("avx2", false)]);
        assert!(f.enforce && !f.pmu_off);
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(l.warnings[0].starts_with("-cpu: ignored vendor=AuthenticAMD"), "{:?}", l.warnings);
        assert!(run(&["-cpu", "EPYC,enforce=off"]).unwrap().cpu.enforce.not());
        assert!(run(&["-cpu", "host,enforce"]).unwrap().cpu.enforce);
        assert_eq!(run(&["-cpu", "EPYC", "-cpu", "host"]).unwrap().cpu, CpuFeatures::default(), "the last -cpu wins");
        assert_invalid(err(&["-cpu", "EPYC,enforce=sometimes"]), "-cpu", "on|off");
    }

    /// `-cpu help` lists host, every model with QEMU's aliases and versions, and the flags.
    #[test]
    fn cpu_help_lists_the_models() {
        let text = match super::super::parse(args(&["-cpu", "help"])).unwrap() {
            super::super::Command::Help(text) => text,
            other => panic!("{other:?}"),
        };
        for needle in [
            "Available CPUs:",
            "  host ",
            "  Haswell-noTSX                alias of Haswell-v2",
            "  EPYC-Milan-v2                AMD EPYC-Milan-v2 Processor",
            "  Skylake-Client-noTSX-IBRS    alias of Skylake-Client-v3",
            "Recognized CPUID flags:",
            " avx512f ",
        ] {
            assert!(text.contains(needle), "{needle:?} not in:\n{text}");
        }
    }

    #[test]
    fn rtc_overcommit_and_log_items() {
        assert!(!run(&[]).unwrap().rtc_localtime);
        assert!(run(&["-rtc", "base=localtime,clock=host,driftfix=slew"]).unwrap().rtc_localtime);
        assert!(!run(&["-rtc", "base=utc"]).unwrap().rtc_localtime);
        assert_invalid(err(&["-rtc", "base=2006-06-17T16:01:21"]), "-rtc", "no fixed start date");
        assert_invalid(err(&["-rtc", "clock=vm"]), "-rtc", "only clock=host");
        assert_invalid(err(&["-rtc", "driftfix=fast"]), "-rtc", "driftfix=slew");
        assert!(run(&["-overcommit", "mem-lock=on"]).unwrap().mem_lock);
        assert!(!run(&["-overcommit", "mem-lock=off,cpu-pm=off"]).unwrap().mem_lock);
        assert_invalid(err(&["-overcommit", "cpu-pm=on"]), "-overcommit", "cpu-pm=off");
        assert_invalid(err(&["-overcommit", "mem-lock=maybe"]), "-overcommit", "on|off");

        let l = launch(&["-d", "guest_errors"]).unwrap();
        assert!(l.vm.guest_errors && l.warnings.is_empty());
        let l = launch(&["-d", "int,cpu_reset", "-d", "guest_errors"]).unwrap();
        assert!(l.vm.guest_errors);
        assert_eq!(l.warnings, ["-d: only guest_errors has an effect; ignored int, cpu_reset"]);
        assert!(!run(&[]).unwrap().guest_errors);
        assert_invalid(err(&["-d", "guest_errors,bogus"]), "-d", "unknown log item");
        let l = launch(&["-D", "/tmp/q.log"]).unwrap();
        assert_eq!(l.log_file.as_deref(), Some(std::path::Path::new("/tmp/q.log")));
        assert_invalid(err(&["-D", ""]), "-D", "empty path");
    }
}
