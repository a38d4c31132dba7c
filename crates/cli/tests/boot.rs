//! Tiny PVH guests booted through the real `microvm` binary on the host's
//! /dev/kvm: serial output, i8042 reset, several vCPUs, pit=off, accesses
//! nothing handles, triple fault and emulation failure.

mod common;

use common::*;

/// Acceptance point 1: a PVH ELF guest of a few instructions writes a string
/// to the 16550A and resets through the i8042; microvm prints exactly that
/// string and exits 0.
#[test]
fn serial_guest_prints_and_reset_exits_zero() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("serial");
    let msg = "Hello from a tiny PVH guest!\n";
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset(msg));
    let out = run(microvm_legacy(&kernel));
    assert_clean_exit(&out, msg.as_bytes());
}

/// The same guest with four vCPUs: the APs stay in wait-for-SIPI and must
/// neither run the guest's code nor keep microvm alive after the reset.
#[test]
fn serial_guest_with_four_vcpus() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("smp4");
    let msg = "smp 4 guest\n";
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset(msg));
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-smp", "4"]);
    assert_clean_exit(&run(cmd), msg.as_bytes());
}

/// `-M microvm,legacy,pit=off`: no in-kernel PIT, the guest still runs.
#[test]
fn serial_guest_with_pit_off() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("pitoff");
    let msg = "no PIT here\n";
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset(msg));
    let mut cmd = microvm();
    cmd.args(["-M", "microvm,legacy,pit=off", "-m", "32m", "-kernel"]).arg(&kernel).args([
        "-serial",
        "stdio",
        "-nodefaults",
    ]);
    assert_clean_exit(&run(cmd), msg.as_bytes());
}

/// A guest whose first instruction resets: nothing printed, status 0
/// (the benchmark's guest).
#[test]
fn reset_at_once_exits_zero() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("reset");
    let kernel = dir.file("reset.elf", &tiny_guest::reset_at_once());
    assert_clean_exit(&run(microvm_legacy(&kernel)), b"");
}

/// A larger guest RAM and a kernel command line do not change the outcome.
#[test]
fn serial_guest_with_more_memory_and_append() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("append");
    let msg = "bigger\n";
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset(msg));
    let mut cmd = microvm();
    cmd.args(["-M", "microvm,legacy", "-m", "256m", "-smp", "2", "-kernel"]).arg(&kernel).args([
        "-append",
        "console=ttyS0 quiet",
        "-serial",
        "stdio",
        "-nodefaults",
    ]);
    assert_clean_exit(&run(cmd), msg.as_bytes());
}

/// Stores to and loads from an unmapped MMIO address (the virtio-mmio window,
/// empty without devices) do not stop the VM: the guest goes on, prints and
/// resets.
#[test]
fn unmapped_mmio_access_is_survived() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("mmio");
    let msg = "after unmapped MMIO\n";
    let kernel = dir.file("mmio.elf", &tiny_guest::mmio_then_serial_then_reset(tiny_guest::UNMAPPED_MMIO, msg));
    assert_clean_exit(&run(microvm_legacy(&kernel)), msg.as_bytes());
}

/// Reads of an I/O port nothing decodes return all-ones bytes (an empty ISA
/// bus) at byte, word and dword width; writes to it are ignored.
#[test]
fn unhandled_port_reads_float_high() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("port");
    let kernel = dir.file("port.elf", &tiny_guest::port_read_echo_then_reset(tiny_guest::UNHANDLED_PORT));
    assert_clean_exit(&run(microvm_legacy(&kernel)), tiny_guest::PORT_READ_ECHO_FLOATING);
}

/// `rtc=on`: the CMOS clock answers on 0x70/0x71 with its power-up registers A, B and
/// D and the host's UTC date in BCD; without it the same reads float high.
#[test]
fn cmos_clock_reads_the_host_date_only_with_rtc_on() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("rtc");
    // A, B, D, day, month, year, century.
    let kernel =
        dir.file("cmos.elf", &tiny_guest::cmos_read_echo_then_reset(&[0x0a, 0x0b, 0x0d, 0x07, 0x08, 0x09, 0x32]));
    // BCD shows a date's decimal digits as hex digits: `date` prints the bytes to expect.
    let expected = || -> Vec<u8> {
        let out = std::process::Command::new("date").args(["-u", "+%d%m%y%C"]).output().expect("run date");
        let digits = String::from_utf8(out.stdout).unwrap();
        let mut bytes = vec![0x26, 0x02, 0x80];
        bytes.extend((0..8).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap()));
        bytes.push(b'\n');
        bytes
    };
    let before = expected();
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-M", "microvm,rtc=on"]);
    let out = run(cmd);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout == before || out.stdout == expected(), "CMOS read {:02x?}, expected {before:02x?}", out.stdout);

    let out = run(microvm_legacy(&kernel));
    assert_clean_exit(&out, b"\xff\xff\xff\xff\xff\xff\xff\n");
}

/// A triple fault (KVM_EXIT_SHUTDOWN) ends the VM like a reset does: the
/// output before it is printed and microvm exits 0, promptly.
#[test]
fn triple_fault_ends_the_vm_like_a_reset() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("triple");
    let msg = "about to triple-fault\n";
    let kernel = dir.file("triple.elf", &tiny_guest::serial_then_triple_fault(msg));
    let out = run(microvm_legacy(&kernel));
    assert_no_panic(&out);
    assert_eq!(out.stdout, msg.as_bytes(), "\n{}", out.describe());
    assert_eq!(out.status.code(), Some(0), "\n{}", out.describe());
}

/// A vCPU error (KVM_EXIT_INTERNAL_ERROR, emulation failure on `int3` here)
/// ends microvm with a non-zero status and a message naming the failure, with
/// the vCPU's register state (the faulting RIP) in the log; never a panic.
#[test]
fn emulation_failure_is_reported_with_registers() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("emu");
    let msg = "emu\n";
    let kernel = dir.file("emu.elf", &tiny_guest::serial_then_emulation_failure(msg));
    let out = run(microvm_legacy(&kernel));
    assert_no_panic(&out);
    assert_eq!(out.stdout, msg.as_bytes(), "\n{}", out.describe());
    match out.status.code() {
        Some(0) | None => panic!("expected a non-zero exit status\n{}", out.describe()),
        Some(_) => {}
    }
    let stderr = out.stderr.to_lowercase();
    assert!(
        stderr.contains("emulation") || stderr.contains("internal error"),
        "stderr does not name the emulation failure\n{}",
        out.describe()
    );
    // int3 sits after `mov dx` (4 bytes) and 4 × `mov al; out dx, al` (3 bytes each).
    let rip = format!("{:x}", tiny_guest::LOAD_ADDR + 4 + 3 * msg.len() as u64);
    assert!(stderr.contains(&rip), "stderr lacks the faulting RIP {rip:#}\n{}", out.describe());
}

/// Console input while the guest prints: the main thread queues the input into the
/// 16550A while a vCPU writes the guest's output through it. Their locks once crossed
/// and deadlocked microvm (output stopped, SIGTERM unheard), which a restored guest
/// answering its console hit in the rig. Here the counter prints all the time and a
/// byte comes every millisecond for 3 s: the output must still grow at the end, and
/// SIGTERM must end microvm.
#[test]
fn console_input_while_the_guest_prints_never_stops_either() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("serial-input");
    let kernel = dir.file("counter.elf", &tiny_guest::counter_on_serial(100));
    let mut child = microvm_legacy(&kernel).stdin(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end && stdin.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // Its stderr drained too (kept: what it said), or a full pipe would block microvm.
    let mut stderr = child.stderr.take().unwrap();
    let said = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    writer.join().unwrap();
    let at_end = seen.load(std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    let later = seen.load(std::sync::atomic::Ordering::Relaxed);
    // Where each thread waits, for the message if the output stopped.
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", child.id()))
        .map(|tasks| {
            tasks
                .flatten()
                .map(|t| {
                    let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
                    format!(
                        "{} {} wchan={}",
                        read("comm").trim(),
                        read("stat").split(' ').nth(2).unwrap_or("?"),
                        read("wchan")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ended = None;
    while ended.is_none() && Instant::now() < deadline {
        ended = child.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    if ended.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    assert!(later > at_end, "the guest's output stopped at {at_end} bytes while input came; threads: {threads:?}");
    assert!(ended.is_some(), "microvm did not end within 10 s of SIGTERM");
    let said = said.join().unwrap();
    assert!(said.lines().count() < 5, "{said}");
}
