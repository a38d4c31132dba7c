//! qcow2 benchmark, in ONE rig run (scenario bench-qcow2): the disk figures of the I/O
//! benchmark's guest (guest/rootfs/tests/bench-io) on a raw scratch file and on a new
//! qcow2 image, under microvm and under QEMU's `-M microvm`, alternately, so drifts of the
//! emulated machine hit all four alike. microvm's qcow2 goes through imago on its device
//! thread; QEMU's through its own qcow2 driver.

use crate::bench_io::{median, parse, FIGURES};
use crate::host::Result;
use crate::scenario;

/// The scratch disk's formats, each run under both VMMs.
const FORMATS: [&str; 2] = ["raw", "qcow2"];
/// The disk figures of bench-io (the TCP ones need a network device this run has not).
const DISK_FIGURES: usize = 4;

/// Runs the benchmark (`runs` guest runs per VMM and format) and returns a Markdown table
/// of median MB/s.
pub fn run(runs: usize) -> Result<String> {
    let runs = runs.max(1).to_string();
    let mut live = |s: &str| eprint!("{s}");
    let session = scenario::run(&["bench-qcow2"], &[("BENCH_RUNS", runs.as_str())], &mut live)?
        .ok_or("MICROVM_TEST_MODE=skip: no benchmark")?;
    let case = session.cases.into_iter().find(|c| c.name == "bench-qcow2").ok_or("bench-qcow2 printed no markers")?;
    if case.status != Some(0) {
        return Err(format!("bench-qcow2 failed\n{}", case.report()));
    }
    let samples = parse(&case.output);
    if samples.is_empty() {
        return Err(format!("bench-qcow2: no BENCH-IO figures\n{}", case.report()));
    }
    let mut out = table(&samples, &runs);
    let clean = case.output.matches("CHECK-CLEAN microvm").count();
    out += &format!("\n`qemu-img check` found microvm's qcow2 clean after {clean} of {runs} runs.\n");
    if case.output.contains("QEMU-FAILED") {
        out += "\nQEMU failed on some runs (QEMU-FAILED in the log): its columns miss them.\n";
    }
    out += "\nThe same guest under both (xtask/scenarios/bench-qcow2.sh): the minimal kernel, 1 vCPU, \
            512 MiB, its ext4 rootfs read-only on vda, a 256 MiB scratch disk on vdb with aio=threads \
            on the rig's tmpfs: raw (written full beforehand) or qcow2 (new for each run, 64 KiB \
            clusters: the write figures include allocating them, the reads read what was written). \
            `dd` with O_DIRECT blocks, one request at a time, write before read.\n";
    Ok(out)
}

/// One row per disk figure: microvm raw and qcow2, QEMU raw and qcow2, and microvm's
/// qcow2 against QEMU's.
fn table(samples: &[(String, String, f64)], runs: &str) -> String {
    let mut out = format!("| qcow2, median of {runs} (MB/s, rig clock) |");
    for vmm in ["microvm", "QEMU"] {
        for format in FORMATS {
            out += &format!(" {vmm} {format} |");
        }
    }
    out += " microvm qcow2 / QEMU qcow2 |\n| --- | ---: | ---: | ---: | ---: | ---: |\n";
    let show = |x: Option<f64>| x.map_or("–".to_string(), |x| format!("{x:.1}"));
    for (fig, label) in &FIGURES[..DISK_FIGURES] {
        out += &format!("| {label} |");
        for vmm in ["microvm", "qemu"] {
            for format in FORMATS {
                out += &format!(" {} |", show(median(samples, &format!("{vmm}-{format}"), fig)));
            }
        }
        let ratio = match (median(samples, "microvm-qcow2", fig), median(samples, "qemu-qcow2", fig)) {
            (Some(m), Some(q)) if q > 0.0 => format!("{:.2}", m / q),
            _ => "–".into(),
        };
        out += &format!(" {ratio} |\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_format_and_vmm_has_its_column() {
        let text = "== bench-io vmm=microvm-raw run=1\nBENCH-IO disk-read 10.0\n\
                    == bench-io vmm=microvm-qcow2 run=1\nBENCH-IO disk-read 9.0\n\
                    == bench-io vmm=qemu-qcow2 run=1\nBENCH-IO disk-read 6.0\n";
        let t = super::table(&super::parse(text), "1");
        assert!(t.contains("| disk sequential read, 1 MiB direct | 10.0 | 9.0 | – | 6.0 | 1.50 |"), "{t}");
        assert!(!t.contains("TCP"), "{t}");
    }
}
