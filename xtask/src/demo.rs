//! `cargo xtask run` (the demo) and `cargo xtask scenario`: boot guests the way the tests
//! do, but for people: console streamed, timings summarized.

use std::io::Write;
use xtask::host::{self, Mode, Result};
use xtask::scenario::{self, Case, Session};

pub fn run(args: &[String]) -> Result<()> {
    let (mut smp, mut append, mut name) = (String::from("1"), None, String::from("demo"));
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--smp" => smp = value()?,
            "--append" => append = Some(value()?),
            "--scenario" => name = value()?,
            _ => return Err(format!("unknown flag {a} (see cargo xtask help)")),
        }
    }
    host::ensure_packages()?;
    let mut env = vec![("DEMO_SMP", smp.as_str())];
    if let Some(a) = &append {
        env.push(("DEMO_APPEND", a.as_str()));
    }
    let session = run_session(&[name.as_str()], &env)?;
    let case = session.cases.first().ok_or("the scenario printed no @@CASE markers")?;
    summarize(&session, case)
}

pub fn scenarios(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Err("name at least one script of xtask/scenarios (without .sh)".into());
    }
    host::ensure_packages()?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let session = run_session(&names, &[])?;
    let mut failed = 0;
    for case in &session.cases {
        failed += summarize(&session, case).is_err() as usize;
    }
    let passed = session.cases.len() - failed;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        return Err(format!("{failed} scenario(s) failed"));
    }
    Ok(())
}

fn run_session(names: &[&str], env: &[(&str, &str)]) -> Result<Session> {
    let mut live = |s: &str| {
        print!("{s}");
        let _ = std::io::stdout().flush();
    };
    let session = scenario::run(names, env, &mut live)?;
    let session = session.ok_or("MICROVM_TEST_MODE=skip: nothing to run")?;
    if let (Some(ready), Some(wall)) = (session.rig_ready, session.rig_wall) {
        println!(
            "\n[xtask] rig: /dev/kvm ready {:.1} s after QEMU started; whole rig run {:.1} s",
            ready.as_secs_f64(),
            wall.as_secs_f64()
        );
    }
    Ok(session)
}

/// Prints one case's verdict and timings; Err if it did not boot and exit cleanly.
fn summarize(session: &Session, case: &Case) -> Result<()> {
    let clock = match session.mode {
        Mode::Direct => "host",
        Mode::Rig => "rig (L2)",
    };
    println!("\n== {} ({:?} mode: {})", case.name, session.mode, session.reason);
    match (case.status, case.ms) {
        (Some(s), Some(ms)) => {
            println!("   VMM exit status {s}; VMM wall time {:.2} s ({clock} clock, 10 ms steps)", ms as f64 / 1000.0)
        }
        _ => println!("   the scenario did not finish"),
    }
    match case.ready() {
        Some(r) => println!("   guest ready: cpus={} at guest uptime {:.2} s", r.cpus, r.uptime),
        None => println!("   guest never printed MICROVM-GUEST-READY"),
    }
    if case.status == Some(0) && case.ready().is_some() {
        Ok(())
    } else {
        Err(format!("{} did not boot to the marker and exit 0", case.name))
    }
}
