//! virtio-9p: the guest's requests, which reach a server on the host's file system. Two
//! targets: `ninep_requests` hands the input, cut into 9P frames, straight to the server
//! (the confinement checks, then the `p9` crate); `queue_9p` lays chains out in guest
//! memory and notifies, with the server on its own Landlock-confined thread as in the VMM.
//! Both end by checking that nothing outside the share changed: an escape is a finding.
//! The first byte chooses `readonly=` and the security model.

use crate::bytes::Bytes;
use devices::virtio::ninep::{pair_with, Responder, SecurityModel, Virtio9p};
use devices::virtio::test_driver::TestDriver;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What sits beside the share: a file and a directory the guest must never reach.
const OUTSIDE: &[u8] = b"outside the share";

/// A parent directory with a bystander file, made once per process; each input gets a
/// fresh share inside it.
fn parent() -> &'static PathBuf {
    static PARENT: OnceLock<PathBuf> = OnceLock::new();
    PARENT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("microvm-fuzz-9p-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the 9p targets' directory");
        std::fs::write(dir.join("outside"), OUTSIDE).expect("the bystander file");
        dir
    })
}

/// A fresh share: a file, a directory, and host symlinks that point out of it.
fn fresh_share() -> PathBuf {
    let share = parent().join("share");
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(share.join("dir")).expect("the share");
    std::fs::write(share.join("file"), b"inside").expect("a file in the share");
    let _ = std::os::unix::fs::symlink(parent().join("outside"), share.join("abs"));
    let _ = std::os::unix::fs::symlink("..", share.join("up"));
    share
}

/// The security model bits 1-2 of `b` choose (passthrough's and mapped-xattr's request
/// handling is fuzzed as well as none's).
fn model(b: u8) -> SecurityModel {
    match (b >> 1) & 3 {
        1 => SecurityModel::Passthrough,
        2 => SecurityModel::MappedXattr,
        _ => SecurityModel::None,
    }
}

/// Panics (a finding) if anything beside the share changed.
fn nothing_escaped(parent: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(parent).expect("parent").map(|e| e.expect("entry").file_name()).collect();
    names.sort();
    assert_eq!(names, ["outside", "share"], "a file appeared outside the share");
    assert_eq!(std::fs::read(parent.join("outside")).expect("bystander"), OUTSIDE, "the bystander changed");
}

pub fn ninep_requests(data: &[u8]) {
    let share = fresh_share();
    let first = data.first().copied().unwrap_or(0);
    let Ok(mut server) = Responder::with_model(&share, first & 1 == 1, model(first)) else { return };
    let mut rest = data.get(1..).unwrap_or_default();
    for _ in 0..64 {
        if rest.len() < 4 {
            break;
        }
        // A frame's size comes first; past the input's end the frame is cut, as a request
        // a guest cut short would be.
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let (frame, tail) = rest.split_at(len.clamp(4, rest.len()));
        let answer = server.answer(frame);
        assert!(answer.len() >= 7, "every request is answered with a framed message");
        rest = tail;
    }
    nothing_escaped(parent());
}

pub fn queue_9p(data: &[u8]) {
    let share = fresh_share();
    let mut b = Bytes::new(data);
    let first = b.u8();
    let Ok((link, worker)) = pair_with(&share, first & 1 == 1, model(first)) else { return };
    let server = std::thread::spawn(move || worker.run());
    {
        let (mut d, _) = TestDriver::new(Virtio9p::new("fuzz", link).expect("virtio-9p"));
        crate::queues::drive(&mut d, 1, &mut b, |_, _| {});
    }
    // The device (the channel's other end) is gone: the server ends.
    server.join().expect("the 9p server thread").expect("the 9p server confined itself");
    nothing_escaped(parent());
}
