//! Scenarios: shell scripts in xtask/scenarios/ that run microvm (or QEMU) and print what
//! the guest says. The same script runs directly on a host whose /dev/kvm boots Linux, or
//! inside the nested rig; it finds everything through environment variables:
//!
//! | variable        | what                                              |
//! | --------------- | ------------------------------------------------- |
//! | MICROVM         | the static microvm binary                         |
//! | GUEST_VMLINUX   | minimal 6.12 kernel, ELF with PVH note            |
//! | GUEST_BZIMAGE   | the same kernel as bzImage                        |
//! | GUEST_VMLINUX_MULTIUSER | the same with CONFIG_MULTIUSER (guest users |
//! |                 | other than root; built when a script mentions it) |
//! | GUEST_INITRAMFS | busybox initramfs printing MICROVM-GUEST-READY    |
//! | CLOUD_VMLINUZ   | Debian's cloud kernel, bzImage                    |
//! | CLOUD_VMLINUX   | the ELF extracted from it                         |
//! | CLOUD_INITRAMFS | GUEST_INITRAMFS + the cloud kernel's virtio-mmio, |
//! |                 | virtio-blk/net, ACPI button, evdev modules        |
//! | QEMU            | qemu-system-x86_64 (reference VMM)                |
//! | GUEST_ROOTFS    | ext4 root disk of the device scenarios (copy it)  |
//! | UNIXCAT         | stdin/stdout to a Unix socket (guest/tools)       |
//! | VSOCKIO         | AF_VSOCK test program (guest/tools/vsockio.c)     |
//! | DNSONE          | a DNS server of one name (guest/tools/dnsone.c)   |
//! | PASST           | passt, for -netdev user (on PATH for microvm)     |
//! | VIRTIOFSD       | virtiofsd (built when a script mentions it)       |
//! | FIO_INITRAMFS   | CLOUD_INITRAMFS + static fio and bench-fio (built |
//! |                 | when a script mentions it)                        |
//! | DEBUGFS, E2FSCK | e2fsprogs tools, to check a disk image outside    |
//! | QEMU_IMG        | qemu-img: makes, checks, flattens qcow2 images    |
//! | GETFATTR        | getfattr (Debian's attr): a 9p share's xattrs     |
//! | SCENARIOS       | the directory of the scripts                      |
//! | MICROVM_BASELINE| another microvm binary to compare with (only when |
//! |                 | the host's environment names one: A/B benches)    |
//!
//! In the rig, a file is packed only if some selected script (or a `lib-*.sh` helper it
//! sources) mentions its variable.
//! `run-case.sh` frames each script's output with @@CASE-BEGIN/@@CASE-END markers that
//! carry its exit status and duration; the first line `# timeout: N` of a script bounds it.

use crate::host::{self, Mode, Result};
use crate::images::Images;
use crate::{binary, rig};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const DEFAULT_TIMEOUT: u64 = 120;

/// One scenario script's result.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    /// Exit status of the script (by convention: of the VMM it execs); 137 = killed by
    /// its timeout. None if the script never finished.
    pub status: Option<i32>,
    /// Wall time of the script, ms (in the rig: by L2's /proc/uptime, 10 ms resolution).
    pub ms: Option<u64>,
    pub output: String,
}

/// What the test guest's /init printed: `MICROVM-GUEST-READY cpus=N uptime=S`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ready {
    pub cpus: u32,
    pub uptime: f64,
}

impl Case {
    /// The text of the scenario's `== NAME` section: from that line to the next `== ` line.
    pub fn section(&self, name: &str) -> &str {
        let title = format!("== {name}\n");
        let start = self.output.find(&title).map_or(self.output.len(), |i| i + title.len());
        let rest = &self.output[start..];
        rest.find("\n== ").map_or(rest, |end| &rest[..end])
    }

    pub fn ready(&self) -> Option<Ready> {
        let line = self.output.lines().find_map(|l| l.split("MICROVM-GUEST-READY ").nth(1))?;
        let field = |k: &str| line.split_whitespace().find_map(|w| w.strip_prefix(k));
        Some(Ready { cpus: field("cpus=")?.parse().ok()?, uptime: field("uptime=")?.parse().ok()? })
    }

    /// For assertion messages: status, time and the console output.
    pub fn report(&self) -> String {
        format!(
            "scenario {}: exit status {}, {} ms\n--- console ---\n{}\n--- end ---",
            self.name,
            self.status.map_or("none (did not finish)".into(), |s| s.to_string()),
            self.ms.map_or("?".into(), |m| m.to_string()),
            rig::tail(self.output.trim_end(), 80)
        )
    }
}

/// A batch of scenarios run in one go (one rig boot in rig mode).
pub struct Session {
    pub mode: Mode,
    pub reason: String,
    pub cases: Vec<Case>,
    /// Rig mode: time until /dev/kvm was ready, and QEMU's whole run.
    pub rig_ready: Option<Duration>,
    pub rig_wall: Option<Duration>,
    pub log: Option<PathBuf>,
}

pub struct Prepared {
    pub images: Images,
    pub microvm: PathBuf,
}

/// Images and the static binary, built once per process however many tests ask.
pub fn prepare() -> Result<&'static Prepared> {
    static PREPARED: OnceLock<std::result::Result<Prepared, String>> = OnceLock::new();
    PREPARED
        .get_or_init(|| Ok(Prepared { images: Images::ensure()?, microvm: binary::ensure_static()? }))
        .as_ref()
        .map_err(Clone::clone)
}

pub fn scenarios_dir() -> PathBuf {
    host::repo_root().join("xtask/scenarios")
}

/// Runs the named scenarios (xtask/scenarios/<name>.sh) with `extra_env` added. Returns
/// None when MICROVM_TEST_MODE=skip. Runs are serialized within the process: two TCG
/// rigs on a 2-core machine would only slow each other into timeouts.
pub fn run(names: &[&str], extra_env: &[(&str, &str)], live: &mut dyn FnMut(&str)) -> Result<Option<Session>> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let Some((mode, reason)) = host::mode()? else {
        return Ok(None);
    };
    let p = prepare()?;
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut scripts = Vec::new();
    for name in names {
        let path = scenarios_dir().join(format!("{name}.sh"));
        let text = String::from_utf8_lossy(&host::read(&path)?).into_owned();
        let with_libs = sourced_libs(&text)?;
        scripts.push((name.to_string(), text + &with_libs));
    }
    let timeout = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("# timeout:"))
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(DEFAULT_TIMEOUT)
    };
    live(&format!("[xtask] scenarios {} in {mode:?} mode ({reason})\n", names.join(", ")));
    let mut session = Session { mode, reason, cases: Vec::new(), rig_ready: None, rig_wall: None, log: None };
    match mode {
        Mode::Direct => {
            for (name, text) in &scripts {
                let mut vars = env(p, None, extra_env);
                if mentions(text, MULTIUSER_VAR) {
                    vars.push((MULTIUSER_VAR.into(), multiuser_kernel()?.to_string_lossy().into_owned()));
                }
                let t = timeout(text);
                let out = run_direct(name, t, &vars, live)?;
                session.cases.extend(parse_cases(&out));
            }
        }
        Mode::Rig => {
            let all: String = scripts.iter().map(|s| s.1.as_str()).collect();
            let mut files = Vec::new();
            let vars = env(p, Some((&all, &mut files)), extra_env);
            let mut script = String::from("# generated by xtask (scenario.rs)\n");
            for (k, v) in &vars {
                script += &format!("export {k}='{}'\n", v.replace('\'', "'\\''"));
            }
            let mut total = 60; // L2 boot, module loading, slack
            for (name, text) in &scripts {
                script += &format!("sh \"$SCENARIOS/run-case.sh\" {name} {}\n", timeout(text));
                total += timeout(text) + 10;
            }
            for entry in std::fs::read_dir(scenarios_dir()).map_err(|e| e.to_string())?.flatten() {
                files.push((format!("/rig/scenarios/{}", entry.file_name().to_string_lossy()), entry.path()));
            }
            let run = rig::RigRun { name: names.join("+"), files, script, timeout: Duration::from_secs(total) };
            let outcome = rig::run(&run, &p.images.cloud, live)?;
            session.cases = parse_cases(&outcome.output);
            session.rig_ready = outcome.ready_after;
            session.rig_wall = Some(outcome.wall);
            session.log = Some(outcome.log);
        }
    }
    Ok(Some(session))
}

/// Runs one scenario and returns its case; None when tests are skipped.
pub fn run_one(name: &str, live: &mut dyn FnMut(&str)) -> Result<Option<Case>> {
    let Some(session) = run(&[name], &[], live)? else {
        return Ok(None);
    };
    let case = session.cases.into_iter().find(|c| c.name == name);
    case.map(Some).ok_or_else(|| format!("scenario {name} printed no @@CASE markers"))
}

/// For the tests in xtask/tests: runs one scenario with its console streamed to the test's
/// output; None (said on stderr) when tests are skipped; panics when it cannot run.
pub fn run_test_case(name: &str) -> Option<Case> {
    let mut live = |s: &str| eprint!("{s}");
    match run_one(name, &mut live) {
        Ok(Some(case)) => Some(case),
        Ok(None) => {
            eprintln!("{name}: skipped (MICROVM_TEST_MODE=skip)");
            None
        }
        Err(e) => panic!("{name} could not run: {e}"),
    }
}

/// The scenario variables. For the rig (`pack` given), the host files whose variable the
/// scripts mention are added to the pack list and the variables point inside L2.
fn env(
    p: &Prepared,
    mut pack: Option<(&str, &mut Vec<(String, PathBuf)>)>,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let i = &p.images;
    let files: [(&str, &PathBuf, &str); 11] = [
        ("MICROVM", &p.microvm, "/rig/bin/microvm"),
        ("GUEST_VMLINUX", &i.kernel.vmlinux, "/rig/images/vmlinux"),
        ("GUEST_BZIMAGE", &i.kernel.bzimage, "/rig/images/bzImage"),
        ("GUEST_INITRAMFS", &i.initramfs, "/rig/images/initramfs.cpio.gz"),
        ("CLOUD_VMLINUZ", &i.cloud.vmlinuz, "/rig/images/cloud-vmlinuz"),
        ("CLOUD_VMLINUX", &i.cloud.vmlinux, "/rig/images/cloud-vmlinux"),
        ("CLOUD_INITRAMFS", &i.cloud_initramfs, "/rig/images/cloud-initramfs.cpio.gz"),
        ("GUEST_ROOTFS", &i.rootfs, "/rig/images/rootfs.ext4"),
        ("UNIXCAT", &i.unixcat, "/rig/bin/unixcat"),
        ("VSOCKIO", &i.vsockio, "/rig/bin/vsockio"),
        ("DNSONE", &i.dnsone, "/rig/bin/dnsone"),
    ];
    let qemu = format!("/usr/bin/{}", rig::QEMU);
    let mut vars = Vec::new();
    for (var, host_path, rig_path) in files {
        match pack.as_mut() {
            None => vars.push((var.to_string(), host_path.to_string_lossy().into_owned())),
            Some((scripts, list)) => {
                if mentions(scripts, var) {
                    list.push((rig_path.to_string(), host_path.clone()));
                }
                vars.push((var.to_string(), rig_path.to_string()));
            }
        }
    }
    if let Some(baseline) = std::env::var_os("MICROVM_BASELINE").filter(|b| !b.is_empty()) {
        let host_path = PathBuf::from(baseline);
        match pack.as_mut() {
            None => vars.push(("MICROVM_BASELINE".into(), host_path.to_string_lossy().into_owned())),
            Some((scripts, list)) => {
                if mentions(scripts, "MICROVM_BASELINE") {
                    list.push(("/rig/bin/microvm-baseline".into(), host_path));
                    vars.push(("MICROVM_BASELINE".into(), "/rig/bin/microvm-baseline".into()));
                }
            }
        }
    }
    if let Some((scripts, list)) = pack.as_mut() {
        if mentions(scripts, "QEMU") {
            match rig::qemu_files() {
                Ok(f) => list.extend(f),
                Err(e) => eprintln!("[xtask] QEMU not packed into the rig: {e}"),
            }
        }
    }
    vars.push(("QEMU".into(), qemu));
    // Host tools at the same paths inside the rig: e2fsprogs to check a guest's disk from
    // outside, curl (Firecracker's API client in its getting-started guide) and passt (whose
    // /usr/bin/passt runs passt.avx2 where the CPU has AVX2), qemu-img to make and check
    // qcow2 images, getfattr (Debian's attr) to read the xattrs of a 9p share; the
    // variable names the first.
    let tools: [(&str, &[&str]); 6] = [
        ("DEBUGFS", &["/usr/sbin/debugfs"]),
        ("E2FSCK", &["/usr/sbin/e2fsck"]),
        ("CURL", &["/usr/bin/curl"]),
        ("PASST", &["/usr/bin/passt", "/usr/bin/passt.avx2"]),
        ("QEMU_IMG", &["/usr/bin/qemu-img"]),
        ("GETFATTR", &["/usr/bin/getfattr"]),
    ];
    if let Some((scripts, list)) = pack.as_mut() {
        if mentions(scripts, "PASST") {
            // guest/rig/init: / becomes an ordinary mount, which passt's sandbox needs.
            list.push(("/rig/real-root".into(), PathBuf::from("/dev/null")));
        }
    }
    for (var, paths) in tools {
        if let Some((scripts, list)) = pack.as_mut() {
            if mentions(scripts, var) {
                for tool in paths {
                    match rig::binary_files(Path::new(tool)) {
                        Ok(f) => list.extend(f),
                        Err(e) => eprintln!("[xtask] {tool} not packed into the rig: {e}"),
                    }
                }
            }
        }
        vars.push((var.into(), paths[0].into()));
    }
    // virtiofsd: built (once, cached) only for the scripts that use it; same path in L2.
    if pack.as_ref().is_none_or(|(scripts, _)| mentions(scripts, "VIRTIOFSD")) {
        match host::cache_dir().and_then(|cache| crate::images::virtiofsd::ensure(&cache)) {
            Ok(bin) => {
                if let Some((_, list)) = pack.as_mut() {
                    match rig::binary_files(&bin) {
                        Ok(f) => list.extend(f),
                        Err(e) => eprintln!("[xtask] virtiofsd not packed into the rig: {e}"),
                    }
                }
                vars.push(("VIRTIOFSD".into(), bin.to_string_lossy().into_owned()));
            }
            Err(e) => eprintln!("[xtask] no virtiofsd: {e}"),
        }
    }
    // The minimal kernel with CONFIG_MULTIUSER: built (once, cached) only for the scripts
    // that use it (in the direct mode, `run` adds it per script).
    if let Some((_, list)) = pack.as_mut().filter(|(scripts, _)| mentions(scripts, MULTIUSER_VAR)) {
        match multiuser_kernel() {
            Ok(vmlinux) => {
                let rig_path = "/rig/images/vmlinux-multiuser";
                list.push((rig_path.into(), vmlinux));
                vars.push((MULTIUSER_VAR.into(), rig_path.into()));
            }
            Err(e) => eprintln!("[xtask] no multiuser kernel: {e}"),
        }
    }
    // fio's initramfs: built (once, cached) only for the scripts that use it.
    if pack.as_ref().is_none_or(|(scripts, _)| mentions(scripts, "FIO_INITRAMFS")) {
        match host::cache_dir().and_then(|cache| crate::images::fio::ensure(&cache, &i.cloud_initramfs)) {
            Ok(image) => {
                let rig_path = "/rig/images/fio-initramfs.cpio.gz";
                if let Some((_, list)) = pack.as_mut() {
                    list.push((rig_path.into(), image.clone()));
                    vars.push(("FIO_INITRAMFS".into(), rig_path.into()));
                } else {
                    vars.push(("FIO_INITRAMFS".into(), image.to_string_lossy().into_owned()));
                }
            }
            Err(e) => eprintln!("[xtask] no fio initramfs: {e}"),
        }
    }
    let dir = if pack.is_some() { "/rig/scenarios".into() } else { scenarios_dir().to_string_lossy().into_owned() };
    vars.push(("SCENARIOS".into(), dir));
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

/// The text of the helpers (`lib-*.sh`) a script sources, so that what they mention is
/// packed too.
fn sourced_libs(text: &str) -> Result<String> {
    let mut libs = String::new();
    for e in std::fs::read_dir(scenarios_dir()).map_err(|e| e.to_string())?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("lib-") && text.contains(&format!("$SCENARIOS/{name}")) {
            libs += &String::from_utf8_lossy(&host::read(&e.path())?);
        }
    }
    Ok(libs)
}

/// The variable naming the multiuser kernel (guest/kernel/multiuser.config).
const MULTIUSER_VAR: &str = "GUEST_VMLINUX_MULTIUSER";

/// The multiuser kernel's vmlinux, built the first time a script asks.
fn multiuser_kernel() -> Result<PathBuf> {
    Ok(crate::images::kernel::ensure_multiuser(&host::cache_dir()?)?.vmlinux)
}

fn mentions(scripts: &str, var: &str) -> bool {
    // The whole name: $QEMU is not mentioned by $QEMU_IMG.
    let name_goes_on = |rest: &str| rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    [format!("${var}"), format!("${{{var}")]
        .iter()
        .any(|m| scripts.match_indices(m.as_str()).any(|(at, _)| !name_goes_on(&scripts[at + m.len()..])))
}

/// Direct mode: `sh run-case.sh NAME TIMEOUT` on the host, with a backstop timeout.
fn run_direct(name: &str, timeout: u64, vars: &[(String, String)], live: &mut dyn FnMut(&str)) -> Result<String> {
    let mut child = Command::new("sh")
        .arg(scenarios_dir().join("run-case.sh"))
        .args([name, &timeout.to_string()])
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(timeout + 30);
    let mut out = String::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).replace('\r', "");
                live(&text);
                out += &text;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                break;
            }
        }
    }
    let _ = child.wait();
    let _ = std::io::stdout().flush();
    Ok(out)
}

/// Splits console text at the run-case.sh markers.
pub fn parse_cases(output: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut current: Option<Case> = None;
    for line in output.lines() {
        if let Some(name) = line.split("@@CASE-BEGIN ").nth(1) {
            cases.extend(current.take());
            current = Some(Case { name: name.trim().to_string(), status: None, ms: None, output: String::new() });
        } else if let Some(rest) = line.split("@@CASE-END ").nth(1) {
            let mut case = current.take().unwrap_or(Case {
                name: rest.split_whitespace().next().unwrap_or("?").into(),
                status: None,
                ms: None,
                output: String::new(),
            });
            let before = line.split("@@CASE-END ").next().unwrap_or("");
            if !before.is_empty() {
                case.output += &format!("{before}\n");
            }
            let field = |k: &str| rest.split_whitespace().find_map(|w| w.strip_prefix(k)).and_then(|v| v.parse().ok());
            case.status = field("status=").map(|s: u64| s as i32);
            case.ms = field("ms=");
            cases.push(case);
        } else if let Some(case) = current.as_mut() {
            case.output += &format!("{line}\n");
        }
    }
    cases.extend(current);
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_runs_from_its_title_to_the_next() {
        let output = "x\n== qmp\n{\"return\": {}}\nmore\n== console boot\nline\n".to_string();
        let case = Case { name: "t".into(), status: Some(0), ms: None, output };
        assert_eq!(case.section("qmp"), "{\"return\": {}}\nmore");
        assert_eq!(case.section("console boot"), "line\n");
        assert_eq!(case.section("console"), "", "a title is matched whole");
    }

    #[test]
    fn cases_are_split_at_markers() {
        let text = "noise\n@@CASE-BEGIN a\nhello\nMICROVM-GUEST-READY cpus=2 uptime=0.51\nreboot: Restarting@@CASE-END a status=0 ms=1230\n@@CASE-BEGIN b\nhung\n";
        let cases = parse_cases(text);
        assert_eq!(cases.len(), 2);
        assert_eq!((cases[0].name.as_str(), cases[0].status, cases[0].ms), ("a", Some(0), Some(1230)));
        assert_eq!(cases[0].ready(), Some(Ready { cpus: 2, uptime: 0.51 }));
        assert!(cases[0].output.contains("reboot: Restarting"));
        assert_eq!((cases[1].name.as_str(), cases[1].status), ("b", None));
        assert_eq!(cases[1].ready(), None);
    }

    #[test]
    fn a_variable_is_mentioned_by_its_whole_name() {
        assert!(mentions("\"$QEMU\" -M microvm", "QEMU") && mentions("${QEMU} -M", "QEMU"));
        assert!(!mentions("\"$QEMU_IMG\" check x", "QEMU") && !mentions("${QEMU_IMG}", "QEMU"));
        assert!(mentions("$QEMU_IMG check; $QEMU -M", "QEMU") && mentions("$QEMU_IMG check", "QEMU_IMG"));
    }

    #[test]
    fn what_a_sourced_helper_mentions_is_packed() {
        let text = std::fs::read_to_string(scenarios_dir().join("qmp-pause.sh")).unwrap();
        assert!(!mentions(&text, "UNIXCAT"), "qmp-pause.sh names UNIXCAT itself now: pick another script");
        assert!(mentions(&(text.clone() + &sourced_libs(&text).unwrap()), "UNIXCAT"));
    }

    #[test]
    fn every_scenario_declares_a_timeout() {
        for e in std::fs::read_dir(scenarios_dir()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            // run-case.sh runs the scenarios; lib-*.sh are sourced by them.
            if name.ends_with(".sh") && name != "run-case.sh" && !name.starts_with("lib-") {
                let text = std::fs::read_to_string(e.path()).unwrap();
                assert!(text.lines().any(|l| l.starts_with("# timeout:")), "{name} has no '# timeout: N' line");
            }
        }
    }
}
