//! Snapshot and restore against QEMU: xtask/scenarios/bench-snapshot.sh saves the minimal
//! kernel's savepoint guest (256 MiB and 2 GiB, 1 vCPU; every save at the same point of its
//! program, waiting for a console line) under microvm (`migrate file:`, in several rounds
//! of one boot) and QEMU's -M microvm (`migrate "exec:cat > FILE"`), then restores each
//! file several times (`-incoming file:` / `-incoming "exec:cat FILE"`) with the line that
//! wakes it on the console, in one rig boot (or directly where /dev/kvm boots Linux).
//! `cargo xtask bench --only snapshot` measures it.

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
    /// query-migrate's total-time of the save, ms (median over the instants saved).
    pub save_ms: Option<f64>,
    /// How many files (instants of one boot) the restores were spread over.
    pub instants: usize,
    /// The snapshot file: allocated KiB and apparent bytes (the last instant's).
    pub file_kib: Option<u64>,
    pub file_bytes: Option<u64>,
    /// Medians over the restores that printed and kept running.
    pub restore_ms: Option<f64>,
    /// microvm only (`--report-start-time`): its main() to the first KVM_RUN, ms.
    pub kvm_run_ms: Option<f64>,
    /// microvm only: the rest of each restore (the guest's way to its next line), ms.
    pub after_run_ms: Option<f64>,
    /// KVM's page faults (debugfs `pf_taken`) by the first byte, where debugfs was there:
    /// the median, the fewest and the most.
    pub npf: Option<u64>,
    pub npf_range: Option<(u64, u64)>,
    /// The restores the first line on the console woke (`woke_by=1`): the others waited
    /// for a later one, 50 ms a line, which their time includes.
    pub woke_first: usize,
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

/// One row's restores that printed and kept running.
#[derive(Default)]
struct Samples {
    restore_ms: Vec<f64>,
    rss_kib: Vec<u64>,
    anon_kib: Vec<u64>,
    kvm_run_ms: Vec<f64>,
    after_run_ms: Vec<f64>,
    npf: Vec<u64>,
    woke_first: usize,
    save_ms: Vec<f64>,
}

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
            rows[i].instants += 1;
            samples[i].save_ms.extend(num(rest, "total_ms").map(|n| n as f64));
            rows[i].file_kib = num(rest, "file_kib").map(|n| n as u64);
            rows[i].file_bytes = num(rest, "file_bytes").map(|n| n as u64);
        } else if let Some(rest) = line.split("@@SNAPRESTORE ").nth(1) {
            let i = row_of(&mut rows, &mut samples, rest);
            rows[i].runs += 1;
            let first = num(rest, "first_us");
            if let (Some(us), Some("ok")) = (first, field(rest, "status")) {
                let s = &mut samples[i];
                let ms = us as f64 / 1e3;
                s.restore_ms.push(ms);
                s.rss_kib.extend(num(rest, "rss_kib").map(|n| n as u64));
                s.anon_kib.extend(num(rest, "anon_kib").map(|n| n as u64));
                if let Some(run_ms) = num(rest, "kvm_run_us").map(|us| us as f64 / 1e3) {
                    s.kvm_run_ms.push(run_ms);
                    s.after_run_ms.push(ms - run_ms);
                }
                s.npf.extend(num(rest, "npf").map(|n| n as u64));
                s.woke_first += usize::from(num(rest, "woke_by") == Some(1));
            }
        }
    }
    for (row, s) in rows.iter_mut().zip(samples) {
        row.ok = s.restore_ms.len();
        row.save_ms = median(&s.save_ms);
        row.restore_ms = median(&s.restore_ms);
        row.kvm_run_ms = median(&s.kvm_run_ms);
        row.after_run_ms = median(&s.after_run_ms);
        row.npf = median(&s.npf);
        row.npf_range = s.npf.iter().min().zip(s.npf.iter().max()).map(|(&a, &b)| (a, b));
        row.woke_first = s.woke_first;
        row.rss_kib = median(&s.rss_kib);
        row.anon_kib = median(&s.anon_kib);
    }
    rows
}

pub fn markdown(figures: &Result<SnapshotFigures, String>, runs: usize) -> String {
    let mut s = String::from("## Snapshot and restore\n\n");
    s += &format!(
        "The minimal kernel with the initramfs guest `savepoint`, 1 vCPU: in rounds, 200 lines \
         on ttyS0 a millisecond apart, a second's settling, the marker `SAVEPOINT`, then a wait \
         for a line on the console (blocked in read(2), echo off). Every snapshot is taken \
         there, half a second after the marker, so every file of both sizes holds the same \
         point of the same program (QMP `migrate`: microvm to `file:FILE`, pausing the guest \
         first, in successive rounds of one boot, `cont` and a line between; QEMU once, to \
         `exec:cat > FILE`, live, then paused; both guests run when it comes, as QEMU carries \
         the run state over and would leave a guest paused before its save waiting for \
         `cont`). Then each file restored {runs} times, in rounds (microvm's two sizes \
         alternating in each, so a change in the shared host's load falls on both alike), \
         with the same command line (`-incoming file:FILE` / `-incoming \"exec:cat FILE\"`) \
         and a line on the console from the exec on (the line that wakes it: sent again \
         every 50 ms until the guest answers, as QEMU drops input that comes before its \
         migration has loaded the 16550; the guest says which line woke it); medians over \
         every restore of a row, times by the rig's clock (xtask/scenarios/bench-snapshot.sh). \
         Save: query-migrate's `total-time`. Restore: exec of the restoring VMM to the first \
         byte the restored guest prints (its answer to the line); for microvm also its main() \
         to the first KVM_RUN (`--report-start-time`) and the rest, the guest's way to its \
         answer, which is mostly its page faults in KVM (debugfs `pf_taken` at that byte, \
         median and range: every page the guest touches after a restore is a fault; saved at \
         arbitrary instants, their number ranged from 37 to 807 whatever the size, \
         docs/snapshot.md, \"Restore time and guest size\"). RSS: the restoring VMM's VmRSS \
         1 s after that byte (RssAnon, the memory it owns alone, beside it: microvm maps the \
         file MAP_PRIVATE, so the guest pages it only reads are the page cache's, shared by \
         every restore of the file). File: allocated size (apparent size). The prefetched \
         row restores the same files with the page list `microvm snapshot-pages` recorded in \
         one more restore's first second (`FILE.pages`: read ahead at set-up; its written pages \
         copied and every page mapped into the second-level page table before the guest \
         runs, KVM_PRE_FAULT_MEMORY, which the rig's Linux 6.12 has).\n\n"
    );
    match figures {
        Err(e) => s += &format!("Not measured: {}\n", e.lines().next().unwrap_or("")),
        Ok(SnapshotFigures { rows, load }) => {
            if let Some(load) = load {
                s += &format!("Host load average when the run started: {load}.\n\n");
            }
            s += "| VMM | guest RAM | files × restores | save (ms) | restore → first output (ms) | of it, to first KVM_RUN (ms) | after it (ms) | KVM page faults by the first output (range) | RSS after restore (MiB) | of it RssAnon (MiB) | file allocated (MiB) | file size (MiB) | restores ok (woken by the first line) |\n\
                  | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
            let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0}"));
            let mib = |kib: Option<u64>| kib.map_or("—".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
            let faults = |r: &Row| match (r.npf, r.npf_range) {
                (Some(n), Some((lo, hi))) => format!("{n} ({lo}–{hi})"),
                _ => "—".to_string(),
            };
            for r in rows {
                s += &format!(
                    "| {} | {} MiB | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} ({}) |\n",
                    vmm_name(&r.vmm),
                    r.mem_mib,
                    files_by_runs(rows, r),
                    ms(r.save_ms),
                    ms(r.restore_ms),
                    ms(r.kvm_run_ms),
                    ms(r.after_run_ms),
                    faults(r),
                    mib(r.rss_kib),
                    mib(r.anon_kib),
                    mib(r.file_kib),
                    mib(r.file_bytes.map(|b| b / 1024)),
                    r.ok,
                    r.runs,
                    r.woke_first
                );
            }
            s += &size_ratios(rows);
            let restore = |vmm: &str, mib: u64| rows.iter().find(|r| r.vmm == vmm && r.mem_mib == mib)?.restore_ms;
            for mib in [256, 2048] {
                let what = format!("snapshot: restore to first output, {mib} MiB (ms)");
                s += &xtask::headline::line(&what, restore("microvm", mib), restore("qemu", mib), true);
            }
        }
    }
    s
}

fn vmm_name(vmm: &str) -> &'static str {
    match vmm {
        "qemu" => "QEMU -M microvm",
        "microvm-pages" => "microvm, working set prefetched (`FILE.pages`)",
        _ => "microvm",
    }
}

/// "files × restores of each": the prefetched row restores its plain row's files.
fn files_by_runs(rows: &[Row], r: &Row) -> String {
    let files = match r.instants {
        0 => rows.iter().find(|o| o.vmm == "microvm" && o.mem_mib == r.mem_mib).map_or(1, |o| o.instants.max(1)),
        n => n,
    };
    format!("{files} × {}", r.runs / files)
}

/// Issue 16's goal, restore time within 20% between sizes: each microvm row's largest
/// guest against its smallest, the whole restore and the part after the first KVM_RUN,
/// with the fault counts that part follows.
fn size_ratios(rows: &[Row]) -> String {
    let mut s = String::new();
    for vmm in ["microvm", "microvm-pages"] {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.vmm == vmm && r.restore_ms.is_some()).collect();
        let (Some(small), Some(large)) = (mine.iter().min_by_key(|r| r.mem_mib), mine.iter().max_by_key(|r| r.mem_mib))
        else {
            continue;
        };
        if large.mem_mib <= small.mem_mib {
            continue;
        }
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2} ×", b / a),
            _ => "—".to_string(),
        };
        let faults = |r: &Row| r.npf.map_or("—".to_string(), |n| n.to_string());
        s += &format!(
            "\n{}: restore at {} MiB is {} the restore at {} MiB (goal ≤ 1.2 ×); after the first KVM_RUN, {} \
             ({} against {} KVM page faults by the first output, medians).\n",
            vmm_name(vmm),
            large.mem_mib,
            ratio(small.restore_ms, large.restore_ms),
            small.mem_mib,
            ratio(small.after_run_ms, large.after_run_ms),
            faults(large),
            faults(small)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_restores_are_grouped_and_failures_counted() {
        let out = "@@SNAPSAVE vmm=microvm mem=256 instant=0 total_ms=40 file_kib=20480 file_bytes=268439552\n\
            @@SNAPSAVE vmm=microvm mem=256 instant=1 total_ms=50 file_kib=2048 file_bytes=268439552\n\
            @@SNAPRESTORE vmm=microvm mem=256 file=microvm.snap.0 run=0 first_us=9000 rss_kib=6144 anon_kib=2048 kvm_run_us=4000 npf=150 woke_by=1 status=ok\n\
            @@SNAPRESTORE vmm=microvm mem=256 file=microvm.snap.1 run=0 first_us=-1 rss_kib=-1 anon_kib=-1 npf=-1 status=no-output\n\
            @@SNAPRESTORE vmm=microvm mem=256 file=microvm.snap.0 run=1 first_us=11000 rss_kib=7168 anon_kib=3072 kvm_run_us=5000 npf=700 woke_by=1 status=ok\n\
            @@SNAPRESTORE vmm=microvm mem=256 file=microvm.snap.1 run=1 first_us=10000 rss_kib=7168 anon_kib=3072 kvm_run_us=3000 npf=-1 woke_by=2 status=ok\n\
            @@SNAPRESTORE vmm=microvm-pages mem=256 file=microvm.snap.0 run=0 first_us=8000 rss_kib=7168 anon_kib=3072 kvm_run_us=3000 npf=80 status=ok\n\
            @@SNAPRESTORE vmm=microvm-pages mem=256 file=microvm.snap.1 run=0 first_us=8000 rss_kib=7168 anon_kib=3072 kvm_run_us=3000 npf=80 status=ok\n\
            noise\n\
            @@SNAPSAVE vmm=qemu mem=256 instant=0 total_ms=-1 file_kib=10240 file_bytes=10485760\n\
            @@SNAPRESTORE vmm=qemu mem=256 file=qemu.snap run=0 first_us=150000 rss_kib=40960 anon_kib=30720 npf=-1 woke_by=37 status=ok\n\
            @@SNAPSAVE vmm=microvm mem=2048 instant=0 total_ms=900 file_kib=51200 file_bytes=2147487744\n\
            @@SNAPRESTORE vmm=microvm mem=2048 file=microvm.snap.0 run=0 first_us=12000 rss_kib=7168 anon_kib=3072 kvm_run_us=4000 npf=700 woke_by=1 status=ok\n";
        let rows = parse(out);
        assert_eq!(rows.len(), 4);
        let m = &rows[0];
        assert_eq!(
            (m.instants, m.save_ms, m.file_kib, m.restore_ms, m.rss_kib, m.ok, m.runs),
            (2, Some(50.0), Some(2048), Some(10.0), Some(7168), 3, 4)
        );
        // Per restore: 9-4, 11-5, 10-3 ms after the first KVM_RUN; the count only where read.
        assert_eq!((m.kvm_run_ms, m.after_run_ms, m.npf), (Some(4.0), Some(6.0), Some(700)));
        // Two of the three went on at the first line; the third waited for the second.
        assert_eq!((m.npf_range, m.woke_first), (Some((150, 700)), 2));
        assert_eq!(
            (rows[2].vmm.as_str(), rows[2].save_ms, rows[2].restore_ms, rows[2].npf),
            ("qemu", None, Some(150.0), None)
        );
        let text = markdown(&Ok(SnapshotFigures { rows, load: Some("1.00 2.00 3.00".into()) }), 3);
        assert!(
            text.contains(
                "| microvm | 256 MiB | 2 × 2 | 50 | 10 | 4 | 6 | 700 (150–700) | 7.0 | 3.0 | 2.0 | 256.0 | 3/4 (2) |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| microvm, working set prefetched (`FILE.pages`) | 256 MiB | 2 × 1 | — | 8 |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| QEMU -M microvm | 256 MiB | 1 × 1 | — | 150 | — | — | — | 40.0 | 30.0 | 10.0 | 10.0 | 1/1 (0) |"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "microvm: restore at 2048 MiB is 1.20 × the restore at 256 MiB (goal ≤ 1.2 ×); after the first \
                 KVM_RUN, 1.33 × (700 against 700 KVM page faults by the first output, medians)."
            ),
            "{text}"
        );
        assert!(!text.contains("prefetched (`FILE.pages`): restore at"), "one size only: no ratio\n{text}");
        assert!(markdown(&Err("rig failed\nmore".into()), 2).contains("Not measured: rig failed\n"));
    }
}
