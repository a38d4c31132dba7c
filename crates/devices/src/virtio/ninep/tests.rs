//! The device driven as Linux's v9fs client drives it: real 9P2000.L messages on the queue,
//! against a temporary folder, with the worker on its own (Landlock-confined) thread.

use super::*;
use crate::virtio::test_driver::TestDriver;
use std::path::PathBuf;
use tiny_guest::ninep::{self as wire, Msg};

const RLERROR: u8 = wire::ty::RLERROR;
const ROOT: u32 = 0;

/// A folder of its own under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("microvm-9p-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The guest's side: a driver, one reply buffer, a tag counter; attached as fid 0.
struct Session {
    d: TestDriver,
    reply: u64,
    tag: u16,
}

const REPLY_ROOM: u32 = MAX_MESSAGE as u32;

impl Session {
    fn open(share: &std::path::Path, read_only: bool) -> Session {
        Session::open_with(share, read_only, SecurityModel::None, || {})
    }

    /// A session whose worker thread runs `first` (e.g. dropping its rights), then serves.
    fn open_with(
        share: &std::path::Path,
        read_only: bool,
        model: SecurityModel,
        first: impl FnOnce() + Send + 'static,
    ) -> Session {
        let (link, worker) = pair_with(share, read_only, model).unwrap();
        std::thread::spawn(move || {
            first();
            worker.run().unwrap()
        });
        let (mut d, _) = TestDriver::new(Virtio9p::new("share", link).unwrap());
        d.activate(VIRTIO_9P_MOUNT_TAG, 16);
        let reply = d.alloc(REPLY_ROOM, 0);
        let mut s = Session { d, reply, tag: 0 };
        let r = s.rpc(|t| wire::version(t, 8192));
        assert_eq!(r[4], 101, "Rversion");
        let r = s.rpc(|t| wire::attach(t, ROOT));
        assert_eq!(r[4], 105, "Rattach");
        s
    }

    /// Sends one request; returns the whole answer.
    fn rpc(&mut self, build: impl FnOnce(u16) -> Msg) -> Vec<u8> {
        self.tag += 1;
        let request = build(self.tag).done();
        let a = self.d.alloc_with(&request);
        let head = self.d.add_chain(0, &[(a, request.len() as u32, false), (self.reply, REPLY_ROOM, true)]);
        self.d.notify(0);
        let used = self.d.used(0);
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].0, u32::from(head));
        let answer = self.d.read_bytes(self.reply, used[0].1 as usize);
        assert_eq!(u32::from_le_bytes(answer[..4].try_into().unwrap()) as usize, answer.len(), "framed");
        assert_eq!(u16::from_le_bytes([answer[5], answer[6]]), self.tag, "the request's tag");
        answer
    }

    /// The errno of an Rlerror answer, or None for any other answer.
    fn errno(answer: &[u8]) -> Option<i32> {
        wire::errno(answer).map(|e| e as i32)
    }

    fn walk(&mut self, from: u32, to: u32, names: &[&str]) -> Vec<u8> {
        self.rpc(|t| wire::walk(t, from, to, names))
    }
    fn lopen(&mut self, fid: u32, flags: i32) -> Vec<u8> {
        self.rpc(|t| wire::lopen(t, fid, flags as u32))
    }
    fn read(&mut self, fid: u32, count: u32) -> Vec<u8> {
        let r = self.rpc(|t| wire::read(t, fid, count));
        match Session::errno(&r) {
            None => r[11..].to_vec(),
            Some(e) => panic!("Tread failed: errno {e}"),
        }
    }
    fn write(&mut self, fid: u32, data: &[u8]) -> Vec<u8> {
        self.rpc(|t| wire::write(t, fid, data))
    }
    fn lcreate(&mut self, dir: u32, name: &str) -> Vec<u8> {
        self.rpc(|t| wire::lcreate(t, dir, name))
    }
    fn mkdir(&mut self, dir: u32, name: &str) -> Vec<u8> {
        self.rpc(|t| wire::mkdir(t, dir, name))
    }
    fn renameat(&mut self, from_dir: u32, from: &str, to_dir: u32, to: &str) -> Vec<u8> {
        self.rpc(|t| wire::renameat(t, from_dir, from, to_dir, to))
    }
    fn unlinkat(&mut self, dir: u32, name: &str) -> Vec<u8> {
        self.rpc(|t| wire::unlinkat(t, dir, name))
    }
    /// Names in a directory fid (opened for reading first).
    fn readdir(&mut self, fid: u32) -> Vec<String> {
        let r = self.rpc(|t| wire::readdir(t, fid, 8192));
        assert_eq!(Session::errno(&r), None);
        let mut names = Vec::new();
        let mut at = 11;
        while at < r.len() {
            at += 13 + 8 + 1;
            let len = usize::from(u16::from_le_bytes([r[at], r[at + 1]]));
            names.push(String::from_utf8_lossy(&r[at + 2..at + 2 + len]).into_owned());
            at += 2 + len;
        }
        names.sort();
        names
    }
}

#[test]
fn config_space_is_the_tag_and_the_device_is_9p() {
    let dir = TempDir::new("cfg");
    let (link, _worker) = pair(&dir.0, false).unwrap();
    let (mut d, _) = TestDriver::new(Virtio9p::new("hostshare", link).unwrap());
    assert_eq!(d.read_reg(0x8), VIRTIO_ID_9P);
    assert_eq!(d.device_features(), VIRTIO_F_VERSION_1 | VIRTIO_9P_MOUNT_TAG);
    assert_eq!(d.read_reg(0x100) & 0xffff, 9, "tag_len");
    let mut tag = Vec::new();
    for i in 0..9 {
        tag.push(d.read_reg(0x102 + i) as u8);
    }
    assert_eq!(tag, b"hostshare");
}

#[test]
fn reads_writes_creates_and_lists_the_share() {
    let dir = TempDir::new("rw");
    std::fs::write(dir.0.join("hello"), b"from the host").unwrap();
    let mut s = Session::open(&dir.0, false);

    assert_eq!(Session::errno(&s.walk(ROOT, 1, &["hello"])), None);
    assert_eq!(Session::errno(&s.lopen(1, libc::O_RDONLY)), None);
    assert_eq!(s.read(1, 100), b"from the host");

    // Tlcreate turns the directory fid into the new file's, open for writing.
    assert_eq!(Session::errno(&s.walk(ROOT, 2, &[])), None);
    assert_eq!(Session::errno(&s.lcreate(2, "new")), None);
    let r = s.write(2, b"from the guest");
    assert_eq!(u32::from_le_bytes(r[7..11].try_into().unwrap()), 14, "Rwrite count");
    assert_eq!(std::fs::read(dir.0.join("new")).unwrap(), b"from the guest");

    assert_eq!(Session::errno(&s.mkdir(ROOT, "sub")), None);
    assert!(dir.0.join("sub").is_dir());
    assert_eq!(Session::errno(&s.walk(ROOT, 3, &[])), None);
    assert_eq!(Session::errno(&s.renameat(ROOT, "new", ROOT, "renamed")), None);
    assert_eq!(Session::errno(&s.walk(ROOT, 4, &["sub"])), None);
    assert_eq!(Session::errno(&s.renameat(ROOT, "renamed", 4, "moved")), None);
    assert_eq!(std::fs::read(dir.0.join("sub/moved")).unwrap(), b"from the guest");
    assert_eq!(Session::errno(&s.lopen(3, libc::O_RDONLY | libc::O_DIRECTORY)), None);
    assert_eq!(s.readdir(3), [".", "..", "hello", "sub"]);
    assert_eq!(Session::errno(&s.unlinkat(4, "moved")), None);
    assert!(!dir.0.join("sub/moved").exists());
}

#[test]
fn walking_up_or_through_slashes_is_refused() {
    let outer = TempDir::new("up");
    std::fs::write(outer.0.join("secret"), b"outside").unwrap();
    let share = outer.0.join("share");
    std::fs::create_dir(&share).unwrap();
    let mut s = Session::open(&share, false);
    for names in [&[".."][..], &["."], &["..", "secret"], &["../secret"], &["/etc"], &[""]] {
        assert_eq!(Session::errno(&s.walk(ROOT, 1, names)), Some(libc::EPERM), "{names:?}");
    }
    // Nothing was opened: fid 1 is still free.
    assert_eq!(Session::errno(&s.walk(ROOT, 1, &[])), None);
    // Names in creations and renames are single components too.
    assert_eq!(Session::errno(&s.lcreate(1, "../escaped")), Some(libc::EPERM));
    assert_eq!(Session::errno(&s.mkdir(ROOT, "..")), Some(libc::EPERM));
    assert_eq!(Session::errno(&s.renameat(ROOT, "x", ROOT, "../x")), Some(libc::EPERM));
    assert_eq!(Session::errno(&s.unlinkat(ROOT, "../secret")), Some(libc::EPERM));
    assert!(!outer.0.join("escaped").exists());
    assert!(outer.0.join("secret").exists());
}

#[test]
fn symlinks_made_on_the_host_are_not_followed() {
    let outer = TempDir::new("ln");
    std::fs::write(outer.0.join("secret"), b"outside").unwrap();
    let share = outer.0.join("share");
    std::fs::create_dir(&share).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", share.join("passwd")).unwrap();
    std::os::unix::fs::symlink(outer.0.join("secret"), share.join("abs")).unwrap();
    std::os::unix::fs::symlink("..", share.join("up")).unwrap();
    let mut s = Session::open(&share, false);
    for (fid, link) in [(1, "passwd"), (2, "abs")] {
        // The walk reaches the link itself; opening it, or truncating through it, fails.
        assert_eq!(Session::errno(&s.walk(ROOT, fid, &[link])), None);
        assert_eq!(Session::errno(&s.lopen(fid, libc::O_RDONLY)), Some(libc::ELOOP), "{link}");
        assert_eq!(Session::errno(&s.lopen(fid, libc::O_RDWR | libc::O_TRUNC)), Some(libc::ELOOP));
        let r = s.rpc(|t| {
            Msg::new(wire::ty::TSETATTR, t).u32(fid).u32(1).u32(0o777).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0)
        });
        assert!(Session::errno(&r).is_some(), "chmod through {link} fails");
    }
    assert_eq!(std::fs::read(outer.0.join("secret")).unwrap(), b"outside");
    let mode = std::fs::metadata(outer.0.join("secret")).unwrap().permissions();
    assert_ne!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o777);
    // A relative link to the parent is not a way up either: the walk stops at the link
    // (one qid of two, and no new fid).
    let r = s.walk(ROOT, 3, &["up", "secret"]);
    assert_eq!((r[4], u16::from_le_bytes([r[7], r[8]])), (111, 1), "Rwalk with one qid");
    assert_eq!(Session::errno(&s.walk(3, 5, &[])), Some(libc::EBADF));
    // A file the guest creates through a link's name replaces nothing outside.
    assert_eq!(Session::errno(&s.walk(ROOT, 4, &[])), None);
    assert_eq!(Session::errno(&s.lcreate(4, "abs")), Some(libc::EEXIST));
    assert_eq!(std::fs::read(outer.0.join("secret")).unwrap(), b"outside");
}

#[test]
fn a_read_only_share_refuses_every_change() {
    let dir = TempDir::new("ro");
    std::fs::write(dir.0.join("f"), b"keep").unwrap();
    let mut s = Session::open(&dir.0, true);
    assert_eq!(Session::errno(&s.walk(ROOT, 1, &["f"])), None);
    assert_eq!(Session::errno(&s.lopen(1, libc::O_RDWR)), Some(libc::EROFS));
    assert_eq!(Session::errno(&s.lopen(1, libc::O_RDONLY | libc::O_TRUNC)), Some(libc::EROFS));
    assert_eq!(Session::errno(&s.lopen(1, libc::O_RDONLY)), None);
    assert_eq!(s.read(1, 10), b"keep");
    assert_eq!(Session::errno(&s.write(1, b"x")), Some(libc::EROFS));
    assert_eq!(Session::errno(&s.mkdir(ROOT, "d")), Some(libc::EROFS));
    assert_eq!(Session::errno(&s.unlinkat(ROOT, "f")), Some(libc::EROFS));
    assert_eq!(Session::errno(&s.renameat(ROOT, "f", ROOT, "g")), Some(libc::EROFS));
    assert_eq!(std::fs::read(dir.0.join("f")).unwrap(), b"keep");
}

/// The worker's Landlock rule: even a request the name checks let through cannot reach
/// a file outside the share (here: one the test thread hands in through /proc, the way
/// the server re-opens its fds).
#[test]
fn the_worker_thread_is_confined_by_landlock() {
    let outer = TempDir::new("ll");
    std::fs::write(outer.0.join("secret"), b"outside").unwrap();
    let share = outer.0.join("share");
    std::fs::create_dir(&share).unwrap();
    let (link, worker) = pair(&share, false).unwrap();
    let outside = outer.0.join("secret");
    let probe = std::thread::spawn(move || {
        worker.confine().unwrap();
        drop(link);
        std::fs::read(&outside).map_err(|e| e.raw_os_error())
    });
    let result = probe.join().unwrap();
    // Kernels without Landlock (the worker logs it) leave the other walls only.
    if landlock_available() {
        assert_eq!(result, Err(Some(libc::EACCES)));
    }
    assert_eq!(std::fs::read(outer.0.join("secret")).unwrap(), b"outside", "other threads are not confined");
}

fn landlock_available() -> bool {
    // SAFETY: landlock_create_ruleset with LANDLOCK_CREATE_RULESET_VERSION only returns the ABI.
    unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32) > 0 }
}

#[test]
fn an_answer_too_big_for_the_guest_buffer_is_an_error_not_a_cut_message() {
    let dir = TempDir::new("small");
    std::fs::write(dir.0.join("big"), vec![7u8; 4096]).unwrap();
    let mut s = Session::open(&dir.0, false);
    assert_eq!(Session::errno(&s.walk(ROOT, 1, &["big"])), None);
    assert_eq!(Session::errno(&s.lopen(1, libc::O_RDONLY)), None);
    let req = wire::read(99, 1, 4096).done();
    let a = s.d.alloc_with(&req);
    let small = s.d.alloc(64, 0);
    s.d.add_chain(0, &[(a, req.len() as u32, false), (small, 64, true)]);
    s.d.notify(0);
    let used = s.d.used(0);
    assert_eq!(used[0].1, 11);
    assert_eq!(s.d.read_bytes(small, 11), confine::rlerror(99, libc::ENOBUFS as u32));
}

#[test]
fn garbage_is_answered_and_the_device_goes_on() {
    let dir = TempDir::new("junk");
    let mut s = Session::open(&dir.0, false);
    for junk in [&[1u8, 2, 3][..], &[9, 0, 0, 0, 110, 5, 0, 0, 0], &[255; 40]] {
        let a = s.d.alloc_with(junk);
        s.d.add_chain(0, &[(a, junk.len() as u32, false), (s.reply, REPLY_ROOM, true)]);
        s.d.notify(0);
        let used = s.d.used(0);
        assert_eq!(used.len(), 1, "every request is completed");
        assert_eq!(s.d.read_bytes(s.reply, 5)[4], RLERROR);
    }
    assert_eq!(Session::errno(&s.walk(ROOT, 1, &[])), None, "still serving");
}

#[test]
fn snapshots_are_refused_in_one_line() {
    let dir = TempDir::new("snap");
    let (link, _worker) = pair(&dir.0, false).unwrap();
    let mut dev = Virtio9p::new("t", link).unwrap();
    let e = dev.save().unwrap_err().to_string();
    assert!(e.starts_with("virtio-9p cannot be saved or restored: "), "{e}");
    assert!(!e.contains('\n'));
}

mod mapped;
mod nodes;
mod passthrough;
