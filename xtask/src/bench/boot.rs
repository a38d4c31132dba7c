//! Linux boot time: xtask/scenarios/bench-boot.sh boots the minimal kernel with microvm
//! and QEMU's -M microvm, and Debian's cloud kernel with those and QEMU's -M q35, in turns,
//! in one rig boot (or directly where /dev/kvm boots Linux). Exec to init marker for all;
//! microvm's -trace-boot breakdown besides (QEMU reports none without its own tracing).

use super::median;
use xtask::host::Mode;
use xtask::scenario;

pub struct Boot {
    pub mode: Mode,
    /// Exec to MICROVM-GUEST-READY per kernel and VMM, in the order first seen.
    pub series: Vec<Series>,
    pub failed_runs: usize,
    /// The last console line of each kind of failed boot ("kernel vmm: line").
    pub failures: Vec<String>,
    /// Medians of microvm's -trace-boot points per kernel, ms since its process start.
    pub trace: Vec<(String, Points)>,
}

/// (point, median ms) in POINTS order.
pub type Points = Vec<(&'static str, Option<f64>)>;

pub struct Series {
    pub kernel: String,
    pub vmm: String,
    /// Median, ms.
    pub ms: f64,
    /// Runs that reached the marker.
    pub ok: usize,
}

impl Boot {
    /// Median exec to marker, ms, of one kernel and VMM (NaN if it never got there).
    pub fn ms(&self, kernel: &str, vmm: &str) -> f64 {
        self.series.iter().find(|s| s.kernel == kernel && s.vmm == vmm).map_or(f64::NAN, |s| s.ms)
    }
}

pub const POINTS: [&str; 4] = ["vmm_init_end", "linux_start_kernel", "linux_start_user", "guest_exit"];

pub fn run(runs: usize) -> Result<Boot, String> {
    let runs = runs.to_string();
    // Progress: only xtask's own lines and the per-run results, not the rig's console.
    let mut pending = String::new();
    let mut live = |s: &str| {
        pending += s;
        while let Some((line, rest)) = pending.split_once('\n') {
            if line.starts_with("[xtask]") || line.contains("@@BENCH ") {
                eprintln!("{line}");
            }
            pending = rest.to_string();
        }
    };
    let session =
        scenario::run(&["bench-boot"], &[("BENCH_RUNS", &runs)], &mut live)?.ok_or("MICROVM_TEST_MODE=skip")?;
    let case = session.cases.first().ok_or("bench-boot printed no @@CASE markers")?;
    let mut boot = parse(&case.output);
    boot.mode = session.mode;
    if boot.series.iter().all(|s| s.ok == 0) {
        return Err(format!("no boot reached the marker\n{}", case.report()));
    }
    Ok(boot)
}

fn parse(output: &str) -> Boot {
    let mut ready: Vec<((String, String), Vec<f64>)> = Vec::new();
    let mut failed = 0;
    let mut traces: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    let mut kernel = String::new();
    let mut failures = Vec::new();
    for line in output.lines() {
        if let Some(rest) = line.split("@@BENCH ").nth(1) {
            let field = |k: &str| rest.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap_or("");
            kernel = field("kernel=").to_string();
            let key = (kernel.clone(), field("vmm=").to_string());
            let i = ready.iter().position(|r| r.0 == key).unwrap_or_else(|| {
                ready.push((key, Vec::new()));
                ready.len() - 1
            });
            match field("ready_us=").parse::<i64>() {
                Ok(us) if us > 0 && field("status=") == "0" => ready[i].1.push(us as f64 / 1e3),
                _ => failed += 1,
            }
        } else if let Some(why) = line.split("@@BENCH-FAIL ").nth(1) {
            let what = why.split(':').next().unwrap_or("");
            if !failures.iter().any(|f: &String| f.starts_with(what)) {
                failures.push(why.trim().to_string());
            }
        } else if let Some(json) = line.split("@@BENCH-TRACE ").nth(1) {
            if !traces.iter().any(|t| t.0 == kernel) {
                traces.push((kernel.clone(), vec![Vec::new(); POINTS.len()]));
            }
            let t = traces.iter_mut().find(|t| t.0 == kernel).expect("just added");
            for (point, values) in POINTS.iter().zip(t.1.iter_mut()) {
                values.extend(json_number(json, &format!("{point}_ms")));
            }
        }
    }
    Boot {
        mode: Mode::Direct,
        series: ready
            .into_iter()
            .map(|((kernel, vmm), v)| Series { kernel, vmm, ms: median(&v).unwrap_or(f64::NAN), ok: v.len() })
            .collect(),
        failed_runs: failed,
        failures,
        trace: traces
            .into_iter()
            .map(|(k, v)| (k, POINTS.iter().zip(&v).map(|(p, v)| (*p, median(v))).collect()))
            .collect(),
    }
}

/// `"key": 1.5` in the flat JSON of -trace-boot-json; None for null or absent.
pub fn json_number(json: &str, key: &str) -> Option<f64> {
    let rest = json.split(&format!("\"{key}\":")).nth(1)?;
    rest.trim_start().split([',', '}']).next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_traces_are_parsed() {
        let out = "@@BENCH kernel=minimal vmm=microvm run=0 ready_us=1200 status=0\n\
            @@BENCH-TRACE {\"vmm_init_end_ms\": 2.000, \"linux_start_kernel_ms\": 20.000, \"linux_start_user_ms\": 1100.000, \"guest_exit_ms\": 1300.000}\n\
            @@BENCH kernel=minimal vmm=qemu run=0 ready_us=2500 status=0\n\
            @@BENCH kernel=cloud vmm=microvm run=0 ready_us=6000 status=0\n\
            @@BENCH-TRACE {\"vmm_init_end_ms\": 4.000, \"linux_start_kernel_ms\": null, \"linux_start_user_ms\": 5900.000, \"guest_exit_ms\": 6100.000}\n\
            @@BENCH kernel=minimal vmm=microvm run=1 ready_us=1400 status=0\n\
            @@BENCH kernel=cloud vmm=q35 run=0 ready_us=-5 status=1\n@@BENCH-FAIL cloud q35: no bios\n";
        let b = parse(out);
        assert_eq!((b.failed_runs, b.failures.as_slice()), (1, ["cloud q35: no bios".to_string()].as_slice()));
        assert_eq!((b.ms("minimal", "microvm"), b.ms("minimal", "qemu"), b.ms("cloud", "microvm")), (1.4, 2.5, 6.0));
        assert_eq!(b.series.iter().map(|s| s.ok).collect::<Vec<_>>(), [2, 1, 1, 0]);
        assert_eq!(b.trace[0].1[1], ("linux_start_kernel", Some(20.0)));
        assert_eq!((b.trace[1].0.as_str(), b.trace[1].1[1]), ("cloud", ("linux_start_kernel", None)));
    }
}
