//! Diff snapshots on the host's /dev/kvm (no rig: the guest is tiny): microvm in
//! Firecracker mode with `track_dirty_pages`, the page-writing guest of
//! `tiny_guest::page_writer_on_serial` (one new page a turn, so its output counts the
//! pages it dirtied), a Full snapshot, then `runs` Diff snapshots each after the guest ran
//! on a while: the time `PUT /snapshot/create` takes (request written to answer read, on
//! the API socket) and the diff file's allocated size against the dirtied pages.

use super::median;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MEM_MIB: u64 = 256;
/// 64 MiB of the guest's RAM, from 16 MiB: more pages than the runs write.
const REGION: u32 = 16 << 20;
const PAGES: u32 = 16384;
const DELAY: u32 = 1000;
/// How long the guest runs between two snapshots.
const RUN_FOR: Duration = Duration::from_millis(700);

/// One snapshot: what it took and wrote.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub create_ms: f64,
    pub dirtied_kib: u64,
    pub file_kib: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DiffFigures {
    pub full: Sample,
    pub diffs: Vec<Sample>,
}

struct Vm {
    child: Child,
    socket: PathBuf,
    console: PathBuf,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(microvm: &Path, dir: &Path, runs: usize) -> Result<DiffFigures, String> {
    xtask::host::mkdir(dir)?;
    let kernel = dir.join("page-writer.elf");
    xtask::host::write(&kernel, tiny_guest::page_writer_on_serial(REGION, PAGES, 64, DELAY))?;
    let socket = dir.join("diff-bench.socket");
    let console = dir.join("diff-bench.console");
    let _ = std::fs::remove_file(&socket);
    let out = std::fs::File::create(&console).map_err(|e| format!("{}: {e}", console.display()))?;
    let child = Command::new(microvm)
        .arg("--api-sock")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", microvm.display()))?;
    let vm = Vm { child, socket, console };
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&vm.socket).is_err() {
        if Instant::now() > deadline {
            return Err("microvm did not open its API socket".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let boot = format!(r#"{{"kernel_image_path": "{}", "boot_args": "console=ttyS0"}}"#, kernel.display());
    request(&vm.socket, "PUT", "/boot-source", &boot)?;
    let machine = format!(r#"{{"vcpu_count": 1, "mem_size_mib": {MEM_MIB}, "track_dirty_pages": true}}"#);
    request(&vm.socket, "PUT", "/machine-config", &machine)?;
    request(&vm.socket, "PUT", "/actions", r#"{"action_type": "InstanceStart"}"#)?;
    std::thread::sleep(RUN_FOR);
    let (full, mut turn) = snapshot(&vm, dir, "Full", 0)?;
    let mut diffs = Vec::new();
    for i in 0..runs {
        request(&vm.socket, "PATCH", "/vm", r#"{"state": "Resumed"}"#)?;
        std::thread::sleep(RUN_FOR);
        let (sample, now) = snapshot(&vm, dir, &format!("Diff-{i}"), turn)?;
        diffs.push(sample);
        turn = now;
    }
    Ok(DiffFigures { full, diffs })
}

/// Pauses the VM, takes a snapshot of `kind` (`Full`, or `Diff-N`) and measures it; the
/// guest's last turn before it was `since`.
fn snapshot(vm: &Vm, dir: &Path, kind: &str, since: u64) -> Result<(Sample, u64), String> {
    request(&vm.socket, "PATCH", "/vm", r#"{"state": "Paused"}"#)?;
    // The console file catches up with the paused guest's last line.
    std::thread::sleep(Duration::from_millis(100));
    let turn = last_turn(&std::fs::read(&vm.console).map_err(|e| e.to_string())?);
    let (state, mem) = (dir.join(format!("{kind}.state")), dir.join(format!("{kind}.mem")));
    let kind_name = kind.split('-').next().unwrap_or(kind);
    let body = format!(
        r#"{{"snapshot_type": "{kind_name}", "snapshot_path": "{}", "mem_file_path": "{}"}}"#,
        state.display(),
        mem.display()
    );
    let started = Instant::now();
    request(&vm.socket, "PUT", "/snapshot/create", &body)?;
    let create_ms = started.elapsed().as_secs_f64() * 1e3;
    let file_kib = std::fs::metadata(&mem).map_err(|e| e.to_string())?.blocks() / 2;
    // One new page a turn (the region is never gone round here).
    let dirtied_kib = (turn - since) * 4;
    Ok((Sample { create_ms, dirtied_kib, file_kib }, turn))
}

/// The guest's last complete line's turn (`OOOOOOOOOO NNNNNNNNNN`).
fn last_turn(out: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(out);
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().last().and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// One HTTP/1.1 request on the API socket; Err unless the answer is 2xx.
fn request(socket: &Path, method: &str, path: &str, body: &str) -> Result<(), String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(format!("{head}{body}").as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Enough to hold the status line; the connection stays open (keep-alive).
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).map_err(|e| format!("{method} {path}: {e}"))?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    match text.split_whitespace().nth(1) {
        Some(code) if code.starts_with('2') => Ok(()),
        _ => Err(format!("{method} {path}: {}", text.trim())),
    }
}

pub fn markdown(figures: &Result<DiffFigures, String>) -> String {
    let mut s = String::from("### Diff snapshots\n\n");
    s += &format!(
        "On the host's /dev/kvm, microvm's Firecracker API with `track_dirty_pages`: a tiny guest \
         ({MEM_MIB} MiB) that writes one new page a turn (`tiny_guest::page_writer_on_serial`, so \
         its output counts the pages it dirtied), a Full snapshot, then Diff snapshots each after \
         {} ms more of the guest (xtask/src/bench/snapshot_diff.rs). Create: `PUT /snapshot/create` \
         written to its answer read, the VM paused. File: the memory file's allocated size (its 4 KiB \
         tag included).\n\n",
        RUN_FOR.as_millis()
    );
    match figures {
        Err(e) => s += &format!("Not measured: {}\n", e.lines().next().unwrap_or("")),
        Ok(f) => {
            s += "| snapshot | create (ms) | pages dirtied since the last (KiB) | memory file allocated (KiB) |\n\
                  | --- | ---: | ---: | ---: |\n";
            s += &format!("| Full | {:.1} | — | {} |\n", f.full.create_ms, f.full.file_kib);
            for (i, d) in f.diffs.iter().enumerate() {
                s += &format!("| Diff {} | {:.1} | {} | {} |\n", i + 1, d.create_ms, d.dirtied_kib, d.file_kib);
            }
            let ms: Vec<f64> = f.diffs.iter().map(|d| d.create_ms).collect();
            if let Some(m) = median(&ms) {
                s += &format!("\nMedian Diff create: {m:.1} ms.\n");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_complete_line_gives_the_turn_and_the_table_each_snapshot() {
        assert_eq!(last_turn(b"0000000000 0000000001\n0000000000 0000000002\n00000"), 2);
        assert_eq!(last_turn(b""), 0);
        let sample = |create_ms, dirtied_kib, file_kib| Sample { create_ms, dirtied_kib, file_kib };
        let f = DiffFigures { full: sample(12.0, 0, 1300), diffs: vec![sample(3.0, 400, 404), sample(5.0, 800, 804)] };
        let text = markdown(&Ok(f));
        assert!(text.contains("| Full | 12.0 | — | 1300 |"), "{text}");
        assert!(text.contains("| Diff 2 | 5.0 | 800 | 804 |"), "{text}");
        assert!(markdown(&Err("no kvm".into())).contains("Not measured: no kvm"));
    }
}
