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
