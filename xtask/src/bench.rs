//! `cargo xtask bench [--runs N] [start]`: how fast microvm starts.
//!
//! Boots the tiny "reset at once" PVH guest N times (default 20) with the
//! release `microvm` binary and prints the median and p90 of:
//! - the process's wall time, spawn to exit;
//! - its CPU time (user + sys, from wait4's rusage);
//! - its peak RSS;
//! - the VMM's own figures for the time to its first KVM_RUN, which it
//!   prints on stderr under `--report-start-time` as
//!   `microvm: first KVM_RUN after <N> us wall (since main), <M> us CPU (since exec)`
//!   (the plain `... after <N> us` is understood too).
//!
//! The binary is target/release/microvm, built first with
//! `cargo build --release -p cli`, or the one MICROVM_BIN names (no build).
//!
//! One untimed warm-up run comes first (page cache, binary loading). There is
//! no pass/fail threshold: the numbers are for people to compare.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEFAULT_RUNS: usize = 20;
/// Guest RAM for the benchmark VM.
const MEM: &str = "32m";
/// How the line the VMM prints on stderr with `--report-start-time` starts.
const START_TIME_PREFIX: &str = "microvm: first KVM_RUN after ";
/// Use this microvm binary instead of building one (as elsewhere in xtask).
const MICROVM_BIN_ENV: &str = "MICROVM_BIN";

const USAGE: &str = "usage: cargo xtask bench [--runs N] [start]";

/// Entry point, called by xtask's main with the arguments after `bench`.
pub fn run(args: &[String]) -> Result<(), String> {
    let runs = parse_args(args)?;
    let root = workspace_root();
    let microvm = match std::env::var_os(MICROVM_BIN_ENV).filter(|b| !b.is_empty()) {
        Some(bin) => PathBuf::from(bin),
        None => build_release_microvm(&root)?,
    };
    let kernel = write_guest(&root)?;
    let cmd = microvm_command(&microvm, &kernel);

    println!(
        "microvm start benchmark: {runs} runs of the reset-at-once guest (+1 warm-up)\n  {}\n",
        describe_command(&cmd)
    );
    run_once(&microvm, &kernel)?; // warm-up, not counted
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let s = run_once(&microvm, &kernel).map_err(|e| format!("run {}: {e}", i + 1))?;
        samples.push(s);
    }
    print_table(&samples);
    Ok(())
}

/// `--runs N` and the optional benchmark name (only `start` exists).
fn parse_args(args: &[String]) -> Result<usize, String> {
    let mut runs = DEFAULT_RUNS;
    let mut it = args.iter().map(String::as_str);
    while let Some(arg) = it.next() {
        match arg {
            "start" => {}
            "--runs" | "-n" => {
                let value = it.next().ok_or_else(|| format!("--runs needs a value\n{USAGE}"))?;
                runs = parse_runs(value)?;
            }
            _ => match arg.strip_prefix("--runs=") {
                Some(value) => runs = parse_runs(value)?,
                None => return Err(format!("unknown bench argument '{arg}'\n{USAGE}")),
            },
        }
    }
    Ok(runs)
}

fn parse_runs(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("--runs wants a positive integer, not '{value}'")),
    }
}

fn workspace_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent dir").to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

/// `cargo build --release -p cli` (a no-op when up to date), then the path of
/// target/release/microvm.
fn build_release_microvm(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "cli"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release -p cli failed ({status})"));
    }
    let bin = target_dir(root).join("release").join("microvm");
    if !bin.is_file() {
        return Err(format!("{} is missing after the build", bin.display()));
    }
    Ok(bin)
}

/// Writes the guest to target/bench/reset-at-once.elf.
fn write_guest(root: &Path) -> Result<PathBuf, String> {
    let dir = target_dir(root).join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("reset-at-once.elf");
    std::fs::write(&path, tiny_guest::reset_at_once()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn microvm_command(microvm: &Path, kernel: &Path) -> Command {
    let mut cmd = Command::new(microvm);
    cmd.args(["-M", "microvm,legacy", "-m", MEM, "-kernel"]).arg(kernel).args([
        "-serial",
        "stdio",
        "-nodefaults",
        "--report-start-time",
    ]);
    cmd
}

fn describe_command(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// What one run measured.
struct Sample {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
    /// The VMM's own figures up to its first KVM_RUN, if it printed them.
    first_kvm_run: Option<FirstKvmRun>,
}

/// What `--report-start-time` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FirstKvmRun {
    /// Wall time from the start of main.
    wall: Duration,
    /// CPU time of the process since exec, when reported.
    cpu: Option<Duration>,
}

/// Resource usage of a reaped child.
struct Exit {
    status: libc::c_int,
    cpu: Duration,
    max_rss_kib: u64,
}

/// Runs microvm once; stderr goes to a file so the child can never block on
/// a pipe while we sit in wait4.
fn run_once(microvm: &Path, kernel: &Path) -> Result<Sample, String> {
    let stderr_path = kernel.with_extension("stderr");
    let stderr_file = File::create(&stderr_path).map_err(|e| format!("{}: {e}", stderr_path.display()))?;

    let mut cmd = microvm_command(microvm, kernel);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr_file);
    let start = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", microvm.display()))?;
    let exit = wait4(child.id())?;
    let wall = start.elapsed();

    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    if !(libc::WIFEXITED(exit.status) && libc::WEXITSTATUS(exit.status) == 0) {
        return Err(format!("microvm failed ({}); stderr:\n{stderr}", describe_status(exit.status)));
    }
    Ok(Sample { wall, cpu: exit.cpu, max_rss_kib: exit.max_rss_kib, first_kvm_run: parse_first_kvm_run(&stderr) })
}

/// Reaps `pid` with wait4(2), collecting its rusage. The `Child` handle that
/// spawned it is dropped unwaited, which std allows.
fn wait4(pid: u32) -> Result<Exit, String> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own unreaped child.
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if rc == pid as libc::pid_t {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4({pid}): {err}"));
        }
    }
    Ok(Exit {
        status,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64, // kilobytes on Linux
    })
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// Finds the `--report-start-time` line in the VMM's stderr:
/// `microvm: first KVM_RUN after <N> us wall (since main), <M> us CPU (since exec)`
/// or just `microvm: first KVM_RUN after <N> us`.
fn parse_first_kvm_run(stderr: &str) -> Option<FirstKvmRun> {
    let rest = stderr.lines().find_map(|line| line.trim().strip_prefix(START_TIME_PREFIX))?;
    let mut parts = rest.split(',');
    let wall = micros_before_us(parts.next()?)?;
    let cpu = parts.find(|p| p.contains("CPU")).and_then(micros_before_us);
    Some(FirstKvmRun { wall, cpu })
}

/// The `<N>` of a text starting with `<N> us` (or `<N>us`).
fn micros_before_us(text: &str) -> Option<Duration> {
    let text = text.trim_start();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    if digits == 0 || !text[digits..].trim_start().starts_with("us") {
        return None;
    }
    text[..digits].parse().ok().map(Duration::from_micros)
}

/// Nearest-rank percentile (p in 0..=100) of a sorted, non-empty slice.
fn percentile<T: Copy>(sorted: &[T], p: usize) -> T {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Median (nearest rank) and p90 of `values`.
fn median_p90<T: Copy + Ord>(mut values: Vec<T>) -> Option<(T, T)> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some((percentile(&values, 50), percentile(&values, 90)))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn print_table(samples: &[Sample]) {
    let reported: Vec<FirstKvmRun> = samples.iter().filter_map(|s| s.first_kvm_run).collect();
    let rows: Vec<(&str, Option<(String, String)>)> = vec![
        ("wall time (spawn to exit)", pair(samples.iter().map(|s| s.wall).collect(), ms)),
        ("CPU time (user+sys)", pair(samples.iter().map(|s| s.cpu).collect(), ms)),
        ("max RSS", pair(samples.iter().map(|s| s.max_rss_kib).collect(), mib)),
        ("first KVM_RUN, wall since main", pair(reported.iter().map(|r| r.wall).collect(), ms)),
        ("first KVM_RUN, CPU since exec", pair(reported.iter().filter_map(|r| r.cpu).collect(), ms)),
    ];
    for line in format_table(&rows) {
        println!("{line}");
    }
    if reported.len() < samples.len() {
        println!(
            "\n{} of {} runs printed no '{START_TIME_PREFIX}<N> us' line on stderr",
            samples.len() - reported.len(),
            samples.len()
        );
    }
}

fn pair<T: Copy + Ord>(values: Vec<T>, fmt: fn(T) -> String) -> Option<(String, String)> {
    median_p90(values).map(|(m, p)| (fmt(m), fmt(p)))
}

/// Lines of an aligned table: metric, median, p90 (missing values as "n/a").
fn format_table(rows: &[(&str, Option<(String, String)>)]) -> Vec<String> {
    let cells: Vec<[String; 3]> = std::iter::once(["metric".into(), "median".into(), "p90".into()])
        .chain(rows.iter().map(|(name, v)| {
            let (m, p) = v.clone().unwrap_or_else(|| ("n/a".into(), "n/a".into()));
            [name.to_string(), m, p]
        }))
        .collect();
    let width = |i: usize| cells.iter().map(|c| c[i].len()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    cells.iter().map(|[a, b, c]| format!("{a:<w0$}  {b:>w1$}  {c:>w2$}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args(&args(&[])), Ok(DEFAULT_RUNS));
        assert_eq!(parse_args(&args(&["start"])), Ok(DEFAULT_RUNS));
        assert_eq!(parse_args(&args(&["--runs", "5", "start"])), Ok(5));
        assert_eq!(parse_args(&args(&["--runs=7"])), Ok(7));
        assert!(parse_args(&args(&["--runs", "0"])).is_err());
        assert!(parse_args(&args(&["--runs"])).is_err());
        assert!(parse_args(&args(&["stop"])).is_err());
    }

    #[test]
    fn start_time_line() {
        let us = Duration::from_micros;
        let stderr = "something else\nmicrovm: first KVM_RUN after 943 us wall (since main), \
                      1866 us CPU (since exec)\n";
        assert_eq!(parse_first_kvm_run(stderr), Some(FirstKvmRun { wall: us(943), cpu: Some(us(1866)) }));
        assert_eq!(
            parse_first_kvm_run("microvm: first KVM_RUN after 1234 us"),
            Some(FirstKvmRun { wall: us(1234), cpu: None })
        );
        assert_eq!(
            parse_first_kvm_run("microvm: first KVM_RUN after 56us\n"),
            Some(FirstKvmRun { wall: us(56), cpu: None })
        );
        assert_eq!(parse_first_kvm_run("microvm: first KVM_RUN after soon"), None);
        assert_eq!(parse_first_kvm_run("no such line"), None);
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=20).collect();
        assert_eq!(median_p90(v), Some((10, 18)));
        assert_eq!(median_p90(vec![7u32]), Some((7, 7)));
        assert_eq!(median_p90(Vec::<u32>::new()), None);
    }

    #[test]
    fn table_is_aligned() {
        let rows = vec![("wall time", Some(("1.00 ms".to_string(), "12.00 ms".to_string()))), ("x", None)];
        let lines = format_table(&rows);
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() == lines[0].len()));
        assert!(lines[2].ends_with("n/a"));
    }
}
