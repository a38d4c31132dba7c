//! The benchmark report (Markdown), its chart (SVG drawn here: no plotting crate) and the
//! summary table spliced into README.md between the bench markers.

use super::boot::Boot;
use super::local::{Density, Footprint, Start, MEM_MIB};
use std::fmt::Write;
use std::path::Path;
use std::process::Command;
use xtask::host::{self, Mode};

pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
    pub rev: String,
    pub qemu: String,
    pub date: String,
    /// /proc/loadavg when the bench started: other work on the machine skews absolute times.
    pub load: String,
}

impl Machine {
    pub fn probe(qemu: &Path) -> Machine {
        let out = |c: &mut Command| host::output(c).map(|s| s.trim().to_string()).unwrap_or_else(|e| e);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo.lines().find_map(|l| l.strip_prefix("model name")?.split(':').nth(1)).unwrap_or("?");
        let root = host::repo_root();
        let dirty = out(Command::new("git").current_dir(&root).args(["status", "--porcelain"]));
        let rev = out(Command::new("git").current_dir(&root).args(["rev-parse", "--short", "HEAD"]));
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu: cpu.trim().to_string(),
            kernel: out(Command::new("uname").args(["-sr"])),
            rev: if dirty.is_empty() { rev } else { format!("{rev} + uncommitted changes") },
            qemu: out(Command::new(qemu).arg("--version")).lines().next().unwrap_or("?").to_string(),
            date: out(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
            load: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

pub struct Results {
    pub machine: Machine,
    pub runs: usize,
    pub boot_runs: usize,
    pub power_runs: usize,
    /// The two tiny-guest command lines.
    pub vmm_lines: (String, String),
    /// microvm's own vmm_init_end and guest_exit for the start guest, ms.
    pub start_trace: super::local::StartTrace,
    pub start: [Start; 2],
    pub footprint: [Footprint; 2],
    pub density: Vec<Density>,
    pub boot: Result<Boot, String>,
    pub io: Result<String, String>,
    pub qmp: Result<[super::qmp::QmpFigures; 2], String>,
    pub power: Result<super::power::PowerFigures, String>,
}

/// One row of the summary: what, unit, microvm, QEMU, and whether lower is better.
type Row = (String, &'static str, f64, f64, bool);

fn rows(r: &Results) -> Vec<Row> {
    let [m, q] = &r.start;
    let [fm, fq] = &r.footprint;
    let mut rows: Vec<Row> = vec![
        ("start: exec to exit, wall".into(), "ms", m.wall_ms, q.wall_ms, true),
        ("start: CPU time (user+sys)".into(), "ms", m.cpu_ms, q.cpu_ms, true),
        ("start: max RSS".into(), "MiB", m.max_rss_mib, q.max_rss_mib, true),
        ("footprint: VMM RSS without guest RAM".into(), "MiB", fm.vmm_mib, fq.vmm_mib, true),
    ];
    for d in &r.density {
        rows.push((format!("density: VMs/s, {} at a time", d.at_once), "1/s", d.per_sec[0], d.per_sec[1], false));
    }
    if let Ok(b) = &r.boot {
        let (mm, mq) = (b.ms("minimal", "microvm"), b.ms("minimal", "qemu"));
        let (cm, cq, c35) = (b.ms("cloud", "microvm"), b.ms("cloud", "qemu"), b.ms("cloud", "q35"));
        rows.push(("boot, minimal kernel: exec to init marker".into(), "ms", mm, mq, true));
        rows.push(("boot, cloud kernel: exec to init marker".into(), "ms", cm, cq, true));
        rows.push(("boot, cloud kernel, QEMU column = -M q35".into(), "ms", cm, c35, true));
        let (rm, rq) = (b.ms("cloud-rtc", "microvm"), b.ms("cloud-rtc", "qemu"));
        rows.push(("boot, cloud kernel, both rtc=on".into(), "ms", rm, rq, true));
        rows.push(("boot, cloud kernel, microvm rtc=on, QEMU column = -M q35".into(), "ms", rm, c35, true));
    }
    if let Ok([m, q]) = &r.qmp {
        rows.push(("QMP: query-status round trip, p50".into(), "µs", m.round_trip_p50, q.round_trip_p50, true));
        rows.push(("QMP: stop → STOP event".into(), "µs", m.stop_to_event, q.stop_to_event, true));
    }
    rows
}

fn num(v: f64) -> String {
    match v {
        v if v.is_nan() => "n/a".into(),
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}

/// "QEMU / microvm" for lower-is-better rows, "microvm / QEMU" otherwise: >1 = microvm ahead.
fn ratio(row: &Row) -> String {
    let x = if row.4 { row.3 / row.2 } else { row.2 / row.3 };
    if x.is_finite() {
        format!("{x:.1}×")
    } else {
        "n/a".into()
    }
}

/// The table in README.md and at the top of the report.
pub fn summary(r: &Results) -> String {
    let mut s =
        String::from("| median | microvm | QEMU -M microvm | microvm ahead by |\n| --- | ---: | ---: | ---: |\n");
    for row in rows(r) {
        let _ = writeln!(s, "| {} ({}) | {} | {} | {} |", row.0, row.1, num(row.2), num(row.3), ratio(&row));
    }
    if let Err(e) = &r.boot {
        let _ = writeln!(s, "| boot: exec to init marker | not measured: {} | | |", e.lines().next().unwrap_or(""));
    }
    s
}

pub fn markdown(r: &Results) -> String {
    let m = &r.machine;
    let mut s = format!(
        "# Benchmarks\n\nGenerated by `cargo xtask bench` on {}: edit the generator (xtask/src/bench/), not this file.\n\n\
         ![chart](chart.svg)\n\n{}\n\
         Ratios are from the same run. Lower is better except density; \"ahead by\" is QEMU/microvm \
         (density: microvm/QEMU).\n\n## Machine\n\n\
         | | |\n| --- | --- |\n| CPUs (nproc) | {} |\n| CPU | {} |\n| kernel | {} |\n| microvm | git {} (static release build) |\n| QEMU | {} |\n| load average at start | {} |\n| runs | {} per host figure (median), {} boots per VMM in the rig's boot section (each rig section says its own) |\n\n",
        m.date, summary(r), m.nproc, m.cpu, m.kernel, m.rev, m.qemu, m.load, r.runs, r.boot_runs
    );
    s += &format!(
        "This machine's /dev/kvm is what PLATFORM-KVM.md describes when the CPU has no svm/vmx: \
         KVM's interface over an instruction emulator. The start, footprint and density figures run \
         there, so their times include that emulation; the guests are a handful of instructions, so \
         they mostly time the VMMs themselves (exec, setup, teardown), which run natively. Linux \
         boots run in the nested rig (QEMU TCG with kvm_amd inside, see README.md): absolute boot \
         times there are many times those on hardware and say nothing about it; only the \
         microvm/QEMU ratio, both measured alike in the same rig boot, carries over roughly.\n\n\
         ## Start\n\nexec to exit of a guest that triple-faults at its first instructions (QEMU's \
         microvm has no i8042 to reset through; `-no-reboot` makes it exit on the triple fault), \
         {MEM_MIB} MiB, 1 vCPU, no devices; wall from spawn to wait4, CPU and max RSS from wait4's \
         rusage. The two VMMs alternate, after one warm-up run each.\n\n```\n{}\n{}\n```\n\n\
         Where microvm's start goes (`-trace-boot-json`, {} more runs, medians, ms since process \
         start): first KVM_RUN (vmm_init_end) {}, guest ended (guest_exit) {}; the rest of the wall \
         time is teardown (closing the VM, unmapping guest RAM) and process exit.\n\n\
         Host CPU from exec to the first KVM_RUN (`--report-start-time`, same runs): median {} ms, \
         best {} ms, against the target of at most 1 ms. Most of it is the host kernel's KVM ioctls \
         (VM, memory slot, irqchip, PIT, supported CPUID, vCPU), which cost about 1 ms on a host that \
         is itself a VM (each CPUID the host kernel runs traps to the hypervisor below); microvm's own \
         code was 4.5% of the process's CPU samples when profiled. What was tried and what it gave \
         (memory slots before the irqchip, static linking, musl, and why the supported-CPUID list is \
         not cached) is in [docs/start-path.md](../start-path.md).\n\n",
        r.vmm_lines.0,
        r.vmm_lines.1,
        r.runs,
        num(r.start_trace.init),
        num(r.start_trace.exit),
        num(r.start_trace.cpu_to_run),
        num(r.start_trace.cpu_to_run_best)
    );
    s += &format!(
        "## Footprint\n\nThe VMM's own resident memory with 1 vCPU and {MEM_MIB} MiB: a guest that halts \
         for good is started, and once two readings of /proc/PID/smaps 100 ms apart agree (at most \
         3 s) the Rss of all mappings is summed and the Rss of the guest RAM mapping (the one \
         mapping of {MEM_MIB} to {} MiB: QEMU adds alignment and guard pages) taken off: guest pages \
         the guest or the loader touched do not count. Shared library pages do count (microvm is \
         static; QEMU maps ~100 shared libraries).\n\n| median, MiB | microvm | QEMU |\n| --- | ---: | ---: |\n\
         | total RSS | {} | {} |\n| guest RAM resident | {} | {} |\n| VMM (total − guest) | {} | {} |\n\n",
        MEM_MIB + 4,
        num(r.footprint[0].total_mib),
        num(r.footprint[1].total_mib),
        num(r.footprint[0].guest_mib),
        num(r.footprint[1].guest_mib),
        num(r.footprint[0].vmm_mib),
        num(r.footprint[1].vmm_mib)
    );
    s += &format!(
        "## Density\n\nThe start guest run back to back by 1, 2 and 8 workers ({} VMs per VMM and \
         worker count; VMMs one after the other): VMs started and ended per second, on {} CPUs.\n\n| at a time | microvm | QEMU |\n| ---: | ---: | ---: |\n",
        r.runs * 4,
        m.nproc
    );
    for d in &r.density {
        let _ = writeln!(s, "| {} | {} | {} |", d.at_once, num(d.per_sec[0]), num(d.per_sec[1]));
    }
    s += "\n## Boot\n\n";
    match &r.boot {
        Ok(b) => {
            let place = match b.mode {
                Mode::Rig => "in the nested rig (one rig boot; times by the rig's L2 clock)",
                Mode::Direct => "directly on this host's /dev/kvm",
            };
            let _ = write!(
                s,
                "1 vCPU, 256 MiB, the busybox initramfs, `console=ttyS0 quiet`, {place}, boots in turns \
                 (xtask/scenarios/bench-boot.sh). Kernels: the minimal 6.12 one (guest/kernel: no PCI, no ACPI, \
                 PVH ELF) and Debian's cloud kernel (PCI, ACPI; its PVH ELF on the microvm machines, its \
                 bzImage on q35). QEMU runs `-M microvm,acpi=off,rtc=off` (`rtc=on` in the rtc=on row, as microvm there) or `-M q35` (SeaBIOS), `reboot=t`. \
                 exec to init marker: from just before the VMM is started to the moment the shell reading its \
                 console sees `MICROVM-GUEST-READY` (printed by /init). Failed boots: {}{}.\n\n\
                 | median exec to init marker, ms (runs) | microvm | QEMU -M microvm | QEMU -M q35 |\n| --- | ---: | ---: | ---: |\n",
                b.failed_runs,
                if b.failures.is_empty() {
                    String::new()
                } else {
                    format!(" (last console line: {}; a failed q35 is not retried)", b.failures.join("; "))
                }
            );
            for kernel in ["minimal", "cloud", "cloud-rtc"] {
                let cell = |vmm: &str| {
                    b.series
                        .iter()
                        .find(|x| x.kernel == kernel && x.vmm == vmm)
                        .map_or("—".into(), |x| format!("{} ({})", num(x.ms), x.ok))
                };
                let name = match kernel {
                    "cloud-rtc" => "cloud kernel, microvm machines with rtc=on",
                    "cloud" => "cloud kernel",
                    _ => "minimal kernel",
                };
                let _ = writeln!(s, "| {name} | {} | {} | {} |", cell("microvm"), cell("qemu"), cell("q35"));
            }
            s += "\nWhy the cloud kernel is run twice: it has rtc-cmos built in, which probes ports 0x70-0x71 at \
                  boot. Neither microvm machine has a clock there by default (QEMU's microvm under KVM neither), so \
                  the ports read 0xff, \"update in progress\" for ever, and the probe polls for 10 ms of guest time, \
                  hundreds of port exits, each slow in the rig: initcall_debug showed `cmos_init` taking 3.3 s under \
                  microvm and 7.7 s under QEMU's microvm, and nothing under q35, which has the clock. `rtc=on` gives \
                  both microvm machines a CMOS clock (microvm's: legacy/rtc.rs).\n";
            s += "\nmicrovm's `-trace-boot` breakdown (medians, ms since its process start; the cloud kernel \
                  lacks the boot-trace patch, so its start_kernel is missing and user start comes from /init). \
                  QEMU gives no breakdown without its own tracing, so only its exec-to-marker time is measured.\n\n\
                  | point | minimal | cloud | cloud, rtc=on |\n| --- | ---: | ---: | ---: |\n";
            for (i, p) in super::boot::POINTS.iter().enumerate() {
                let v =
                    |k: &str| b.trace.iter().find(|t| t.0 == k).and_then(|t| t.1[i].1).map_or("missing".into(), num);
                let _ = writeln!(s, "| {p} | {} | {} | {} |", v("minimal"), v("cloud"), v("cloud-rtc"));
            }
        }
        Err(e) => {
            let _ = writeln!(s, "Not measured in this run: {e}");
        }
    }
    s += &format!("\n{}", splice_section("", "qmp", &super::qmp::markdown(&r.qmp, r.runs)));
    s += &format!("\n{}", splice_section("", "power", &super::power::markdown(&r.power, r.power_runs)));
    s += "\n## I/O\n\n";
    // A section of its own: `--only io` rewrites it.
    let io = match &r.io {
        Ok(text) => text.clone(),
        Err(e) => format!("**Not measured: {e}.** No figures rather than made-up ones.\n"),
    };
    s += &splice_section("", "io", &io);
    s
}

/// One panel per summary row, two bars each (microvm, QEMU) scaled to the panel's larger.
pub fn svg(r: &Results) -> String {
    let rows = rows(r);
    let (w, panel, left, bar_w) = (760.0, 58.0, 300.0, 360.0);
    let h = 30.0 + panel * rows.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-weight=\"bold\">microvm (blue) vs QEMU -M microvm (grey), medians — {}</text>\n",
        xml(&r.machine.date)
    );
    for (i, row) in rows.iter().enumerate() {
        let y = 30.0 + panel * i as f64;
        let max = row.2.max(row.3);
        let _ = writeln!(s, "<text x=\"10\" y=\"{}\">{} ({})</text>", y + 24.0, xml(&row.0), row.1);
        for (j, (v, color)) in [(row.2, "#2a6fdb"), (row.3, "#999")].iter().enumerate() {
            let len = if max > 0.0 && v.is_finite() { bar_w * v / max } else { 0.0 };
            let by = y + 6.0 + 22.0 * j as f64;
            let _ = writeln!(
                s,
                "<rect x=\"{left}\" y=\"{by}\" width=\"{len:.1}\" height=\"18\" fill=\"{color}\"/>\
                 <text x=\"{:.1}\" y=\"{}\">{}</text>",
                left + len + 4.0,
                by + 13.0,
                num(*v)
            );
        }
    }
    s + "</svg>\n"
}

fn xml(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// README's table: the report's summary table (`summary`, from the last full run) and a
/// row for each section's headline figures (`xtask::headline`), in the report's order.
pub fn readme_table(report: &str) -> String {
    let mut lines = report.lines().skip_while(|l| !l.starts_with("| median | microvm | QEMU -M microvm |"));
    let mut table: String = lines.by_ref().take_while(|l| l.starts_with('|')).map(|l| format!("{l}\n")).collect();
    for h in xtask::headline::parse(report) {
        let row: Row = (h.what, "", h.microvm, h.peer, h.lower_better);
        let _ = writeln!(table, "| {} | {} | {} | {} |", row.0, num(row.2), num(row.3), ratio(&row));
    }
    table
}

const BEGIN: &str = "<!-- bench:begin (cargo xtask bench rewrites this part) -->";
const END: &str = "<!-- bench:end -->";

/// README.md with the text between the bench markers replaced by `table` and a link.
/// Replaces the report section `name` (between its markers) with `text`, or appends it
/// with markers when the report has none yet: `bench --only NAME` rewrites just that part.
pub fn splice_section(report: &str, name: &str, text: &str) -> String {
    let (begin, end) = (format!("<!-- section:{name} -->"), format!("<!-- /section:{name} -->"));
    let block = format!("{begin}\n{text}{end}\n");
    match report.split_once(&begin).and_then(|(head, rest)| Some((head, rest.split_once(&end)?.1))) {
        Some((head, tail)) => format!("{head}{block}{}", tail.strip_prefix('\n').unwrap_or(tail)),
        None if report.is_empty() => block,
        None => format!("{}\n{block}", report.trim_end_matches('\n').to_owned() + "\n"),
    }
}

pub fn splice_readme(readme: &str, table: &str) -> Result<String, String> {
    let (head, rest) = readme.split_once(BEGIN).ok_or("README.md has no bench:begin marker")?;
    let (_, tail) = rest.split_once(END).ok_or("README.md has no bench:end marker")?;
    Ok(format!(
        "{head}{BEGIN}\n{table}\nFull report, method and machine: [docs/benchmarks](docs/benchmarks/README.md).\n{END}{tail}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_is_spliced_between_markers() {
        let readme = format!("a\n{BEGIN}\nold\n{END}\nb\n");
        let out = splice_readme(&readme, "| new |\n").unwrap();
        assert!(out.starts_with("a\n") && out.ends_with(&format!("{END}\nb\n")));
        assert!(out.contains("| new |") && !out.contains("old"));
        assert!(splice_readme("no markers", "x").is_err());
    }

    #[test]
    fn sections_are_replaced_or_appended() {
        let first = splice_section("# r\n", "qmp", "one\n");
        assert_eq!(first, "# r\n\n<!-- section:qmp -->\none\n<!-- /section:qmp -->\n");
        let second = splice_section(&format!("{first}tail\n"), "qmp", "two\n");
        assert_eq!(second, "# r\n\n<!-- section:qmp -->\ntwo\n<!-- /section:qmp -->\ntail\n");
    }

    #[test]
    fn readmes_table_is_the_summary_and_the_headlines() {
        let report = format!(
            "# r\n\n| median | microvm | QEMU -M microvm | microvm ahead by |\n| --- | ---: | ---: | ---: |\n\
             | start (ms) | 2.0 | 30 | 15.0× |\n\ntext\n{}",
            xtask::headline::line("fio, QD 32 (IOPS)", Some(7352.0), Some(4387.0), false)
        );
        let table = readme_table(&report);
        assert!(table.starts_with("| median |") && table.contains("| start (ms) | 2.0 | 30 | 15.0× |\n"), "{table}");
        assert!(table.ends_with("| fio, QD 32 (IOPS) | 7352 | 4387 | 1.7× |\n"), "{table}");
    }

    #[test]
    fn ratios_point_the_same_way() {
        assert_eq!(ratio(&("t".into(), "ms", 10.0, 30.0, true)), "3.0×");
        assert_eq!(ratio(&("d".into(), "1/s", 30.0, 10.0, false)), "3.0×");
        assert_eq!(ratio(&("x".into(), "ms", f64::NAN, 1.0, true)), "n/a");
    }
}
