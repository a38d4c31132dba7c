//! `-help` and `-OPTION help`, generated from the option descriptions
//! (`args/options.rs`, `args/device_props.rs`), so the help cannot name an
//! option or property the parser does not take, nor miss one it does.

use vmm::arch_layout::{MAX_MEM_SIZE, MAX_VCPUS, MIN_MEM_SIZE};

use super::keyval::split_list;
use super::options::OPTIONS;
use super::schema::{KindDesc, Opt, OptDesc, PropDesc, Props, Section, Value};
use super::DEFAULT_MEM_SIZE;

/// Column where descriptions start, and the width they wrap at.
const TEXT_COLUMN: usize = 17;
const WIDTH: usize = 78;

const INTRO: &str = "A minimal KVM virtual machine monitor implementing QEMU's microvm machine type. The command line \
    follows QEMU's: single-dash options (the two-dash spelling, e.g. --m, works too), a value is always the next \
    argument, and when an option is repeated the last one wins (-M, -m and -name merge properties). In \
    key=value lists ,, is a literal comma. -OPTION help lists an option's properties (-device DRIVER,help: one \
    driver's).";

/// The other ways to run the binary, after the options' usage line.
const OTHER_USES: &str = "Also: microvm snapshot-info FILE[,offset=N] [--check] (what a snapshot needs, and whether \
    this host can restore it); microvm clone-server --snapshot FILE --listen SOCKET [-- OPTIONS] and microvm clone \
    SOCKET [OPTIONS] (clones of one snapshot, docs/snapshot.md); microvm rebase-snap --base-file BASE --diff-file \
    DIFF (merges a diff snapshot's memory into its base's, as Firecracker's tool); started as firecracker or with Firecracker's \
    flags (--api-sock, --config-file, ...), Firecracker's command line and REST API (docs/firecracker-api.md).";

/// Text printed for `-h`, `-help` and `--help`.
pub fn help_text() -> String {
    let mut out = String::from("Usage: microvm -kernel PATH [options]\n\n");
    wrap(&mut out, 0, INTRO);
    out.push('\n');
    wrap(&mut out, 0, OTHER_USES);
    for section in Section::ALL {
        out.push('\n');
        out.push_str(section.title());
        out.push('\n');
        for desc in OPTIONS.iter().filter(|d| d.section == section) {
            option(&mut out, desc);
        }
    }
    out
}

/// The help `-OPTION help` (or `-device DRIVER,help`) asks for, if `value` asks.
pub(super) fn option_help(desc: &OptDesc, value: &str) -> Option<String> {
    let elems = split_list(value);
    if !elems.iter().any(|e| e == "help" || e == "?") || !answers_help(desc) {
        return None;
    }
    let mut out = String::new();
    match &desc.props {
        Props::Kinds(kinds) => match kinds.iter().find(|k| elems.first().is_some_and(|e| e.ends_with(k.name))) {
            Some(k) => kind(&mut out, desc, k),
            None => option(&mut out, desc),
        },
        _ => option(&mut out, desc),
    }
    if desc.opt == Opt::Cpu {
        out.push('\n');
        out.push_str(&super::host::cpu_models_help());
    }
    Some(out)
}

/// Options whose value is a property list or a choice answer `help`; a
/// path or a free string (`-kernel help`, `-append help`) is just a value.
fn answers_help(desc: &OptDesc) -> bool {
    !matches!(desc.props, Props::None)
        || matches!(
            desc.opt,
            Opt::Cpu | Opt::Accel | Opt::Serial | Opt::Display | Opt::Vga | Opt::Parallel | Opt::Net | Opt::Nic
        )
}

fn option(out: &mut String, desc: &OptDesc) {
    let mut head = format!("  {}", desc.spellings().collect::<Vec<_>>().join(", "));
    if let Some(arg) = desc.arg {
        head = format!("{head} {arg}");
    }
    let mut text = desc.help.to_owned();
    match (desc.opt, desc.note) {
        (Opt::Refused, Some(instead)) => text = format!("Not supported: {instead}."),
        (Opt::Ignored, Some(why)) => text = format!("Accepted, no effect: {why}"),
        _ => {}
    }
    item(out, &head, &text);
    match &desc.props {
        Props::None => {}
        Props::List { props, .. } => props.iter().for_each(|p| property(out, p)),
        Props::Kinds(kinds) => kinds.iter().for_each(|k| kind(out, desc, k)),
    }
}

fn kind(out: &mut String, desc: &OptDesc, kind: &KindDesc) {
    // The required properties, then a hint at the optional ones listed below.
    let mut head = format!("  {} {}", desc.name, kind.name);
    for p in kind.props.iter().filter(|p| p.help.starts_with("Required")) {
        head.push_str(&format!(",{}={}", p.name, value_text(&p.value)));
    }
    if kind.props.iter().any(|p| !p.help.starts_with("Required")) {
        head.push_str("[,prop=value...]");
    }
    item(out, &head, kind.help);
    kind.props.iter().for_each(|p| property(out, p));
}

fn property(out: &mut String, p: &PropDesc) {
    let mut head = match p.value {
        Value::Flag => format!("      {}[=on|off]", p.name),
        ref v => format!("      {}={}", p.name, value_text(v)),
    };
    for alias in p.aliases {
        head.push_str(&format!(", {alias}="));
    }
    let mut text = match p.no_effect {
        Some(why) => format!("Accepted, no effect: {why}"),
        None => p.help.to_owned(),
    };
    if let Some(default) = p.default {
        text.push_str(&format!(" Default: {default}."));
    }
    item(out, &head, &text);
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Bool | Value::Flag => "on|off".to_owned(),
        Value::Text(placeholder) => (*placeholder).to_owned(),
        Value::OneOf(choices) => choices.join("|"),
    }
}

/// `head`, then `text` wrapped at [`TEXT_COLUMN`] (on the same line if the
/// head leaves room).
fn item(out: &mut String, head: &str, text: &str) {
    out.push_str(head);
    if text.is_empty() {
        out.push('\n');
    } else if head.len() + 1 < TEXT_COLUMN {
        out.push_str(&" ".repeat(TEXT_COLUMN - head.len()));
        wrap_rest(out, TEXT_COLUMN, &fill(text));
    } else {
        out.push('\n');
        wrap(out, TEXT_COLUMN, &fill(text));
    }
}

/// The limits help texts refer to, from their constants.
fn fill(text: &str) -> String {
    text.replace("{DEFAULT_MEM}", &format!("{}M", DEFAULT_MEM_SIZE >> 20))
        .replace("{MIN_MEM}", &format!("{}M", MIN_MEM_SIZE >> 20))
        .replace("{MAX_MEM}", &format!("{}T", MAX_MEM_SIZE >> 40))
        .replace("{MAX_VCPUS}", &MAX_VCPUS.to_string())
        .replace("{LOG_ITEMS}", &super::host::LOG_ITEMS_IGNORED.join(" "))
}

fn wrap(out: &mut String, indent: usize, text: &str) {
    out.push_str(&" ".repeat(indent));
    wrap_rest(out, indent, text);
}

/// Words of `text` from the current column (`indent`), new lines indented.
fn wrap_rest(out: &mut String, indent: usize, text: &str) {
    let mut column = indent;
    let mut first = true;
    for word in text.split_whitespace() {
        if !first && column + 1 + word.len() > WIDTH {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            column = indent;
            first = true;
        }
        if !first {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.len();
        first = false;
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::super::schema::{KindDesc, Opt, PropDesc, Props, Value};
    use super::super::test_util::{args, launch};
    use super::super::{parse, Command};
    use super::*;

    /// Every property an option's description lists, with the kind it belongs to.
    fn described(desc: &OptDesc) -> Vec<(Option<&'static KindDesc>, &'static PropDesc)> {
        match desc.props {
            Props::None => Vec::new(),
            Props::List { props, .. } => props.iter().map(|p| (None, p)).collect(),
            Props::Kinds(kinds) => kinds.iter().flat_map(|k| k.props.iter().map(move |p| (Some(k), p))).collect(),
        }
    }

    #[test]
    fn help_names_every_option_and_property() {
        let h = help_text();
        for desc in OPTIONS {
            for spelling in desc.spellings() {
                assert!(h.contains(spelling), "help text lacks {spelling}");
            }
            if let Some(note) = desc.note {
                assert!(h.contains(note.split_whitespace().next().unwrap()), "{}: note missing", desc.name);
            }
            for (kind, p) in described(desc) {
                if let Some(k) = kind {
                    assert!(
                        h.contains(&format!("{} {}", desc.name, k.name)),
                        "help text lacks {} {}",
                        desc.name,
                        k.name
                    );
                }
                assert!(h.contains(&format!("      {}", p.name)), "help text lacks {} property {}", desc.name, p.name);
                for alias in p.aliases {
                    assert!(h.contains(&format!("{alias}=")), "help text lacks alias {alias}");
                }
            }
        }
        assert!(!h.contains('{'), "an unfilled placeholder: {h}");
        let wrapped = h.lines().filter(|l| l.starts_with(&" ".repeat(TEXT_COLUMN)));
        assert!(wrapped.clone().count() > 100 && wrapped.into_iter().all(|l| l.len() <= WIDTH), "{h}");
    }

    #[test]
    fn help_states_the_limits() {
        let h = help_text();
        assert!(h.contains(&format!("1..{MAX_VCPUS}")));
        assert!(h.contains(&format!("{}M", MIN_MEM_SIZE >> 20)));
        assert!(h.contains(&format!("{}T", MAX_MEM_SIZE >> 40)));
        assert!(h.contains(&format!("{}M", DEFAULT_MEM_SIZE >> 20)));
    }

    #[test]
    fn option_help_lists_the_properties() {
        for desc in OPTIONS.iter().filter(|d| !matches!(d.props, Props::None)) {
            for question in ["help", "?"] {
                let Ok(Command::Help(text)) = parse(args(&[desc.name, question])) else {
                    panic!("{} {question} is not help", desc.name)
                };
                for (_, p) in described(desc) {
                    assert!(text.contains(p.name), "{} help lacks {}", desc.name, p.name);
                }
                assert!(!text.contains("Usage:"), "only the option's own help");
            }
        }
        let Ok(Command::Help(text)) = parse(args(&["-device", "virtio-blk-device,help"])) else { panic!() };
        assert!(text.contains("drive=ID") && !text.contains("netdev="), "{text}");
        let Ok(Command::Help(text)) = parse(args(&["-chardev", "socket,help"])) else { panic!() };
        assert!(text.contains("fd=N") && !text.contains("signal"), "{text}");
        // A path or a free string is just a value.
        assert_eq!(launch(&["-append", "help"]).unwrap().vm.kernel.cmdline, "help");
    }

    /// What a property's value might be on a command line.
    fn sample(value: &Value) -> &'static str {
        match value {
            Value::Bool | Value::Flag => "off",
            Value::OneOf(choices) => choices[0],
            Value::Text("PATH" | "FILE") => "/p",
            Value::Text("N" | "PORT") => "1",
            Value::Text("SIZE") => "1G",
            Value::Text("microvm" | "kvm") => value_text(value).leak(),
            Value::Text(_) => "x",
        }
    }

    /// Every described property reaches a handler that knows it (a parse may
    /// still fail for other reasons: a missing id, an undefined backend).
    #[test]
    fn every_described_property_is_handled() {
        for desc in OPTIONS {
            for (kind, p) in described(desc) {
                let setting = format!("{}={}", p.name, sample(&p.value));
                let value = match (desc.opt, kind) {
                    (Opt::Qmp | Opt::QmpPretty, Some(k)) if k.name.starts_with("unix") => format!("unix:/q,{setting}"),
                    (Opt::Qmp | Opt::QmpPretty, Some(_)) => format!("tcp::1,{setting}"),
                    (_, Some(k)) => format!("{},{setting}", k.name),
                    (_, None) => setting,
                };
                let line = [desc.name, &value];
                if let Err(e) = launch(&line) {
                    assert!(!e.to_string().contains("not handled"), "{line:?}: {e}");
                    assert!(!e.to_string().contains("unknown property"), "{line:?}: {e}");
                }
            }
        }
    }
}
