//! The boot-time breakdown (`-trace-boot`): when the VMM finished setting up
//! (first KVM_RUN), when Linux reached `start_kernel` and user space, and
//! when the guest ended, all relative to process start. Off by default: then
//! no port is added and nothing is recorded.

pub use crate::config::BootTraceConfig;
use crate::error::Error;
use crate::startup::StartupClock;
use devices::debug_port::GuestCheckpoints;
use std::fmt::Write;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `-trace-boot`: what to write, and the checkpoints the guest reached.
pub(crate) type BootTrace = (BootTraceConfig, Arc<GuestCheckpoints>);

/// The boot trace's JSON file, opened now: files written at exit must be opened before
/// the main thread's filter (which has no open).
pub(crate) fn open_trace_json(boot_trace: &Option<BootTrace>) -> Result<Option<(PathBuf, File)>, Error> {
    match boot_trace.as_ref().and_then(|(trace, _)| trace.json.as_ref()) {
        Some(path) => {
            let file = File::create(path).map_err(|source| Error::Report { path: path.clone(), source })?;
            Ok(Some((path.clone(), file)))
        }
        None => Ok(None),
    }
}

/// With `-trace-boot`, the boot times: logged, and written to the JSON file if asked.
pub(crate) fn report_boot_times(
    boot_trace: &Option<BootTrace>,
    clock: &StartupClock,
    guest_exit: std::time::Duration,
    json: Option<(PathBuf, File)>,
) -> Result<(), Error> {
    let Some((_, checkpoints)) = boot_trace else { return Ok(()) };
    let times = BootTimes::new(clock.first_run().map(|f| f.wall), checkpoints, Some(guest_exit));
    log::info!(target: devices::NOTICE, "{}", times.table().trim_end_matches('\n'));
    if let Some((path, mut file)) = json {
        file.write_all(times.json().as_bytes()).map_err(|source| Error::Report { path, source })?;
    }
    Ok(())
}

/// The four points, each `None` when it was not reached or not reported.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BootTimes {
    pub vmm_init_end: Option<Duration>,
    pub linux_start_kernel: Option<Duration>,
    pub linux_start_user: Option<Duration>,
    pub guest_exit: Option<Duration>,
}

const GUEST_POINT_HINT: &str =
    "the guest did not write it to port 0xf4 (kernel without the boot-trace patch, or an init that does not report)";

impl BootTimes {
    pub fn new(vmm_init_end: Option<Duration>, guest: &GuestCheckpoints, guest_exit: Option<Duration>) -> Self {
        BootTimes {
            vmm_init_end,
            linux_start_kernel: guest.linux_start_kernel.get().copied(),
            linux_start_user: guest.linux_start_user.get().copied(),
            guest_exit,
        }
    }

    fn points(&self) -> [(&'static str, Option<Duration>); 4] {
        [
            ("vmm_init_end", self.vmm_init_end),
            ("linux_start_kernel", self.linux_start_kernel),
            ("linux_start_user", self.linux_start_user),
            ("guest_exit", self.guest_exit),
        ]
    }

    /// The table printed on stderr: milliseconds since process start, and
    /// the step from the previous point that was reached.
    pub fn table(&self) -> String {
        let mut out = String::from("microvm boot trace (ms since process start):\n");
        let mut previous: Option<Duration> = None;
        for (name, at) in self.points() {
            match at {
                Some(t) => {
                    let step = previous.map_or(String::new(), |p| format!(" (+{:.3})", ms(t.saturating_sub(p))));
                    let _ = writeln!(out, "  {name:<20}{:>12.3}{step}", ms(t));
                    previous = Some(t);
                }
                None => {
                    let why = if name.starts_with("linux") { GUEST_POINT_HINT } else { "not reached" };
                    let _ = writeln!(out, "  {name:<20}{:>12}  missing: {why}", "-");
                }
            }
        }
        out
    }

    pub fn json(&self) -> String {
        let fields: Vec<String> = self
            .points()
            .iter()
            .map(|(name, at)| match at {
                Some(t) => format!("\"{name}_ms\": {:.3}", ms(*t)),
                None => format!("\"{name}_ms\": null"),
            })
            .collect();
        format!("{{{}}}\n", fields.join(", "))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn times(kernel: bool) -> BootTimes {
        let cp = GuestCheckpoints::new(Instant::now());
        if kernel {
            let _ = cp.linux_start_kernel.set(Duration::from_millis(5));
        }
        let _ = cp.linux_start_user.set(Duration::from_millis(60));
        BootTimes::new(Some(Duration::from_micros(1500)), &cp, Some(Duration::from_millis(70)))
    }

    #[test]
    fn table_has_every_point_in_order_with_steps() {
        let t = times(true).table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[1].starts_with("  vmm_init_end") && lines[1].ends_with("1.500"), "{t}");
        assert!(lines[2].contains("5.000 (+3.500)"), "{t}");
        assert!(lines[3].contains("60.000 (+55.000)"), "{t}");
        assert!(lines[4].contains("70.000 (+10.000)"), "{t}");
    }

    #[test]
    fn a_missing_guest_point_is_named_and_explained() {
        let t = times(false).table();
        assert!(t.contains("linux_start_kernel") && t.contains("missing: the guest did not write it"), "{t}");
        assert!(t.contains("60.000 (+58.500)"), "step is from the last point reached: {t}");
    }

    #[test]
    fn json_has_null_for_missing_points() {
        assert_eq!(
            times(false).json(),
            "{\"vmm_init_end_ms\": 1.500, \"linux_start_kernel_ms\": null, \"linux_start_user_ms\": 60.000, \"guest_exit_ms\": 70.000}\n"
        );
    }
}
