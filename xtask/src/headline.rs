//! A benchmark section's headline figures for README's table. Each section writes them into
//! its Markdown as comment lines,
//! `<!-- headline: WHAT (UNIT) | MICROVM | PEER | lower -->` (`higher` where more is
//! better), and README's table is the report's summary table plus these rows, rebuilt from
//! the report after a full run or any `--only` section: the report stays the one source,
//! and a section measured alone updates its rows too.

/// One headline: what and its unit, microvm's figure, the peer's (QEMU unless `what` says
/// otherwise), and whether lower is better.
#[derive(Clone, Debug, PartialEq)]
pub struct Headline {
    pub what: String,
    pub microvm: f64,
    pub peer: f64,
    pub lower_better: bool,
}

const PREFIX: &str = "<!-- headline: ";

/// The comment line of a headline, or nothing when either figure is missing.
pub fn line(what: &str, microvm: Option<f64>, peer: Option<f64>, lower_better: bool) -> String {
    match (microvm, peer) {
        (Some(m), Some(p)) if m.is_finite() && p.is_finite() => {
            format!("{PREFIX}{what} | {m} | {p} | {} -->\n", if lower_better { "lower" } else { "higher" })
        }
        _ => String::new(),
    }
}

/// Every headline in `report`, in order.
pub fn parse(report: &str) -> Vec<Headline> {
    report
        .lines()
        .filter_map(|l| {
            let body = l.trim().strip_prefix(PREFIX)?.strip_suffix("-->")?;
            let fields: Vec<&str> = body.split(" | ").map(str::trim).collect();
            let [what, microvm, peer, better] = fields[..] else { return None };
            Some(Headline {
                what: what.to_string(),
                microvm: microvm.parse().ok()?,
                peer: peer.parse().ok()?,
                lower_better: better == "lower",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back() {
        let text = format!("x\n{}y\n", line("restore, 256 MiB (ms)", Some(110.5), Some(1182.0), true));
        assert_eq!(
            parse(&text),
            [Headline { what: "restore, 256 MiB (ms)".into(), microvm: 110.5, peer: 1182.0, lower_better: true }]
        );
        assert_eq!(line("x", None, Some(1.0), true), "");
        assert_eq!(line("x", Some(f64::NAN), Some(1.0), false), "");
    }
}
