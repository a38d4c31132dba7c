//! fio in the guest, microvm against QEMU's `-M microvm` in ONE rig run (scenario
//! bench-fio): Debian's cloud kernel runs a static fio (xtask/src/images/fio.rs) with its
//! io_uring engine and O_DIRECT on a raw scratch disk, under each VMM alternately, for
//! each of the disk's `aio=` modes: 4 KiB random read and write (IOPS) and 1 MiB
//! sequential read and write (MB/s), at queue depth 1 and 32.

use crate::bench_io::{median, parse_marked, run_engines, table_of};
use crate::host::Result;

/// Jobs as guest/fio/bench-fio names them, in table order, with their labels.
const FIGURES: [(&str, &str); 8] = [
    ("randread-4k-qd1", "4 KiB random read, QD 1 (IOPS)"),
    ("randread-4k-qd32", "4 KiB random read, QD 32 (IOPS)"),
    ("randwrite-4k-qd1", "4 KiB random write, QD 1 (IOPS)"),
    ("randwrite-4k-qd32", "4 KiB random write, QD 32 (IOPS)"),
    ("read-1m-qd1", "1 MiB sequential read, QD 1 (MB/s)"),
    ("read-1m-qd32", "1 MiB sequential read, QD 32 (MB/s)"),
    ("write-1m-qd1", "1 MiB sequential write, QD 1 (MB/s)"),
    ("write-1m-qd32", "1 MiB sequential write, QD 32 (MB/s)"),
];

/// The scratch disk's `aio=` modes, each run under both VMMs. (`native` is left out: QEMU
/// takes it only with O_DIRECT on the image, which the rig's tmpfs refuses.)
const ENGINES: [&str; 2] = ["threads", "io_uring"];

/// Runs the benchmark (`runs` guest runs per VMM and engine) and returns its Markdown.
///
/// For quicker comparisons while working on an engine, the host's environment may narrow
/// it: `BENCH_AIO` (e.g. `io_uring`) runs only those engines, `FIO_JOBS` (e.g.
/// `randread-4k-qd1,randread-4k-qd32`) only those jobs, and `MICROVM_BASELINE` (the path
/// of another microvm binary) runs that binary too, alternating with this one, and adds a
/// table of this build against it.
pub fn run(runs: usize) -> Result<String> {
    let runs = runs.max(1).to_string();
    let chosen = std::env::var("BENCH_AIO").unwrap_or_default();
    let named: Vec<&str> = chosen.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    let engines: Vec<&str> = ENGINES.into_iter().filter(|e| named.is_empty() || named.contains(e)).collect();
    if engines.is_empty() {
        return Err(format!("BENCH_AIO={chosen:?} names none of the engines {ENGINES:?}"));
    }
    let jobs = std::env::var("FIO_JOBS").unwrap_or_default();
    let (case, samples) = run_engines("bench-fio", "BENCH-FIO", &runs, &engines, &[("FIO_JOBS", &jobs)], parse)?;
    let title = format!("fio in the guest, median of {runs} (rig clock)");
    let mut out = table_of(&samples, &title, &FIGURES, &engines);
    for engine in &engines {
        let iops = |vmm: &str| median(&samples, &format!("{vmm}-{engine}"), "randread-4k-qd32");
        let what = format!("fio: 4 KiB random read, QD 32, aio={engine} (IOPS)");
        out += &crate::headline::line(&what, iops("microvm"), iops("qemu"), false);
    }
    if samples.iter().any(|s| s.0.starts_with("microvm-baseline-")) {
        out += "\n";
        out += &against_baseline(&samples, &engines);
    }
    for line in case.output.lines().filter(|l| l.contains("BENCH-FIO-ERROR") || l.contains("QEMU-FAILED")) {
        out += &format!("\n{}\n", line.trim());
    }
    out += "\nThe same guest under both (xtask/scenarios/bench-fio.sh): Debian's cloud kernel, 1 vCPU, \
            512 MiB, an initramfs with a static fio 3.33 (Debian 12's source), a raw 256 MiB scratch \
            image as the only disk with the column's `aio=` (on the rig's tmpfs, written full afresh \
            before each VMM's run). Each job: fio's io_uring engine, O_DIRECT, 1 s ramp then 5 s. \
            The rig runs the guest under TCG-emulated SVM, so absolute figures are far below \
            hardware's; the ratio of one run is what carries over.\n";
    Ok(out)
}

/// This build's medians against `MICROVM_BASELINE`'s, per engine, for the jobs run.
fn against_baseline(samples: &[(String, String, f64)], engines: &[&str]) -> String {
    let mut out = String::from("| against the baseline binary (median) | baseline | this build | this / baseline |\n");
    out += "| --- | ---: | ---: | ---: |\n";
    for engine in engines {
        for (job, label) in FIGURES {
            let base = median(samples, &format!("microvm-baseline-{engine}"), job);
            let this = median(samples, &format!("microvm-{engine}"), job);
            if let (Some(b), Some(t)) = (base, this) {
                let ratio = if b > 0.0 { format!("{:.2}", t / b) } else { "–".into() };
                out += &format!("| {label}, aio={engine} | {b:.1} | {t:.1} | {ratio} |\n");
            }
        }
    }
    out
}

/// (vmm, job, value): IOPS for the 4 KiB jobs, MB/s for the 1 MiB ones, from
/// "BENCH-FIO job iops mbps" lines.
pub fn parse(output: &str) -> Vec<(String, String, f64)> {
    parse_marked(output, "bench-fio", "BENCH-FIO", |job, values| {
        let index = if job.contains("-1m-") { 1 } else { 0 };
        values.get(index).and_then(|v| v.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_blocks_give_iops_and_large_ones_mb_per_s() {
        let text = "== bench-fio vmm=microvm-io_uring run=1\nBENCH-FIO randread-4k-qd32 5000 20.5\n\
                    BENCH-FIO read-1m-qd1 150 157.3\n== bench-fio vmm=qemu-io_uring run=1\n\
                    BENCH-FIO randread-4k-qd32 4000 16.4\n";
        let s = super::parse(text);
        assert_eq!(
            s,
            vec![
                ("microvm-io_uring".into(), "randread-4k-qd32".into(), 5000.0),
                ("microvm-io_uring".into(), "read-1m-qd1".into(), 157.3),
                ("qemu-io_uring".into(), "randread-4k-qd32".into(), 4000.0),
            ]
        );
        let t = crate::bench_io::table_of(&s, "t", &super::FIGURES, &super::ENGINES);
        assert!(t.contains("| 4 KiB random read, QD 32 (IOPS) | – | – | – | 5000.0 | 4000.0 | 1.25 |"), "{t}");
    }
}
