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
