//! ACPI's cost and the power-off path: xtask/scenarios/bench-power.sh boots Debian's cloud
//! kernel under microvm with acpi=on (devices from the DSDT, `poweroff -f` ends the VM) and
//! acpi=off (devices from the command line, `reboot -f` ends it: without ACPI the guest
//! cannot power off), and under QEMU's -M microvm,acpi=on, in turns, in one rig boot (or
//! directly where /dev/kvm boots Linux). Exec to init marker and exec to exit, medians.
//! `cargo xtask bench --only power` measures it alone.

use super::median;

/// The section's figures, and how busy the host was when they were taken (rig times grow
/// with the load of the machine's other users).
#[derive(Clone, Debug, PartialEq)]
pub struct PowerFigures {
    pub rows: Vec<Row>,
    /// `/proc/loadavg`'s first three fields at the start.
    pub load: Option<String>,
}

/// One configuration's medians.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub vmm: String,
    pub acpi: String,
    /// Exec to MICROVM-GUEST-READY, ms.
    pub ready_ms: Option<f64>,
    /// Exec to the VMM's exit, ms.
    pub exit_ms: Option<f64>,
    /// Runs that reached the marker and exited 0.
    pub ok: usize,
    pub runs: usize,
}

pub fn run(runs: usize) -> Result<PowerFigures, String> {
    let load = super::load_average();
    let case = super::rig_scenario("bench-power", runs, "@@POWER ")?;
    let rows = parse(&case.output);
    if rows.iter().all(|r| r.ok == 0) {
        return Err(format!("no boot reached the marker and exited 0\n{}", case.report()));
    }
    Ok(PowerFigures { rows, load })
}

/// One configuration's runs: (VMM, acpi), ready ms, exit ms, runs seen.
type Group = ((String, String), Vec<f64>, Vec<f64>, usize);

/// The `@@POWER` lines, grouped by VMM and acpi= in the order first seen.
pub fn parse(output: &str) -> Vec<Row> {
    let mut groups: Vec<Group> = Vec::new();
    for rest in output.lines().filter_map(|l| l.split("@@POWER ").nth(1)) {
        let field = |k: &str| rest.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap_or("");
        let key = (field("vmm=").to_string(), field("acpi=").to_string());
        let i = groups.iter().position(|g| g.0 == key).unwrap_or_else(|| {
            groups.push((key, Vec::new(), Vec::new(), 0));
            groups.len() - 1
        });
        let group = &mut groups[i];
        group.3 += 1;
        let ready = field("ready_us=").parse::<i64>().ok().filter(|&us| us > 0);
        let exit = field("exit_us=").parse::<i64>().ok().filter(|&us| us > 0);
        if let (Some(ready), Some(exit), "status=0") = (ready, exit, rest.split_whitespace().last().unwrap_or("")) {
            group.1.push(ready as f64 / 1e3);
            group.2.push(exit as f64 / 1e3);
        }
    }
    groups
        .into_iter()
        .map(|((vmm, acpi), ready, exit, runs)| Row {
            vmm,
            acpi,
            ready_ms: median(&ready),
            exit_ms: median(&exit),
            ok: ready.len(),
            runs,
        })
        .collect()
}

pub fn markdown(figures: &Result<PowerFigures, String>, runs: usize) -> String {
    let mut s = String::from("## Power and ACPI (`acpi=on`)\n\n");
    s += &format!(
        "Debian's cloud kernel, 1 vCPU, 256 MiB, initramfs, one virtio-blk disk; median of {runs} runs \
         (xtask/scenarios/bench-power.sh). With `acpi=on` the guest ends with `poweroff -f` (S5); with \
         `acpi=off` it cannot power off and ends with `reboot -f`. No CMOS clock (`rtc=off`) but in \
         the `off,rtc=on` row: `acpi=on` also tells the kernel (FADT NO_CMOS_RTC) that there is no \
         clock, which spares it the slow rtc-cmos probe of absent ports (see the boot section); \
         the `off,rtc=on` row shows acpi=off without that probe. Without ACPI the cloud kernel also \
         lacks its interrupt controller description (it is built without MP-table parsing), so it \
         runs on the PIC alone (docs/acpi.md).\n\n"
    );
    match figures {
        Err(e) => s += &format!("Not measured: {}\n", e.lines().next().unwrap_or("")),
        Ok(PowerFigures { rows, load }) => {
            if let Some(load) = load {
                s += &format!("Host load average when the run started: {load}.\n\n");
            }
            s += "| VMM | acpi | exec → init marker (ms) | exec → exit (ms) | runs ok |\n| --- | --- | ---: | ---: | ---: |\n";
            let f = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0}"));
            for r in rows {
                let vmm = if r.vmm == "qemu" { "QEMU -M microvm" } else { "microvm" };
                s += &format!("| {vmm} | {} | {} | {} | {}/{} |\n", r.acpi, f(r.ready_ms), f(r.exit_ms), r.ok, r.runs);
            }
            let exit = |vmm: &str| rows.iter().find(|r| r.vmm == vmm && r.acpi == "on")?.exit_ms;
            let what = "power: cloud kernel, acpi=on, exec → exit after poweroff (ms)";
            s += &xtask::headline::line(what, exit("microvm"), exit("qemu"), true);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_grouped_and_failures_counted() {
        let out = "@@POWER vmm=microvm acpi=on run=0 ready_us=5000 exit_us=5300 status=0\n\
            @@POWER vmm=microvm acpi=off run=0 ready_us=4800 exit_us=5000 status=0\n\
            @@POWER vmm=qemu acpi=on run=0 ready_us=7000 exit_us=7400 status=0\n\
            noise\n\
            @@POWER vmm=microvm acpi=on run=1 ready_us=5200 exit_us=5600 status=0\n\
            @@POWER vmm=microvm acpi=off run=1 ready_us=-4 exit_us=60000 status=137\n";
        let rows = parse(out);
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].ready_ms, rows[0].exit_ms, rows[0].ok, rows[0].runs), (Some(5.2), Some(5.6), 2, 2));
        assert_eq!((rows[1].acpi.as_str(), rows[1].ok, rows[1].runs, rows[1].ready_ms), ("off", 1, 2, Some(4.8)));
        assert_eq!((rows[2].vmm.as_str(), rows[2].exit_ms), ("qemu", Some(7.4)));
        let text = markdown(&Ok(PowerFigures { rows, load: Some("1.00 2.00 3.00".into()) }), 2);
        assert!(text.contains("load average when the run started: 1.00 2.00 3.00."), "{text}");
        assert!(text.contains("| microvm | on | 5 | 6 | 2/2 |"), "{text}");
        assert!(text.contains("| QEMU -M microvm | on | 7 | 7 | 1/1 |"), "{text}");
        assert!(markdown(&Err("rig failed\nmore".into()), 2).contains("Not measured: rig failed\n"));
    }
}
