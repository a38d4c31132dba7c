//! Snapshot and restore against QEMU: xtask/scenarios/bench-snapshot.sh saves the minimal
//! kernel's ticking guest (256 MiB and 2 GiB, 1 vCPU) under microvm (`migrate file:`) and
//! QEMU's -M microvm (`migrate "exec:cat > FILE"`), then restores each file several times
//! (`-incoming file:` / `-incoming "exec:cat FILE"`), in one rig boot (or directly where
//! /dev/kvm boots Linux). `cargo xtask bench --only snapshot` measures it.

use super::median;
use xtask::scenario;

/// The section's figures, and how busy the host was when they were taken.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotFigures {
    pub rows: Vec<Row>,
    /// `/proc/loadavg`'s first three fields at the start.
    pub load: Option<String>,
}

/// One VMM and guest size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub vmm: String,
    pub mem_mib: u64,
    /// query-migrate's total-time of the save, ms.
    pub save_ms: Option<f64>,
    /// The snapshot file: allocated KiB and apparent bytes.
    pub file_kib: Option<u64>,
    pub file_bytes: Option<u64>,
    /// Medians over the restores that printed and kept running.
    pub restore_ms: Option<f64>,
    /// microvm only (`--report-start-time`): its main() to the first KVM_RUN, ms.
    pub kvm_run_ms: Option<f64>,
    pub rss_kib: Option<u64>,
    pub anon_kib: Option<u64>,
    pub ok: usize,
    pub runs: usize,
}

pub fn run(runs: usize) -> Result<SnapshotFigures, String> {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let runs = runs.to_string();
    let mut pending = String::new();
    let mut live = |s: &str| {
        pending += s;
        while let Some((line, rest)) = pending.split_once('\n') {
            if line.starts_with("[xtask]") || line.contains("@@SNAP") {
                eprintln!("{line}");
            }
            pending = rest.to_string();
        }
    };
    let session =
        scenario::run(&["bench-snapshot"], &[("BENCH_RUNS", &runs)], &mut live)?.ok_or("MICROVM_TEST_MODE=skip")?;
    let case = session.cases.first().ok_or("bench-snapshot printed no @@CASE markers")?;
    let rows = parse(&case.output);
    if rows.iter().all(|r| r.ok == 0) {
        return Err(format!("no restore printed and kept running\n{}", case.report()));
    }
    Ok(SnapshotFigures { rows, load })
}

/// One row's restores: ms to first output, VmRSS KiB, RssAnon KiB, ms to first KVM_RUN.
type Samples = (Vec<f64>, Vec<u64>, Vec<u64>, Vec<f64>);

/// `key=value` of one marker line's rest.
fn field<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    rest.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn num(rest: &str, key: &str) -> Option<i64> {
    field(rest, key)?.parse().ok().filter(|&n| n >= 0)
}

/// The `@@SNAPSAVE` and `@@SNAPRESTORE` lines, one row per VMM and size in the order seen.
pub fn parse(output: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    // Per row: restore ms, VmRSS, RssAnon, first KVM_RUN ms of the restores that went on.
    let mut samples: Vec<Samples> = Vec::new();
    let row_of = |rows: &mut Vec<Row>, samples: &mut Vec<_>, rest: &str| {
        let vmm = field(rest, "vmm").unwrap_or("").to_string();
        let mem_mib = num(rest, "mem").unwrap_or(0) as u64;
        rows.iter().position(|r| r.vmm == vmm && r.mem_mib == mem_mib).unwrap_or_else(|| {
            rows.push(Row { vmm, mem_mib, ..Row::default() });
            samples.push(Samples::default());
            rows.len() - 1
        })
    };
    for line in output.lines() {
        if let Some(rest) = line.split("@@SNAPSAVE ").nth(1) {
            let i = row_of(&mut rows, &mut samples, rest);
            rows[i].save_ms = num(rest, "total_ms").map(|n| n as f64);
            rows[i].file_kib = num(rest, "file_kib").map(|n| n as u64);
            rows[i].file_bytes = num(rest, "file_bytes").map(|n| n as u64);
        } else if let Some(rest) = line.split("@@SNAPRESTORE ").nth(1) {
            let i = row_of(&mut rows, &mut samples, rest);
            rows[i].runs += 1;
            let first = num(rest, "first_us");
            if let (Some(us), Some("ok")) = (first, field(rest, "status")) {
                samples[i].0.push(us as f64 / 1e3);
                samples[i].1.extend(num(rest, "rss_kib").map(|n| n as u64));
                samples[i].2.extend(num(rest, "anon_kib").map(|n| n as u64));
                samples[i].3.extend(num(rest, "kvm_run_us").map(|us| us as f64 / 1e3));
            }
        }
    }
    for (row, (ms, rss, anon, kvm_run)) in rows.iter_mut().zip(samples) {
        row.ok = ms.len();
        row.restore_ms = median(&ms);
        row.kvm_run_ms = median(&kvm_run);
        row.rss_kib = median(&rss);
        row.anon_kib = median(&anon);
    }
    rows
}

pub fn markdown(figures: &Result<SnapshotFigures, String>, runs: usize) -> String {
    let mut s = String::from("## Snapshot and restore\n\n");
    s += &format!(
        "The minimal kernel with the initramfs guest printing a line about every millisecond on \
         ttyS0, 1 vCPU, saved once per VMM and size while it ticks (QMP `migrate`: microvm to \
         `file:FILE`, pausing the guest first; QEMU to `exec:cat > FILE`, live, then paused; \
         both guests run when it comes, as QEMU carries the run state over and would leave a \
         guest paused before its save waiting for `cont`), then restored {runs} times with the \
         same command line (`-incoming file:FILE` / `-incoming \"exec:cat FILE\"`); medians, \
         times by the rig's clock (xtask/scenarios/bench-snapshot.sh). Save: query-migrate's \
         `total-time`. Restore: exec of the restoring VMM to the first byte the restored guest \
         prints; for microvm also its main() to the first KVM_RUN (`--report-start-time`), the \
         rest being the guest's way to its next line. RSS: the restoring VMM's \
         VmRSS 1 s after that byte (RssAnon, the memory it owns alone, beside it: microvm maps \
         the file MAP_PRIVATE, so the guest pages it only reads are the page cache's, shared \
         by every restore of the file). File: allocated size (apparent size). The \
         prefetched row restores the same file with the page list `microvm snapshot-pages` \
         recorded in one more restore's first second (`FILE.pages`: read ahead at set-up, \
         faulted in while the guest runs).\n\n"
    );
    match figures {
        Err(e) => s += &format!("Not measured: {}\n", e.lines().next().unwrap_or("")),
        Ok(SnapshotFigures { rows, load }) => {
            if let Some(load) = load {
                s += &format!("Host load average when the run started: {load}.\n\n");
            }
            s += "| VMM | guest RAM | save (ms) | restore → first output (ms) | of it, to first KVM_RUN (ms) | RSS after restore (MiB) | of it RssAnon (MiB) | file allocated (MiB) | file size (MiB) | restores ok |\n\
                  | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
            let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0}"));
            let mib = |kib: Option<u64>| kib.map_or("—".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
            for r in rows {
                let vmm = match r.vmm.as_str() {
                    "qemu" => "QEMU -M microvm",
                    "microvm-pages" => "microvm, working set prefetched (`FILE.pages`)",
                    _ => "microvm",
                };
                s += &format!(
                    "| {vmm} | {} MiB | {} | {} | {} | {} | {} | {} | {} | {}/{} |\n",
                    r.mem_mib,
                    ms(r.save_ms),
                    ms(r.restore_ms),
                    ms(r.kvm_run_ms),
                    mib(r.rss_kib),
                    mib(r.anon_kib),
                    mib(r.file_kib),
                    mib(r.file_bytes.map(|b| b / 1024)),
                    r.ok,
                    r.runs
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_restores_are_grouped_and_failures_counted() {
        let out = "@@SNAPSAVE vmm=microvm mem=256 total_ms=40 file_kib=20480 file_bytes=268439552\n\
            @@SNAPRESTORE vmm=microvm mem=256 run=0 first_us=9000 rss_kib=6144 anon_kib=2048 kvm_run_us=4000 status=ok\n\
            @@SNAPRESTORE vmm=microvm mem=256 run=1 first_us=-1 rss_kib=-1 anon_kib=-1 status=no-output\n\
            @@SNAPRESTORE vmm=microvm mem=256 run=2 first_us=11000 rss_kib=7168 anon_kib=3072 status=ok\n\
            noise\n\
            @@SNAPSAVE vmm=qemu mem=256 total_ms=-1 file_kib=10240 file_bytes=10485760\n\
            @@SNAPRESTORE vmm=qemu mem=256 run=0 first_us=150000 rss_kib=40960 anon_kib=30720 status=ok\n";
        let rows = parse(out);
        assert_eq!(rows.len(), 2);
        let m = &rows[0];
        assert_eq!(
            (m.save_ms, m.file_kib, m.restore_ms, m.rss_kib, m.ok, m.runs),
            (Some(40.0), Some(20480), Some(11.0), Some(7168), 2, 3)
        );
        assert_eq!((rows[1].vmm.as_str(), rows[1].save_ms, rows[1].restore_ms), ("qemu", None, Some(150.0)));
        let text = markdown(&Ok(SnapshotFigures { rows, load: Some("1.00 2.00 3.00".into()) }), 3);
        assert!(text.contains("| microvm | 256 MiB | 40 | 11 | 4 | 7.0 | 3.0 | 20.0 | 256.0 | 2/3 |"), "{text}");
        assert!(
            text.contains("| QEMU -M microvm | 256 MiB | — | 150 | — | 40.0 | 30.0 | 10.0 | 10.0 | 1/1 |"),
            "{text}"
        );
        assert!(markdown(&Err("rig failed\nmore".into()), 2).contains("Not measured: rig failed\n"));
    }
}
