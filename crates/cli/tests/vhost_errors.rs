//! vhost devices on a host without the kernel's vhost modules: one clear
//! line naming what is missing. (Their data paths are tested in the rig.)

mod common;

use common::*;
use std::path::Path;

#[test]
fn vhost_vsock_without_the_module_names_the_device_node() {
    if Path::new("/dev/vhost-vsock").exists() || !kvm_tests_enabled() {
        eprintln!("/dev/vhost-vsock exists here: the rig covers this host's vsock");
        return;
    }
    let dir = TempDir::new("novsock");
    let kernel = dir.file("reset.elf", &tiny_guest::reset_at_once());
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-device", "vhost-vsock-device,guest-cid=3"]);
    let line = assert_one_line_error(&run(cmd), &["/dev/vhost-vsock"]);
    assert!(line.contains("vhost_vsock"), "names the module: {line}");
}

/// No virtiofsd on the socket: one line naming it; without shared memory: one
/// line saying which options to add.
#[test]
fn vhost_user_fs_without_virtiofsd_or_shared_memory() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("nofsd");
    let kernel = dir.file("reset.elf", &tiny_guest::reset_at_once());
    let socket = dir.path().join("nobody.sock");
    let fs = [
        "-chardev",
        &format!("socket,id=fs,path={}", socket.display()),
        "-device",
        "vhost-user-fs-device,chardev=fs,tag=share",
    ]
    .map(String::from);
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-object", "memory-backend-memfd,id=mem,size=32M", "-M", "memory-backend=mem"]).args(&fs);
    let line = assert_one_line_error(&run(cmd), &[socket.to_str().unwrap()]);
    assert!(line.contains("virtiofsd"), "{line}");
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(&fs);
    let line = assert_one_line_error(&run(cmd), &["memory-backend-memfd"]);
    assert!(line.contains("share=on") && line.contains("size=32M"), "{line}");
}

/// vhost=on without /dev/vhost-net (needs a tap: a network namespace of its own, as root).
#[test]
fn vhost_net_without_the_module_names_the_device_node() {
    if std::path::Path::new("/dev/vhost-net").exists() || !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("novhostnet");
    let kernel = dir.file("reset.elf", &tiny_guest::reset_at_once());
    let mut cmd = microvm_at(std::path::Path::new("unshare"));
    cmd.arg("--net").arg(microvm_path());
    let mut cmd = legacy_args(cmd, &kernel);
    cmd.args([
        "-netdev",
        "tap,id=n0,ifname=vt0,script=no,downscript=no,vhost=on",
        "-device",
        "virtio-net-device,netdev=n0",
    ]);
    let line = assert_one_line_error(&run(cmd), &["/dev/vhost-net"]);
    assert!(line.contains("vhost_net") && line.contains("netdev n0"), "{line}");
}

/// A virtiofsd to talk to: MICROVM_VIRTIOFSD, or the one xtask builds into its cache
/// (`cargo xtask images` does not build it; the virtio-fs scenario does).
fn virtiofsd() -> Option<std::path::PathBuf> {
    if let Some(bin) = std::env::var_os("MICROVM_VIRTIOFSD").filter(|b| !b.is_empty()) {
        return Some(bin.into());
    }
    let cache = std::path::PathBuf::from(std::env::var_os("HOME")?).join(".cache/microvm");
    std::fs::read_dir(cache).ok()?.flatten().map(|e| e.path().join("virtiofsd")).find(|p| p.is_file())
}

/// With a real virtiofsd: the handshake at start-up works; virtiofsd killed while the VM
/// runs is logged once, the VM keeps running and quits with status 0.
#[test]
fn vhost_user_fs_survives_its_virtiofsd() {
    use std::io::{BufRead, BufReader, Write};
    let Some(virtiofsd) = virtiofsd() else {
        eprintln!("no virtiofsd built (MICROVM_VIRTIOFSD unset, none in the cache): skipped");
        return;
    };
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fsdeath");
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let (socket, qmp) = (dir.path().join("vfs.sock"), dir.path().join("qmp.sock"));
    let mut daemon = std::process::Command::new(&virtiofsd)
        .arg(format!("--socket-path={}", socket.display()))
        .arg(format!("--shared-dir={}", share.display()))
        .args(["--sandbox=none", "--seccomp=none"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kernel = dir.file("spin.elf", &tiny_guest::spin_forever());
    let mut cmd = microvm();
    cmd.args(["-M", "microvm,memory-backend=mem", "-m", "32M", "-nodefaults", "-kernel"]).arg(&kernel).args([
        "-object",
        "memory-backend-memfd,id=mem,size=32M",
        "-chardev",
        &format!("socket,id=vfs,path={}", socket.display()),
        "-device",
        "vhost-user-fs-device,chardev=vfs,tag=share",
        "-qmp",
        &format!("unix:{},server=on,wait=off", qmp.display()),
    ]);
    let vm = Running::spawn(cmd);
    let mut stream = None;
    for _ in 0..100 {
        stream = std::os::unix::net::UnixStream::connect(&qmp).ok();
        if stream.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let stream = stream.expect("microvm's QMP socket");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    for request in
        ["", "{\"execute\":\"qmp_capabilities\"}", "{\"execute\":\"query-status\"}", "{\"execute\":\"quit\"}"]
    {
        if !request.is_empty() {
            writeln!(writer, "{request}").unwrap();
        }
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
    let logged: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(logged.len(), 1, "{}", out.describe());
    assert!(logged[0].contains("virtiofsd") && logged[0].contains("is gone"), "{}", out.describe());
}
