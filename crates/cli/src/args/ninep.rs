//! 9p shares: `-fsdev local,...` (a backend `-device virtio-9p-device,fsdev=ID` takes) and
//! `-virtfs local,...` (QEMU's shorthand for both). The device itself is in `devices.rs`.
//!
//! Decisions (each also stated in `-help` and docs/dropin.md):
//! - Only the `local` driver (QEMU's others, `proxy` and `synth`, are gone or test-only).
//! - `security_model` is required, as in QEMU. `none`: files the guest creates belong to
//!   microvm's user. `passthrough`: to the guest user who created them, with the guest's
//!   mode (devices' `ninep/creds.rs`), which needs microvm to run as root, as QEMU does;
//!   without the rights such a creation fails with EPERM. With both, the guest's
//!   chown/chmod reach the host file. `mapped-xattr` (and its old name `mapped`): the
//!   guest's owners and modes in the files' `user.virtfs.*` xattrs, as QEMU keeps them
//!   (`ninep/mapped.rs`). `mapped-file` (credentials in hidden `.virtfs_metadata` files) is
//!   refused in one line.

use std::path::PathBuf;

use super::keyval::{kind_name, kind_settings, Setting};
use super::schema::Value::{Bool, OneOf, Text};
use super::schema::{ignored, prop, KindDesc, PropDesc, ID};
use super::{invalid, unhandled, ArgsError};
use devices::virtio::ninep::SecurityModel;

pub(super) const FSDEV: &str = "-fsdev";
pub(super) const VIRTFS: &str = "-virtfs";

const SECURITY_MODEL: PropDesc = prop(
    "security_model",
    OneOf(&["none", "passthrough", "mapped-xattr", "mapped", "mapped-file"]),
    None,
    "Required, as in QEMU. The guest sees the host's owners and modes, and its chmod/chown go to the host file. \
     none: files the guest creates belong to microvm's user. passthrough: to the guest user who creates them, \
     with the guest's mode, as QEMU's; microvm must run as root for it (otherwise creating as another user fails \
     with EPERM). mapped-xattr (or mapped): host files stay microvm's (created 0600, directories 0700) and the \
     guest's owners and modes, chmod and chown live in their user.virtfs.* xattrs, as QEMU keeps them. \
     mapped-file is refused.",
);
const PATH: PropDesc = prop("path", Text("DIR"), None, "Required: the host directory the guest sees.");
const READONLY: PropDesc =
    prop("readonly", Bool, Some("off"), "on: every change (write, create, rename, chmod...) fails with EROFS.");
/// `-virtfs`'s `mount_tag=` is its device's.
use vmm::device_kinds::NINEP_MOUNT_TAG as MOUNT_TAG;
const IGNORED: &[PropDesc] = &[
    ignored("writeout", OneOf(&["immediate"]), "writes already reach the host file before the guest's call returns."),
    ignored("fmode", Text("MODE"), "only the mapped models use it, and they are refused."),
    ignored("dmode", Text("MODE"), "only the mapped models use it, and they are refused."),
    ignored("multidevs", OneOf(&["remap", "forbid", "warn"]), "inode numbers are the host's, as with warn."),
];

/// `-fsdev` drivers.
pub(super) const FSDEV_KINDS: &[KindDesc] = &[KindDesc {
    name: "local",
    help: "A host directory for -device virtio-9p-device,fsdev=ID. The 9p server stays inside it: names are \
           single components (no ..), host symlinks are not followed, and its thread is under Landlock.",
    props: &[
        PropDesc { help: "Required; -device virtio-9p-device,fsdev=ID refers to it.", ..ID },
        PATH,
        SECURITY_MODEL,
        READONLY,
        IGNORED[0],
        IGNORED[1],
        IGNORED[2],
        IGNORED[3],
    ],
}];

/// `-virtfs` drivers: an `-fsdev` and its device in one option.
pub(super) const VIRTFS_KINDS: &[KindDesc] = &[KindDesc {
    name: "local",
    help: "-fsdev local plus -device virtio-9p-device in one option, as QEMU's -virtfs.",
    props: &[
        PATH,
        MOUNT_TAG,
        SECURITY_MODEL,
        READONLY,
        PropDesc { help: "The fsdev's id (default: the mount tag).", ..ID },
        IGNORED[0],
        IGNORED[1],
        IGNORED[2],
        IGNORED[3],
    ],
}];

/// A `-fsdev` waiting for its device.
pub(super) struct Fsdev {
    pub(super) id: String,
    pub(super) path: PathBuf,
    pub(super) read_only: bool,
    pub(super) security_model: SecurityModel,
}

/// `-fsdev local,id=ID,path=DIR,security_model=none|passthrough|mapped-xattr[,readonly=on]`.
pub(super) fn fsdev(value: &str) -> Result<Fsdev, ArgsError> {
    let local = parse(FSDEV, value, FSDEV_KINDS)?;
    let Some(id) = local.id else {
        return Err(invalid(FSDEV, value, "id=ID is required (-device virtio-9p-device,fsdev=ID refers to it)"));
    };
    if local.tag.is_some() {
        return Err(unhandled(FSDEV, "mount_tag"));
    }
    Ok(Fsdev { id, path: local.path, read_only: local.read_only, security_model: local.model })
}

/// `-virtfs local,path=DIR,mount_tag=TAG,security_model=...[,id=ID][,readonly=on]`: the
/// fsdev (its id `id=` or, as in QEMU, the mount tag) and the tag of its device.
pub(super) fn virtfs(value: &str) -> Result<(Fsdev, String), ArgsError> {
    let local = parse(VIRTFS, value, VIRTFS_KINDS)?;
    let Some(tag) = local.tag else {
        return Err(invalid(VIRTFS, value, "mount_tag=TAG is required (what the guest mounts)"));
    };
    let id = local.id.unwrap_or_else(|| tag.clone());
    Ok((Fsdev { id, path: local.path, read_only: local.read_only, security_model: local.model }, tag))
}

struct Local {
    id: Option<String>,
    path: PathBuf,
    read_only: bool,
    tag: Option<String>,
    model: SecurityModel,
}

fn parse(option: &'static str, value: &str, kinds: &'static [KindDesc]) -> Result<Local, ArgsError> {
    let driver = kind_name(option, value, "driver")?;
    let Some(kind) = kinds.iter().find(|k| Some(k.name) == driver.as_deref()) else {
        return Err(invalid(option, value, "only the local driver: local,path=DIR,security_model=none,..."));
    };
    let (mut id, mut path, mut model, mut read_only, mut tag) = (None, None, None, false, None);
    for s in kind_settings(option, value, "driver", kind)? {
        match s.name() {
            "id" => id = Some(s.id(option)?),
            "path" => path = Some(s.path(option)?),
            "security_model" => model = Some(security_model(option, &s)?),
            "readonly" => read_only = s.on,
            "mount_tag" => tag = Some(parse_mount_tag(option, s)?),
            name => return Err(unhandled(option, name)),
        }
    }
    let Some(path) = path else {
        return Err(invalid(option, value, "path=DIR is required (the host directory to share)"));
    };
    let Some(model) = model else {
        return Err(invalid(option, value, "security_model=none, passthrough or mapped-xattr is required"));
    };
    Ok(Local { id, path, read_only, tag, model })
}

fn security_model(option: &'static str, s: &Setting) -> Result<SecurityModel, ArgsError> {
    match s.value.as_str() {
        "none" => Ok(SecurityModel::None),
        "passthrough" => Ok(SecurityModel::Passthrough),
        "mapped-xattr" | "mapped" => Ok(SecurityModel::MappedXattr),
        "mapped-file" => Err(invalid(
            option,
            &s.text,
            "microvm keeps no credentials in hidden files; use security_model=mapped-xattr (the same \
             credentials in xattrs)",
        )),
        _ => Err(invalid(option, &s.text, "expected security_model=none, passthrough or mapped-xattr")),
    }
}

/// `mount_tag=`: the device's rule (`vmm::device_kinds`).
fn parse_mount_tag(option: &'static str, s: Setting) -> Result<String, ArgsError> {
    vmm::device_kinds::ninep_mount_tag(&s.into_prop()).map_err(|e| invalid(option, &e.text, e.reason))
}

#[cfg(test)]
mod tests;
