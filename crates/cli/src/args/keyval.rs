//! QEMU's `key=value,...` option lists, checked against an option's
//! [descriptions](super::schema).
//!
//! Syntax kept from QEMU (`util/qemu-option.c`):
//! - `,,` is a literal comma;
//! - the first element may omit its key (`-M microvm` = `-M type=microvm`);
//! - empty elements (a trailing comma) are skipped;
//! - a repeated key is kept, so the last one wins when walked in order;
//! - in the device-style options, any other element without `=` is a
//!   short-form boolean: `flag` means `flag=on`, `noflag` means `flag=off`.
//!   The machine-style options (`-M`, `-m`, `-smp`, `-accel`) only allow a
//!   bare element for the properties described as [`Value::Flag`].
//!
//! crosvm's `serde_keyvalue` and Cloud Hypervisor's `option_parser` were
//! considered: neither has the `,,` escape nor the `noflag` form, and the
//! first pulls in serde; this layer is a few dozen lines.

use super::schema::{KindDesc, PropDesc, Value};
use super::{invalid, ArgsError};

/// QEMU's boolean spellings.
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "on" | "yes" | "true" | "y" => Some(true),
        "off" | "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

pub(super) const BOOL_EXPECTED: &str = "expected on|off (or yes|no, true|false)";

/// Splits a QEMU option list at commas; `,,` is a literal comma.
pub(super) fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Which bare elements mean a boolean (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ShortForms {
    /// `flag` = `flag=on`, `noflag` = `flag=off`, for any key.
    Everywhere,
    /// A bare element has no value; only [`Value::Flag`] properties take it.
    FlagsOnly,
}

/// One element of an option list.
pub(super) struct Elem {
    pub(super) key: String,
    /// `None`: written bare (only with [`ShortForms::FlagsOnly`]).
    pub(super) value: Option<String>,
    /// The element as written, shown in error messages.
    pub(super) text: String,
}

/// Splits `list` into elements; `implied` names the first element's key
/// when it has no `=`.
pub(super) fn elements(
    option: &'static str,
    list: &str,
    implied: Option<&'static str>,
    short: ShortForms,
) -> Result<Vec<Elem>, ArgsError> {
    let mut out = Vec::new();
    for (i, text) in split_list(list).into_iter().enumerate() {
        if text.is_empty() {
            continue;
        }
        let (key, value) = match text.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => match implied {
                Some(name) if i == 0 => (name.to_owned(), Some(text.clone())),
                _ if short == ShortForms::FlagsOnly => (text.clone(), None),
                _ => match text.strip_prefix("no") {
                    Some(flag) if !flag.is_empty() => (flag.to_owned(), Some("off".to_owned())),
                    _ => (text.clone(), Some("on".to_owned())),
                },
            },
        };
        if key.is_empty() {
            return Err(invalid(option, &text, "empty property name"));
        }
        out.push(Elem { key, value, text });
    }
    Ok(out)
}

/// An element matched to its description, its value checked against the
/// description's [`Value`] (booleans parsed, choices checked).
pub(super) struct Setting {
    pub(super) desc: &'static PropDesc,
    /// The value as written (`on` for a bare flag).
    pub(super) value: String,
    /// For [`Value::Bool`] and [`Value::Flag`]: the parsed boolean.
    pub(super) on: bool,
    pub(super) text: String,
}

impl Setting {
    /// The canonical property name (aliases resolved).
    pub(super) fn name(&self) -> &'static str {
        self.desc.name
    }

    pub(super) fn path(&self, option: &'static str) -> Result<std::path::PathBuf, ArgsError> {
        if self.value.is_empty() {
            return Err(invalid(option, &self.text, "empty path"));
        }
        Ok(self.value.clone().into())
    }

    /// An `id=`: QEMU's identifier rule (`id_wellformed`).
    pub(super) fn id(&self, option: &'static str) -> Result<String, ArgsError> {
        let mut chars = self.value.chars();
        let well_formed = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if well_formed {
            Ok(self.value.clone())
        } else {
            Err(invalid(option, &self.text, "an id is a letter followed by letters, digits, '-', '.' or '_'"))
        }
    }

    /// As the device kinds take it (`vmm::device_kinds::DeviceArgs`).
    pub(super) fn into_prop(self) -> vmm::device_kinds::Prop {
        vmm::device_kinds::Prop { name: self.desc.name, value: self.value, on: self.on, text: self.text }
    }

    /// A reference to another option's id (`drive=`, `chardev=`, ...).
    pub(super) fn reference(&self, option: &'static str) -> Result<String, ArgsError> {
        if self.value.is_empty() {
            return Err(invalid(option, &self.text, "needs an id"));
        }
        Ok(self.value.clone())
    }
}

/// What an unknown key is reported as: `what` names the thing whose
/// properties `table` lists.
pub(super) fn unknown(option: &'static str, elem: &Elem, what: &str, table: &[PropDesc]) -> ArgsError {
    let known: Vec<&str> = table.iter().map(|p| p.name).collect();
    invalid(option, &elem.text, format!("unknown property for {what} (it takes {})", known.join(", ")))
}

/// Finds `elem`'s description in `table` (by name or alias).
pub(super) fn describe(table: &'static [PropDesc], key: &str) -> Option<&'static PropDesc> {
    table.iter().find(|p| p.name == key || p.aliases.contains(&key))
}

/// Checks `elem`'s value against `desc`.
pub(super) fn check(option: &'static str, desc: &'static PropDesc, elem: Elem) -> Result<Setting, ArgsError> {
    let Elem { value, text, .. } = elem;
    let value = match (value, &desc.value) {
        (Some(v), _) => v,
        (None, Value::Flag) => "on".to_owned(),
        (None, _) => return Err(invalid(option, &text, "property needs a value (property=value)")),
    };
    let mut on = false;
    match &desc.value {
        Value::Bool | Value::Flag => {
            on = parse_bool(&value).ok_or_else(|| invalid(option, &text, BOOL_EXPECTED))?;
        }
        // Values of properties with an effect are checked by their handler,
        // which knows why a value is refused.
        Value::OneOf(choices) if desc.no_effect.is_some() && !choices.contains(&value.as_str()) => {
            let allowed: Vec<String> = choices.iter().map(|c| format!("{}={c}", desc.name)).collect();
            return Err(invalid(option, &text, format!("expected {}", allowed.join(" or "))));
        }
        Value::OneOf(_) | Value::Text(_) => {}
    }
    Ok(Setting { desc, value, on, text })
}

/// Splits and checks a whole list against `table`: unknown keys are errors
/// naming `what`, and properties accepted with no effect are dropped here.
pub(super) fn settings(
    option: &'static str,
    list: &str,
    implied: Option<&'static str>,
    table: &'static [PropDesc],
    what: &str,
) -> Result<Vec<Setting>, ArgsError> {
    check_all(option, elements(option, list, implied, ShortForms::Everywhere)?, table, what)
}

/// The kind a `KIND,key=value,...` list names (the last `implied=` wins), if any.
pub(super) fn kind_name(option: &'static str, list: &str, implied: &'static str) -> Result<Option<String>, ArgsError> {
    let elems = elements(option, list, Some(implied), ShortForms::Everywhere)?;
    Ok(elems.into_iter().rev().find(|e| e.key == implied).and_then(|e| e.value))
}

/// [`settings`] for a list whose kind is `kind`: the `implied=` elements
/// (the kind) are skipped, the rest checked against the kind's properties.
pub(super) fn kind_settings(
    option: &'static str,
    list: &str,
    implied: &'static str,
    kind: &'static KindDesc,
) -> Result<Vec<Setting>, ArgsError> {
    let mut elems = elements(option, list, Some(implied), ShortForms::Everywhere)?;
    elems.retain(|e| e.key != implied);
    check_all(option, elems, kind.props, &format!("{option} {}", kind.name))
}

fn check_all(
    option: &'static str,
    elems: Vec<Elem>,
    table: &'static [PropDesc],
    what: &str,
) -> Result<Vec<Setting>, ArgsError> {
    let mut out = Vec::new();
    for elem in elems {
        let Some(desc) = describe(table, &elem.key) else {
            return Err(unknown(option, &elem, what, table));
        };
        let setting = check(option, desc, elem)?;
        if desc.no_effect.is_none() {
            out.push(setting);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_list_escapes() {
        assert_eq!(split_list("a,b"), ["a", "b"]);
        assert_eq!(split_list("a,,b"), ["a,b"]);
        assert_eq!(split_list("a,,,b"), ["a,", "b"]);
        assert_eq!(split_list(""), [""]);
        assert_eq!(split_list(","), ["", ""]);
    }

    #[test]
    fn short_form_booleans() {
        let e = elements("-x", "first,flag,noflag2,no,k=v,,k=w,", Some("implied"), ShortForms::Everywhere).unwrap();
        let kv: Vec<(&str, Option<&str>)> = e.iter().map(|e| (e.key.as_str(), e.value.as_deref())).collect();
        assert_eq!(
            kv,
            [
                ("implied", Some("first")),
                ("flag", Some("on")),
                ("flag2", Some("off")),
                ("no", Some("on")),
                ("k", Some("v,k=w"))
            ]
        );
        let e = elements("-x", "flag", None, ShortForms::Everywhere).unwrap();
        assert_eq!((e[0].key.as_str(), e[0].value.as_deref()), ("flag", Some("on")));
        let e = elements("-x", "first,flag,noflag", Some("type"), ShortForms::FlagsOnly).unwrap();
        assert_eq!((e[1].key.as_str(), e[1].value.as_deref()), ("flag", None));
        assert_eq!((e[2].key.as_str(), e[2].value.as_deref()), ("noflag", None));
        assert!(elements("-x", "", None, ShortForms::Everywhere).unwrap().is_empty());
    }
}
