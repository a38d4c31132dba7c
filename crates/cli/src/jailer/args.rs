//! Firecracker's `jailer` command line: `--id`, `--exec-file`, `--uid`, `--gid` (required),
//! `--chroot-base-dir`, `--netns`, `--cgroup FILE=VALUE` and `--resource-limit NAME=VALUE`
//! (each repeatable), `--cgroup-version`, `--parent-cgroup`, `--daemonize`, `--new-pid-ns`,
//! then `--` and the exec file's own arguments. Values follow their flag (`--id vm1`) or an
//! `=` (`--id=vm1`). Every error is one line, in the words of Firecracker's jailer where it
//! has them.

use crate::firecracker::args::{next_flag, FlagError};
use std::path::{Component, Path, PathBuf};

/// Firecracker's jailer defaults.
pub const DEFAULT_CHROOT_BASE: &str = "/srv/jailer";
pub const DEFAULT_CGROUP_VERSION: u8 = 1;

/// `--resource-limit` names and the limit each sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `fsize`: the largest file the process may write (RLIMIT_FSIZE).
    FileSize,
    /// `no-file`: one more than the highest descriptor (RLIMIT_NOFILE).
    Files,
}

/// Firecracker's jailer sets `no-file` to this unless told otherwise.
pub const DEFAULT_NO_FILE: u64 = 2048;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JailerArgs {
    pub id: String,
    pub exec_file: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub chroot_base: PathBuf,
    pub netns: Option<PathBuf>,
    /// `--cgroup FILE=VALUE`, in order.
    pub cgroups: Vec<(String, String)>,
    pub cgroup_version: u8,
    /// `--parent-cgroup`; the exec file's name when absent.
    pub parent_cgroup: Option<PathBuf>,
    pub daemonize: bool,
    pub new_pid_ns: bool,
    /// `--resource-limit`, the last of each name winning.
    pub limits: Vec<(Limit, u64)>,
    /// After `--`: the exec file's own arguments.
    pub extra: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JailerCommand {
    /// Boxed: the arguments dwarf the other variants.
    Run(Box<JailerArgs>),
    Version,
    Help,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JailerArgError {
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error("Argument '{0}' required, but not found.")]
    Required(&'static str),
    #[error("Invalid instance ID: it must be 1 to 64 characters, alphanumeric or '-'.")]
    BadId,
    #[error("Invalid uid: {0}")]
    BadUid(String),
    #[error("Invalid gid: {0}")]
    BadGid(String),
    #[error("Invalid format for cgroups: {0}")]
    CgroupFormat(String),
    #[error("Cgroup invalid file: {0}")]
    CgroupFile(String),
    #[error("Invalid cgroup version: {0}")]
    CgroupVersion(String),
    #[error("Parent cgroup path is invalid. Path should not be absolute or contain '..' or '.'")]
    ParentCgroup,
    #[error("Invalid format for resources limits: {0}")]
    LimitFormat(String),
    #[error("Invalid resource argument: {0}")]
    LimitName(String),
    #[error("Invalid limit value for resource: {0}")]
    LimitValue(String),
}

/// (flag, takes a value).
const FLAGS: &[(&str, bool)] = &[
    ("id", true),
    ("exec-file", true),
    ("uid", true),
    ("gid", true),
    ("chroot-base-dir", true),
    ("netns", true),
    ("cgroup", true),
    ("cgroup-version", true),
    ("parent-cgroup", true),
    ("resource-limit", true),
    ("daemonize", false),
    ("new-pid-ns", false),
    ("help", false),
    ("version", false),
];

/// Whether the program was started as `jailer` (a link to the binary, as Firecracker
/// installs its jailer next to `firecracker`).
pub fn selected(argv0: &str) -> bool {
    argv0.rsplit('/').next().unwrap_or(argv0) == "jailer"
}

pub fn parse(args: &[String]) -> Result<JailerCommand, JailerArgError> {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    let mut extra = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            extra.extend(iter.by_ref().cloned());
            break;
        }
        found.push(next_flag(arg, &mut iter, FLAGS)?);
    }
    let has = |flag: &str| found.iter().any(|(f, _)| *f == flag);
    if has("help") {
        return Ok(JailerCommand::Help);
    }
    if has("version") {
        return Ok(JailerCommand::Version);
    }
    let last = |flag: &str| found.iter().rev().find(|(f, _)| *f == flag).map(|(_, v)| v.clone());
    let all = |flag: &'static str| found.iter().filter(move |(f, _)| *f == flag).map(|(_, v)| v.as_str());
    let required = |flag: &'static str| last(flag).ok_or(JailerArgError::Required(flag));

    let id = required("id")?;
    if !crate::firecracker::args::valid_id(&id) {
        return Err(JailerArgError::BadId);
    }
    let exec_file = PathBuf::from(required("exec-file")?);
    let uid = required("uid")?;
    let uid = uid.parse().map_err(|_| JailerArgError::BadUid(uid))?;
    let gid = required("gid")?;
    let gid = gid.parse().map_err(|_| JailerArgError::BadGid(gid))?;
    let cgroup_version = match last("cgroup-version") {
        None => DEFAULT_CGROUP_VERSION,
        Some(v) if v == "1" || v == "2" => v.parse().unwrap_or(DEFAULT_CGROUP_VERSION),
        Some(v) => return Err(JailerArgError::CgroupVersion(v)),
    };
    let parent_cgroup = last("parent-cgroup").map(PathBuf::from);
    if parent_cgroup.as_deref().is_some_and(|p| !plain_relative(p)) {
        return Err(JailerArgError::ParentCgroup);
    }
    let cgroups = all("cgroup").map(cgroup).collect::<Result<_, _>>()?;
    let limits = all("resource-limit").map(limit).collect::<Result<_, _>>()?;
    Ok(JailerCommand::Run(Box::new(JailerArgs {
        id,
        exec_file,
        uid,
        gid,
        chroot_base: last("chroot-base-dir").unwrap_or_else(|| DEFAULT_CHROOT_BASE.into()).into(),
        netns: last("netns").map(PathBuf::from),
        cgroups,
        cgroup_version,
        parent_cgroup,
        daemonize: has("daemonize"),
        new_pid_ns: has("new-pid-ns"),
        limits,
        extra,
    })))
}

/// A path with only normal components: no root, `.` or `..` to climb out of the hierarchy.
fn plain_relative(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// `FILE=VALUE`, FILE named `<controller>.<property>` and inside the cgroup.
fn cgroup(spec: &str) -> Result<(String, String), JailerArgError> {
    let format = || JailerArgError::CgroupFormat(spec.to_owned());
    let (file, value) = spec.split_once('=').ok_or_else(format)?;
    if value.is_empty() || value.contains('=') {
        return Err(format());
    }
    if !plain_relative(Path::new(file)) || !file.contains('.') || file.contains('/') {
        return Err(JailerArgError::CgroupFile(spec.to_owned()));
    }
    Ok((file.to_owned(), value.to_owned()))
}

fn limit(spec: &str) -> Result<(Limit, u64), JailerArgError> {
    let (name, value) = spec.split_once('=').ok_or_else(|| JailerArgError::LimitFormat(spec.to_owned()))?;
    let limit = match name {
        "fsize" => Limit::FileSize,
        "no-file" => Limit::Files,
        _ => return Err(JailerArgError::LimitName(name.to_owned())),
    };
    let value = value.parse().map_err(|_| JailerArgError::LimitValue(value.to_owned()))?;
    Ok((limit, value))
}

pub const HELP: &str = "\
jailer: Firecracker's jailer, on microvm (docs/firecracker-api.md, \"The jailer\")

Usage: jailer --id ID --exec-file FILE --uid UID --gid GID [options] [-- ARGS...]

  --id ID                   the VM's id: 1 to 64 characters, alphanumeric or '-'
  --exec-file FILE          the binary to run jailed (copied into the jail)
  --uid UID, --gid GID      the ids it runs as
  --chroot-base-dir DIR     the jail is DIR/<exec file name>/ID/root (default /srv/jailer)
  --netns PATH              join this network namespace (e.g. /var/run/netns/NAME)
  --cgroup FILE=VALUE       write VALUE to FILE of the VM's cgroup (repeatable)
  --cgroup-version 1|2      the cgroup hierarchy (default 1; microvm writes cgroup v2 only)
  --parent-cgroup PATH      the VM's cgroup is PATH/ID (default: the exec file's name)
  --resource-limit R=N      fsize=BYTES or no-file=N (default no-file=2048; repeatable)
  --daemonize               new session, standard I/O on /dev/null
  --new-pid-ns              run the exec file as pid 1 of a new PID namespace
  --version, --help
  -- ARGS...                passed to the exec file after --id ID
";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    const BASE: [&str; 8] = ["--id", "vm-1", "--exec-file", "/bin/fc", "--uid", "123", "--gid", "100"];

    fn run(extra: &[&str]) -> Result<JailerArgs, JailerArgError> {
        let mut a = BASE.to_vec();
        a.extend_from_slice(extra);
        match parse(&args(&a))? {
            JailerCommand::Run(j) => Ok(*j),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn firecrackers_defaults_and_the_arguments_after_the_separator() {
        let j = run(&["--", "--api-sock", "/run/x.sock"]).unwrap();
        assert_eq!((j.id.as_str(), j.uid, j.gid), ("vm-1", 123, 100));
        assert_eq!(j.chroot_base, Path::new("/srv/jailer"));
        assert_eq!(j.cgroup_version, 1);
        assert!(!j.daemonize && !j.new_pid_ns && j.netns.is_none());
        assert_eq!(j.extra, args(&["--api-sock", "/run/x.sock"]));
    }

    #[test]
    fn every_flag_is_taken_in_either_form() {
        let j = run(&[
            "--chroot-base-dir=/tmp/j",
            "--netns",
            "/var/run/netns/n",
            "--cgroup",
            "cpu.max=5000",
            "--cgroup=pids.max=10",
            "--cgroup-version",
            "2",
            "--parent-cgroup",
            "all/vms",
            "--resource-limit",
            "fsize=1000",
            "--resource-limit=no-file=64",
            "--daemonize",
            "--new-pid-ns",
        ])
        .unwrap();
        assert_eq!(j.chroot_base, Path::new("/tmp/j"));
        assert_eq!(j.netns.as_deref(), Some(Path::new("/var/run/netns/n")));
        assert_eq!(j.cgroups, vec![("cpu.max".into(), "5000".into()), ("pids.max".into(), "10".into())]);
        assert_eq!((j.cgroup_version, j.parent_cgroup.as_deref()), (2, Some(Path::new("all/vms"))));
        assert_eq!(j.limits, vec![(Limit::FileSize, 1000), (Limit::Files, 64)]);
        assert!(j.daemonize && j.new_pid_ns);
    }

    #[test]
    fn bad_input_is_one_clear_error() {
        let e = |extra: &[&str]| run(extra).unwrap_err();
        assert_eq!(parse(&args(&["--id", "a b"])).unwrap_err(), JailerArgError::BadId);
        assert_eq!(parse(&args(&["--id", &"x".repeat(65)])).unwrap_err(), JailerArgError::BadId);
        assert_eq!(parse(&args(&["--id", "a"])).unwrap_err(), JailerArgError::Required("exec-file"));
        assert_eq!(e(&["--uid", "-1"]), JailerArgError::BadUid("-1".into()));
        assert_eq!(e(&["--bogus"]), JailerArgError::Flag(FlagError::Unknown("--bogus".into())));
        assert_eq!(e(&["--netns"]), JailerArgError::Flag(FlagError::MissingValue("netns")));
        assert_eq!(e(&["--daemonize=yes"]), JailerArgError::Flag(FlagError::UnexpectedValue("daemonize")));
        assert_eq!(e(&["--cgroup", "cpu.max"]), JailerArgError::CgroupFormat("cpu.max".into()));
        assert_eq!(e(&["--cgroup", "../x.max=1"]), JailerArgError::CgroupFile("../x.max=1".into()));
        assert_eq!(e(&["--cgroup-version", "3"]), JailerArgError::CgroupVersion("3".into()));
        assert_eq!(e(&["--parent-cgroup", "/abs"]), JailerArgError::ParentCgroup);
        assert_eq!(e(&["--parent-cgroup", "a/../b"]), JailerArgError::ParentCgroup);
        assert_eq!(e(&["--resource-limit", "cpu=1"]), JailerArgError::LimitName("cpu".into()));
        assert_eq!(e(&["--resource-limit", "fsize=big"]), JailerArgError::LimitValue("big".into()));
        assert_eq!(e(&["--resource-limit", "fsize"]), JailerArgError::LimitFormat("fsize".into()));
    }

    #[test]
    fn only_the_name_jailer_selects_this_front_end() {
        assert!(selected("/usr/bin/jailer"));
        assert!(selected("jailer"));
        assert!(!selected("/usr/bin/firecracker"));
        assert!(!selected("jailer-v1"));
    }
}
