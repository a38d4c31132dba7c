//! Firecracker's API against QMP (issue 17 acceptance 6): xtask/scenarios/bench-fc.sh boots
//! the minimal kernel's counting guest through the API (InstanceStart) and through QMP
//! (`-S`, `cont`), and restores a snapshot of it through each (`/snapshot/load` with
//! `resume_vm`, `-incoming file:`), in turns, in one rig boot (or directly where /dev/kvm
//! boots Linux). `cargo xtask bench --only firecracker` measures it; every API exchange of
//! the run is checked against Firecracker's OpenAPI file (crates/fc-openapi).

use super::median;

/// One operation through one front end: medians, ms.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub what: String,
    pub via: String,
    pub exec_ms: Option<f64>,
    pub call_ms: Option<f64>,
    pub ok: usize,
    pub runs: usize,
}

pub struct FcFigures {
    pub rows: Vec<Row>,
    pub load: Option<String>,
}

pub fn run(runs: usize) -> Result<FcFigures, String> {
    let load = super::load_average();
    let case = super::rig_scenario("bench-fc", runs, "@@FC ")?;
    let rows = parse(&case.output);
    if rows.iter().all(|r| r.ok == 0) {
        return Err(format!("no run reached its marker\n{}", case.report()));
    }
    // Figures of requests that microvm answered outside Firecracker's file would not count.
    match fc_openapi::record::check_all(&case.output) {
        Ok(checked) if !checked.is_empty() => {}
        Ok(_) => return Err(format!("no API exchange recorded\n{}", case.report())),
        Err(e) => return Err(format!("{}\n{}", fc_openapi::describe(&e), case.report())),
    }
    Ok(FcFigures { rows, load })
}

/// The `@@FC` lines, one row per operation and front end in the order first seen; a run
/// whose marker never came (a negative time) counts as failed.
pub fn parse(output: &str) -> Vec<Row> {
    let mut rows: Vec<(Row, Vec<f64>, Vec<f64>)> = Vec::new();
    for rest in output.lines().filter_map(|l| l.split("@@FC ").nth(1)) {
        let field = |k: &str| rest.split_whitespace().find_map(|w| w.strip_prefix(k)?.strip_prefix('=')).unwrap_or("");
        let (what, via) = (field("what"), field("via"));
        let i = rows.iter().position(|r| r.0.what == what && r.0.via == via).unwrap_or_else(|| {
            let row = Row { what: what.into(), via: via.into(), exec_ms: None, call_ms: None, ok: 0, runs: 0 };
            rows.push((row, Vec::new(), Vec::new()));
            rows.len() - 1
        });
        let (row, exec, call) = &mut rows[i];
        row.runs += 1;
        let us = |k: &str| field(k).parse::<i64>().ok().filter(|&us| us > 0).map(|us| us as f64 / 1e3);
        if let (Some(e), Some(c)) = (us("exec_us"), us("call_us")) {
            row.ok += 1;
            exec.push(e);
            call.push(c);
        }
    }
    rows.into_iter().map(|(row, e, c)| Row { exec_ms: median(&e), call_ms: median(&c), ..row }).collect()
}

pub fn markdown(figures: &Result<FcFigures, String>, runs: usize) -> String {
    let mut s = format!(
        "## Firecracker's API and QMP\n\nThe minimal kernel with the initramfs counting on its console, \
         1 vCPU, 256 MiB, median of {runs} runs in the rig (xtask/scenarios/bench-fc.sh): booted \
         through Firecracker's API (microvm as `firecracker`; curl: boot source, machine config; \
         InstanceStart) and through QMP (`-M microvm,legacy,acpi=on -device i8042 -device vmgenid`, \
         the devices of Firecracker's machine, with `-S`; unixcat sends `cont`), then a snapshot \
         of each restored (`/snapshot/load` with `resume_vm` to a process already listening; \
         `-incoming file:`). Request → marker: from launching the client that sends the timed \
         request (unixcat under both front ends: curl's own start in the TCG-run rig would \
         count against the API) to the console marker (`MICROVM-GUEST-READY`; after a restore, the first line); exec → \
         marker: from starting microvm, the API's configuration calls included.\n\n"
    );
    match figures {
        Err(e) => s += &format!("Not measured: {}\n", e.lines().next().unwrap_or("")),
        Ok(FcFigures { rows, load }) => {
            if let Some(load) = load {
                s += &format!("Host load average when the run started: {load}.\n\n");
            }
            s += "| operation | front end | request → marker (ms) | exec → marker (ms) | runs ok |\n\
                  | --- | --- | ---: | ---: | ---: |\n";
            let f = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0}"));
            for r in rows {
                let op = if r.what == "boot" { "boot to init marker" } else { "snapshot restore to first output" };
                let via = match (r.via.as_str(), r.what.as_str()) {
                    ("api", "boot") => "Firecracker API: InstanceStart",
                    ("api", _) => "Firecracker API: /snapshot/load",
                    (_, "boot") => "QMP: cont after -S",
                    _ => "QMP: -incoming file: (no request)",
                };
                s += &format!("| {op} | {via} | {} | {} | {}/{} |\n", f(r.call_ms), f(r.exec_ms), r.ok, r.runs);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_grouped_and_failures_counted() {
        let out = "@@FC what=boot via=api run=0 exec_us=900000 call_us=700000\n\
            @@FC what=restore via=api run=0 exec_us=60000 call_us=40000\n\
            @@FC what=boot via=qmp run=0 exec_us=800000 call_us=650000\n\
            @@FC what=boot via=api run=1 exec_us=-5 call_us=-9\n";
        let rows = parse(out);
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].ok, rows[0].runs, rows[0].call_ms), (1, 2, Some(700.0)));
        assert_eq!((rows[2].via.as_str(), rows[2].exec_ms), ("qmp", Some(800.0)));
        let text = markdown(&Ok(FcFigures { rows, load: None }), 2);
        assert!(text.contains("| boot to init marker | Firecracker API: InstanceStart | 700 | 900 | 1/2 |"), "{text}");
        assert!(text.contains("| snapshot restore to first output | Firecracker API: /snapshot/load | 40 | 60 | 1/1 |"));
    }
}
