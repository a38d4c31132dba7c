//! `--cgroup FILE=VALUE` on cgroup v2, as Firecracker's jailer does it: the VM's cgroup is
//! `<cgroup2 mount>/<parent>/<id>`, each `FILE`'s controller is enabled in the
//! `cgroup.subtree_control` of every level above it, the values are written, and the
//! process moves in (`cgroup.procs`) before it execs, so the VM starts inside. With no
//! `--cgroup` and `--cgroup-version 2`, the process moves into `<parent>` if it exists.
//! cgroup v1 is not written (its hierarchies are Firecracker's default, not microvm's).

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("--cgroup: cgroup v1 is not supported by microvm's jailer; pass --cgroup-version 2")]
    V1,
    #[error("cgroup v2 hierarchy not found in /proc/mounts")]
    NoHierarchy,
    #[error("cannot read /proc/mounts: {0}")]
    Mounts(#[source] io::Error),
    #[error("cannot create the cgroup {}: {source}", .path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write {value:?} to {}: {source}", .path.display())]
    Write { path: PathBuf, value: String, source: io::Error },
}

/// What the command line asked of cgroups.
pub struct CgroupRequest<'a> {
    pub version: u8,
    pub id: &'a str,
    pub parent: &'a Path,
    pub properties: &'a [(String, String)],
}

/// Sets up the VM's cgroup and moves this process into it.
pub fn apply(request: &CgroupRequest, mounts: &str) -> Result<(), CgroupError> {
    if request.version == 1 {
        // Firecracker creates nothing either when no property is asked for.
        return if request.properties.is_empty() { Ok(()) } else { Err(CgroupError::V1) };
    }
    let root = v2_root(mounts).ok_or(CgroupError::NoHierarchy)?;
    let parent = root.join(request.parent);
    let pid = std::process::id().to_string();
    if request.properties.is_empty() {
        // Firecracker's "move into the parent cgroup, if there is one".
        return if parent.is_dir() { write(&parent.join("cgroup.procs"), &pid) } else { Ok(()) };
    }
    let own = parent.join(request.id);
    std::fs::create_dir_all(&own).map_err(|source| CgroupError::Create { path: own.clone(), source })?;
    for (file, value) in request.properties {
        let controller = file.split('.').next().unwrap_or_default();
        // `cgroup.*` files are the core's, there in every cgroup without a controller.
        if controller != "cgroup" {
            enable_along(&root, &own, controller)?;
        }
        write(&own.join(file), value)?;
    }
    write(&own.join("cgroup.procs"), &pid)
}

/// The mount point of the cgroup2 file system.
pub fn v2_root(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
        (kind == "cgroup2").then(|| PathBuf::from(point))
    })
}

/// `+controller` in the subtree_control of each level from `root` down to `cgroup`'s parent.
fn enable_along(root: &Path, cgroup: &Path, controller: &str) -> Result<(), CgroupError> {
    let Ok(below) = cgroup.strip_prefix(root) else { return Ok(()) };
    let mut level = root.to_path_buf();
    for part in below.iter() {
        let control = level.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == controller) {
            write(&control, &format!("+{controller}"))?;
        }
        level.push(part);
    }
    Ok(())
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, format!("{value}\n")).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v2_mount_is_found_among_v1_ones() {
        let mounts = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
        assert_eq!(v2_root(mounts), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(v2_root("cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"), None);
    }

    #[test]
    fn v1_properties_are_refused_in_one_line_and_v1_without_any_does_nothing() {
        let props = [("cpu.shares".to_owned(), "10".to_owned())];
        let mut request = CgroupRequest { version: 1, id: "vm", parent: Path::new("fc"), properties: &props };
        assert!(matches!(apply(&request, ""), Err(CgroupError::V1)));
        request.properties = &[];
        assert!(apply(&request, "").is_ok());
    }

    #[test]
    fn values_and_controllers_are_written_in_a_cgroup_tree() {
        // A directory standing in for the cgroup2 mount: what is written is plain files.
        let root = std::env::temp_dir().join(format!("microvm-cgroup-test-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let mounts = format!("cgroup2 {} cgroup2 rw 0 0\n", root.display());
        let props = [("pids.max".to_owned(), "7".to_owned())];
        let request = CgroupRequest { version: 2, id: "vm", parent: Path::new("fc/all"), properties: &props };
        apply(&request, &mounts).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(read("fc/all/vm/pids.max"), "7\n");
        assert_eq!(read("cgroup.subtree_control"), "+pids\n");
        assert_eq!(read("fc/cgroup.subtree_control"), "+pids\n");
        assert_eq!(read("fc/all/cgroup.subtree_control"), "+pids\n");
        assert_eq!(read("fc/all/vm/cgroup.procs"), format!("{}\n", std::process::id()));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
