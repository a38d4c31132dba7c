//! Huge pages (issue 19 item 2): xtask/scenarios/hugepages.sh boots the minimal kernel with
//! its 256 MiB on a hugetlb memfd (2 MiB pages) and on default memory, in turns, and the
//! guest writes and reads 128 MiB of tmpfs; in one rig boot (or directly where /dev/kvm
//! boots Linux). Medians of the guest's uptime at its ready marker and of the touch's time.
//! `cargo xtask bench --only hugepages` measures it.

use super::median;

/// One memory mode's medians, seconds by the guest's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub mode: String,
    pub ready: Option<f64>,
    pub touch: Option<f64>,
    pub ok: usize,
    pub runs: usize,
}

pub struct HugeFigures {
    pub rows: Vec<Row>,
    pub load: Option<String>,
}

pub fn run(runs: usize) -> Result<HugeFigures, String> {
    let load = super::load_average();
    let case = super::rig_scenario("hugepages", runs, "HUGE-")?;
    let rows = parse(&case.output);
    if rows.iter().all(|r| r.ok == 0) {
        return Err(format!("no run finished\n{}", case.report()));
    }
    Ok(HugeFigures { rows, load })
}

/// The `HUGE-RUN` lines, one row per mode in the order first seen.
pub fn parse(output: &str) -> Vec<Row> {
    let mut rows: Vec<(Row, Vec<f64>, Vec<f64>)> = Vec::new();
    for rest in output.lines().filter_map(|l| l.strip_prefix("HUGE-RUN ")) {
        let field = |k: &str| rest.split_whitespace().find_map(|w| w.strip_prefix(k)?.strip_prefix('=')).unwrap_or("");
        let i = rows.iter().position(|r| r.0.mode == field("mode")).unwrap_or_else(|| {
            let row = Row { mode: field("mode").to_string(), ready: None, touch: None, ok: 0, runs: 0 };
            rows.push((row, Vec::new(), Vec::new()));
            rows.len() - 1
        });
        let (row, ready, touch) = &mut rows[i];
        row.runs += 1;
        if let (Ok(r), Ok(t), "0") = (field("ready").parse::<f64>(), field("touch").parse::<f64>(), field("status")) {
            row.ok += 1;
            ready.push(r);
            touch.push(t);
        }
    }
    rows.into_iter().map(|(row, ready, touch)| Row { ready: median(&ready), touch: median(&touch), ..row }).collect()
}

pub fn markdown(figures: &Result<HugeFigures, String>, runs: usize) -> String {
    let mut s = format!(
        "## Huge pages\n\nThe minimal kernel, 1 vCPU, 256 MiB, initramfs; its /tests/memtouch writes 128 MiB \
         into a tmpfs and reads it back. Guest RAM on a hugetlb memfd (`-object \
         memory-backend-memfd,hugetlb=on,hugetlbsize=2M`) and on microvm's default memory, in turns, \
         median of {runs} runs (xtask/scenarios/hugepages.sh), seconds by the guest's clock. The rig \
         (TCG under L1's KVM) makes every figure noisy under load: compare rows of one run only.\n\n"
    );
    match figures {
        Err(e) => s += &format!("Not measured: {}\n", e.lines().next().unwrap_or("")),
        Ok(HugeFigures { rows, load }) => {
            if let Some(load) = load {
                s += &format!("Host load average when the run started: {load}.\n\n");
            }
            s += "| guest RAM | boot: uptime at init marker (s) | write + read 128 MiB (s) | runs ok |\n\
                  | --- | ---: | ---: | ---: |\n";
            let f = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
            for r in rows {
                let what = if r.mode == "huge" { "2 MiB huge pages (memfd)" } else { "default (anonymous, 4 KiB)" };
                s += &format!("| {what} | {} | {} | {}/{} |\n", f(r.ready), f(r.touch), r.ok, r.runs);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_grouped_by_mode_and_failures_counted() {
        let out = "HUGE-POOL total=136 free=136\n\
            HUGE-RUN mode=huge ready=1.20 touch=0.79 pagekib=2048 held=128 status=0\n\
            HUGE-RUN mode=plain ready=1.70 touch=3.02 pagekib=4 held=0 status=0\n\
            HUGE-RUN mode=huge ready=1.30 touch=0.70 pagekib=2048 held=128 status=0\n\
            HUGE-RUN mode=plain ready= touch= pagekib= held=0 status=1\n";
        let rows = parse(out);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].mode.as_str(), rows[0].ok, rows[0].runs, rows[0].ready), ("huge", 2, 2, Some(1.3)));
        assert_eq!((rows[1].ok, rows[1].runs, rows[1].touch), (1, 2, Some(3.02)));
        let text = markdown(&Ok(HugeFigures { rows, load: None }), 2);
        assert!(text.contains("| 2 MiB huge pages (memfd) | 1.30 | 0.79 | 2/2 |"), "{text}");
        assert!(text.contains("| default (anonymous, 4 KiB) | 1.70 | 3.02 | 1/2 |"), "{text}");
    }
}
