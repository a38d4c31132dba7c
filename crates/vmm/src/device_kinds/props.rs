//! How an option's properties are described (name, QEMU aliases, value, default, what it
//! does or why it is accepted with no effect), and a `-device`'s properties once the front
//! end has checked them against those descriptions (`DeviceArgs`).
//!
//! The descriptions live here, below the command line, so that each device kind's file
//! (`device_kinds/*.rs`) holds its own; the CLI's parser, `-help` and `-device help` read
//! the same tables (`cli/src/args/schema.rs`).

use std::cell::Cell;

/// One kind of an option with kinds: a `-device` driver, a `-chardev` backend, a
/// `-netdev` type, an `-object` type.
pub struct KindDesc {
    pub name: &'static str,
    pub help: &'static str,
    pub props: &'static [PropDesc],
}

/// One property of an option's value.
#[derive(Clone, Copy)]
pub struct PropDesc {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub value: Value,
    /// The default, as written in `-help`; `None`: no default (required, or absent means
    /// "not set").
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// `Some(why)`: accepted with no effect; the parser checks the value and drops it.
    pub no_effect: Option<&'static str>,
}

/// What a property's value is.
#[derive(Clone, Copy)]
pub enum Value {
    /// on|off (and QEMU's other spellings).
    Bool,
    /// A boolean that may also be written bare (`legacy` = `legacy=on`) in the options
    /// that otherwise need `key=value`.
    Flag,
    /// Free text, shown as this placeholder (`PATH`, `ID`, `N`).
    Text(&'static str),
    /// One of these words. With an effect, the handler checks the value (it knows why a
    /// value is refused); with no effect, the parser does.
    OneOf(&'static [&'static str]),
}

/// A property with an effect, `help` saying what it does.
pub const fn prop(name: &'static str, value: Value, default: Option<&'static str>, help: &'static str) -> PropDesc {
    PropDesc { name, aliases: &[], value, default, help, no_effect: None }
}

/// A property accepted with no effect, `why` saying why.
pub const fn ignored(name: &'static str, value: Value, why: &'static str) -> PropDesc {
    PropDesc { name, aliases: &[], value, default: None, help: "", no_effect: Some(why) }
}

/// `id=ID`, which every backend and device has.
pub const ID: PropDesc =
    prop("id", Value::Text("ID"), None, "A letter, then letters, digits, '-', '.', '_'; unique per option.");

/// A device's own `id=`.
pub const DEVICE_ID: PropDesc = PropDesc { help: "Optional device id.", ..ID };

/// QEMU's `packed=` of every virtio device (default off, as in QEMU). The transport's
/// rather than the kind's: the front end reads it for every kind (`VmConfig::packed_rings`).
pub const PACKED: PropDesc = prop(
    "packed",
    Value::Bool,
    Some("off"),
    "on: also offer the virtio 1.1 packed virtqueue (VIRTIO_F_RING_PACKED); the guest's driver picks the layout. \
     Not with vhost (vhost-vsock, vhost-user-fs, -netdev tap,vhost=on): kernel vhost has no packed ring.",
);

/// `packed=on` on a device whose rings kernel vhost (or virtiofsd through it) runs.
pub const VHOST_NOT_PACKED: &str =
    "packed=on is not supported with vhost: the kernel's vhost has no packed virtqueue; use packed=off";

/// A property as the front end checked it: a known name (aliases resolved), a boolean
/// parsed.
#[derive(Clone, Debug)]
pub struct Prop {
    /// The canonical name.
    pub name: &'static str,
    /// The value as written (`on` for a bare flag).
    pub value: String,
    /// For a boolean property, its parsed value.
    pub on: bool,
    /// The element as written, for messages.
    pub text: String,
}

/// A bad `-device` value: what is wrong and the text it is about (one property, or the
/// whole value when a property is missing).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct PropError {
    pub text: String,
    pub reason: String,
}

/// The properties of one `-device` (the driver name taken out), in command-line order.
pub struct DeviceArgs {
    /// The whole option value, for messages about it.
    pub value: String,
    props: Vec<Prop>,
    /// Bit i: the kind's parse asked for `props[i]` (see [`DeviceArgs::unread`]); a
    /// bitmask rather than a list, so that parsing allocates nothing for it.
    asked: Cell<u64>,
}

impl DeviceArgs {
    pub fn new(value: &str, props: Vec<Prop>) -> Self {
        DeviceArgs { value: value.to_owned(), props, asked: Cell::new(0) }
    }

    /// The property `name`, if given (the last one wins, as in QEMU).
    pub fn get(&self, name: &'static str) -> Option<&Prop> {
        let same = |(_, p): &(usize, &Prop)| p.name == name;
        let asked = self.props.iter().enumerate().filter(same).fold(0, |bits, (i, _)| bits | bit(i));
        self.asked.set(self.asked.get() | asked);
        self.props.iter().rev().find(|p| p.name == name)
    }

    /// A given property the kind's parse never asked for: one its description lists but
    /// its parse does not handle (a bug, which the front end reports rather than drop
    /// the property silently).
    pub fn unread(&self) -> Option<&'static str> {
        let asked = self.asked.get();
        self.props.iter().enumerate().find(|(i, _)| *i < 64 && asked & bit(*i) == 0).map(|(_, p)| p.name)
    }

    /// An error about the whole value.
    pub fn error(&self, reason: impl Into<String>) -> PropError {
        PropError { text: self.value.clone(), reason: reason.into() }
    }

    /// A boolean property, `false` when absent.
    pub fn on(&self, name: &'static str) -> bool {
        self.get(name).is_some_and(|p| p.on)
    }

    /// Free text, as written.
    pub fn text(&self, name: &'static str) -> Option<String> {
        self.get(name).map(|p| p.value.clone())
    }

    /// `id=`: QEMU's identifier rule (`id_wellformed`).
    pub fn id(&self) -> Result<Option<String>, PropError> {
        let Some(p) = self.get("id") else { return Ok(None) };
        let mut chars = p.value.chars();
        let well_formed = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !well_formed {
            return Err(p.error("an id is a letter followed by letters, digits, '-', '.' or '_'"));
        }
        Ok(Some(p.value.clone()))
    }

    /// A reference to another option's id (`drive=`, `chardev=`, ...).
    pub fn reference(&self, name: &'static str) -> Result<Option<String>, PropError> {
        match self.get(name) {
            Some(p) if p.value.is_empty() => Err(p.error("needs an id")),
            p => Ok(p.map(|p| p.value.clone())),
        }
    }

    /// A property run through `parse` when given.
    pub fn parsed<T>(
        &self,
        name: &'static str,
        parse: impl Fn(&Prop) -> Result<T, PropError>,
    ) -> Result<Option<T>, PropError> {
        self.get(name).map(parse).transpose()
    }

    /// A required property: `what` says what it must be when it is missing.
    pub fn required<T>(&self, found: Option<T>, what: &str) -> Result<T, PropError> {
        found.ok_or_else(|| self.error(what.to_owned()))
    }
}

/// Property `i`'s bit in `DeviceArgs::asked`; none past 64 properties (more than any
/// `-device` value holds in practice): those are not checked.
fn bit(i: usize) -> u64 {
    1u64.checked_shl(i as u32).unwrap_or(0)
}

impl Prop {
    pub fn error(&self, reason: impl Into<String>) -> PropError {
        PropError { text: self.text.clone(), reason: reason.into() }
    }

    /// A number in decimal or `0x` hex (QEMU's integer properties), at most `max`.
    pub fn number(&self, max: u64) -> Result<u64, PropError> {
        let v = &self.value;
        let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        };
        n.filter(|n| *n <= max).ok_or_else(|| self.error(format!("expected a number up to {max:#x}")))
    }

    /// `guest-cid=`: the kernel refuses 0-2 (hypervisor, local, host) and values of 32
    /// bits or more (U32_MAX is VMADDR_CID_ANY).
    pub fn guest_cid(&self) -> Result<u64, PropError> {
        match self.value.parse::<u64>() {
            Ok(cid) if (3..u64::from(u32::MAX)).contains(&cid) => Ok(cid),
            _ => Err(self.error("guest-cid must be a number from 3 to 4294967294")),
        }
    }
}
