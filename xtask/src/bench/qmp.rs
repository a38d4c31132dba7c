//! QMP figures on the host's /dev/kvm, microvm against QEMU's microvm with the same idle
//! tiny guest: `query-status` round trips (p50, p99), `stop` sent to STOP received and
//! `cont` sent to RESUME received, and the resident memory a connected monitor adds.
//! The client is a plain Unix-socket line reader, the same for both VMMs.

use super::local::{Guests, Vmm};
use super::median;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `query-status` round trips per VMM; enough for a stable p99.
const ROUND_TRIPS: usize = 1000;

/// How long a VMM may take to create its socket.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// One VMM's figures, µs (RSS: KiB).
#[derive(Clone, Copy, Debug)]
pub struct QmpFigures {
    pub round_trip_p50: f64,
    pub round_trip_p99: f64,
    pub stop_to_event: f64,
    pub cont_to_event: f64,
    pub rss_added_kib: f64,
}

/// A VMM with a connected, negotiated monitor; killed when dropped.
pub(super) struct Session {
    pub child: Child,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Session {
    fn start(vmm: &Vmm, kernel: &Path, sock: &Path) -> Result<Session, String> {
        Session::spawn(vmm.command(kernel), vmm.name, sock)
    }

    /// Starts `cmd` with a QMP server on `sock` and negotiates capabilities.
    pub(super) fn spawn(mut cmd: Command, name: &str, sock: &Path) -> Result<Session, String> {
        let _ = std::fs::remove_file(sock);
        cmd.arg("-qmp").arg(format!("unix:{},server=on,wait=off", sock.display())).stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| format!("{name}: {e}"))?;
        let deadline = Instant::now() + SOCKET_TIMEOUT;
        let stream = loop {
            match UnixStream::connect(sock) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{name}: no QMP socket at {}: {e}", sock.display()));
                }
            }
        };
        stream.set_read_timeout(Some(SOCKET_TIMEOUT)).map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut session = Session { child, reader: BufReader::new(stream), writer };
        session.line()?; // greeting
        session.command("qmp_capabilities")?;
        Ok(session)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("the VMM closed the monitor".into()),
            Ok(_) => Ok(line),
            Err(e) => Err(format!("reading the monitor: {e}")),
        }
    }

    fn send(&mut self, command: &str) -> Result<(), String> {
        writeln!(self.writer, "{{\"execute\": \"{command}\"}}").map_err(|e| e.to_string())
    }

    /// Sends a command and waits for its reply, skipping events.
    fn command(&mut self, command: &str) -> Result<(), String> {
        self.send(command)?;
        self.until(|l| l.contains("\"return\"") || l.contains("\"error\""))
    }

    /// Sends one request (a JSON object) and returns its reply line, skipping events.
    pub(super) fn execute(&mut self, request: &str) -> Result<String, String> {
        writeln!(self.writer, "{request}").map_err(|e| e.to_string())?;
        loop {
            let line = self.line()?;
            if line.contains("\"return\"") || line.contains("\"error\"") {
                return Ok(line);
            }
        }
    }

    fn until(&mut self, done: impl Fn(&str) -> bool) -> Result<(), String> {
        loop {
            if done(&self.line()?) {
                return Ok(());
            }
        }
    }

    fn rss_kib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok())
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Resident memory of the VMM with no monitor, once it has settled (KiB).
fn rss_without_monitor(vmm: &Vmm, kernel: &Path) -> Result<f64, String> {
    let mut child = vmm.command(kernel).stderr(Stdio::null()).spawn().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(500));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok())
        .ok_or(format!("{}: no VmRSS", vmm.name))
}

fn measure(vmm: &Vmm, g: &Guests, dir: &Path, cycles: usize) -> Result<QmpFigures, String> {
    let sock = dir.join(format!("{}-qmp.sock", vmm.name));
    let mut s = Session::start(vmm, &g.idle, &sock)?;
    let mut trips = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        s.command("query-status")?;
        trips.push(micros(t.elapsed()));
    }
    let (mut stops, mut conts) = (Vec::new(), Vec::new());
    for _ in 0..cycles {
        let t = Instant::now();
        s.send("stop")?;
        s.until(|l| l.contains("\"STOP\""))?;
        stops.push(micros(t.elapsed()));
        let t = Instant::now();
        s.send("cont")?;
        s.until(|l| l.contains("\"RESUME\""))?;
        conts.push(micros(t.elapsed()));
    }
    std::thread::sleep(Duration::from_millis(200));
    let with_monitor = s.rss_kib();
    drop(s);
    let without = rss_without_monitor(vmm, &g.idle)?;
    trips.sort_by(f64::total_cmp);
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    Ok(QmpFigures {
        round_trip_p50: nan(median(&trips)),
        round_trip_p99: trips[trips.len() * 99 / 100],
        stop_to_event: nan(median(&stops)),
        cont_to_event: nan(median(&conts)),
        rss_added_kib: with_monitor - without,
    })
}

/// Both VMMs' figures; `cycles` stop/cont pairs each.
pub fn run(vmms: &[Vmm; 2], g: &Guests, dir: &Path, cycles: usize) -> Result<[QmpFigures; 2], String> {
    Ok([measure(&vmms[0], g, dir, cycles)?, measure(&vmms[1], g, dir, cycles)?])
}

/// The report's QMP section.
pub fn markdown(figures: &Result<[QmpFigures; 2], String>, cycles: usize) -> String {
    let mut s = format!(
        "## QMP\n\nThe idle tiny guest (it halts for good) with `-qmp unix:SOCK,server=on,wait=off`; one \
         client on the socket, after `qmp_capabilities`: {ROUND_TRIPS} `query-status` round trips (send \
         to reply), then {cycles} `stop`/`cont` pairs, each timed from sending the command to receiving \
         its STOP or RESUME event. RSS added: VmRSS with the monitor connected and used, minus VmRSS of \
         the same VM started without `-qmp` (the same idle guest, 500 ms after start).\n\n"
    );
    match figures {
        Ok([m, q]) => {
            s += "| | microvm | QEMU |\n| --- | ---: | ---: |\n";
            let rows = [
                ("query-status round trip, p50 (µs)", m.round_trip_p50, q.round_trip_p50),
                ("query-status round trip, p99 (µs)", m.round_trip_p99, q.round_trip_p99),
                ("stop → STOP event, median (µs)", m.stop_to_event, q.stop_to_event),
                ("cont → RESUME event, median (µs)", m.cont_to_event, q.cont_to_event),
                ("RSS added by the monitor (KiB)", m.rss_added_kib, q.rss_added_kib),
            ];
            for (what, a, b) in rows {
                s += &format!("| {what} | {a:.0} | {b:.0} |\n");
            }
        }
        Err(e) => s += &format!("**Not measured: {e}.**\n"),
    }
    s
}
