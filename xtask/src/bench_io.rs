//! I/O benchmark of the virtio devices, microvm against QEMU's `-M microvm` in ONE rig
//! run (scenario bench-io): the same guest measures sequential direct-I/O read and write
//! of a 256 MiB disk and 64 MiB over TCP each way (guest/rootfs/tests/bench-io), under
//! each VMM alternately, so drifts of the emulated machine hit both alike.

use crate::host::Result;
use crate::scenario;

/// Figures as the guest names them, in table order, with their labels (the disk ones
/// first: the qcow2 benchmark shows those).
pub(crate) const FIGURES: [(&str, &str); 6] = [
    ("disk-read", "disk sequential read, 1 MiB direct"),
    ("disk-write", "disk sequential write, 1 MiB direct"),
    ("disk-read-4k", "disk sequential read, 4 KiB direct"),
    ("disk-write-4k", "disk sequential write, 4 KiB direct"),
    ("tcp-guest-to-host", "TCP guest → rig (64 MiB)"),
    ("tcp-host-to-guest", "TCP rig → guest (64 MiB)"),
];

/// The scratch disk's `aio=` modes, each run under both VMMs (`threads` is a thread pool in
/// both; microvm's default sync engine, which takes no `aio=`, has no column).
const ENGINES: [&str; 2] = ["threads", "io_uring"];

/// Runs the benchmark (`runs` guest runs per VMM and engine) and returns a Markdown table
/// of median MB/s, microvm and QEMU side by side for each engine, with their ratio.
pub fn run(runs: usize) -> Result<String> {
    let runs = runs.max(1).to_string();
    let (case, samples) = run_engines("bench-io", "BENCH-IO", &runs, &ENGINES, &[], parse)?;
    let mut out = table(&samples, &runs);
    for engine in ENGINES {
        if case.output.contains(&format!("QEMU-FAILED aio={engine}")) {
            out += &format!("\nQEMU did not run with aio={engine} (built without it?): its column is empty.\n");
        }
    }
    out += "\nThe same guest under both (xtask/scenarios/bench-io.sh): the minimal kernel, 1 vCPU, \
            512 MiB, its ext4 rootfs read-only on vda, a raw 256 MiB scratch image on vdb with the \
            column's `aio=` (on the rig's tmpfs, written full afresh before each VMM's run, so no VMM \
            pays for the first allocation of the file's pages), virtio-net on a tap (QEMU: \
            vhost=off). Disk: `dd` with O_DIRECT blocks, one request at a time (256 MiB in 1 MiB, \
            16 MiB in 4 KiB); TCP: busybox `nc` to and from the rig. Times by the guest's \
            /proc/uptime.\n";
    Ok(out)
}

/// One figure of one run: (vmm, figure, value).
pub type Sample = (String, String, f64);

/// Runs rig scenario `name` with BENCH_RUNS=`runs` and BENCH_AIO=`engines`; its case and
/// the samples `parse` reads from it, an error if the script failed or gave no `marker`
/// figure. Shared with the fio section (xtask::bench_fio).
pub fn run_engines(
    name: &str,
    marker: &str,
    runs: &str,
    engines: &[&str],
    extra: &[(&str, &str)],
    parse: fn(&str) -> Vec<Sample>,
) -> Result<(scenario::Case, Vec<Sample>)> {
    let mut live = |s: &str| eprint!("{s}");
    let engines = engines.join(" ");
    let mut env = vec![("BENCH_RUNS", runs), ("BENCH_AIO", engines.as_str())];
    env.extend_from_slice(extra);
    let session = scenario::run(&[name], &env, &mut live)?.ok_or("MICROVM_TEST_MODE=skip: no benchmark")?;
    let case = session.cases.into_iter().find(|c| c.name == name).ok_or(format!("{name} printed no markers"))?;
    if case.status != Some(0) {
        return Err(format!("{name} failed\n{}", case.report()));
    }
    let samples = parse(&case.output);
    if samples.is_empty() {
        return Err(format!("{name}: no {marker} figures\n{}", case.report()));
    }
    Ok((case, samples))
}

/// The Markdown table of medians: one row per figure, microvm, QEMU and their ratio for
/// each engine.
fn table(samples: &[(String, String, f64)], runs: &str) -> String {
    table_of(samples, &format!("I/O, median of {runs} (MB/s, rig clock)"), &FIGURES, &ENGINES)
}

/// A table of medians titled `title`: one row per `(figure, label)`, and for each engine a
/// microvm and a QEMU column (samples of vmm `microvm-<engine>` / `qemu-<engine>`) and
/// their ratio. Shared with the fio section (xtask::bench_fio).
pub fn table_of(samples: &[(String, String, f64)], title: &str, figures: &[(&str, &str)], engines: &[&str]) -> String {
    let mut out = format!("| {title} |");
    let mut rule = "| --- |".to_string();
    for engine in engines {
        out += &format!(" microvm aio={engine} | QEMU aio={engine} | microvm / QEMU |");
        rule += " ---: | ---: | ---: |";
    }
    out += &format!("\n{rule}\n");
    let show = |x: Option<f64>| x.map_or("–".to_string(), |x| format!("{x:.1}"));
    for (fig, label) in figures {
        out += &format!("| {label} |");
        for engine in engines {
            let (m, q) =
                (median(samples, &format!("microvm-{engine}"), fig), median(samples, &format!("qemu-{engine}"), fig));
            let ratio = match (m, q) {
                (Some(m), Some(q)) if q > 0.0 => format!("{:.2}", m / q),
                _ => "–".into(),
            };
            out += &format!(" {} | {} | {ratio} |", show(m), show(q));
        }
        out += "\n";
    }
    out
}

/// The median of one VMM's samples of one figure. An even count takes the mean of its two
/// middle values: the rig benches run 2 or 3 times, and the upper middle of 2 is their
/// maximum, which would report each VMM's best run rather than a typical one.
pub(crate) fn median(samples: &[(String, String, f64)], vmm: &str, fig: &str) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().filter(|s| s.0 == vmm && s.1 == fig).map(|s| s.2).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// (vmm, figure, MB/s) from "== bench-io vmm=V run=N" sections and "BENCH-IO fig x" lines.
pub fn parse(output: &str) -> Vec<(String, String, f64)> {
    parse_marked(output, "bench-io", "BENCH-IO", |_, values| values.first().and_then(|v| v.parse().ok()))
}

/// (vmm, figure, value) from "== SECTION vmm=V ..." headers and "MARKER fig v1 v2 ..."
/// lines, the value picked from a line's numbers by `pick(fig, numbers)`.
pub fn parse_marked(
    output: &str,
    section: &str,
    marker: &str,
    pick: impl Fn(&str, &[&str]) -> Option<f64>,
) -> Vec<(String, String, f64)> {
    let header = format!("== {section} vmm=");
    let marker = format!("{marker} ");
    let mut vmm = String::new();
    let mut out = Vec::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix(&header) {
            vmm = rest.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(rest) = line.split(&marker).nth(1) {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let Some((fig, values)) = words.split_first() {
                if let Some(v) = pick(fig, values) {
                    out.push((vmm.clone(), fig.to_string(), v));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_even_count_of_runs_gives_the_mean_of_the_middle_two() {
        let s = |v: &[f64]| v.iter().map(|&x| ("m".to_string(), "f".to_string(), x)).collect::<Vec<_>>();
        assert_eq!(super::median(&s(&[4637.0, 3967.0]), "m", "f"), Some(4302.0));
        assert_eq!(super::median(&s(&[3.0, 1.0, 2.0]), "m", "f"), Some(2.0));
        assert_eq!(super::median(&s(&[]), "m", "f"), None);
    }

    #[test]
    fn figures_are_grouped_by_vmm() {
        let text = "== bench-io vmm=microvm run=1\nBENCH-IO disk-read 120.5\n== bench-io vmm=qemu run=1\nBENCH-IO disk-read 100.0\n";
        let s = super::parse(text);
        assert_eq!(s, vec![("microvm".into(), "disk-read".into(), 120.5), ("qemu".into(), "disk-read".into(), 100.0)]);
    }

    #[test]
    fn each_engine_has_its_columns() {
        let text = "== bench-io vmm=microvm-threads run=1\nBENCH-IO disk-read-4k 10.0\n\
                    == bench-io vmm=qemu-threads run=1\nBENCH-IO disk-read-4k 8.0\n\
                    == bench-io vmm=microvm-io_uring run=1\nBENCH-IO disk-read-4k 9.0\n";
        let t = super::table(&super::parse(text), "1");
        assert!(t.contains("| disk sequential read, 4 KiB direct | 10.0 | 8.0 | 1.25 | 9.0 | – | – |"), "{t}");
    }
}
